"""Speed of the exact DCT integrable projection, as ratios measured in one run.

1. DCT solve (b -> L⁺b) and the whole projection (gx, gy -> z, PᵀΓ
   included), forward and forward+backward, vs one ``torch.fft.rfft2`` of a
   tensor of the same shape on the same device, on one thread and on all of torch's threads
   (target: projection <= 4x).
   On a CPU the solve takes the DCT matrices (float32, H + W <= 96) or scipy's
   pocketfft DCT; every CPU route, and the torch-FFT route CUDA takes, is
   timed beside it. CUDA timings synchronise the device
   (``torch.cuda.synchronize``) around every timed call.
2. vs the dense route (normal equations PᵀP built dense, nullspace fixed by
   adding the ones-vector constraint 11ᵀ, ``torch.linalg.solve``) on a 30x40 grid
   with 80 fields, as VA-DepthNet does (target >= 100x).
3. vs ``scipy.sparse.linalg.spsolve`` (one value pinned) and ``lsqr`` at 256x256.
4. (CPU) ``"routes"``: each solve route against ``rfft2`` over grid sizes, on
   [4, 5, 4, H, W] (the tiny recipe's 80 surface grids): where the DCT matrices
   stop beating pocketfft, which is what ``dflib.integrate.MATMUL_MAX_SIDES`` encodes.

Usage::

    python benchmarks/bench_integrate.py [--quick] [--out benchmarks/results/integrate.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
import timeit
from pathlib import Path

import numpy as np
import scipy
import scipy.sparse as sp
import scipy.sparse.linalg as spla
import torch
import torch.utils.benchmark as tbench

from dflib.integrate import (
    MATMUL_MAX_SIDES,
    _adjoint_differences,
    _solve_matmul,
    _solve_pocketfft,
    _solve_torch,
    integrable_projection,
    neumann_poisson_solve,
)
from dflib.utils import benchmark_output, cpu_model, default_device

RESULTS = Path(__file__).resolve().parent / "results" / "integrate.json"


def _torch_median(fn, min_run_time: float, threads: int | None = None) -> float:
    """Median seconds per call (torch.utils.benchmark; on CUDA each call ends with a synchronize), with
    torch (and so the projection's pocketfft workers) on ``threads`` threads, default ``torch.get_num_threads()``.

    ``Timer`` itself runs on one thread unless told otherwise (its ``num_threads`` defaults to 1): up to this
    revision every figure here was measured on one thread while the JSON said two."""
    def call() -> None:
        fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()

    threads = threads or torch.get_num_threads()
    return tbench.Timer(stmt="call()", globals={"call": call}, num_threads=threads).blocked_autorange(
        min_run_time=min_run_time
    ).median


def fft_backends() -> dict:
    """Which libraries compute the FFTs timed here (torch: MKL or pocketfft on a CPU; scipy: pocketfft)."""
    mkl = torch.backends.mkl.is_available()
    return {
        "torch_cpu_fft": "MKL" if mkl else "pocketfft",
        "torch_mkl_available": mkl,
        "scipy_fft": f"pocketfft (scipy {scipy.__version__})",
        "projection_route_cpu": (f"DCT matrices by torch.matmul (dflib.integrate._solve_matmul) for float32 "
                                 f"with H + W <= {MATMUL_MAX_SIDES}, else scipy.fft pocketfft DCT "
                                 "(dflib.integrate._solve_pocketfft)"),
        "projection_route_other": "torch.fft (dflib.integrate._solve_torch)",
        "cuda_fft": "cuFFT" if torch.cuda.is_available() else None,
    }


def _wall_median(fn, repeats: int) -> float:
    return statistics.median(timeit.repeat(fn, number=1, repeat=repeats))


def _sparse_p(h: int, w: int) -> sp.csr_matrix:
    def d(n: int) -> sp.spmatrix:
        return sp.diags([-np.ones(n - 1), np.ones(n - 1)], [0, 1], shape=(n - 1, n))

    return sp.vstack([sp.kron(sp.eye(h), d(w)), sp.kron(d(h), sp.eye(w))]).tocsr()


def bench_vs_fft(shape: tuple[int, ...], device: torch.device, min_run_time: float, threads: int) -> dict:
    """The solve, the projection and its backward against one ``rfft2`` of the same tensor, all on ``threads``."""
    g = torch.Generator(device="cpu").manual_seed(0)
    *lead, h, w = shape
    b = torch.randn(*shape, generator=g).to(device)
    gx = torch.randn(*lead, h, w - 1, generator=g).to(device)
    gy = torch.randn(*lead, h - 1, w, generator=g).to(device)
    t_fft = _torch_median(lambda: torch.fft.rfft2(b), min_run_time, threads)
    t_solve = _torch_median(lambda: neumann_poisson_solve(b), min_run_time, threads)
    t_proj = _torch_median(lambda: integrable_projection(gx, gy), min_run_time, threads)
    gxr, gyr = gx.clone().requires_grad_(), gy.clone().requires_grad_()
    gz = torch.randn(*shape, generator=g).to(device)
    t_fb = _torch_median(lambda: torch.autograd.grad(integrable_projection(gxr, gyr), (gxr, gyr), gz),
                         min_run_time, threads)
    out = {
        "shape": list(shape), "dtype": "float32", "threads": threads,
        "rfft2_s": t_fft, "solve_s": t_solve, "projection_s": t_proj,
        "projection_forward_backward_s": t_fb,
        "solve_over_rfft2": t_solve / t_fft, "projection_over_rfft2": t_proj / t_fft,
        # the backward pass alone (one more solve, and Pᵀ's adjoint), by difference
        "projection_backward_over_rfft2": (t_fb - t_proj) / t_fft,
    }
    if device.type == "cpu":  # every route, the torch-FFT one that CUDA takes included
        out["route"] = "matmul" if h + w <= MATMUL_MAX_SIDES else "pocketfft"
        out["solve_over_rfft2_by_route"] = _route_ratios(b, t_fft, min_run_time, threads)
    return out


CPU_ROUTES = {"matmul": _solve_matmul, "pocketfft": _solve_pocketfft, "torch_fft": _solve_torch}


def _route_ratios(b: torch.Tensor, t_fft: float, min_run_time: float, threads: int | None = None) -> dict[str, float]:
    """Each CPU route's solve of b, in units of one rfft2 of b (on ``threads``)."""
    return {name: _torch_median(lambda f=f: f(b), min_run_time, threads) / t_fft for name, f in CPU_ROUTES.items()}


def bench_routes(grids: list[tuple[int, int]], lead: tuple[int, ...], min_run_time: float) -> list[dict]:
    """Solve time of every CPU route over rfft2's, per grid size (float32, ``[*lead, H, W]``)."""
    g = torch.Generator().manual_seed(0)
    rows = []
    for h, w in grids:
        b = torch.randn(*lead, h, w, generator=g)
        t_fft = _torch_median(lambda: torch.fft.rfft2(b), min_run_time)
        ratios = _route_ratios(b, t_fft, min_run_time)
        rows.append({"grid": [h, w], "shape": list(b.shape), "rfft2_s": t_fft, "solve_over_rfft2": ratios,
                     "fastest": min(ratios, key=ratios.get),
                     "chosen": "matmul" if h + w <= MATMUL_MAX_SIDES else "pocketfft"})
    return rows


def bench_vs_dense(h: int, w: int, fields: int, device: torch.device,
                   min_run_time: float) -> dict:
    """Dense normal equations (PᵀP + 11ᵀ) z = PᵀΓ solved by torch.linalg.solve."""
    g = torch.Generator(device="cpu").manual_seed(1)
    gx = torch.randn(fields, h, w - 1, generator=g, dtype=torch.float64).to(device)
    gy = torch.randn(fields, h - 1, w, generator=g, dtype=torch.float64).to(device)
    p = torch.from_numpy(_sparse_p(h, w).toarray()).to(device)

    def dense() -> torch.Tensor:
        a = p.T @ p + 1.0  # + ones-vector constraint: unique, zero-mean solution
        rhs = _adjoint_differences(gx, gy).reshape(fields, h * w).T
        return torch.linalg.solve(a, rhs).T.reshape(fields, h, w)

    z_dense = dense()
    z_dct = integrable_projection(gx, gy)
    max_diff = (z_dense - z_dct).abs().max().item()
    t_dense = _torch_median(dense, min_run_time)
    t_dct = _torch_median(lambda: integrable_projection(gx, gy), min_run_time)
    return {
        "grid": [h, w], "fields": fields, "dtype": "float64",
        "dense_solve_s": t_dense, "dct_s": t_dct, "speedup": t_dense / t_dct,
        "max_abs_diff": max_diff,
    }


def bench_vs_scipy(h: int, w: int, repeats: int, run_lsqr: bool) -> dict:
    """One 256x256 field: spsolve on the pinned normal equations, and lsqr on P."""
    rng = np.random.default_rng(2)
    gx = rng.standard_normal((h, w - 1))
    gy = rng.standard_normal((h - 1, w))
    p = _sparse_p(h, w)
    gamma = np.concatenate([gx.ravel(), gy.ravel()])
    lap = (p.T @ p).tocsc()[1:, 1:]  # pin z[0, 0] = 0
    rhs = (p.T @ gamma)[1:]

    def sparse_direct() -> np.ndarray:
        z = np.concatenate([[0.0], spla.spsolve(lap, rhs)])
        return z - z.mean()

    tgx, tgy = torch.from_numpy(gx), torch.from_numpy(gy)
    z_dct = integrable_projection(tgx, tgy).numpy().ravel()
    out: dict = {"grid": [h, w], "dtype": "float64"}
    out["spsolve_max_abs_diff"] = float(np.abs(sparse_direct() - z_dct).max())
    out["spsolve_s"] = _wall_median(sparse_direct, repeats)
    out["dct_s"] = _torch_median(lambda: integrable_projection(tgx, tgy), 0.5)
    out["spsolve_speedup"] = out["spsolve_s"] / out["dct_s"]
    if run_lsqr:
        t0 = time.perf_counter()
        res = spla.lsqr(p, gamma, atol=1e-10, btol=1e-10, iter_lim=20000)
        out["lsqr_s"] = time.perf_counter() - t0
        out["lsqr_iterations"] = int(res[2])
        out["lsqr_max_abs_diff"] = float(np.abs(res[0] - res[0].mean() - z_dct).max())
        out["lsqr_speedup"] = out["lsqr_s"] / out["dct_s"]
    return out


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shorter timing windows, no lsqr")
    parser.add_argument("--device", default="auto", help="cpu, cuda or auto (default)")
    parser.add_argument("--out", type=Path, default=None,
                        help="default benchmarks/results/integrate.json (integrate_quick.json with --quick)")
    args = parser.parse_args(argv)
    args.out = args.out or benchmark_output(RESULTS, args.quick)

    device = default_device(args.device)
    min_run = 0.3 if args.quick else 1.5
    result = {
        "benchmark": "integrate",
        "torch": torch.__version__, "scipy": scipy.__version__, "numpy": np.__version__,
        "threads": torch.get_num_threads(), "device": str(device),  # "vs_rfft2" also on one thread
        # libgomp's waiting policy (unset: its threads spin after each parallel region; README, "Speed")
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
        "cuda_device": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
        "cpu": cpu_model(), "machine": platform.machine(), "fft": fft_backends(),
        "command": " ".join(["python", *sys.argv]),
        "quick": args.quick,
        "targets": {"projection_over_rfft2_max": 4.0, "speedup_min": 100.0},
        # one thread, and every thread torch has (the pocketfft route's workers compete with the spinning
        # OpenMP threads of torch's last parallel region, so two threads may buy nothing: README, "Speed")
        "vs_rfft2": [bench_vs_fft(s, device, min_run, n) for n in sorted({1, torch.get_num_threads()})
                     for s in [(8, 5, 16, 64, 64), (1, 1, 480, 640)]],
        "vs_dense_torch_solve": bench_vs_dense(30, 40, 80, device, min_run),
        "vs_scipy_sparse": bench_vs_scipy(256, 256, 2 if args.quick else 5,
                                          run_lsqr=not args.quick),
        # the tiny recipe's Γ is [4, 5, 4, 2, 32, 32]: its 80 grids, at several grid sizes
        "routes": (bench_routes([(16, 16), (32, 32), (30, 40), (48, 48), (64, 64), (96, 96), (128, 128), (120, 160)],
                                (4, 5, 4), min_run) if device.type == "cpu" else None),
        "note": "provisional if the machine was shared while measuring",
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
