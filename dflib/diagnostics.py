"""What the surface branch learned: diagnostics of DualFocus's spatial constraint.

The paper's premise (METHOD.md §2) is that at the focal plane where a pixel
is in focus, the projected surface z*_n carries that pixel's depth geometry.
:func:`surface_diagnostics` measures exactly that, in the units and on the
feature grid of L_sv (:func:`dflib.losses.surface_target`):

- ``err_in_focus``: mean |∇T − θ_grad(z*_n)| over valid gradient components,
  at the plane n nearest each component's true depth (T = D* or its plane
  index u(D*), following ``model.config.surface_units``);
- ``err_out_of_focus``: the same error at every other plane;
- ``err_zero``: the same error for a prediction of zero everywhere (mean |∇T|);
- ``corr_in_focus``: the Pearson correlation, over valid feature pixels,
  between the mixed surface z̄_n at each pixel's in-focus plane and T, each
  image's mean removed from both (surfaces are zero-mean);
- ``err_depth_ref``: the gradient error of the model's own depth prediction,
  pooled to the feature grid and mapped to T's units: what "knowing the edges"
  scores at this resolution;
- ``encoder_grad_share``: ‖g_sv‖ / (‖g_sv‖ + ‖g_rest‖), the share of the shared
  encoder's gradient that comes from λ_sv L_sv (g_rest: every other loss
  term), on one training-mode forward and backward that leaves the model
  unchanged (parameters, their ``.grad`` and normalisation statistics).

An L1 error against zero is a misleading yardstick on its own: in plane units
the target is sparse (most of its mass sits on depth edges), so a predictor
unsure where the edges are scores best by predicting zero. Read ``err_*``
beside ``err_zero`` and ``err_depth_ref``, and look at ``corr_in_focus``.

:func:`surface_reliance` asks the converse question, at test time: how much
the depth rests on the surfaces the decoder reads (own, rotated or zeroed).

:func:`surface_input_weight` reads from the weights alone how far the decoder opened its surface inputs.

:func:`clip_coupling` asks whether the branch reaches the rest of the network
through the optimiser even when no gradient of L_sv does: training clips the
gradient of *all* parameters to one global norm (``TrainConfig.max_grad_norm``),
so a large gradient on the branch shrinks the step of every other layer.
"""

from __future__ import annotations

import contextlib
import copy
import math
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch

from dflib.checks import check_shape
from dflib.loss_targets import full_mask, surface_target
from dflib.losses import DualFocusLoss

__all__ = ["surface_diagnostics", "dataset_diagnostics", "plane_errors", "surface_reliance", "swapped_surfaces",
           "clip_coupling", "surface_input_weight", "SURFACE_SWAPS", "DIAGNOSTIC_KEYS", "BRANCH_PREFIXES"]

DIAGNOSTIC_KEYS = ("err_in_focus", "err_out_of_focus", "err_zero", "corr_in_focus", "err_depth_ref",
                   "encoder_grad_share")


def _check(model: torch.nn.Module, stack: torch.Tensor, focus: torch.Tensor, depth: torch.Tensor) -> None:
    if not hasattr(model, "config"):
        raise TypeError(f"model must be a dflib DualFocus model, got {type(model).__name__}")
    sizes = check_shape(stack, "B N * H W", "stack", types=(torch.Tensor,))
    check_shape(depth, "B 1 H W", "depth", types=(torch.Tensor,), **sizes)
    check_shape(focus, "B N", "focus", types=(torch.Tensor,), **sizes)


