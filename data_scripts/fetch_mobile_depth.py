"""Fetch Mobile Depth (Suwajanakorn et al. 2015): python data_scripts/fetch_mobile_depth.py [--dest DIR]

Downloads depth_from_focus_data2.zip and depth_from_focus_data3.zip from
supasorn.com with pooch into DEST/mobile_depth, verifies them (sha256, trust
on first use), unpacks them and lists the focal stacks that
dflib.data.mobile_depth.MobileDepthDataset finds (every folder with >= 2 images).
No ground truth exists; focus is the plane index.
"""

from __future__ import annotations

import argparse
import sys

from dflib.data.common import data_dir, extract_zip, load_registry, run_fetch
from dflib.data.mobile_depth import find_stacks


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dest", help="data directory (default: $DFLIB_DATA_DIR, else the user cache)")
    args = ap.parse_args(argv)
    reg = load_registry()
    out = data_dir(args.dest) / "mobile_depth"
    raw = data_dir(args.dest) / "downloads" / "mobile_depth"
    ok = True
    for name in ("mobile_depth_data2", "mobile_depth_data3"):
        path = run_fetch(reg[name], raw)
        ok &= path is not None
        if path is not None:
            extract_zip(path, out)
    for scene, files in find_stacks(out).items():
        print(f"{scene}: {len(files)} frames")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
