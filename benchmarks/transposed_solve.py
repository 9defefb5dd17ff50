"""Tried and dropped (issue 17): the torch-FFT solve with every FFT along a contiguous axis.

On an Intel Xeon torch's ``rfft2`` (MKL) runs about 2.8 times as fast as scipy's pocketfft, which the CPU solve
uses (``dflib.integrate._solve_pocketfft``), so a route on torch's FFTs should be the one to reach the issue's
4x one ``rfft2`` there. The shipped torch-FFT route (``_solve_torch``) calls ``rfft2`` and ``irfft2``, whose
transforms along H run over strided columns. The route timed here runs all four 1-D FFTs along the last,
contiguous axis and pays for that with two transposing copies:

    x  = reorder2(b)                       (Makhoul's reordering of both axes, one gather)
    Vr = rfft(x)                           [..., H, M], M = W//2 + 1
    Vt = fft(Vr.mT.contiguous())           [..., M, H], the FFT along H on a transposed copy
    pair map on Vt.mT, in place            (``dflib.integrate._pair_map_``: the DCT, 1/λ, the inverse twiddles)
    z  = unreorder2(irfft(ifft(Vt).mT.contiguous(), n=W))

Every part, and the whole route, is timed against one ``rfft2`` of the same real tensor (``torch.utils.benchmark``,
median), on one thread and on all of torch's threads, beside the shipped solve (``dflib.integrate._solve``) and
MKL's own FFT along H of the half spectrum in place (``fft(Vr, dim=-2)``, which the transposed copy replaces).
Each reordering is timed as the one gather over the plane that ``dflib.dct`` uses and as one gather along W plus
one of whole rows, and the faster counts. ``"floor"`` is the sum of the parts other than the map: what the route
would cost with a map that cost nothing.
The route's result is checked against the shipped solve.

Usage::

    python benchmarks/transposed_solve.py [--out benchmarks/results/transposed_solve.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import shlex
import sys
from pathlib import Path

import torch
import torch.utils.benchmark as tbench

from dflib.dct import _makhoul_inverse, _makhoul_order, _reorder2, _unreorder2
from dflib.integrate import _pair_map_, _pair_tables, _solve
from dflib.utils import cpu_model

SHAPES = [(8, 5, 16, 64, 64), (1, 1, 480, 640)]


def transposed_solve(b: torch.Tensor, floor: float = 0.0) -> torch.Tensor:
    """L⁺ b ``[..., H, W]`` with every FFT along the last axis (the route this script times)."""
    h, w = b.shape[-2:]
    vt = torch.fft.fft(torch.fft.rfft(_reorder2(b)).mT.contiguous())  # [..., M, H]
    _pair_map_(vt.mT, _pair_tables(h, w, b.dtype, b.device, floor))
    return _unreorder2(torch.fft.irfft(torch.fft.ifft(vt).mT.contiguous(), n=w))


def _median_s(stmt: str, env: dict, threads: int, min_run_time: float) -> float:
    timer = tbench.Timer(stmt=stmt, globals=env, num_threads=threads)
    return timer.blocked_autorange(min_run_time=min_run_time).median


def bench_shape(shape: tuple[int, ...], threads: int, min_run_time: float) -> dict:
    """Each part's and the whole route's time over one ``rfft2`` of a float32 tensor of ``shape``."""
    b = torch.randn(shape, generator=torch.Generator().manual_seed(0))
    h, w = shape[-2:]
    x = _reorder2(b)
    vr = torch.fft.rfft(x)
    vt = torch.fft.fft(vr.mT.contiguous())
    tab = _pair_tables(h, w, b.dtype, b.device)
    env = dict(torch=torch, b=b, x=x, vr=vr, vt=vt, w=w, tab=tab, _reorder2=_reorder2, _unreorder2=_unreorder2,
               _pair_map_=_pair_map_, _solve=_solve, transposed_solve=transposed_solve,
               vt_copy=vt.clone(), vr_copy=vr.clone(), back=torch.fft.ifft(vt).mT.contiguous(),
               pw=_makhoul_order(w), ph=_makhoul_order(h), iw=_makhoul_inverse(w), ih=_makhoul_inverse(h))
    parts = {
        "reorder2": "_reorder2(b)",
        "rfft along W": "torch.fft.rfft(x)",
        "transposing copy": "vr.mT.contiguous()",
        "fft along H, transposed": "torch.fft.fft(vt_copy)",
        "pair map": "_pair_map_(vt_copy.mT, tab)",
        "ifft along H, transposed": "torch.fft.ifft(vt)",
        "transposing copy back": "vt.mT.contiguous()",
        "irfft along W": "torch.fft.irfft(back, n=w)",
        "unreorder2": "_unreorder2(b)",
    }
    # the same reorderings as one gather along W and one of whole rows (faster on large planes)
    separable = {
        "reorder2": "b.reshape(-1, w).index_select(1, pw).view_as(b).index_select(-2, ph)",
        "unreorder2": "b.index_select(-2, ih).reshape(-1, w).index_select(1, iw).view_as(b)",
    }
    rfft2 = _median_s("torch.fft.rfft2(b)", env, threads, min_run_time)
    over = {name: _median_s(stmt, env, threads, min_run_time) / rfft2 for name, stmt in parts.items()}
    for name, stmt in separable.items():
        over[name] = min(over[name], _median_s(stmt, env, threads, min_run_time) / rfft2)
    extra = {
        "MKL fft along H in place (strided)": "torch.fft.fft(vr, dim=-2)",
        "pair map on a contiguous [..., H, M] copy": "_pair_map_(vr_copy, tab)",
        "whole route": "transposed_solve(b)",
        "shipped solve": "_solve(b)",
    }
    over_extra = {name: _median_s(stmt, env, threads, min_run_time) / rfft2 for name, stmt in extra.items()}
    err = (transposed_solve(b) - _solve(b)).abs().max().item()
    return {
        "shape": list(shape), "threads": threads, "rfft2_s": rfft2,
        "parts_over_rfft2": over,
        "floor_over_rfft2": sum(v for k, v in over.items() if k != "pair map"),
        "over_rfft2": over_extra,
        "max_abs_diff_vs_shipped": err,
    }


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--min-run-time", type=float, default=1.0, help="seconds per timed statement")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/transposed_solve.json"))
    args = ap.parse_args(argv)
    all_threads = torch.get_num_threads()
    runs = [bench_shape(s, t, args.min_run_time) for t in sorted({1, all_threads}) for s in SHAPES]
    result = {
        "benchmark": "transposed_solve", "torch": torch.__version__, "cpu": cpu_model(),
        "machine": platform.machine(), "torch_fft": "MKL" if torch.backends.mkl.is_available() else "pocketfft",
        "command": " ".join(["python", *map(shlex.quote, sys.argv)]),
        "runs": runs,
        "note": "one machine, one run: compare ratios within it",
    }
    for r in runs:
        print(f"{r['shape']} {r['threads']} thread(s): route {r['over_rfft2']['whole route']:.2f}x, "
              f"shipped {r['over_rfft2']['shipped solve']:.2f}x, floor without the map {r['floor_over_rfft2']:.2f}x; "
              + ", ".join(f"{k} {v:.2f}" for k, v in r["parts_over_rfft2"].items()))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    return result


if __name__ == "__main__":
    main()