def _component_errors(out: dict[str, Any], t) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per plane: (sum of in-focus errors, in-focus count, sum of out-of-focus errors, out count), each ``[N]``."""
    gx, gy = (g.float() for g in out["surface_grad"])
    n = gx.shape[1]
    sums_in, cnt_in, sums_out, cnt_out = (torch.zeros(n, dtype=torch.float64) for _ in range(4))
    for g, d, v, q in ((gx, t.dx, t.vx, 0.5 * (t.q[..., :, 1:] + t.q[..., :, :-1])),
                       (gy, t.dy, t.vy, 0.5 * (t.q[..., 1:, :] + t.q[..., :-1, :]))):
        err = (g - d).abs().double()  # [B, N, ...]
        infocus = q.argmax(dim=1, keepdim=True) == torch.arange(n, device=q.device).view(1, n, 1, 1)
        vin, vout = infocus & v, ~infocus & v
        sums_in += (err * vin).sum(dim=(0, 2, 3)).cpu()
        cnt_in += vin.sum(dim=(0, 2, 3)).cpu().double()
        sums_out += (err * vout).sum(dim=(0, 2, 3)).cpu()
        cnt_out += vout.sum(dim=(0, 2, 3)).cpu().double()
    return sums_in, cnt_in, sums_out, cnt_out


def plane_errors(model: torch.nn.Module, stack: torch.Tensor, focus: torch.Tensor, depth: torch.Tensor,
                 mask: torch.Tensor | None = None, tau: float = 1.0) -> dict[str, np.ndarray]:
    """Per-plane surface-gradient errors, for a plot (units and grid of L_sv).

    Returns ``{"in_focus": [N], "out_of_focus": [N], "in_focus_count": [N]}``:
    the mean |∇T − θ_grad(z*_n)| of plane n over the components where n is
    (or is not) the in-focus plane (NaN where plane n is never in focus).
    """
    _check(model, stack, focus, depth)
    was_training = model.training
    model.eval()
    with torch.no_grad():
        out = model(stack, focus)
    model.train(was_training)
    if "surface_grad" not in out:
        raise ValueError("model has no surface branch (config.surface_branch is False)")
    c = model.config
    t = surface_target(depth, focus, tuple(out["surface"].shape[-2:]), mask, c.feature_stride, c.surface_units, tau)
    si, ci, so, co = _component_errors(out, t)
    with np.errstate(invalid="ignore", divide="ignore"):
        return {"in_focus": (si / ci).numpy(), "out_of_focus": (so / co).numpy(), "in_focus_count": ci.numpy()}


@contextlib.contextmanager
def _training_pass(model: torch.nn.Module) -> Iterator[None]:
    """Training mode for one forward (and backward) that leaves no trace: the normalisation statistics, the
    mode and the global RNG (surface dropout draws from it) are as they were afterwards."""
    names = dict(model.named_parameters())
    buffers = copy.deepcopy({k: v for k, v in model.state_dict().items() if k not in names})
    rng, was_training = torch.get_rng_state(), model.training
    model.train()
    try:
        yield
    finally:
        model.load_state_dict(buffers, strict=False)
        model.train(was_training)
        torch.set_rng_state(rng)


def _encoder_grad_share(model: torch.nn.Module, stack: torch.Tensor, focus: torch.Tensor, depth: torch.Tensor,
                        mask: torch.Tensor | None, loss: DualFocusLoss) -> float:
    """‖g_sv‖ / (‖g_sv‖ + ‖g_rest‖) on the encoder, from a training-mode pass that changes nothing."""
    params = [p for p in model.encoder.parameters() if p.requires_grad]
    with _training_pass(model):
        out = model(stack, focus)
        terms = loss(out, depth, focus, mask)
        sv = loss.lambda_sv * terms["sv"]
        rest = terms["total"] - sv

        def norm(x: torch.Tensor) -> float:
            if not x.requires_grad:
                return 0.0
            gs = torch.autograd.grad(x, params, retain_graph=True, allow_unused=True)
            return math.sqrt(sum(float(g.double().square().sum()) for g in gs if g is not None))

        g_sv, g_rest = norm(sv), norm(rest)
    total = g_sv + g_rest
    return g_sv / total if total > 0 else float("nan")


#: parameter-name prefixes of the surface branch (what :func:`clip_coupling` counts as the branch)
BRANCH_PREFIXES = ("gradient_head.", "surface_mix.")


def clip_coupling(model: torch.nn.Module, stack: torch.Tensor, focus: torch.Tensor, depth: torch.Tensor,
                  mask: torch.Tensor | None, loss: DualFocusLoss, max_norm: float = 1.0) -> dict[str, float]:
    """How much global-norm gradient clipping lets the branch shrink the other layers' step.

    One training-mode forward and backward of the whole loss (as a training step computes it) that changes
    nothing (parameters, their ``.grad``, normalisation statistics). With g_b the gradient of the branch's
    parameters (:data:`BRANCH_PREFIXES`) and g_r that of every other parameter:

    - ``grad_norm``, ``grad_norm_branch``, ``grad_norm_rest``: ‖g‖, ‖g_b‖, ‖g_r‖ (g = (g_b, g_r));
    - ``clip_global``: min(1, max_norm / ‖g‖), the factor ``clip_grad_norm_`` applies to g_r in training;
    - ``clip_rest_alone``: min(1, max_norm / ‖g_r‖), the factor g_r would get without the branch's gradient;
    - ``step_shrink``: their ratio (≤ 1): 1 means the branch does not touch the other layers' step, 0.5 that it
      halves it.

    Args:
        stack ``[B, N, 3, H, W]``, focus ``[B, N]``, depth ``[B, 1, H, W]``, mask ``[B, 1, H, W]`` or None: one
        training batch; ``loss``: the run's criterion (:func:`dflib.train.build_loss`).
    """
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    with _training_pass(model):
        out = model(stack, focus)
        total = loss(out, depth, focus, mask)["total"]
        grads = torch.autograd.grad(total, [p for _, p in named], allow_unused=True)
    sq = {"branch": 0.0, "rest": 0.0}
    for (name, _), g in zip(named, grads):
        if g is not None:
            sq["branch" if name.startswith(BRANCH_PREFIXES) else "rest"] += float(g.double().square().sum())
    g_all, g_b, g_r = math.sqrt(sq["branch"] + sq["rest"]), math.sqrt(sq["branch"]), math.sqrt(sq["rest"])
    clip_global = min(1.0, max_norm / g_all) if g_all > 0 else 1.0
    clip_alone = min(1.0, max_norm / g_r) if g_r > 0 else 1.0
    return {"grad_norm": g_all, "grad_norm_branch": g_b, "grad_norm_rest": g_r, "clip_global": clip_global,
            "clip_rest_alone": clip_alone, "step_shrink": clip_global / clip_alone}


def surface_diagnostics(model: torch.nn.Module, stack: torch.Tensor, focus: torch.Tensor, depth: torch.Tensor,
                        mask: torch.Tensor | None = None, loss: DualFocusLoss | None = None,
                        grad_share: bool = True) -> dict[str, float]:
    """What the surface branch of ``model`` learned, on one batch (see the module docstring).

    Args:
        model: a :class:`~dflib.models.DualFocus`; evaluated in eval mode (its
            mode is restored). A model without a surface branch gets only
            ``err_zero`` and ``err_depth_ref`` (the rest NaN).
        stack: ``[B, N, 3, H, W]`` in [0, 1]; focus: ``[B, N]``;
        depth: ``[B, 1, H, W]`` ground truth, units of focus (0 = invalid);
        mask: optional bool ``[B, 1, H, W]``.
        loss: the training loss, for ``encoder_grad_share`` (its λ_sv) and the
            temperature of q; default ``DualFocusLoss(lambda_sv=1, lambda_fv=0)``
            in the model's surface units.
        grad_share: compute ``encoder_grad_share`` (one training-mode forward
            and backward; NaN when False).

    Returns:
        dict of floats with the keys :data:`DIAGNOSTIC_KEYS`; errors are in
        the target's units per feature pixel.
    """
    _check(model, stack, focus, depth)
    c = model.config
    if loss is None:
        loss = DualFocusLoss(lambda_sv=1.0, lambda_fv=0.0, sv_units=c.surface_units)
    if loss.sv_units != c.surface_units:
        raise ValueError(f"loss.sv_units {loss.sv_units!r} differs from model.config.surface_units {c.surface_units!r}")
    was_training = model.training
    model.eval()
    with torch.no_grad():
        out = model(stack, focus)
    model.train(was_training)
    s = c.feature_stride
    grid = (-(-stack.shape[-2] // s), -(-stack.shape[-1] // s))
    t = surface_target(depth, focus, grid, mask, s, c.surface_units, loss.sv_tau)
    count = float(t.vx.sum() + t.vy.sum())
    res = dict.fromkeys(DIAGNOSTIC_KEYS, float("nan"))
    if count == 0:
        return res
    res["err_zero"] = float((t.dx.abs() * t.vx).sum() + (t.dy.abs() * t.vy).sum()) / count
    # the model's own depth, pooled and mapped like the target, on the target's valid pixels
    ref = surface_target(out["depth"].float().clamp_min(1e-6), focus, grid, full_mask(depth, mask), s, c.surface_units)
    both_x, both_y = t.vx & ref.vx, t.vy & ref.vy
    res["err_depth_ref"] = float(((ref.dx - t.dx).abs() * both_x).sum() + ((ref.dy - t.dy).abs() * both_y).sum()) / max(
        1.0, float(both_x.sum() + both_y.sum()))
    if "surface_grad" not in out:
        return res
    si, ci, so, co = _component_errors(out, t)
    res["err_in_focus"] = float(si.sum() / ci.sum()) if ci.sum() > 0 else float("nan")
    res["err_out_of_focus"] = float(so.sum() / co.sum()) if co.sum() > 0 else float("nan")
    # correlation of the in-focus surface with the target, per-image means removed
    z = out["surface"].float().gather(1, t.nearest)  # [B, 1, H', W']
    v = t.valid
    nv = v.sum(dim=(-2, -1), keepdim=True).clamp_min(1)
    zc = torch.where(v, z - (z * v).sum(dim=(-2, -1), keepdim=True) / nv, torch.zeros_like(z))
    tc = torch.where(v, t.target - (t.target * v).sum(dim=(-2, -1), keepdim=True) / nv, torch.zeros_like(z))
    den = math.sqrt(float(zc.square().sum()) * float(tc.square().sum()))
    res["corr_in_focus"] = float((zc * tc).sum()) / den if den > 0 else float("nan")
    if grad_share:
        res["encoder_grad_share"] = _encoder_grad_share(model, stack, focus, depth, mask, loss)
    return res


def dataset_diagnostics(model: torch.nn.Module, dataset, items: int = 16, batch_size: int = 8,
                        loss: DualFocusLoss | None = None) -> dict[str, float]:
    """:func:`surface_diagnostics` averaged over the first ``items`` samples of a dataset.

    Every key is the mean over batches of ``batch_size``; ``encoder_grad_share``
    (a training-mode backward, the costly part) comes from the first batch.
    """
    from torch.utils.data import DataLoader, Subset

    from dflib.data.batching import ordered_batches, plane_counts

    dev = next(model.parameters()).device
    rows = []
    subset = Subset(dataset, range(min(items, len(dataset))))
    batches = ordered_batches(len(subset), batch_size, plane_counts(subset))  # items of equal N together
    for i, batch in enumerate(DataLoader(subset, batch_sampler=batches)):
        args = [batch[k].to(dev) for k in ("stack", "focus", "depth", "mask")]
        r = surface_diagnostics(model, *args, loss=loss, grad_share=i == 0)
        rows.append(r)
    return {k: float(np.nanmean([r[k] for r in rows])) if any(r[k] == r[k] for r in rows) else float("nan")
            for k in DIAGNOSTIC_KEYS}


#: What :func:`surface_reliance` feeds the decoder in place of its surface input ``[B, C2, N, H', W']``
#: (the z* features after normalisation): the model's own, the same values rotated by 180° in the image plane
#: (each plane keeps its statistics, its geometry lands in the wrong place), or zeros.
SURFACE_SWAPS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "own": lambda s: s,
    "rotated": lambda s: torch.rot90(s, 2, dims=(-2, -1)),
    "zero": torch.zeros_like,
}


def surface_input_weight(model: torch.nn.Module) -> float:
    """RMS of the decoder's first-convolution weights on the C2 surfaces over the RMS of those on V*.

    The first convolution's weight is ``[Cout, Cv + C2, 3, 3, 3]``, V*'s slice first. 0 means the decoder
    ignores its surfaces (as :attr:`~dflib.models.DualFocusConfig.baseline_init` starts); about 1, that it
    weighs them as a V* channel (as the default initialisation starts). A reading of the weights, not of the
    data: with ``surface_norm`` the surfaces enter at unit RMS, while V*'s channels have their own scales.
    """
    if getattr(model, "gradient_head", None) is None:
        raise ValueError("model has no surface branch (config.surface_branch is False)")
    w = model.decoder.down[0][0][0].weight.detach()
    cv = model.config.volume_channels
    return float(w[:, cv:].square().mean().sqrt() / w[:, :cv].square().mean().sqrt())


@contextlib.contextmanager
def swapped_surfaces(model: torch.nn.Module, swap: Callable[[torch.Tensor], torch.Tensor]) -> Iterator[None]:
    """Within the block, ``model``'s decoder reads ``swap(surfaces)`` instead of the surfaces the branch made.

    Nothing else changes: the decoder's V* input, the surfaces returned in the output dict and the readout.
    The hook is removed on leaving the block, also after an error.
    """
    if getattr(model, "gradient_head", None) is None:
        raise ValueError("model has no surface branch (config.surface_branch is False)")

    def hook(module: torch.nn.Module, args: tuple) -> tuple:
        vstar, surfaces, *rest = args
        return (vstar, swap(surfaces), *rest)

    handle = model.decoder.register_forward_pre_hook(hook)
    try:
        yield
    finally:
        handle.remove()


def surface_reliance(model: torch.nn.Module, dataset, items: int | None = None, protocol: str = "default",
                     swaps: tuple[str, ...] = tuple(SURFACE_SWAPS)) -> dict[str, list[float]]:
    """How much a DualFocus model's depth rests on the surfaces its decoder reads: an intervention at test time.

    Each stack is predicted once per entry of ``swaps`` (:data:`SURFACE_SWAPS`), the model in eval mode. If
    "rotated" scores like "own", the decoder draws no spatial information from the surfaces; if it scores
    much worse, the depth relies on them, and on stacks where the surfaces are wrong the branch can cost.

    Args:
        dataset: samples with ``stack [N, 3, H, W]``, ``focus [N]``, ``depth`` and ``mask [1, H, W]``.
        items: the first ``items`` samples (all by default).
        protocol: valid pixels and clipping (:mod:`dflib.metrics`).
        swaps: names in :data:`SURFACE_SWAPS`; ``("own",)`` alone also scores a model without the branch.

    Returns:
        ``{swap: [RMSE per focus span of each stack]}`` (:func:`dflib.generalisation.stack_span_rmse`).
    """
    from dflib.generalisation import stack_span_rmse

    n = len(dataset) if items is None else min(items, len(dataset))
    dev = next(model.parameters()).device
    was_training = model.training
    model.eval()
    errs: dict[str, list[float]] = {k: [] for k in swaps}
    try:
        with torch.no_grad():
            for i in range(n):
                s = dataset[i]
                for k in swaps:
                    with swapped_surfaces(model, SURFACE_SWAPS[k]) if k != "own" else contextlib.nullcontext():
                        out = model(s["stack"][None].to(dev), s["focus"][None].to(dev))
                    errs[k].append(stack_span_rmse(out["depth"][0, 0].double().cpu().numpy(), s, protocol))
    finally:
        model.train(was_training)
    return errs
