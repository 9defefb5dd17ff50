"""Fetch a small ARKitScenes subset and render its focal stacks: an alias of ``dflib fetch arkitscenes``
(``--help`` lists its options; ``dflib fetch --help`` says which apply to which dataset)."""

import sys

from dflib.cli import main

if __name__ == "__main__":
    sys.exit(main(["fetch", "arkitscenes", *sys.argv[1:]]))
