"""Fetch FoD500 (DefocusNet): python data_scripts/fetch_fod500.py [--dest DIR].

The release is a Google Drive file with no stable direct URL: this script says
where to put it, then verifies (sha256, trust on first use) and unpacks it to
DEST/fod500, which is what dflib.data.fod500.FoD500Dataset reads.
"""

from __future__ import annotations

import argparse
import sys

from dflib.data.common import data_dir, extract_zip, load_registry, run_fetch


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dest", help="data directory (default: $DFLIB_DATA_DIR, else the user cache)")
    args = ap.parse_args(argv)
    out = data_dir(args.dest) / "fod500"
    path = run_fetch(load_registry()["fod500"], out)
    if path is None:
        return 1
    extract_zip(path, out)
    from dflib.data.fod500 import FoD500Dataset

    train, test = FoD500Dataset(out, "train"), FoD500Dataset(out, "test")
    print(f"FoD500 ready in {train.root}: {len(train)} train / {len(test)} test stacks")
    return 0


if __name__ == "__main__":
    sys.exit(main())
