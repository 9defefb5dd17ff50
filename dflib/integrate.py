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

Cost: two 2-D DCTs plus a scaling. On a CPU, small float32 grids (H + W <= 96,
the feature grids of training crops) take the DCTs as matrix products with the
orthonormal DCT matrices, others scipy's pocketfft real-to-real DCTs, one
axis at a time and in place; on other devices (CUDA) they are built from
torch's FFT (Makhoul's reordering, :mod:`dflib.dct`). The three routes agree
to rounding. The solve b ↦ L⁺ b is a custom autograd
Function: it is linear and self-adjoint, so its backward is the same solver
applied to the incoming gradient and nothing is saved for backward. PᵀΓ is
another Function whose backward is P (forward differences); P itself is
plain torch ops. Units: gradients in surface units per pixel,
surfaces in surface units (e.g. metres), pixels as the grid step.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.fft
import torch
import torch.nn.functional as F

from dflib.dct import _dct_matrix, _reorder2, _unreorder2

__all__ = [
    "forward_differences",
    "integrable_projection",
    "integrable_projection_full",
    "project_gradients",
    "neumann_poisson_solve",
]

_REAL_DTYPES = (torch.float32, torch.float64)
# float32 CPU grids with H + W up to this take the matrix-product DCTs (:func:`_solve_matmul`): on one thread
# faster than pocketfft at 32 x 32 and 30 x 40 and level at 48 x 48, on two faster up to 48 x 48 (pocketfft's
# workers compete with torch's spinning OpenMP threads there), slower from 64 x 64 on either way
# (``benchmarks/bench_integrate.py``, "routes"); in float64, where matrix products run at half speed,
# pocketfft is faster at these sizes too.
MATMUL_MAX_SIDES = 96


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

    (Dᵀ g)_j = g_{j-1} - g_j with g zero outside its range. Differentiable;
    its backward is P itself (:class:`_AdjointDifferences`).
    """
    return _AdjointDifferences.apply(gx, gy)


class _AdjointDifferences(torch.autograd.Function):
    """(gx, gy) ↦ PᵀΓ; backward: ∂/∂b ↦ P ∂/∂b = (Dx ∂b, Dy ∂b).

    Slice writes into one buffer, outside autograd (under autograd each would
    add a node that copies the whole incoming gradient, which made the
    backward pass cost several times the forward): Dxᵀ gx in one pass
    (interior columns g[j-1] - g[j], then the two edge columns), then Dyᵀ gy
    as two in-place row updates. Three passes instead of the five of
    accumulating all four shifted copies into a zeroed buffer.
    """

    @staticmethod
    def forward(ctx, gx: torch.Tensor, gy: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return _adjoint_into_new(gx, gy)

    @staticmethod
    def backward(ctx, grad_b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:  # type: ignore[override]
        # plain (differentiable) torch ops, so double backward works too
        return grad_b[..., :, 1:] - grad_b[..., :, :-1], grad_b[..., 1:, :] - grad_b[..., :-1, :]


def _adjoint_into_new(gx: torch.Tensor, gy: torch.Tensor) -> torch.Tensor:
    """PᵀΓ ``[..., H, W]`` in a new buffer, in three passes (no autograd; gx and gy may be strided views)."""
    b = gx.new_empty(gx.shape[:-1] + (gx.shape[-1] + 1,))
    torch.sub(gx[..., :-1], gx[..., 1:], out=b[..., 1:-1])
    b[..., 0] = -gx[..., 0]
    b[..., -1] = gx[..., -1]
    b[..., 1:, :] += gy
    b[..., :-1, :] -= gy
    return b


class _AdjointDifferencesFull(torch.autograd.Function):
    """g ``[..., 2, H, W]`` ↦ PᵀΓ of Γ = (g[..., 0, :, :-1], g[..., 1, :-1, :]) ``[..., H, W]``.

    :class:`_AdjointDifferences` on the two slices of a full-size map, as networks predict it. Its backward
    writes P ∂/∂b into one ``[..., 2, H, W]`` buffer, zero in the dropped column and row. Through autograd's
    slicing, each slice's gradient was a zero-filled copy of g and the two were summed: the projection's
    forward and backward pass took 7-10 % longer that way on the tiny recipe's 32 x 32 grids, and a quarter to a
    third longer at 64 x 64. The gradient is the same to the bit.
    """

    @staticmethod
    def forward(ctx, g: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return _adjoint_into_new(g[..., 0, :, :-1], g[..., 1, :-1, :])

    @staticmethod
    def backward(ctx, grad_b: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        if torch.is_grad_enabled():  # create_graph=True: differentiable ops, so double backward works too
            gx, gy = _AdjointDifferences.backward(ctx, grad_b)
            return torch.stack([F.pad(gx, (0, 1)), F.pad(gy, (0, 0, 0, 1))], dim=-3)
        grad = grad_b.new_empty(grad_b.shape[:-2] + (2,) + grad_b.shape[-2:])
        torch.sub(grad_b[..., :, 1:], grad_b[..., :, :-1], out=grad[..., 0, :, :-1])
        grad[..., 0, :, -1] = 0.0
        torch.sub(grad_b[..., 1:, :], grad_b[..., :-1, :], out=grad[..., 1, :-1, :])
        grad[..., 1, -1, :] = 0.0
        return grad


def _eigenvalues(n: int, idx: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """4 sin²(π i / 2n) for the integer indices ``idx``, in ``dtype``."""
    return 4.0 * torch.sin(idx.to(dtype) * (math.pi / (2 * n))).square()


def _inverse_eigenvalues(h: int, w: int, dtype: np.dtype, floor: float = 0.0) -> np.ndarray:
    """``[H, W]`` table of 1/max(λ_kl, floor) in ``dtype`` with the (0, 0) entry exactly 0.

    The two 1-D eigenvalue lists are exact in float64 and cast once; the table
    is their outer sum in ``dtype`` (one pass over H x W: in float64 and cast,
    it cost about two FFTs of a 480 x 640 image). Built per call, no global
    cache. λ_00 = 0 maps to 0 (the pseudo-inverse), never to 1/epsilon.
    ``floor = 0`` is the exact L⁺.
    """
    lk = _eigenvalues(h, torch.arange(h), torch.float64).numpy().astype(dtype)
    ll = _eigenvalues(w, torch.arange(w), torch.float64).numpy().astype(dtype)
    lam = np.add.outer(lk, ll)
    if floor > 0:
        np.maximum(lam, floor, out=lam)
    lam[0, 0] = np.inf
    return np.reciprocal(lam, out=lam)


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
    lk = _eigenvalues(h, torch.arange(h, device=device), torch.float64).to(dtype)[:, None, None]
    ll = torch.stack([_eigenvalues(w, cols, torch.float64), _eigenvalues(w, (-cols) % w, torch.float64)], dim=-1)
    ll = ll.to(dtype)
    inv = (lk + ll).clamp_min_(floor).reciprocal_().mul_(0.5)
    inv[0, 0] = 0.0  # λ_00 = 0 in both packed slots (l = 0 and -l = 0)
    return inv


def _solve_matmul(b: torch.Tensor, floor: float = 0.0) -> torch.Tensor:
    """L⁺ b with the 2-D DCTs as matrix products: z = Cₕᵀ ((Cₕ b C_wᵀ) ∘ Λ⁺) C_w.

    Cₕ, C_w are the orthonormal DCT-II matrices (:func:`_dct_matrix`): the 2-D
    DCT is b ↦ Cₕ b C_wᵀ, its inverse c ↦ Cₕᵀ c C_w, and between them L is the
    diagonal λ_kl.
    Four matrix products of 2(H + W) multiply-adds per pixel in all: on a CPU,
    in float32, that beats pocketfft's per-call and per-axis overhead on the
    small grids of training (32 x 32 feature maps) and loses on large ones
    (``benchmarks/bench_integrate.py``, ``"routes"``).
    """
    h, w = b.shape[-2:]
    ch, cw = _dct_matrix(h, b.dtype, b.device), _dct_matrix(w, b.dtype, b.device)
    np_dtype = np.float32 if b.dtype == torch.float32 else np.float64
    inv = torch.from_numpy(_inverse_eigenvalues(h, w, np_dtype, floor)).to(b.device)
    with torch.autocast(device_type=b.device.type, enabled=False):  # exact in b's dtype, also under autocast
        c = torch.matmul(ch, torch.matmul(b, cw.T))
        c.mul_(inv)
        return torch.matmul(torch.matmul(ch.T, c), cw)


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


def _pair_tables(h: int, w: int, dtype: torch.dtype, device: torch.device,
                 floor: float = 0.0) -> dict[str, torch.Tensor]:
    """Per-frequency tables of :func:`_solve_torch` for an ``[H, W]`` grid (built per call, no cache).

    With W_k = exp(-iπk/2H), W_l = exp(-iπl/2W), rows k = 1..K (K = (H-1)//2)
    paired with k' = H - k and the half spectrum l = 0..W//2:
    ``A = W_k W_l`` and ``B = conj(W_k) W_l`` ``[K, M]`` complex; ``U`` and
    ``Vt`` ``[K, M, 2]`` real, from the halved inverse eigenvalues
    s = inv[k, ±l] / 2, t = inv[k', ±l] / 2 of :func:`_packed_inverse`:
    ``U = (s₊ + t₋, s₋ + t₊)``, ``Vt = (s₊ - t₋, s₋ - t₊)``. The self-paired rows
    (0, and H/2 for even H) use ``G = W_l`` ``[M]`` and ``D = 2 inv[row]``
    ``[rows, M, 2]``. The 1-D twiddles and eigenvalues are exact in float64
    and cast once; the 2-D tables are built in ``dtype`` (built in float64 and
    cast, they cost several FFTs of a 480 x 640 image).
    """
    cdtype = torch.complex64 if dtype == torch.float32 else torch.complex128
    m, kk = w // 2 + 1, (h - 1) // 2
    f64 = dict(dtype=torch.float64, device=device)
    wk = torch.polar(torch.ones(kk, **f64), torch.arange(1, kk + 1, **f64) * (-math.pi / (2 * h)))
    wl = torch.polar(torch.ones(m, **f64), torch.arange(m, **f64) * (-math.pi / (2 * w)))
    wk, wl = wk.to(cdtype)[:, None], wl.to(cdtype)
    inv = _packed_inverse(h, w, dtype, device, floor)  # [H, M, 2], (0, 0) exactly 0
    s, t = inv[1:kk + 1], inv[h - kk:].flip(0)  # rows k and k' = H - k, aligned
    plus = torch.stack([s[..., 0] + t[..., 1], s[..., 1] + t[..., 0]], dim=-1)
    minus = torch.stack([s[..., 0] - t[..., 1], s[..., 1] - t[..., 0]], dim=-1)
    own = [0] + ([h // 2] if h % 2 == 0 else [])
    a, b = wk * wl, wk.conj() * wl
    return {
        "A": a, "Ac": a.conj().resolve_conj(), "B": b, "Bc": b.conj().resolve_conj(),
        "U": plus, "Vt": minus, "G": wl, "Gc": wl.conj().resolve_conj(), "D": 2.0 * inv[own],
    }


def _solve_torch(b: torch.Tensor, floor: float = 0.0) -> torch.Tensor:
    """L⁺ b with torch's FFT on any device (the route taken off the CPU).

    v = rfft2(reorder2(b)) (Makhoul, :mod:`dflib.dct`); the DCT, the division
    by λ and the inverse DCT's pre-twiddle collapse into one real-linear map
    per row pair (k, H - k) of the half spectrum, applied in place:

        P = A V_k,  Q = B V_k',
        V'_k  = conj(A) (U ∘ P + Vt ∘ Q),   V'_k' = conj(B) (Vt ∘ P + U ∘ Q)

    (∘ acts on the real and imaginary parts separately; tables in
    :func:`_pair_tables`), and V' = conj(W_l) (D ∘ (W_l V)) on the rows paired
    with themselves; then irfft2 and the inverse reordering. Derivation: with
    S the packed DCT (:func:`dflib.dct._dct2_half_spectrum`), S_k = P + Q and
    S_k' = i (P - Q); scaling Re S and Im S by their eigenvalues and applying
    V' = conj(A_k)(Y_k - i Y_k') gives the formulas above. No complex index
    gathers, two row flips on half the spectrum, no autograd (plain tensors).
    """
    h, w = b.shape[-2:]
    v = torch.fft.rfft2(_reorder2(b))
    _pair_map_(v, _pair_tables(h, w, b.dtype, b.device, floor))
    return _unreorder2(torch.fft.irfft2(v, s=(h, w)))


def _pair_map_(v: torch.Tensor, tab: dict[str, torch.Tensor]) -> None:
    """:func:`_solve_torch`'s per-frequency map, in place on the half spectrum ``v`` ``[..., H, W//2+1]``.

    ``v`` may be a strided view (e.g. the transpose of an ``[..., W//2+1, H]`` tensor); ``tab`` is
    :func:`_pair_tables` for the grid.
    """
    h = v.shape[-2]
    kk = (h - 1) // 2
    top, bottom = v[..., 1:kk + 1, :], v[..., h - kk:, :]
    p = top * tab["A"]
    q = bottom.flip(-2).mul_(tab["B"])
    pr, qr = torch.view_as_real(p), torch.view_as_real(q)
    r1 = torch.addcmul(pr * tab["U"], qr, tab["Vt"])
    r2 = pr.mul_(tab["Vt"]).addcmul_(qr, tab["U"])  # p's memory, no longer needed
    torch.mul(torch.view_as_complex(r1), tab["Ac"], out=top)
    bottom.copy_(torch.view_as_complex(r2).mul_(tab["Bc"]).flip(-2))
    for i, row in enumerate([0] + ([h // 2] if h % 2 == 0 else [])):
        x = v[..., row, :]
        y = x * tab["G"]
        torch.view_as_real(y).mul_(tab["D"][i])
        torch.mul(y, tab["Gc"], out=x)


def _solve(b: torch.Tensor, overwrite: bool = False, floor: float = 0.0) -> torch.Tensor:
    """L⁺ b over the last two dims ``[..., H, W]`` (no autograd bookkeeping of its own).

    ``floor > 0`` divides by max(λ, floor) instead of λ (used only by the
    bounded backward pass of :func:`integrable_projection`).

    The routes are all the exact DCT solve and agree to rounding (tested):
    float32 CPU tensors with H + W <= ``MATMUL_MAX_SIDES`` go through
    matrix-product DCTs, other CPU tensors through scipy's pocketfft DCT, others (CUDA) through torch's
    FFT. The route depends on the shape only, so the same input always gives
    the same numbers. ``overwrite=True`` lets the pocketfft route reuse b's
    memory (only for a temporary nobody else reads).
    """
    if b.device.type == "cpu":
        if b.dtype == torch.float32 and sum(b.shape[-2:]) <= MATMUL_MAX_SIDES:
            return _solve_matmul(b, floor)
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
    # PᵀΓ is a fresh temporary: the solve may work in its memory.
    return _NeumannPoissonSolve.apply(_adjoint_differences(gx, gy), True, _backward_floor(backward_gain))


def _backward_floor(backward_gain: float | None) -> float:
    """The floor 1/G² on λ of the backward solve for ``backward_gain`` G (0 for None: the exact gradient)."""
    if backward_gain is None:
        return 0.0
    if not (isinstance(backward_gain, (int, float)) and math.isfinite(backward_gain) and backward_gain > 0):
        raise ValueError(f"backward_gain must be None or a finite number > 0, got {backward_gain!r}")
    return 1.0 / float(backward_gain) ** 2


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
    _check_pair(g[..., 0, :, :-1], g[..., 1, :-1, :])
    return _NeumannPoissonSolve.apply(_AdjointDifferencesFull.apply(g), True, _backward_floor(backward_gain))
