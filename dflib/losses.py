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

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from dflib.checks import check_shape
from dflib.loss_targets import (  # noqa: F401  (importable from here as before)
    SV_UNITS,
    SurfaceTarget,
    check_depth,
    downsample_depth,
    full_mask,
    plane_index,
    surface_target,
    valid_mask,
)


def depth_loss(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None,
               beta: float = 1.0) -> torch.Tensor:
    """Smooth-L1 (Huber with transition ``beta``, torch's definition) over valid pixels.

    Args:
        pred, target: ``[B, 1, H, W]`` depth (same units).
        mask: optional bool ``[B, 1, H, W]``, combined with ``valid_mask(target)``.

    Returns:
        scalar mean over valid pixels (0, still attached to ``pred``, if none).

    Errors 0.5 (quadratic part: 0.5 x 0.5² = 0.125) and 3 (linear: 3 - 0.5 = 2.5); the 0 is a hole:

    >>> depth_loss(torch.zeros(1, 1, 1, 3), torch.tensor([[[[0.5, 3.0, 0.0]]]]))
    tensor(1.3125)
    """
    check_depth(pred, "pred")
    if target.shape != pred.shape:
        raise ValueError(f"target must have the shape of pred {tuple(pred.shape)}, got {tuple(target.shape)}")
    m = full_mask(target, mask)
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

    >>> [round(q, 4) for q in sharpness_weights(torch.ones(1, 1, 1, 1), torch.tensor([[1.0, 2.0]])).flatten().tolist()]
    [0.7311, 0.2689]
    """
    check_depth(depth_gt, "depth_gt")
    check_shape(focus, "B N", "focus", B=depth_gt.shape[0])
    d = torch.where(valid_mask(depth_gt), depth_gt, torch.zeros_like(depth_gt))
    f = focus.to(d.dtype)[:, :, None, None]
    return torch.softmax(-(f - d).abs(), dim=1)


SV_PENALTIES = ("l1", "huber")


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

    Surfaces whose gradient is the target's (one unit per pixel) cost nothing; flat ones cost
    the L1 error of 1 at each gradient component (the weights q sum to 1 over the planes):

    >>> depth, focus = torch.tensor([1.0, 2, 3, 4]).view(1, 1, 1, 4), torch.tensor([[1.0, 2, 3, 4]])
    >>> gy = torch.zeros(1, 4, 0, 4)  # a one-row grid has no vertical gradient
    >>> float(spatial_variational_loss((torch.ones(1, 4, 1, 3), gy), depth, focus))
    0.0
    >>> float(spatial_variational_loss((torch.zeros(1, 4, 1, 3), gy), depth, focus))
    1.0
    """
    gx, gy = surface_grad
    check_depth(depth_gt, "depth_gt")
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

    >>> float(focal_variational_loss(torch.tensor([0.1, 0.6, 0.3]).view(1, 3, 1, 1)))  # unimodal
    0.0
    >>> round(float(focal_variational_loss(torch.tensor([0.4, 0.1, 0.5]).view(1, 3, 1, 1))), 6)  # (0.4 - 0.1)²
    0.09
    """
    b, n, h, w = check_shape(prob, "B N H W", "prob", types=(torch.Tensor,)).values()
    if n < 2:
        raise ValueError(f"prob must have shape [B, N>=2, H, W], got {tuple(prob.shape)}")
    per_pixel = _FocalPenalty.apply(prob)  # [B, 1, H, W]
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


class _FocalPenalty(torch.autograd.Function):
    """prob ``[B, N, H, W]`` ↦ Σ_i e_i² ``[B, 1, H, W]``, L_fv's penalty per pixel, with its gradient in one pass.

    d_i = p_{i+1} - p_i and e_i = max(0, s_i d_i) with s_i = -1 before the
    peak k (i < k: p must not fall) and +1 from it on (p must not rise). The
    peak, the first maximum over N, is a constant of the input: s_i is +1
    once a value equal to max_n p_n has been seen at or before i (a loop over
    the N planes of [B, 1, H, W] comparisons, far cheaper on a CPU than
    ``max(...).indices``). ∂/∂d_i = 2 e_i s_i, and ∂/∂p is the adjoint of the
    difference (-∂/∂d_0, ∂/∂d_{i-1} - ∂/∂d_i, ..., ∂/∂d_{N-2}), written into
    one buffer.
    """

    @staticmethod
    def forward(ctx, prob: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        n = prob.shape[1]
        peak = prob.amax(dim=1, keepdim=True)
        s = torch.empty_like(prob[:, 1:])  # [B, N-1, H, W]
        seen = prob[:, :1] == peak  # a maximum at or before plane i
        for i in range(n - 1):
            s[:, i:i + 1] = seen
            if i < n - 2:
                seen |= prob[:, i + 1:i + 2] == peak
        s.mul_(2.0).sub_(1.0)  # s_i = +1 from the peak on, -1 before it
        e = (prob[:, 1:] - prob[:, :-1]).mul_(s).clamp_min_(0.0)  # e_i = max(0, s_i d_i)
        ctx.save_for_backward(s.mul_(e).mul_(2.0))  # s's memory: 2 e_i s_i
        return e.square_().sum(dim=1, keepdim=True)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_pixel: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        (slope,) = ctx.saved_tensors
        gd = slope * grad_pixel  # ∂/∂d_i
        grad = gd.new_empty(gd.shape[:1] + (gd.shape[1] + 1,) + gd.shape[2:])
        torch.sub(gd[:, :-1], gd[:, 1:], out=grad[:, 1:-1])
        grad[:, 0] = -gd[:, 0]
        grad[:, -1] = gd[:, -1]
        return grad


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
    float64) scalars, also when the model ran under bfloat16 autocast. When
    ``out`` has ``depth_blind`` (``DualFocusConfig.surface_two_path``), its
    L_depth joins the total, and with ``prob_blind`` (``blind_encoder``) that path's
    λ_fv L_fv too; ``depth`` and ``fv`` stay the main path's.

    >>> out = {"depth": torch.zeros(1, 1, 1, 2), "prob": torch.tensor([0.2, 0.5, 0.3]).view(1, 3, 1, 1).expand(1, 3, 1, 2)}
    >>> terms = DualFocusLoss(lambda_sv=0.0)(out, torch.full((1, 1, 1, 2), 0.5), torch.tensor([[0.3, 0.5, 0.7]]))
    >>> {k: round(float(v), 6) for k, v in terms.items()}  # smooth-L1 of 0.5: 0.125; a unimodal prob: L_fv = 0
    {'total': 0.125, 'depth': 0.125, 'sv': 0.0, 'fv': 0.0}
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
        valid = full_mask(depth_gt, mask)
        ld = depth_loss(pred, target, valid, beta=self.beta)
        zero = ld.new_zeros(())
        lsv, lfv, blind_ld = zero, zero, zero
        if out.get("depth_blind") is not None:  # DualFocusConfig.surface_two_path: in the total, not in "depth"
            blind_ld = depth_loss(out["depth_blind"].to(pred.dtype), target, valid, beta=self.beta)
        lam_sv = self.lambda_sv if lambda_sv is None else float(lambda_sv)
        if lam_sv > 0 and out.get("surface_grad") is not None:
            gx, gy = (g.float() if g.dtype in (torch.float16, torch.bfloat16) else g for g in out["surface_grad"])
            lsv = spatial_variational_loss((gx, gy), depth_gt, focus, mask, units=self.sv_units,
                                           penalty=self.sv_penalty, tau=self.sv_tau, delta=self.sv_delta)
        blind_lfv = zero
        if self.lambda_fv > 0:
            prob = out["prob"]
            lfv = focal_variational_loss(prob.float() if prob.dtype in (torch.float16, torch.bfloat16) else prob, valid)
            if out.get("prob_blind") is not None:  # DualFocusConfig.blind_encoder: the encoder's L_fv
                blind_lfv = focal_variational_loss(out["prob_blind"].to(prob.dtype), valid)
        total = ld + blind_ld + lam_sv * lsv + self.lambda_fv * (lfv + blind_lfv)
        return {"total": total, "depth": ld, "sv": lsv, "fv": lfv}

    def extra_repr(self) -> str:
        return (f"lambda_sv={self.lambda_sv}, lambda_fv={self.lambda_fv}, beta={self.beta}, "
                f"sv_units={self.sv_units!r}, sv_penalty={self.sv_penalty!r}, sv_tau={self.sv_tau}, "
                f"sv_delta={self.sv_delta}, depth_clip={self.depth_clip}")
