"""The exact, differentiable least-squares integrable projection (METHOD.md, sec. 2).

Given a (generally non-integrable) gradient field Γ = (gx, gy) on an H x W grid,
find the surface

    z* = argmin_z ||P z - Γ||²,   P z = (Dx z, Dy z),
    Dx z = z[..., :, 1:] - z[..., :, :-1]   ([..., H, W-1]),
    Dy z = z[..., 1:, :] - z[..., :-1, :]   ([..., H-1, W]),

with zero mean (the minimum-norm solution; P has the constants as nullspace).
The normal equations are L z = PᵀΓ with L = PᵀP the 5-point Laplacian with
Neumann boundaries. L is diagonalised by the 2-D DCT-II with eigenvalues

    λ_kl = 4 sin²(π k / 2H) + 4 sin²(π l / 2W),   k < H, l < W,

so z* = IDCT(DCT(PᵀΓ) / λ) with the (0, 0) coefficient set to exactly 0 (the
pseudo-inverse L⁺; never an epsilon in place of λ_00, which under autograd
turns any constant component of the incoming gradient into a huge one).

Cost: two 2-D DCTs plus a scaling. On a CPU they are scipy's pocketfft
real-to-real DCTs, one axis at a time and in place; on other devices (CUDA)
they are built from torch's FFT (Makhoul's reordering, :mod:`dflib.dct`); the
two routes agree to rounding. The solve b ↦ L⁺ b is a custom autograd
Function: it is linear and self-adjoint, so its backward is the same solver
applied to the incoming gradient and nothing is saved for backward. PᵀΓ and
P around it are plain differentiable torch ops. Units: gradients in surface units per pixel,
surfaces in surface units (e.g. metres), pixels as the grid step.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.fft
import torch

from dflib.dct import _reorder2, _twiddles2, _unreorder2

__all__ = [
    "forward_differences",
    "integrable_projection",
    "integrable_projection_full",
    "project_gradients",
    "neumann_poisson_solve",
]

_REAL_DTYPES = (torch.float32, torch.float64)


# --------------------------------------------------------------------------- checks
def _check_real_tensor(x: object, name: str) -> None:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.dtype not in _REAL_DTYPES:
        raise TypeError(
            f"{name} must be float32 or float64, got dtype {x.dtype} (shape {tuple(x.shape)})"
        )


def _check_pair(gx: torch.Tensor, gy: torch.Tensor) -> tuple[int, int]:
    """Validate a forward-difference pair and return the grid size (H, W)."""
    _check_real_tensor(gx, "gx")
    _check_real_tensor(gy, "gy")
    if gx.dtype != gy.dtype:
        raise TypeError(f"gx and gy must share a dtype, got {gx.dtype} and {gy.dtype}")
    if gx.device != gy.device:
        raise ValueError(f"gx and gy must be on one device, got {gx.device} and {gy.device}")
    if gx.ndim < 2 or gy.ndim < 2:
        raise ValueError(
            "gx [..., H, W-1] and gy [..., H-1, W] need at least 2 dims, got shapes "
            f"{tuple(gx.shape)} and {tuple(gy.shape)}"
        )
    h, w = gx.shape[-2], gx.shape[-1] + 1
    if gy.shape[-2:] != (h - 1, w) or gx.shape[:-2] != gy.shape[:-2]:
        raise ValueError(
            "expected gx [..., H, W-1] and gy [..., H-1, W] with equal leading dims, got "
            f"gx {tuple(gx.shape)} and gy {tuple(gy.shape)}"
        )
    if h < 2 or w < 2:
        raise ValueError(
            f"the grid must be at least 2 x 2, got H={h}, W={w} from gx {tuple(gx.shape)} "
            f"and gy {tuple(gy.shape)}"
        )
    return h, w


def _check_grid(z: torch.Tensor, name: str) -> None:
    _check_real_tensor(z, name)
    if z.ndim < 2 or z.shape[-2] < 2 or z.shape[-1] < 2:
        raise ValueError(f"{name} must be [..., H, W] with H, W >= 2, got shape {tuple(z.shape)}")


# ------------------------------------------------------------------ the linear maps
def forward_differences(z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """P z: forward differences of a surface.

    Args:
        z: ``[..., H, W]`` float32/float64, H, W >= 2.

    Returns:
        ``(gx, gy)``: ``gx = z[..., :, 1:] - z[..., :, :-1]`` ``[..., H, W-1]`` and
        ``gy = z[..., 1:, :] - z[..., :-1, :]`` ``[..., H-1, W]`` (per pixel).
    """
    _check_grid(z, "z")
    return z[..., :, 1:] - z[..., :, :-1], z[..., 1:, :] - z[..., :-1, :]


def _adjoint_differences(gx: torch.Tensor, gy: torch.Tensor) -> torch.Tensor:
    """PᵀΓ = Dxᵀ gx + Dyᵀ gy (minus the divergence, zero-flux boundaries) ``[..., H, W]``.

    (Dᵀ g)_j = g_{j-1} - g_j with g zero outside its range: four in-place
    slice updates of one zeroed buffer (differentiable; several times faster
    on a CPU than padding copies).
    """
    b = gx.new_zeros(gx.shape[:-1] + (gx.shape[-1] + 1,))
    b[..., :, 1:] += gx
    b[..., :, :-1] -= gx
    b[..., 1:, :] += gy
    b[..., :-1, :] -= gy
    return b


def _eigenvalues(n: int, idx: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """4 sin²(π i / 2n) for the integer indices ``idx``, in ``dtype``."""
    return 4.0 * torch.sin(idx.to(dtype) * (math.pi / (2 * n))).square()


def _inverse_eigenvalues(h: int, w: int, dtype: np.dtype, floor: float = 0.0) -> np.ndarray:
    """``[H, W]`` table of 1/max(λ_kl, floor) in ``dtype`` with the (0, 0) entry exactly 0.

    Built in float64 per call (no global cache) and cast once; λ_00 = 0 maps to
    0 (the pseudo-inverse), never to 1/epsilon. ``floor = 0`` is the exact L⁺.
    """
    lk = _eigenvalues(h, torch.arange(h), torch.float64).numpy()
    ll = _eigenvalues(w, torch.arange(w), torch.float64).numpy()
    lam = np.maximum(lk[:, None] + ll[None, :], floor)
    lam[0, 0] = np.inf
    return np.reciprocal(lam, out=lam).astype(dtype, copy=False)


def _packed_inverse(h: int, w: int, dtype: torch.dtype, device: torch.device, floor: float = 0.0) -> torch.Tensor:
    """``[H, W//2+1, 2]`` real table applying 1/λ in the packed half spectrum.

    λ_kl = 4 sin²(πk/2H) + 4 sin²(πl/2W). The DCT coefficients packed on the
    half spectrum are C[k, l] = Re S / 2 and C[k, W-l] = -Im S / 2; dividing
    both by their eigenvalue and re-packing as Y = C'[k, l] - i C'[k, W-l] gives
    Y = (inv[k, l] Re S + i inv[k, -l] Im S) / 2. Only the half-size table is
    built (per call, in ``dtype``; no global cache), and the (0, 0) entry —
    the constant mode — is exactly 0: the pseudo-inverse, never an epsilon.
    """
    m = w // 2 + 1
    cols = torch.arange(m, device=device)
    lk = _eigenvalues(h, torch.arange(h, device=device), dtype)[:, None, None]
    ll = torch.stack([_eigenvalues(w, cols, dtype), _eigenvalues(w, (-cols) % w, dtype)], dim=-1)
    inv = (lk + ll).clamp_min_(floor).reciprocal_().mul_(0.5)
    inv[0, 0] = 0.0  # λ_00 = 0 in both packed slots (l = 0 and -l = 0)
    return inv


def _solve_pocketfft(b: torch.Tensor, overwrite: bool = False, floor: float = 0.0) -> torch.Tensor:
    """L⁺ b for a CPU tensor with scipy.fft's native real-to-real DCT (pocketfft).

    ``idct(dct(b) / λ)`` one axis at a time (scipy's default normalisation:
    idct undoes dct, so the diagonal scaling needs no correction), in place
    after the first transform (and in b's own memory if ``overwrite``), on
    ``torch.get_num_threads()`` workers. On a CPU this is about twice as fast
    as the FFT route below, whose reordering copies and fresh buffers dominate
    its cost (``benchmarks/bench_integrate.py``).
    """
    h, w = b.shape[-2:]
    workers = torch.get_num_threads()
    c = scipy.fft.dct(b.detach().numpy(), axis=-1, workers=workers, overwrite_x=overwrite)
    c = scipy.fft.dct(c, axis=-2, workers=workers, overwrite_x=True)
    c *= _inverse_eigenvalues(h, w, c.dtype, floor)
    c = scipy.fft.idct(c, axis=-2, workers=workers, overwrite_x=True)
    return torch.from_numpy(scipy.fft.idct(c, axis=-1, workers=workers, overwrite_x=True))


def _solve_torch(b: torch.Tensor, floor: float = 0.0) -> torch.Tensor:
    """L⁺ b with torch's FFT on any device (the route taken off the CPU).

    2-D DCT-II of b (Makhoul reordering + one rfft2), division by λ on the
    packed half spectrum, inverse 2-D DCT (one irfft2 + inverse reordering);
    see :func:`dflib.dct._dct2_half_spectrum` / :func:`dflib.dct._idct2_from_packed`
    for the formulas. Called only without autograd, so the spectral steps work
    in place on one complex buffer (fewer large allocations).
    """
    h, w = b.shape[-2:]
    a, bt, flip = _twiddles2(h, w, b.dtype, b.device)
    v = torch.fft.rfft2(_reorder2(b))
    vf = v.index_select(-2, flip)
    # S = A V + B V_-k
    s = v.mul_(a).addcmul_(bt, vf)
    # Y = (inv[k, l] Re S + i inv[k, -l] Im S) / 2
    torch.view_as_real(s).mul_(_packed_inverse(h, w, b.dtype, b.device, floor))
    # V' = conj(A) (Y - i Y_-k), no second term for k = 0
    torch.index_select(s, -2, flip, out=vf)
    gf = (-1j * a.conj()).resolve_conj()
    gf[0] = 0.0
    y = s.mul_(a.conj().resolve_conj()).addcmul_(gf, vf)
    return _unreorder2(torch.fft.irfft2(y, s=(h, w)))


def _solve(b: torch.Tensor, overwrite: bool = False, floor: float = 0.0) -> torch.Tensor:
    """L⁺ b over the last two dims ``[..., H, W]`` (no autograd bookkeeping of its own).

    ``floor > 0`` divides by max(λ, floor) instead of λ (used only by the
    bounded backward pass of :func:`integrable_projection`).

    Both routes are the exact DCT solve and agree to rounding (tested): CPU
    tensors go through scipy's pocketfft DCT, others (CUDA) through torch's
    FFT. ``overwrite=True`` lets the CPU route reuse b's memory (only for a
    temporary nobody else reads).
    """
    if b.device.type == "cpu":
        return _solve_pocketfft(b, overwrite, floor)
    return _solve_torch(b, floor)


class _NeumannPoissonSolve(torch.autograd.Function):
    """b ↦ L⁺ b. Linear and self-adjoint: backward applies the same map.

    With ``backward_floor > 0`` the backward pass divides by max(λ, floor)
    instead (a bounded, no longer exact gradient; the forward stays exact).
    """

    @staticmethod
    def forward(ctx, b: torch.Tensor, overwrite: bool, backward_floor: float = 0.0) -> torch.Tensor:  # type: ignore[override]
        # Nothing is saved for backward, so a temporary b may be overwritten.
        ctx.backward_floor = backward_floor
        return _solve(b, overwrite)

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor) -> tuple[torch.Tensor, None, None]:  # type: ignore[override]
        floor = ctx.backward_floor
        if floor > 0:
            return _BoundedSolve.apply(grad_out, floor), None, None
        # apply() again, so double backward (create_graph=True) works too.
        return _NeumannPoissonSolve.apply(grad_out, False), None, None


class _BoundedSolve(torch.autograd.Function):
    """b ↦ L_floor⁺ b (1/max(λ, floor)); self-adjoint like the exact solve."""

    @staticmethod
    def forward(ctx, b: torch.Tensor, floor: float) -> torch.Tensor:  # type: ignore[override]
        ctx.floor = floor
        return _solve(b, False, floor)

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor) -> tuple[torch.Tensor, None]:  # type: ignore[override]
        return _BoundedSolve.apply(grad_out, ctx.floor), None


def neumann_poisson_solve(b: torch.Tensor) -> torch.Tensor:
    """z = L⁺ b: the zero-mean solution of the Neumann Poisson problem PᵀP z = b.

    Args:
        b: ``[..., H, W]`` float32/float64, any device, H, W >= 2. The component
            of b along the constants (its mean) is discarded, so for b outside
            the range of L this is the least-squares (minimum-norm) solution.

    Returns:
        z ``[..., H, W]``, zero mean over the last two dims. Differentiable; its
        backward is the same solve.
    """
    _check_grid(b, "b")
    return _NeumannPoissonSolve.apply(b, False)


# ------------------------------------------------------------------------ public API
def integrable_projection(gx: torch.Tensor, gy: torch.Tensor, backward_gain: float | None = None) -> torch.Tensor:
    """The zero-mean surface whose forward differences best fit (gx, gy).

    Solves ``argmin_z ||Dx z - gx||² + ||Dy z - gy||²`` exactly (DCT solve of
    the Neumann Poisson equation), for all leading items at once.

    Args:
        gx: ``[..., H, W-1]`` x-gradient, ``gx ~ z[..., :, 1:] - z[..., :, :-1]``.
        gy: ``[..., H-1, W]`` y-gradient, ``gy ~ z[..., 1:, :] - z[..., :-1, :]``.
            Same leading shape, dtype (float32 or float64) and device as gx;
            H, W >= 2.
        backward_gain: None (default) for the exact gradient. A number G > 0
            bounds the backward pass's gain: the map from ∂/∂z to ∂/∂Γ is
            P L⁺, whose gain 1/√λ reaches ~H/π at the lowest frequency; with
            G, λ is floored at 1/G² in the backward solve only (the forward
            result is unchanged and exact; the gradient is then a deliberately
            damped one at the lowest frequencies).

    Returns:
        z ``[..., H, W]`` with mean exactly zero over (H, W); differentiable
        with respect to gx and gy (backward costs one more solve).

    Raises:
        TypeError: non-tensors, non-float32/float64 dtypes, or mismatched dtypes.
        ValueError: shapes that are not ``[..., H, W-1]`` / ``[..., H-1, W]``,
            grids smaller than 2 x 2, or tensors on different devices.
    """
    _check_pair(gx, gy)
    floor = 0.0
    if backward_gain is not None:
        if not (isinstance(backward_gain, (int, float)) and math.isfinite(backward_gain) and backward_gain > 0):
            raise ValueError(f"backward_gain must be None or a finite number > 0, got {backward_gain!r}")
        floor = 1.0 / float(backward_gain) ** 2
    # PᵀΓ is a fresh temporary: the solve may work in its memory.
    return _NeumannPoissonSolve.apply(_adjoint_differences(gx, gy), True, floor)


def project_gradients(gx: torch.Tensor, gy: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The integrable part of (gx, gy): P z* with z* = integrable_projection(gx, gy).

    Args and shapes as :func:`integrable_projection`; returns ``(gx*, gy*)``
    ``[..., H, W-1]`` and ``[..., H-1, W]``. The map is the orthogonal
    projector onto the range of P (idempotent, self-adjoint).
    """
    return forward_differences(integrable_projection(gx, gy))


def integrable_projection_full(g: torch.Tensor, backward_gain: float | None = None) -> torch.Tensor:
    """:func:`integrable_projection` for full-size gradient maps, as networks predict.

    Args:
        g: ``[..., 2, H, W]``; channel 0 is the x-gradient (``z[w+1] - z[w]``
            stored at pixel w), channel 1 the y-gradient (``z[h+1] - z[h]``
            stored at pixel h). The last column of channel 0 and the last row
            of channel 1 have no forward neighbour and are dropped (ignored;
            their gradient is zero).
        backward_gain: as in :func:`integrable_projection`.

    Returns:
        z ``[..., H, W]``, zero mean over (H, W).
    """
    _check_real_tensor(g, "g")
    if g.ndim < 3 or g.shape[-3] != 2:
        raise ValueError(f"g must be [..., 2, H, W], got shape {tuple(g.shape)}")
    return integrable_projection(g[..., 0, :, :-1], g[..., 1, :-1, :], backward_gain)
