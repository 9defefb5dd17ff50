"""Fetch FoD500: an alias of ``dflib fetch fod500``
(``--help`` lists its options; ``dflib fetch --help`` says which apply to which dataset)."""

import sys

from dflib.cli import main

if __name__ == "__main__":
    sys.exit(main(["fetch", "fod500", *sys.argv[1:]]))
