"""Speed of the layered focal-stack renderer (and the naive baseline).

Run: ``.venv/bin/python benchmarks/bench_render.py [--repeats 3] [--device cpu]``.
Writes ``benchmarks/results/render.json``. The headline case is the issue's
target: a 480x640 RGB-D frame to a 10-plane stack (NYU-v2 camera, planes
uniform in dioptres over 1-10 m, a procedural occluding-objects scene with
depth 1-10 m; the automatic layer count is reported). Each case is run once
to warm up, then ``repeats`` times; median and min are reported.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

from dflib.optics import FOD500_CAMERA, FOD500_FOCUS_M, NYU_CAMERA, focus_uniform_diopters
from dflib.render import render_focal_stack, render_focal_stack_naive
from dflib.scenes import middlebury_motorcycle, occluding_objects
from dflib.utils import benchmark_output, cpu_model, default_device


def _time(fn, repeats: int, sync) -> dict:
    t0 = time.perf_counter()
    out = fn()
    sync()
    first = time.perf_counter() - t0
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        sync()
        ts.append(time.perf_counter() - t0)
    return {"first_s": first, "median_s": statistics.median(ts), "min_s": min(ts), "n_layers": out.n_layers}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--device", default=None)
    ap.add_argument("--quick", action="store_true", help="one timed repeat; writes render_quick.json")
    ap.add_argument("--out", default=None, help="default benchmarks/results/render.json (render_quick.json with --quick)")
    args = ap.parse_args()
    if args.quick:
        args.repeats = 1
    args.out = args.out or str(benchmark_output(Path(__file__).parent / "results" / "render.json", args.quick))
    dev = default_device(args.device)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)

    nyu = occluding_objects(size=(480, 640), seed=0, depth_range=(1.0, 10.0))
    nyu_focus = focus_uniform_diopters(1.0, 10.0, 10)
    mb = middlebury_motorcycle()
    mb_rgb, mb_depth = mb.rgb[10:490, 50:690], mb.depth[10:490, 50:690]
    mb_focus = focus_uniform_diopters(2.1, 5.0, 10)
    fod = occluding_objects(size=(256, 256), seed=1, depth_range=(0.1, 3.0))

    cases = {
        "nyu_camera_480x640_10planes_layered": lambda: render_focal_stack(
            nyu.rgb, nyu.depth, NYU_CAMERA, nyu_focus, device=dev),
        "nyu_camera_480x640_10planes_naive": lambda: render_focal_stack_naive(
            nyu.rgb, nyu.depth, NYU_CAMERA, nyu_focus, device=dev),
        "middlebury_480x640_10planes_layered": lambda: render_focal_stack(
            mb_rgb, mb_depth, NYU_CAMERA, mb_focus, device=dev),
        "fod500_camera_256x256_5planes_layered": lambda: render_focal_stack(
            fod.rgb, fod.depth, FOD500_CAMERA, FOD500_FOCUS_M, device=dev),
    }
    results = {name: _time(fn, args.repeats, sync) for name, fn in cases.items()}
    for name, r in results.items():
        print(f"{name:42s} median {r['median_s']:.3f} s  min {r['min_s']:.3f} s  "
              f"first {r['first_s']:.3f} s  K={r['n_layers']}")
    record = {
        "benchmark": "render_focal_stack",
        "device": str(dev),
        "device_name": torch.cuda.get_device_name(dev) if dev.type == "cuda" else platform.processor() or "cpu",
        "cpu": cpu_model(),
        "command": " ".join(["python", *sys.argv]),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "load_average_1min": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "repeats": args.repeats,
        "target": "480x640 -> 10 planes in < 2 s on 2 CPU cores",
        "results": results,
        "note": "the load average says how busy the machine was while measuring; compare within one run",
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
