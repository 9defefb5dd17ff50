"""Fetch NYU Depth v2 and render its focal stacks:
python data_scripts/fetch_nyu.py [--dest DIR] [--split test] [--planes 5] [--limit K]

Downloads nyu_depth_v2_labeled.mat (2.8 GB) and splits.mat with pooch into
DEST/nyu, verifies them (sha256, trust on first use), then renders focal
stacks of the split with dflib.render and dflib.optics.NYU_CAMERA under both
protocols (gt_range: planes between each image's own GT min and max, the
published protocol; fixed: [1, 1.5, 2.5, 4, 6] m), centre crop 384x512,
valid 1e-3-10 m, into DEST/nyu/nyu_{split}_{protocol}_n{N}.h5.
"""

from __future__ import annotations

import argparse
import sys

from dflib.data.common import data_dir, load_registry, run_fetch
from dflib.data.nyu import PROTOCOLS, convert_labeled_mat


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dest", help="data directory (default: $DFLIB_DATA_DIR, else the user cache)")
    ap.add_argument("--split", default="test", choices=["test", "train"])
    ap.add_argument("--planes", type=int, default=5, help="planes per stack (the fixed protocol needs 5)")
    ap.add_argument("--protocols", nargs="+", default=list(PROTOCOLS), choices=list(PROTOCOLS))
    ap.add_argument("--limit", type=int, default=None, help="only the first K images (quick look)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    reg = load_registry()
    out = data_dir(args.dest) / "nyu"
    mat = run_fetch(reg["nyu_labeled"], out)
    splits = run_fetch(reg["nyu_splits"], out)
    if mat is None or splits is None:
        return 1
    paths = convert_labeled_mat(mat, splits, out, protocols=args.protocols, n_planes=args.planes,
                                split=args.split, limit=args.limit, seed=args.seed)
    for p in paths:
        print(f"wrote {p}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
