"""Fetch DDFF 12-Scene: python data_scripts/fetch_ddff12.py [--dest DIR] [--no-trainval] [--no-test].

Downloads ddff-dataset-trainval.h5 (12.6 GB) and ddff-dataset-test.h5 (761 MB)
from the TUM benchmark page with pooch into DEST/ddff12, verifies them
(sha256, trust on first use: none is published), and checks their keys. No
conversion: dflib.data.ddff12.DDFF12Dataset reads the h5 files lazily.
DFV's scene-disjoint train/val file (my_ddff_trainVal.h5) has no stable URL;
the script says where to put it and verifies it when present.
"""

from __future__ import annotations

import argparse
import sys

import h5py

from dflib.data.common import data_dir, load_registry, run_fetch


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dest", help="data directory (default: $DFLIB_DATA_DIR, else the user cache)")
    ap.add_argument("--no-trainval", action="store_true", help="skip the 12.6 GB train/val file")
    ap.add_argument("--no-test", action="store_true", help="skip the test file")
    args = ap.parse_args(argv)
    reg = load_registry()
    out = data_dir(args.dest) / "ddff12"
    names = ([] if args.no_trainval else ["ddff12_trainval"]) + ([] if args.no_test else ["ddff12_test"])
    ok = True
    for name in names:
        path = run_fetch(reg[name], out)
        ok &= path is not None
        if path is not None:
            with h5py.File(path, "r") as f:
                print(f"{path.name}: " + ", ".join(f"{k} {f[k].shape} {f[k].dtype}" for k in sorted(f)))
    dfv = out / reg["ddff12_dfv_trainval"]["fname"]
    if dfv.is_file():
        run_fetch(reg["ddff12_dfv_trainval"], out)
        print("DFV re-split present: DDFF12Dataset(variant='auto') will use it")
    else:
        print("optional: " + reg["ddff12_dfv_trainval"]["instructions"].replace("DEST", str(data_dir(args.dest))))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
