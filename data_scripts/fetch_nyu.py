"""Fetch NYU Depth v2 and render its focal stacks: an alias of ``dflib fetch nyu``
(``--help`` lists its options; ``dflib fetch --help`` says which apply to which dataset)."""

import sys

from dflib.cli import main

if __name__ == "__main__":
    sys.exit(main(["fetch", "nyu", *sys.argv[1:]]))
