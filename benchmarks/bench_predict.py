"""Time and peak memory of ``dflib predict`` on 5-frame stacks of 0.3, 3 and 12 MP.

Each stack is the Middlebury scene rendered with a phone-like camera
(f = 4.2 mm, f/1.8) focused at five distances, upsampled to the target size,
given focus breathing (magnification 1.04 to 1.00 plus shifts of up to a
pixel, as :mod:`dflib.align` models it) and per-frame sensor noise, and saved
as JPEG (quality 95). Then ``dflib predict`` runs on it with its defaults
(alignment on when needed, working size 1024 px in one piece, the shipped
weights, CPU) in a fresh subprocess (the largest stack also with
``--no-align``); its wall time and peak resident set size
(``ru_maxrss`` of that subprocess, started from a small wrapper process so
that the size of this one does not leak into it, since Linux carries a
forking parent's size across exec; reading the JPEGs, aligning, the network
and writing the outputs all count) are recorded, with its CPU time (user +
system), which a busy machine inflates less than the wall time.

Usage::

    python benchmarks/bench_predict.py [--sizes 0.3 3 12] [--keep DIR]

Writes ``benchmarks/results/predict.json`` (with the CPU model, core count,
torch threads and the load average, since this machine is shared: timings
vary between runs; the peak memory does not).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "predict.json"
FOCUS_M = (0.1, 0.125, 0.15, 0.2, 0.3)
LIMIT_MIB = 2.5 * 1024  # the bound: 2.5 GB for 12 MP


def make_stack(folder: Path, megapixels: float, seed: int = 0) -> tuple[int, int]:
    """Write a breathing 5-frame JPEG stack of about ``megapixels`` MP (4:3) into ``folder``."""
    import imageio.v3 as iio
    import torch.nn.functional as F

    from dflib.align import breathing_matrices, warp_stack
    from dflib.optics import ThinLens
    from dflib.render import render_focal_stack
    from dflib.scenes import middlebury_motorcycle

    scene = middlebury_motorcycle()
    rgb, depth = scene.rgb[:, :667], scene.depth[:, :667] * 0.05  # 4:3, a tabletop-sized scene 0.1-0.25 m
    cam = ThinLens(4.2e-3, 1.8, 12e-6)
    stack = render_focal_stack(rgb, depth, cam, FOCUS_M, seed=seed, device="cpu").images  # [5, 3, 500, 667]
    W = int(round(math.sqrt(megapixels * 1e6 * 4 / 3)))
    H = int(round(W * 3 / 4))
    rng = np.random.default_rng(seed)
    mats = breathing_matrices(np.linspace(1.04, 1.0, len(FOCUS_M)), (H, W), rng.uniform(-1, 1, (len(FOCUS_M), 2)))
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(len(FOCUS_M)):
        frame = F.interpolate(stack[i : i + 1], size=(H, W), mode="bilinear", align_corners=False)[0].numpy()
        frame = warp_stack(frame[None], np.linalg.inv(mats[i : i + 1]), progress=False)[0]
        frame += rng.normal(0, 0.01, frame.shape).astype(np.float32)
        img = (np.clip(np.moveaxis(frame, 0, -1), 0, 1) * 255 + 0.5).astype(np.uint8)
        del frame
        iio.imwrite(folder / f"IMG_{i + 1:04d}.jpg", img, quality=95)
        del img
    return H, W


def run_predict(folder: Path, out: Path, options: list[str]) -> dict:
    """``dflib predict`` in a fresh wrapper process; its time and peak RSS."""
    cmd = [sys.executable, "-m", "dflib.cli", "predict", "--images", str(folder), "--focus", *map(str, FOCUS_M),
           "--out", str(out / "depth.png"), "--device", "cpu", "--no-progress", *options]
    wrapper = ("import resource, subprocess, sys, time, json\n"
               "t = time.perf_counter(); r = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
               "dt = time.perf_counter() - t\n"
               "print(json.dumps({'rc': r.returncode, 'seconds': dt, 'stdout': r.stdout, 'stderr': r.stderr[-2000:],"
               " 'cpu_seconds': resource.getrusage(resource.RUSAGE_CHILDREN).ru_utime"
               " + resource.getrusage(resource.RUSAGE_CHILDREN).ru_stime,"
               " 'peak_rss_mib': resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}))")
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    res = subprocess.run([sys.executable, "-c", wrapper, *cmd], capture_output=True, text=True, env=env, check=True)
    return json.loads(res.stdout)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=float, nargs="+", default=[0.3, 3.0, 12.0], help="megapixels")
    ap.add_argument("--keep", help="folder to keep the stacks and outputs in (default: a temporary one)")
    ap.add_argument("--quick", action="store_true", help="0.3 MP only")
    ap.add_argument("--out", default=None, help="default benchmarks/results/predict.json (predict_quick.json with --quick)")
    args = ap.parse_args()
    from dflib.utils import benchmark_output

    args.out = args.out or str(benchmark_output(RESULTS, args.quick))
    sizes = [0.3] if args.quick else args.sizes
    import torch

    results = []
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(args.keep) if args.keep else Path(tmp)
        for mp in sizes:
            folder = base / f"stack_{mp:g}mp"
            H, W = make_stack(folder, mp)
            # defaults everywhere; the largest also without alignment, to show what alignment costs
            for options in ([], ["--no-align"]) if mp == max(sizes) else ([],):
                r = run_predict(folder, base / f"out_{mp:g}mp", options)
                if r["rc"] != 0:
                    raise SystemExit(f"dflib predict failed on {mp} MP:\n{r['stderr']}")
                row = {"megapixels": round(H * W / 1e6, 2), "size_wxh": [W, H], "frames": len(FOCUS_M),
                       "options": options, "seconds": round(r["seconds"], 1), "cpu_seconds": round(r["cpu_seconds"], 1),
                       "peak_rss_mib": round(r["peak_rss_mib"]), "output": r["stdout"].strip().splitlines()}
                print(f"{W}x{H} ({row['megapixels']} MP) {' '.join(options)}: {row['seconds']} s wall, "
                      f"{row['cpu_seconds']} s CPU, peak {row['peak_rss_mib']} MiB", flush=True)
                results.append(row)
    from dflib.utils import cpu_model

    record = {
        "benchmark": "dflib predict, 5-frame breathing JPEG stacks, defaults (align auto, working size 1024, tile 1024)",
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "load_average_1min": os.getloadavg()[0],
        "limit_mib_12mp": LIMIT_MIB,
        "results": results,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(record, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
