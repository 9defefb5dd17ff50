"""Fetch a small ARKitScenes subset and render its focal stacks:
python data_scripts/fetch_arkitscenes.py [--dest DIR] [--video-ids ID ...] [--frames 10]

Downloads the depth-upsampling zips of a few Validation videos (RGB 1920x1440
with laser-scanner highres_depth) from Apple's public bucket with pooch into
DEST/downloads/arkitscenes, verifies them (sha256, trust on first use),
unpacks them, and renders NYU-style focal stacks (NYU camera, both protocols,
centre crop 384x512 at 640x480) into DEST/arkitscenes. Licence: CC BY-NC-SA 4.0.
"""

from __future__ import annotations

import argparse
import sys

from dflib.data.arkitscenes import convert_upsampling
from dflib.data.common import data_dir, extract_zip, load_registry, run_fetch
from dflib.data.nyu import PROTOCOLS


def main(argv: list[str] | None = None) -> int:
    reg = load_registry()["arkitscenes_upsampling"]
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dest", help="data directory (default: $DFLIB_DATA_DIR, else the user cache)")
    ap.add_argument("--video-ids", nargs="+", default=reg["video_ids"])
    ap.add_argument("--frames", type=int, default=10, help="frames per video")
    ap.add_argument("--planes", type=int, default=5)
    ap.add_argument("--protocols", nargs="+", default=list(PROTOCOLS), choices=list(PROTOCOLS))
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    raw = data_dir(args.dest) / "downloads" / "arkitscenes"
    src = raw / "unpacked"
    for vid in args.video_ids:
        entry = dict(reg, fname=reg["fname"].format(video_id=vid), url=reg["url"].format(video_id=vid))
        path = run_fetch(entry, raw)
        if path is None:
            return 1
        extract_zip(path, src)
    paths = convert_upsampling(src, data_dir(args.dest) / "arkitscenes", args.video_ids, args.frames,
                               protocols=args.protocols, n_planes=args.planes, seed=args.seed)
    for p in paths:
        print(f"wrote {p}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
