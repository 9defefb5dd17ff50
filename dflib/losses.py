"""Losses of DualFocus (METHOD.md §2, §3, §5).

L = L_depth + λ_sv L_sv + λ_fv L_fv with

- L_depth: smooth-L1 between predicted and ground-truth depth over valid pixels
  (optionally with the target clipped to the focus range, ``depth_clip``);
- L_sv (spatial variational): Σ_n q_n ρ(∇T - θ_grad(z*_n)) on the feature grid.
  The paper's form (the defaults): T = D* in depth units, q_n =
  softmax_n(-|f_n - D*|), ρ = L1. dflib's measured departure (issue 12, the
  README's "Where dflib departs from the paper"): T = u(D*), the fractional
  focal-plane index of D* clipped to [f_1, f_N], q_n = softmax_n(-|n - u| / τ)
  with τ one plane spacing, and a Huber ρ: in metres q is nearly flat over
  FoD500's planes and the target carries metre-scale gradients from beyond the
  last plane, and in plane units an L1 ρ trains the surfaces to zero;
- L_fv (focal variational): soft unimodality of p_n(x) around its argmax.

Validity: a ground-truth pixel is valid where it is finite and > 0 (and, if a
``mask`` is given, where the mask is true). Invalid pixels never reach a
gradient (they are selected out or zero-weighted, never multiplied as NaN).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from dflib.checks import check_shape


def valid_mask(target: torch.Tensor) -> torch.Tensor:
    """Bool tensor, same shape as ``target``: finite and > 0."""
    return torch.isfinite(target) & (target > 0)


def _full_mask(target: torch.Tensor, mask: torch.Tensor | None, name: str = "mask") -> torch.Tensor:
    m = valid_mask(target)
    if mask is not None:
        if mask.shape != target.shape:
            raise ValueError(f"{name} must have the shape of the target {tuple(target.shape)}, "
                             f"got {tuple(mask.shape)}")
        m = m & mask.to(torch.bool)
    return m


def _check_depth(x: torch.Tensor, name: str) -> None:
    check_shape(x, "B 1 H W", name, types=(torch.Tensor,))


def depth_loss(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None,
               beta: float = 1.0) -> torch.Tensor:
    """Smooth-L1 (Huber with transition ``beta``, torch's definition) over valid pixels.

    Args:
        pred, target: ``[B, 1, H, W]`` depth (same units).
        mask: optional bool ``[B, 1, H, W]``, combined with ``valid_mask(target)``.

    Returns:
        scalar mean over valid pixels (0, still attached to ``pred``, if none).
    """
    _check_depth(pred, "pred")
    if target.shape != pred.shape:
        raise ValueError(f"target must have the shape of pred {tuple(pred.shape)}, got {tuple(target.shape)}")
    m = _full_mask(target, mask)
    if not m.any():
        return pred.sum() * 0.0
    return F.smooth_l1_loss(pred[m], target[m].to(pred.dtype), beta=beta)


def sharpness_weights(depth_gt: torch.Tensor, focus: torch.Tensor) -> torch.Tensor:
    """q_n(x) = softmax_n(-|f_n - D*(x)|) (METHOD.md §2, the paper's form in depth units).

    Args:
        depth_gt: ``[B, 1, H, W]`` ground-truth depth, units of ``focus``; invalid
            pixels (non-finite or <= 0) are treated as 0 (their q is meaningless
            and masked out by the losses).
        focus: ``[B, N]``.

    Returns:
        ``[B, N, H, W]``, sums to 1 over N.
    """
    _check_depth(depth_gt, "depth_gt")
    check_shape(focus, "B N", "focus", B=depth_gt.shape[0])
    d = torch.where(valid_mask(depth_gt), depth_gt, torch.zeros_like(depth_gt))
    f = focus.to(d.dtype)[:, :, None, None]
    return torch.softmax(-(f - d).abs(), dim=1)


def plane_index(depth: torch.Tensor, focus: torch.Tensor) -> torch.Tensor:
    """Fractional focal-plane index u(D) ∈ [0, N-1]: D clipped to the focus range, mapped piecewise-linearly.

    u = Σ_n clamp((D - f_n) / (f_{n+1} - f_n), 0, 1), so u(f_n) = n - 1 (0-based
    plane n), u is linear between planes, and D outside [f_1, f_N] maps to the
    nearer end. The same formula holds for increasing (metres) and decreasing
    (disparity) focus.

    Args:
        depth: ``[B, 1, H, W]``, units of ``focus``.
        focus: ``[B, N]``, strictly monotonic per row.

    Returns:
        ``[B, 1, H, W]`` (plane units; 1 = one focal-plane step).
    """
    f = focus.to(depth.dtype)[:, :, None, None]  # [B, N, 1, 1]
    lo, step = f[:, :-1], f[:, 1:] - f[:, :-1]
    return ((depth - lo) / step).clamp(0, 1).sum(dim=1, keepdim=True)


def downsample_depth(depth: torch.Tensor, mask: torch.Tensor, stride: int,
                     min_valid_fraction: float = 0.5) -> tuple[torch.Tensor, torch.Tensor]:
    """Mask-aware average pooling of depth onto the feature grid.

    Feature pixel (i, j) covers input pixels [i s, (i+1) s) x [j s, (j+1) s)
    (the input is zero-padded bottom/right to a multiple of s, matching the
    model's padding). Its depth is the mean of the valid pixels it covers; it
    is valid when at least ``min_valid_fraction`` of its s² pixels are valid
    (padding counts as invalid).

    Args:
        depth: ``[B, 1, H, W]``; mask: bool ``[B, 1, H, W]``; stride: s >= 1.

    Returns:
        depth ``[B, 1, ceil(H/s), ceil(W/s)]`` (0 where invalid) and its bool mask.
    """
    if stride < 1:
        raise ValueError(f"stride must be >= 1, got {stride}")
    h, w = depth.shape[-2:]
    hp, wp = -(-h // stride) * stride, -(-w // stride) * stride
    m = mask.to(depth.dtype)
    d = torch.where(mask, depth, torch.zeros_like(depth))
    pad = (0, wp - w, 0, hp - h)
    d, m = F.pad(d, pad), F.pad(m, pad)
    dsum = F.avg_pool2d(d, stride) * stride**2
    frac = F.avg_pool2d(m, stride)
    valid = frac >= min_valid_fraction
    df = torch.where(valid, dsum / (frac * stride**2).clamp_min(1.0), torch.zeros_like(dsum))
    return df, valid


def _infer_stride(full: int, feat: int, name: str) -> int:
    s = -(-full // feat)
    if -(-full // s) != feat:
        raise ValueError(f"cannot infer the feature stride: {name} has {feat} feature pixels "
                         f"for {full} input pixels; pass stride=")
    return s


SV_UNITS = ("depth", "planes")
SV_PENALTIES = ("l1", "huber")


@dataclass
class SurfaceTarget:
    """What L_sv compares the surfaces with, on the feature grid ``[B, ·, H', W']``.

    Attributes:
        target: ``[B, 1, H', W']`` D* (units of focus) or u(D*) (plane units), 0 where invalid.
        valid: bool ``[B, 1, H', W']``.
        dx, dy: forward differences of ``target`` (``[B, 1, H', W'-1]``, ``[B, 1, H'-1, W']``).
        vx, vy: bool masks of the valid gradient components (both pixels valid).
        q: ``[B, N, H', W']`` in-focus weights, summing to 1 over N.
        nearest: ``[B, 1, H', W']`` index of the in-focus (nearest) plane, 0-based.
    """

    target: torch.Tensor
    valid: torch.Tensor
    dx: torch.Tensor
    dy: torch.Tensor
    vx: torch.Tensor
    vy: torch.Tensor
    q: torch.Tensor
    nearest: torch.Tensor


def surface_target(depth_gt: torch.Tensor, focus: torch.Tensor, grid: tuple[int, int],
                   mask: torch.Tensor | None = None, stride: int | None = None,
                   units: str = "depth", tau: float = 1.0) -> SurfaceTarget:
    """The L_sv target on the feature grid (shared by the loss and :mod:`dflib.diagnostics`).

    D* is downsampled with :func:`downsample_depth` (mask-aware mean over each
    s x s cell). With ``units="depth"`` (the paper's formula) the target is D*
    itself and q_n = softmax_n(-|f_n - D*| / tau) with f in the focus units.
    With ``units="planes"`` the target is u(D*) (:func:`plane_index`: clipped
    to [f_1, f_N], one unit per focal-plane step) and q_n = softmax_n(-|n - u| / tau),
    so ``tau = 1`` is a temperature of one plane spacing whatever the spacing
    in metres. ``nearest`` is the plane with the largest q.

    Args:
        depth_gt: ``[B, 1, H, W]``; focus: ``[B, N]``; grid: (H', W').
        mask: optional bool ``[B, 1, H, W]``; stride: s, inferred as ceil(H / H') when None.
        units: ``"depth"`` or ``"planes"``; tau: > 0, in the target's units.
    """
    _check_depth(depth_gt, "depth_gt")
    if units not in SV_UNITS:
        raise ValueError(f"units must be one of {SV_UNITS}, got {units!r}")
    if not tau > 0:
        raise ValueError(f"tau must be > 0, got {tau!r}")
    check_shape(focus, "B N", "focus", B=depth_gt.shape[0])
    hf, wf = grid
    h, w = depth_gt.shape[-2:]
    if stride is None:
        stride = _infer_stride(h, hf, "H")
        if _infer_stride(w, wf, "W") != stride:
            raise ValueError(f"H and W give different feature strides for {(h, w)} -> {(hf, wf)}")
    m = _full_mask(depth_gt, mask)
    d, mf = downsample_depth(depth_gt.float() if depth_gt.dtype not in (torch.float32, torch.float64) else depth_gt,
                             m, stride)
    if d.shape[-2:] != (hf, wf):
        raise ValueError(f"depth_gt {tuple(depth_gt.shape)} at stride {stride} gives a "
                         f"{tuple(d.shape[-2:])} grid, the surfaces imply {(hf, wf)}")
    f = focus.to(d.dtype)
    n = f.shape[1]
    if units == "planes":
        d = plane_index(d, f)
        centres = torch.arange(n, dtype=d.dtype, device=d.device).view(1, n, 1, 1)
    else:
        centres = f[:, :, None, None]
    d = torch.where(mf, d, torch.zeros_like(d))
    q = torch.softmax(-(centres - d).abs() / tau, dim=1)  # [B, N, H', W']
    dx, dy = d[..., :, 1:] - d[..., :, :-1], d[..., 1:, :] - d[..., :-1, :]
    vx, vy = mf[..., :, 1:] & mf[..., :, :-1], mf[..., 1:, :] & mf[..., :-1, :]
    return SurfaceTarget(d, mf, dx, dy, vx, vy, q, q.max(dim=1, keepdim=True).indices)


def spatial_variational_loss(surface_grad: tuple[torch.Tensor, torch.Tensor], depth_gt: torch.Tensor,
                             focus: torch.Tensor, mask: torch.Tensor | None = None,
                             stride: int | None = None, units: str = "depth", penalty: str = "l1",
                             tau: float = 1.0, delta: float = 0.5) -> torch.Tensor:
    """L_sv = Σ_{x,n} q_n(x) ρ(∇T(x) - θ_grad(z*_n)(x)) / #valid (METHOD.md §2).

    The defaults are the paper's formula: T = D* in depth units, q_n =
    softmax_n(-|f_n - D*|) and ρ = |·| (L1). dflib's measured departure
    (issue 12) is ``units="planes"`` (T = u(D*), the fractional plane index,
    clipped to [f_1, f_N]; ``tau`` one plane spacing) with ``penalty="huber"``
    (quadratic below ``delta`` plane, linear above). In plane units the
    target is sparse (most of its L1 mass sits on depth edges), and an L1
    penalty then trains the surfaces to predict zero everywhere.

    Everything lives on the feature grid (:func:`surface_target`): ∇T is the
    forward difference in target units per *feature* pixel, the units of the
    model's surface gradients. A gradient component is valid where both of
    its pixels are valid; there q_n is the mean of its two pixels' weights
    (still summing to 1 over n). The x and y terms are summed over valid
    components and planes and divided by the number of valid components.

    Args:
        surface_grad: (gx ``[B, N, H', W'-1]``, gy ``[B, N, H'-1, W']``), the
            model's θ_grad (``out["surface_grad"]``).
        depth_gt: ``[B, 1, H, W]`` ground truth, units of ``focus``.
        focus: ``[B, N]``.
        mask: optional bool ``[B, 1, H, W]``.
        stride: feature stride s; inferred as ceil(H / H') when None.
        units: ``"depth"`` or ``"planes"``; penalty: ``"l1"`` or ``"huber"``.
        tau: temperature of q in the target's units; delta: Huber threshold.

    Returns:
        scalar (0, attached to the graph, when nothing is valid).
    """
    gx, gy = surface_grad
    _check_depth(depth_gt, "depth_gt")
    if gx.dim() != 4 or gy.dim() != 4:
        raise ValueError(f"surface_grad must be ([B,N,H',W'-1], [B,N,H'-1,W']), got "
                         f"{tuple(gx.shape)}, {tuple(gy.shape)}")
    b, n, hf, wf1 = gx.shape
    wf = wf1 + 1
    if tuple(gy.shape) != (b, n, hf - 1, wf):
        raise ValueError(f"surface_grad gy must have shape {(b, n, hf - 1, wf)} to match gx "
                         f"{tuple(gx.shape)}, got {tuple(gy.shape)}")
    check_shape(focus, "B N", "focus", B=b, N=n)
    if penalty not in SV_PENALTIES:
        raise ValueError(f"penalty must be one of {SV_PENALTIES}, got {penalty!r}")
    t = surface_target(depth_gt.to(gx.dtype), focus, (hf, wf), mask, stride, units, tau)
    qx, qy = 0.5 * (t.q[..., :, 1:] + t.q[..., :, :-1]), 0.5 * (t.q[..., 1:, :] + t.q[..., :-1, :])

    def rho(e: torch.Tensor) -> torch.Tensor:
        return e.abs() if penalty == "l1" else F.huber_loss(e, torch.zeros_like(e), reduction="none", delta=delta)

    ex = (qx * rho(gx - t.dx) * t.vx).sum()
    ey = (qy * rho(gy - t.dy) * t.vy).sum()
    count = t.vx.sum() + t.vy.sum()
    if count == 0:
        return (gx.sum() + gy.sum()) * 0.0
    return (ex + ey) / count


def focal_variational_loss(prob: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """L_fv (METHOD.md §3), averaged over valid pixels.

    With k(x) = argmax_n p_n(x) (first maximum on ties) and pairs i = 1..N-1:
    Σ_{i<k} max(0, p_i - p_{i+1})² + Σ_{i>=k} max(0, p_{i+1} - p_i)².
    Zero for any unimodal (incl. monotone) curve, positive for a second peak.

    Args:
        prob: ``[B, N, H, W]``.
        mask: optional bool ``[B, 1, H, W]`` (or ``[B, H, W]``) of pixels to count.

    Returns:
        scalar.
    """
    b, n, h, w = check_shape(prob, "B N H W", "prob", types=(torch.Tensor,)).values()
    if n < 2:
        raise ValueError(f"prob must have shape [B, N>=2, H, W], got {tuple(prob.shape)}")
    # [B, 1, H, W], 0-based; max(...).indices is argmax (first maximum on ties) at a tenth of its CPU cost over dim 1
    k = prob.max(dim=1, keepdim=True).indices
    d = prob[:, 1:] - prob[:, :-1]  # d_i = p_{i+1} - p_i, i = 0..N-2 (0-based)
    i = torch.arange(n - 1, device=prob.device).view(1, -1, 1, 1)
    rising = i < k  # before the peak p must not fall
    pen = torch.where(rising, F.relu(-d), F.relu(d)) ** 2
    per_pixel = pen.sum(dim=1, keepdim=True)  # [B, 1, H, W]
    if mask is None:
        return per_pixel.mean()
    if mask.dim() == 3:
        mask = mask.unsqueeze(1)
    check_shape(mask, "B 1 H W", "mask", B=b, H=h, W=w)
    mb = mask.to(torch.bool)
    count = mb.sum()
    if count == 0:
        return per_pixel.sum() * 0.0
    return (per_pixel * mb).sum() / count


class DualFocusLoss(nn.Module):
    """L = L_depth + λ_sv L_sv + λ_fv L_fv (METHOD.md §5).

    The paper gives no λ values; dflib's defaults are λ_sv = λ_fv = 1.
    A term whose λ is 0, or L_sv when the model has no surface branch (no
    ``surface_grad`` in its output), is not computed and reported as 0.

    Args:
        lambda_sv, lambda_fv: weights (finite, >= 0).
        beta: smooth-L1 transition of L_depth.
        sv_units, sv_penalty, sv_tau, sv_delta: L_sv's options
            (:func:`spatial_variational_loss`); the defaults are the paper's.
        depth_clip: clip the ground truth to the focus range [min f, max f] in
            L_depth (the expectation readout cannot leave it; DFV's training
            limits its targets to the range likewise). Off: the paper's L_depth.

    Call ``loss(out, depth_gt, focus, mask=None)`` with ``out`` the model's
    output dict; returns ``{"total", "depth", "sv", "fv"}`` float32 (or
    float64) scalars, also when the model ran under bfloat16 autocast.
    """

    def __init__(self, lambda_sv: float = 1.0, lambda_fv: float = 1.0, beta: float = 1.0,
                 sv_units: str = "depth", sv_penalty: str = "l1", sv_tau: float = 1.0,
                 sv_delta: float = 0.5, depth_clip: bool = False) -> None:
        super().__init__()
        for name, v in (("lambda_sv", lambda_sv), ("lambda_fv", lambda_fv), ("sv_tau", sv_tau), ("sv_delta", sv_delta)):
            if not (isinstance(v, (int, float)) and v >= 0 and v == v and v != float("inf")):
                raise ValueError(f"{name} must be a finite number >= 0, got {v!r}")
        if not beta > 0:
            raise ValueError(f"beta must be > 0, got {beta!r}")
        if sv_units not in SV_UNITS:
            raise ValueError(f"sv_units must be one of {SV_UNITS}, got {sv_units!r}")
        if sv_penalty not in SV_PENALTIES:
            raise ValueError(f"sv_penalty must be one of {SV_PENALTIES}, got {sv_penalty!r}")
        if not (sv_tau > 0 and sv_delta > 0):
            raise ValueError(f"sv_tau and sv_delta must be > 0, got {sv_tau!r}, {sv_delta!r}")
        self.lambda_sv = float(lambda_sv)
        self.lambda_fv = float(lambda_fv)
        self.beta = float(beta)
        self.sv_units, self.sv_penalty = sv_units, sv_penalty
        self.sv_tau, self.sv_delta = float(sv_tau), float(sv_delta)
        self.depth_clip = bool(depth_clip)

    def forward(self, out: dict[str, Any], depth_gt: torch.Tensor, focus: torch.Tensor,
                mask: torch.Tensor | None = None, lambda_sv: float | None = None) -> dict[str, torch.Tensor]:
        """``lambda_sv`` overrides the configured weight for this call (a ramp)."""
        pred = out["depth"]
        if pred.dtype in (torch.float16, torch.bfloat16):
            pred = pred.float()
        target = depth_gt
        if self.depth_clip:
            f = focus.to(depth_gt.dtype)
            lo, hi = f.amin(dim=1).view(-1, 1, 1, 1), f.amax(dim=1).view(-1, 1, 1, 1)
            # invalid pixels stay invalid (they are selected out by the mask)
            target = torch.where(valid_mask(depth_gt), torch.minimum(torch.maximum(depth_gt, lo), hi), depth_gt)
        ld = depth_loss(pred, target, _full_mask(depth_gt, mask), beta=self.beta)
        zero = ld.new_zeros(())
        lsv, lfv = zero, zero
        lam_sv = self.lambda_sv if lambda_sv is None else float(lambda_sv)
        if lam_sv > 0 and out.get("surface_grad") is not None:
            gx, gy = (g.float() if g.dtype in (torch.float16, torch.bfloat16) else g for g in out["surface_grad"])
            lsv = spatial_variational_loss((gx, gy), depth_gt, focus, mask, units=self.sv_units,
                                           penalty=self.sv_penalty, tau=self.sv_tau, delta=self.sv_delta)
        if self.lambda_fv > 0:
            prob = out["prob"]
            lfv = focal_variational_loss(prob.float() if prob.dtype in (torch.float16, torch.bfloat16) else prob,
                                         _full_mask(depth_gt, mask))
        total = ld + lam_sv * lsv + self.lambda_fv * lfv
        return {"total": total, "depth": ld, "sv": lsv, "fv": lfv}

    def extra_repr(self) -> str:
        return (f"lambda_sv={self.lambda_sv}, lambda_fv={self.lambda_fv}, beta={self.beta}, "
                f"sv_units={self.sv_units!r}, sv_penalty={self.sv_penalty!r}, sv_tau={self.sv_tau}, "
                f"sv_delta={self.sv_delta}, depth_clip={self.depth_clip}")
