"""Losses of DualFocus (METHOD.md §2, §3, §5).

L = L_depth + λ_sv L_sv + λ_fv L_fv with

- L_depth: smooth-L1 between predicted and ground-truth depth over valid pixels;
- L_sv (spatial variational): Σ_n q_n ||∇D* - θ_grad(z*_n)||_1 with sharpness
  weights q_n = softmax_n(-|f_n - D*|), on the feature grid;
- L_fv (focal variational): soft unimodality of p_n(x) around its argmax.

Validity: a ground-truth pixel is valid where it is finite and > 0 (and, if a
``mask`` is given, where the mask is true). Invalid pixels never reach a
gradient (they are selected out or zero-weighted, never multiplied as NaN).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn


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
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() != 4 or x.shape[1] != 1:
        raise ValueError(f"{name} must have shape [B, 1, H, W], got {tuple(x.shape)}")


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
    """q_n(x) = softmax_n(-|f_n - D*(x)|) (METHOD.md §2).

    Args:
        depth_gt: ``[B, 1, H, W]`` ground-truth depth, units of ``focus``; invalid
            pixels (non-finite or <= 0) are treated as 0 (their q is meaningless
            and masked out by the losses).
        focus: ``[B, N]``.

    Returns:
        ``[B, N, H, W]``, sums to 1 over N.
    """
    _check_depth(depth_gt, "depth_gt")
    if focus.dim() != 2 or focus.shape[0] != depth_gt.shape[0]:
        raise ValueError(f"focus must have shape [B={depth_gt.shape[0]}, N], got {tuple(focus.shape)}")
    d = torch.where(valid_mask(depth_gt), depth_gt, torch.zeros_like(depth_gt))
    f = focus.to(d.dtype)[:, :, None, None]
    return torch.softmax(-(f - d).abs(), dim=1)


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


def spatial_variational_loss(surface_grad: tuple[torch.Tensor, torch.Tensor], depth_gt: torch.Tensor,
                             focus: torch.Tensor, mask: torch.Tensor | None = None,
                             stride: int | None = None) -> torch.Tensor:
    """L_sv = Σ_{x,n} q_n(x) ||∇D*(x) - θ_grad(z*_n)(x)||_1 / #valid (METHOD.md §2).

    Everything lives on the feature grid: D* is downsampled with
    :func:`downsample_depth` (mask-aware mean over each s x s cell), ∇D* is its
    forward difference in depth units per *feature* pixel (the same units as
    the model's surface gradients), and q_n = softmax_n(-|f_n - D*|) is taken
    from the downsampled D*. A gradient component is valid where both of its
    pixels are valid; there q_n is the mean of its two pixels' weights (still
    summing to 1 over n). The x and y L1 terms are summed over valid
    components and planes and divided by the number of valid components.

    Args:
        surface_grad: (gx ``[B, N, H', W'-1]``, gy ``[B, N, H'-1, W']``), the
            model's θ_grad (``out["surface_grad"]``).
        depth_gt: ``[B, 1, H, W]`` ground truth, units of ``focus``.
        focus: ``[B, N]``.
        mask: optional bool ``[B, 1, H, W]``.
        stride: feature stride s; inferred as ceil(H / H') when None.

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
    if focus.shape != (b, n):
        raise ValueError(f"focus must have shape [B, N] = {(b, n)}, got {tuple(focus.shape)}")
    h, w = depth_gt.shape[-2:]
    if stride is None:
        stride = _infer_stride(h, hf, "H")
        if _infer_stride(w, wf, "W") != stride:
            raise ValueError(f"H and W give different feature strides for {(h, w)} -> {(hf, wf)}")
    m = _full_mask(depth_gt, mask)
    d, mf = downsample_depth(depth_gt.to(gx.dtype), m, stride)
    if d.shape[-2:] != (hf, wf):
        raise ValueError(f"depth_gt {tuple(depth_gt.shape)} at stride {stride} gives a "
                         f"{tuple(d.shape[-2:])} grid, surface_grad implies {(hf, wf)}")
    d = torch.where(mf, d, torch.zeros_like(d))
    q = torch.softmax(-(focus.to(d.dtype)[:, :, None, None] - d).abs(), dim=1)  # [B, N, H', W']
    dx, dy = d[..., :, 1:] - d[..., :, :-1], d[..., 1:, :] - d[..., :-1, :]  # [B, 1, ...]
    vx, vy = mf[..., :, 1:] & mf[..., :, :-1], mf[..., 1:, :] & mf[..., :-1, :]
    qx, qy = 0.5 * (q[..., :, 1:] + q[..., :, :-1]), 0.5 * (q[..., 1:, :] + q[..., :-1, :])
    ex = (qx * (gx - dx).abs() * vx).sum()
    ey = (qy * (gy - dy).abs() * vy).sum()
    count = vx.sum() + vy.sum()
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
    if not isinstance(prob, torch.Tensor) or prob.dim() != 4 or prob.shape[1] < 2:
        raise ValueError(f"prob must have shape [B, N>=2, H, W], got "
                         f"{tuple(prob.shape) if isinstance(prob, torch.Tensor) else type(prob).__name__}")
    b, n, h, w = prob.shape
    k = prob.argmax(dim=1, keepdim=True)  # [B, 1, H, W], 0-based
    d = prob[:, 1:] - prob[:, :-1]  # d_i = p_{i+1} - p_i, i = 0..N-2 (0-based)
    i = torch.arange(n - 1, device=prob.device).view(1, -1, 1, 1)
    rising = i < k  # before the peak p must not fall
    pen = torch.where(rising, F.relu(-d), F.relu(d)) ** 2
    per_pixel = pen.sum(dim=1, keepdim=True)  # [B, 1, H, W]
    if mask is None:
        return per_pixel.mean()
    if mask.dim() == 3:
        mask = mask.unsqueeze(1)
    if tuple(mask.shape) != (b, 1, h, w):
        raise ValueError(f"mask must have shape [B, 1, H, W] = {(b, 1, h, w)}, got {tuple(mask.shape)}")
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

    Call ``loss(out, depth_gt, focus, mask=None)`` with ``out`` the model's
    output dict; returns ``{"total", "depth", "sv", "fv"}`` scalars.
    """

    def __init__(self, lambda_sv: float = 1.0, lambda_fv: float = 1.0, beta: float = 1.0) -> None:
        super().__init__()
        for name, v in (("lambda_sv", lambda_sv), ("lambda_fv", lambda_fv)):
            if not (isinstance(v, (int, float)) and v >= 0 and v == v and v != float("inf")):
                raise ValueError(f"{name} must be a finite number >= 0, got {v!r}")
        if not beta > 0:
            raise ValueError(f"beta must be > 0, got {beta!r}")
        self.lambda_sv = float(lambda_sv)
        self.lambda_fv = float(lambda_fv)
        self.beta = float(beta)

    def forward(self, out: dict[str, Any], depth_gt: torch.Tensor, focus: torch.Tensor,
                mask: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        pred = out["depth"]
        ld = depth_loss(pred, depth_gt, mask, beta=self.beta)
        zero = ld.new_zeros(())
        lsv, lfv = zero, zero
        if self.lambda_sv > 0 and out.get("surface_grad") is not None:
            lsv = spatial_variational_loss(out["surface_grad"], depth_gt, focus, mask)
        if self.lambda_fv > 0:
            lfv = focal_variational_loss(out["prob"], _full_mask(depth_gt, mask))
        total = ld + self.lambda_sv * lsv + self.lambda_fv * lfv
        return {"total": total, "depth": ld, "sv": lsv, "fv": lfv}

    def extra_repr(self) -> str:
        return f"lambda_sv={self.lambda_sv}, lambda_fv={self.lambda_fv}, beta={self.beta}"
