"""Fetch DDFF 12-Scene: an alias of ``dflib fetch ddff12``
(``--help`` lists its options; ``dflib fetch --help`` says which apply to which dataset)."""

import sys

from dflib.cli import main

if __name__ == "__main__":
    sys.exit(main(["fetch", "ddff12", *sys.argv[1:]]))
