"""``python -m dflib ...``: the same command as ``dflib ...`` (see :mod:`dflib.cli`)."""

import sys

from dflib.cli import main

if __name__ == "__main__":
    sys.exit(main())
