"""Tried and dropped (issue 17): the torch-FFT solve with its non-FFT passes compiled by ``torch.compile``.

The CPU projection's solve runs on scipy's pocketfft DCT, one axis at a time (``dflib.integrate``); the route
through torch's FFT (MKL on a CPU) pays for its reorder gathers and its elementwise passes. This script asks
whether Inductor can make those passes cheap enough for the torch-FFT route to reach the issue's 4x one ``rfft2``.
The route timed here is

    x = reorder2(b)                  (Makhoul's reordering, one compiled gather)
    V = rfft2(x)                     (MKL)
    V' = S V + P V[-k]               (one compiled real map: a 2x2 real matrix per frequency on the bin and on
                                      its partner row H - k; the DCT, 1/λ and the inverse twiddles folded in)
    z = unreorder2(irfft(ifft(V', dim=-2), dim=-1))   (MKL, then one compiled gather)

Its tables come from ``dflib.integrate._pair_tables``. ``irfft2`` is split into ``ifft`` + ``irfft`` because on
this machine the split is faster. Every piece is timed on one thread (``torch.utils.benchmark``) against one
``rfft2`` of the same tensor, beside the shipped solve (``dflib.integrate._solve``). The compiled route's result is
checked against the shipped one (float32 rounding).

Usage::

    python benchmarks/compiled_solve.py [--out benchmarks/results/compiled_solve.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import shlex
import sys
import warnings
from pathlib import Path

import torch
import torch.utils.benchmark as tbench

from dflib.dct import _flat_inverse2, _flat_order2
from dflib.integrate import _pair_tables, _solve
from dflib.utils import cpu_model

SHAPES = [(8, 5, 16, 64, 64), (1, 1, 480, 640)]


def _cmat(z: torch.Tensor) -> torch.Tensor:
    """Complex multiplication by ``z`` as real 2x2 matrices ``[..., 2, 2]`` acting on (re, im)."""
    return torch.stack([torch.stack([z.real, -z.imag], -1), torch.stack([z.imag, z.real], -1)], -2)


def real_map_tables(h: int, w: int) -> torch.Tensor:
    """``[H, W//2+1, 8]``: per bin, the 2x2 real matrix on the bin itself, then the one on its partner row H - k."""
    tab = _pair_tables(h, w, torch.float32, torch.device("cpu"))
    kk, m = (h - 1) // 2, w // 2 + 1
    a, b, ac, bc = (_cmat(tab[k]) for k in ("A", "B", "Ac", "Bc"))
    u, vt = torch.diag_embed(tab["U"]), torch.diag_embed(tab["Vt"])
    self_m, partner = torch.zeros(h, m, 2, 2), torch.zeros(h, m, 2, 2)
    self_m[1:kk + 1], partner[1:kk + 1] = ac @ u @ a, ac @ vt @ b  # row k from (V_k, V_H-k)
    self_m[h - kk:], partner[h - kk:] = (bc @ u @ b).flip(0), (bc @ vt @ a).flip(0)  # row H - k
    own = [0] + ([h // 2] if h % 2 == 0 else [])
    for i, row in enumerate(own):  # rows paired with themselves
        self_m[row] = _cmat(tab["Gc"]) @ torch.diag_embed(tab["D"][i]) @ _cmat(tab["G"])
    return torch.cat([self_m.reshape(h, m, 4), partner.reshape(h, m, 4)], -1).contiguous()


def compiled_route(h: int, w: int, compile_: bool = True) -> dict:
    """The route's pieces for an ``[..., H, W]`` grid, the gathers and the map compiled (static shapes).

    ``compile_=False`` leaves them eager (the same numbers up to rounding; what the tests check)."""
    order = _flat_order2(h, w)
    inverse = _flat_inverse2(h, w)
    t8 = real_map_tables(h, w)
    partner_row = (-torch.arange(h)) % h

    def gather(x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        return x.reshape(-1, h * w)[:, idx].reshape(x.shape)

    def real_map(v: torch.Tensor) -> torch.Tensor:  # v: view_as_real of the half spectrum [..., H, M, 2]
        p = v[..., partner_row, :, :]
        re = t8[..., 0] * v[..., 0] + t8[..., 1] * v[..., 1] + t8[..., 4] * p[..., 0] + t8[..., 5] * p[..., 1]
        im = t8[..., 2] * v[..., 0] + t8[..., 3] * v[..., 1] + t8[..., 6] * p[..., 0] + t8[..., 7] * p[..., 1]
        return torch.stack([re, im], -1)

    wrap = (lambda f: torch.compile(f, dynamic=False)) if compile_ else (lambda f: f)
    return {
        "reorder": wrap(lambda x: gather(x, order)),
        "map": wrap(real_map),
        "unreorder": wrap(lambda x: gather(x, inverse)),
    }


def route_solve(route: dict, x: torch.Tensor) -> torch.Tensor:
    """L⁺ x ``[..., H, W]`` by the route's pieces (:func:`compiled_route`)."""
    v = torch.view_as_real(torch.fft.rfft2(route["reorder"](x)))
    spectrum = torch.view_as_complex(route["map"](v))
    return route["unreorder"](torch.fft.irfft(torch.fft.ifft(spectrum, dim=-2), n=x.shape[-1], dim=-1))


def bench_shape(shape: tuple[int, ...], min_run_time: float) -> dict:
    h, w = shape[-2:]
    b = torch.randn(shape, generator=torch.Generator().manual_seed(0))
    route = compiled_route(h, w)
    solve = lambda x: route_solve(route, x)  # noqa: E731

    with warnings.catch_warnings():  # Inductor warns that it leaves complex operators to eager mode
        warnings.simplefilter("ignore", UserWarning)
        z = solve(b)
        x = route["reorder"](b)
        v = torch.view_as_real(torch.fft.rfft2(x)).contiguous()
        spectrum = torch.view_as_complex(route["map"](v))
        mixed = torch.fft.ifft(spectrum, dim=-2)
        pieces = {
            "rfft2": lambda: torch.fft.rfft2(b),
            "shipped_solve": lambda: _solve(b),
            "compiled_route": lambda: solve(b),
            "reorder": lambda: route["reorder"](b),
            "map": lambda: route["map"](v),
            "ifft_dim-2": lambda: torch.fft.ifft(spectrum, dim=-2),
            "irfft_dim-1": lambda: torch.fft.irfft(mixed, n=w, dim=-1),
            "irfft2_instead": lambda: torch.fft.irfft2(spectrum, s=(h, w)),
            "unreorder": lambda: route["unreorder"](x),
        }
        seconds = {k: tbench.Timer(stmt="f()", globals={"f": f}, num_threads=1).blocked_autorange(
            min_run_time=min_run_time).median for k, f in pieces.items()}
    ref = _solve(b)
    return {
        "shape": list(shape),
        "seconds": seconds,
        "over_rfft2": {k: s / seconds["rfft2"] for k, s in seconds.items()},
        "max_rel_diff_vs_shipped": float((z - ref).abs().max() / ref.abs().max()),
    }


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--min-run-time", type=float, default=1.0, help="seconds per timed piece")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/compiled_solve.json"))
    args = ap.parse_args(argv)
    result = {
        "benchmark": "compiled_solve", "torch": torch.__version__, "cpu": cpu_model(),
        "machine": platform.machine(), "threads": 1, "torch_cpu_fft": "MKL" if torch.backends.mkl.is_available()
        else "pocketfft", "command": " ".join(["python", *map(shlex.quote, sys.argv)]),
        "shapes": [bench_shape(s, args.min_run_time) for s in SHAPES],
    }
    for row in result["shapes"]:
        r = row["over_rfft2"]
        print(f"{row['shape']}: shipped solve {r['shipped_solve']:.2f}x rfft2, compiled route "
              f"{r['compiled_route']:.2f}x (reorder {r['reorder']:.2f}, map {r['map']:.2f}, ifft {r['ifft_dim-2']:.2f}"
              f" + irfft {r['irfft_dim-1']:.2f} (irfft2 {r['irfft2_instead']:.2f}), unreorder {r['unreorder']:.2f});"
              f" max rel diff {row['max_rel_diff_vs_shipped']:.1e}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    return result


if __name__ == "__main__":
    main()
