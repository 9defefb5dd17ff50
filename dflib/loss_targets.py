"""What the losses of :mod:`dflib.losses` compare with: the valid ground-truth pixels, the
fractional focal-plane index u(D), depth pooled onto the feature grid, and the target of
L_sv on that grid (:func:`surface_target`, shared with :mod:`dflib.diagnostics`).
Importable from :mod:`dflib.losses` as before.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from dflib.checks import check_shape

__all__ = ["SV_UNITS", "SurfaceTarget", "check_depth", "downsample_depth", "full_mask", "plane_index",
           "surface_target", "valid_mask"]


def valid_mask(target: torch.Tensor) -> torch.Tensor:
    """Bool tensor, same shape as ``target``: finite and > 0.

    >>> valid_mask(torch.tensor([1.0, 0.0, -2.0, float("nan"), float("inf")])).tolist()
    [True, False, False, False, False]
    """
    return torch.isfinite(target) & (target > 0)


def full_mask(target: torch.Tensor, mask: torch.Tensor | None, name: str = "mask") -> torch.Tensor:
    """:func:`valid_mask` of ``target``, and ``mask`` (same shape) where given."""
    m = valid_mask(target)
    if mask is not None:
        if mask.shape != target.shape:
            raise ValueError(f"{name} must have the shape of the target {tuple(target.shape)}, "
                             f"got {tuple(mask.shape)}")
        m = m & mask.to(torch.bool)
    return m


def check_depth(x: torch.Tensor, name: str) -> None:
    """``x`` must be a ``[B, 1, H, W]`` tensor (``name`` in the message)."""
    check_shape(x, "B 1 H W", name, types=(torch.Tensor,))


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

    >>> d = torch.tensor([0.5, 0.75, 1.5, 3.0]).view(1, 1, 1, 4)
    >>> plane_index(d, torch.tensor([[0.5, 1.0, 2.0]])).flatten().tolist()  # 3.0 is beyond the last plane
    [0.0, 0.5, 1.5, 2.0]
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

    >>> d, m = downsample_depth(torch.tensor([[[[1.0, 3.0], [0.0, 5.0]]]]),
    ...                         torch.tensor([[[[True, True], [False, True]]]]), 2)
    >>> d.flatten().tolist(), m.flatten().tolist()  # the mean of 1, 3 and 5; 3 of 4 pixels valid
    ([3.0], [True])
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

    A ramp through four planes, on a stride-1 grid, in plane units:

    >>> t = surface_target(torch.tensor([1.0, 2, 3, 4]).view(1, 1, 1, 4), torch.tensor([[1.0, 2, 3, 4]]), (1, 4), units="planes")
    >>> t.target.flatten().tolist(), t.dx.flatten().tolist(), t.nearest.flatten().tolist()
    ([0.0, 1.0, 2.0, 3.0], [1.0, 1.0, 1.0], [0, 1, 2, 3])
    """
    check_depth(depth_gt, "depth_gt")
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
    m = full_mask(depth_gt, mask)
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
