"""Fetch Mobile Depth: an alias of ``dflib fetch mobile_depth``
(``--help`` lists its options; ``dflib fetch --help`` says which apply to which dataset)."""

import sys

from dflib.cli import main

if __name__ == "__main__":
    sys.exit(main(["fetch", "mobile_depth", *sys.argv[1:]]))
