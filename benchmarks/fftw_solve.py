"""Tried and dropped (issue 17): the solve on FFTW's own real-to-real DCTs (pyFFTW), both axes in one plan.

FFTW computes DCT-II (``REDFT10``) and DCT-III (``REDFT01``) natively, over several axes in one plan, in place.
If its DCTs were as fast as MKL's ``rfft2``, the solve ``L⁺ b = DCT-III(DCT-II(b) / λ)`` would cost about two
``rfft2``s and the issue's 4x would be in reach. This script times that solve, and one 2-D DCT alone, against one
``rfft2`` of the same float32 tensor (torch, MKL) and beside the shipped solve (``dflib.integrate._solve``), on
one thread, with the two planners that matter: ``FFTW_ESTIMATE`` (a fixed plan, so the same numbers every run)
and ``FFTW_MEASURE`` (a plan chosen by timing, which can differ between runs and machines, and with it the
rounding). The time to plan is recorded apart. pyFFTW is not a dependency of dflib (FFTW is GPL)::

    pip install pyfftw
    python benchmarks/fftw_solve.py [--out benchmarks/results/fftw_solve.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.utils.benchmark as tbench

from dflib.integrate import _inverse_eigenvalues, _solve
from dflib.utils import cpu_model

SHAPES = [(8, 5, 16, 64, 64), (1, 1, 480, 640)]
PLANNERS = ["FFTW_ESTIMATE", "FFTW_MEASURE"]


def fftw_solver(shape: tuple[int, ...], planner: str = "FFTW_ESTIMATE", dtype: str = "float32") -> dict:
    """L⁺ on ``[..., H, W]`` arrays of ``shape`` by two in-place FFTW plans over the last two axes.

    Returns ``{"solve": f, "dct": g, "plan_s": seconds}``: ``f(b)`` copies ``b`` (numpy) into the plans' aligned
    buffer and returns L⁺ b in that buffer (overwritten by the next call); ``g()`` runs the forward 2-D DCT-II
    alone on the buffer. FFTW's unnormalised pair multiplies by 4HW, folded into 1/λ."""
    import pyfftw

    h, w = shape[-2:]
    buf = pyfftw.empty_aligned(shape, dtype=dtype)
    t0 = time.perf_counter()
    kw = {"axes": (-2, -1), "flags": [planner, "FFTW_DESTROY_INPUT"], "threads": 1}
    dct2 = pyfftw.FFTW(buf, buf, direction=["FFTW_REDFT10"] * 2, **kw)
    dct3 = pyfftw.FFTW(buf, buf, direction=["FFTW_REDFT01"] * 2, **kw)
    plan_s = time.perf_counter() - t0
    scale = (_inverse_eigenvalues(h, w, np.float64, 0.0) / (4 * h * w)).astype(dtype)

    def solve(b: np.ndarray) -> np.ndarray:
        buf[...] = b
        dct2()
        buf[...] *= scale
        dct3()
        return buf

    return {"solve": solve, "dct": dct2, "plan_s": plan_s}


def bench_shape(shape: tuple[int, ...], planner: str, min_run_time: float) -> dict:
    b = torch.randn(shape, generator=torch.Generator().manual_seed(0))
    route = fftw_solver(shape, planner)
    bn, ref = b.numpy(), _solve(b).numpy()
    err = float(np.abs(route["solve"](bn) - ref).max() / np.abs(ref).max())
    pieces = {
        "rfft2": lambda: torch.fft.rfft2(b),
        "shipped_solve": lambda: _solve(b),
        "fftw_solve": lambda: route["solve"](bn),
        "fftw_one_2d_dct": route["dct"],
    }
    seconds = {k: tbench.Timer(stmt="f()", globals={"f": f}, num_threads=1).blocked_autorange(
        min_run_time=min_run_time).median for k, f in pieces.items()}
    return {
        "shape": list(shape), "planner": planner, "plan_s": route["plan_s"], "seconds": seconds,
        "over_rfft2": {k: s / seconds["rfft2"] for k, s in seconds.items()},
        "max_rel_diff_vs_shipped": err,
    }


def main(argv: list[str] | None = None) -> dict:
    import pyfftw

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--min-run-time", type=float, default=1.0, help="seconds per timed piece")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/fftw_solve.json"))
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    result = {
        "benchmark": "fftw_solve", "torch": torch.__version__, "pyfftw": pyfftw.__version__, "cpu": cpu_model(),
        "machine": platform.machine(), "threads": 1,
        "torch_cpu_fft": "MKL" if torch.backends.mkl.is_available() else "pocketfft",
        "command": " ".join(["python", *map(shlex.quote, sys.argv)]),
        "shapes": [bench_shape(s, p, args.min_run_time) for s in SHAPES for p in PLANNERS],
    }
    for row in result["shapes"]:
        r = row["over_rfft2"]
        print(f"{row['shape']} {row['planner']}: FFTW solve {r['fftw_solve']:.2f}x rfft2 (one 2-D DCT "
              f"{r['fftw_one_2d_dct']:.2f}x; planned in {row['plan_s'] * 1e3:.0f} ms), shipped solve "
              f"{r['shipped_solve']:.2f}x; max rel diff {row['max_rel_diff_vs_shipped']:.1e}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    return result


if __name__ == "__main__":
    main()
