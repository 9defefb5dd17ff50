"""The alignment's feature size on a real stack: the same maps, in how much time.

``dflib.registration.estimate_breathing`` finds ORB features on frames shrunk to at most ``feature_size`` px;
they only start the direct refinement of each neighbour map (at up to ``max_size`` px), so a smaller size
should give the same maps sooner. Per feature size this records the median seconds of ``--repeats`` runs
(the sizes interleaved, one thread) and the largest distance (px, full resolution, over the corners and the
centre) between its maps and those of the first size. The README's figures for 512 and 256 px come from::

    git clone --depth 1 https://github.com/PetteriAimonen/focus-stack
    python benchmarks/feature_size.py --images focus-stack/examples/depthmap \\
        --out benchmarks/results/feature_size_depthmap.json
    python benchmarks/feature_size.py --images focus-stack/examples/pcb --out benchmarks/results/feature_size_pcb.json
    git clone --depth 1 https://github.com/cmcguinness/focusstack
    python benchmarks/feature_size.py --images focusstack/Input --out benchmarks/results/feature_size_ring.json

(the stacks are not shipped: third-party data).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from dflib.align import displacement_px
from dflib.io import load_stack
from dflib.registration import estimate_breathing
from dflib.stack_io import _stack_files
from dflib.utils import cpu_model


def measure(stack: np.ndarray, sizes: list[int], repeats: int) -> dict[str, dict[str, float]]:
    """``{size: {"seconds": median, "max_px_from_first": ...}}`` for the stack ``[N, 3, H, W]``."""
    times: dict[int, list[float]] = {s: [] for s in sizes}
    maps: dict[int, np.ndarray] = {}
    for _ in range(repeats):
        for s in sizes:
            t0 = time.perf_counter()
            maps[s] = estimate_breathing(stack, feature_size=s, progress=False).matrices
            times[s].append(time.perf_counter() - t0)
    first = maps[sizes[0]]
    return {str(s): {"seconds": round(statistics.median(times[s]), 2),
                     "max_px_from_first": float(displacement_px(np.linalg.inv(first) @ maps[s], stack.shape[-2:]).max())}
            for s in sizes}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", required=True, help="a folder of frames (natural name order)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[512, 256, 128], help="feature sizes, px")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--out", type=Path, default=None, help="write the figures as JSON here")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    n = len(_stack_files(args.images)[0])
    stack = load_stack(args.images, list(range(1, n + 1)), "index").images  # frames in file order
    result = {"stack": str(args.images), "frames": list(stack.shape), "sizes": measure(stack, args.sizes, args.repeats),
              "repeats": args.repeats, "threads": 1, "cpu": cpu_model(), "python": platform.python_version()}
    print(json.dumps(result, indent=1))
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1) + "\n")
    return result


if __name__ == "__main__":
    main()
