"""Tests of the spatial-constraint machinery of issue 12: plane units, the Huber L_sv,
depth clipping, the bounded backward pass, mixed precision and the surface diagnostics."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch

from dflib.diagnostics import DIAGNOSTIC_KEYS, plane_errors, surface_diagnostics
from dflib.integrate import integrable_projection
from dflib.losses import DualFocusLoss, plane_index, spatial_variational_loss, surface_target
from dflib.metrics import region_masks, region_rmse
from dflib.models import DualFocus, DualFocusConfig
from dflib.train import TrainConfig, build_loss, build_model, lambda_sv_at

FOCUS = torch.tensor([[0.1, 0.15, 0.3, 0.7, 1.5]])


# ----------------------------------------------------------------- plane units
def test_plane_index_maps_planes_to_integers_linearly_and_clips():
    d = torch.tensor([0.05, 0.1, 0.125, 0.15, 0.5, 0.7, 1.1, 1.5, 3.0]).view(1, 1, 1, -1)
    u = plane_index(d, FOCUS)[0, 0, 0]
    torch.testing.assert_close(u, torch.tensor([0.0, 0.0, 0.5, 1.0, 2.5, 3.0, 3.5, 4.0, 4.0]))
    # decreasing focus (disparities): the same formula counts planes in stack order
    disp = torch.tensor([[0.3, 0.2, 0.1]])
    u = plane_index(torch.tensor([0.35, 0.3, 0.25, 0.1, 0.05]).view(1, 1, 1, -1), disp)[0, 0, 0]
    torch.testing.assert_close(u, torch.tensor([0.0, 0.0, 0.5, 2.0, 2.0]))


def test_surface_target_in_planes_has_one_plane_temperature_and_nearest_plane():
    depth = torch.full((1, 1, 4, 4), 0.3)  # exactly plane index 2
    t = surface_target(depth, FOCUS, (4, 4), units="planes", tau=1.0)
    q = t.q[0, :, 0, 0]
    expected = torch.softmax(-torch.tensor([2.0, 1.0, 0.0, 1.0, 2.0]), 0)
    torch.testing.assert_close(q, expected)
    assert (t.nearest == 2).all() and (t.target == 2).all()


def test_huber_sv_loss_in_planes_hand_value():
    # a ramp of 0.5 plane per feature pixel in x: depth 0.1 -> 0.125 -> 0.15 (u = 0, .5, 1)
    depth = torch.tensor([0.1, 0.125, 0.15]).view(1, 1, 1, 3).expand(1, 1, 2, 3).contiguous()
    gx = torch.zeros(1, 5, 2, 2)
    gy = torch.zeros(1, 5, 1, 3)
    # zero prediction: x error 0.5 per component, huber(0.5, delta=0.5) = 0.5 * 0.5² = 0.125
    loss = spatial_variational_loss((gx, gy), depth, FOCUS, stride=1, units="planes", penalty="huber", delta=0.5)
    count = 4 + 3  # 4 x-components, 3 y-components (whose error is 0)
    assert loss.item() == pytest.approx(4 * 0.125 / count)
    # the paper's form, in metres and L1: |0.025| per x component
    loss = spatial_variational_loss((gx, gy), depth, FOCUS, stride=1)
    assert loss.item() == pytest.approx(4 * 0.025 / count, rel=1e-5)


def test_depth_clip_only_changes_targets_outside_the_focus_range():
    pred = torch.full((1, 1, 1, 3), 1.5)
    gt = torch.tensor([1.0, 1.5, 4.0]).view(1, 1, 1, 3)
    out = {"depth": pred, "prob": torch.full((1, 5, 1, 3), 0.2)}
    raw = DualFocusLoss(0, 0)(out, gt, FOCUS)["depth"]
    clipped = DualFocusLoss(0, 0, depth_clip=True)(out, gt, FOCUS)["depth"]
    # smooth-L1 (beta 1): raw errors 0.5, 0, 2.5 -> (0.125 + 0 + 2.0) / 3; clipped: the 4 m pixel counts as 1.5 m
    assert raw.item() == pytest.approx((0.125 + 2.0) / 3)
    assert clipped.item() == pytest.approx(0.125 / 3)


# ----------------------------------------------------------------- bounded backward
def test_bounded_backward_keeps_forward_and_bounds_low_frequency_gain():
    torch.manual_seed(0)
    h = w = 32
    gx = torch.randn(2, h, w - 1, dtype=torch.float64, requires_grad=True)
    gy = torch.randn(2, h - 1, w, dtype=torch.float64, requires_grad=True)
    z_exact = integrable_projection(gx, gy)
    z_bound = integrable_projection(gx, gy, backward_gain=2.0)
    torch.testing.assert_close(z_exact, z_bound, rtol=0, atol=0)
    # the lowest cosine mode of z: the exact gain from dL/dz to dL/dΓ is 1/sqrt(λ_01) ~ H/π ~ 10
    y = torch.cos(math.pi * (torch.arange(w, dtype=torch.float64) + 0.5) / w).expand(2, h, w)
    ge = torch.autograd.grad((z_exact * y).sum(), (gx, gy), retain_graph=True)
    gb = torch.autograd.grad((z_bound * y).sum(), (gx, gy), retain_graph=True)
    norm = lambda g: math.sqrt(sum(float(t.square().sum()) for t in g))  # noqa: E731
    assert norm(ge) / y.norm().item() > 9.0
    assert norm(gb) / y.norm().item() <= 2.0 + 1e-9
    # a high-frequency mode (λ > 1/G²) passes unchanged
    yh = torch.cos(math.pi * 16 * (torch.arange(w, dtype=torch.float64) + 0.5) / w).expand(2, h, w)
    he = torch.autograd.grad((z_exact * yh).sum(), (gx, gy))
    hb = torch.autograd.grad((z_bound * yh).sum(), (gx, gy))
    torch.testing.assert_close(he, hb)
    with pytest.raises(ValueError, match="backward_gain"):
        integrable_projection(gx, gy, backward_gain=0.0)


# ----------------------------------------------------------------- mixed precision
ALL_SWITCHES = dict(surface_units="planes", head_isolation=True, head_context=True, surface_norm=True,
                    surface_backward_gain=2.0)


@pytest.mark.parametrize("overrides", [{}, ALL_SWITCHES], ids=["paper", "all-switches"])
def test_forward_backward_under_cpu_bf16_autocast(overrides):
    torch.manual_seed(0)
    model = DualFocus(DualFocusConfig.tiny().replace(**overrides))
    stack, focus = torch.rand(2, 5, 3, 32, 32), FOCUS.expand(2, 5)
    depth = torch.rand(2, 1, 32, 32) + 0.1
    loss = DualFocusLoss(0.3, 1.0, sv_units=model.config.surface_units, sv_penalty="huber", depth_clip=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(stack, focus)
    assert out["surface"].dtype == torch.float32 and out["depth"].dtype == torch.float32
    terms = loss(out, depth, focus)
    assert all(v.dtype == torch.float32 for v in terms.values())
    terms["total"].backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)


# ----------------------------------------------------------------- switches
def test_head_isolation_keeps_sv_gradient_out_of_the_encoder():
    torch.manual_seed(0)
    model = DualFocus(DualFocusConfig.tiny().replace(head_isolation=True, surface_units="planes"))
    stack, focus = torch.rand(1, 5, 3, 32, 32), FOCUS
    depth = torch.linspace(0.1, 1.5, 32).view(1, 1, 1, 32).expand(1, 1, 32, 32)
    out = model(stack, focus)
    spatial_variational_loss(out["surface_grad"], depth, focus, units="planes").backward()
    assert all(p.grad is None or p.grad.abs().sum() == 0 for p in model.encoder.parameters())
    assert model.gradient_head.out.weight.grad.abs().sum() > 0


def test_head_context_sees_every_plane():
    torch.manual_seed(0)
    cfg = DualFocusConfig.tiny().replace(head_context=True, norm="none")
    model = DualFocus(cfg).eval()
    v = torch.randn(1, cfg.volume_channels, 5, 8, 8, requires_grad=True)
    model.gradient_head(v)[0, 0].sum().backward()  # plane 0's output
    reach = v.grad.abs().sum(dim=(0, 1, 3, 4))
    assert (reach > 0).all()  # plane 0 depends on plane 4, two convs of one plane each could not do that
    plain = DualFocus(cfg.replace(head_context=False)).eval()
    v.grad = None
    plain.gradient_head(v)[0, 0].sum().backward()
    assert v.grad.abs().sum(dim=(0, 1, 3, 4))[2:].sum() == 0


def test_train_config_overrides_ramp_and_branch_learning_rate():
    cfg = TrainConfig(model="tiny", model_overrides={"surface_units": "planes"}, sv_penalty="huber",
                      lambda_sv=0.4, sv_ramp_steps=4, branch_lr_scale=0.5)
    model = build_model(cfg.model, 0, cfg.model_overrides)
    assert model.config.surface_units == "planes"
    assert build_loss(cfg, model).sv_units == "planes"
    assert [lambda_sv_at(cfg, s) for s in range(6)] == pytest.approx([0.1, 0.2, 0.3, 0.4, 0.4, 0.4])
    from dflib.train import _optimizer

    groups = _optimizer(cfg, model).param_groups
    assert [g["lr"] for g in groups] == [cfg.lr, cfg.lr * 0.5]
    assert sum(len(g["params"]) for g in groups) == len(list(model.parameters()))
    with pytest.raises(ValueError, match="model_overrides"):
        TrainConfig(model_overrides={"surface_units": "inches"})
    with pytest.raises(ValueError, match="model_overrides"):
        TrainConfig(model_overrides={"no_such_field": 1})


# ----------------------------------------------------------------- diagnostics
class _StandIn(torch.nn.Module):
    """A stand-in model whose surfaces at every plane are ``scale`` x the target (zero-mean)."""

    def __init__(self, depth: torch.Tensor, scale: float) -> None:
        super().__init__()
        self.config = DualFocusConfig.tiny().replace(surface_units="planes", feature_stride=4)
        self.encoder = torch.nn.Conv2d(1, 1, 1)
        self.depth, self.scale = depth, scale

    def forward(self, stack, focus):
        d = self.depth
        t = surface_target(d, focus, (d.shape[-2] // 4, d.shape[-1] // 4), None, 4, "planes")
        z = self.scale * (t.target - t.target.mean(dim=(-2, -1), keepdim=True)).expand(-1, focus.shape[1], -1, -1)
        gx, gy = z[..., :, 1:] - z[..., :, :-1], z[..., 1:, :] - z[..., :-1, :]
        return {"depth": d + 0 * self.encoder.weight.sum(), "surface": z, "surface_grad": (gx, gy)}


def test_diagnostics_of_an_oracle_and_of_a_zero_predictor():
    d = torch.linspace(0.1, 1.5, 64).view(1, 1, 1, 64).expand(2, 1, 64, 64).contiguous()
    stack, focus = torch.rand(2, 5, 3, 64, 64), FOCUS.expand(2, 5)
    oracle = surface_diagnostics(_StandIn(d, 1.0), stack, focus, d, grad_share=False)
    assert set(oracle) == set(DIAGNOSTIC_KEYS)
    assert oracle["err_zero"] > 0.1  # 4 planes over 16 feature pixels, ~0.25 plane per pixel
    assert oracle["err_in_focus"] == pytest.approx(0.0, abs=1e-6)
    assert oracle["err_out_of_focus"] == pytest.approx(0.0, abs=1e-6)
    assert oracle["corr_in_focus"] == pytest.approx(1.0, abs=1e-5)
    assert oracle["err_depth_ref"] == pytest.approx(0.0, abs=1e-6)  # its depth is the truth
    assert math.isnan(oracle["encoder_grad_share"])
    half = surface_diagnostics(_StandIn(d, 0.5), stack, focus, d, grad_share=False)
    assert half["err_in_focus"] == pytest.approx(0.5 * oracle["err_zero"], rel=1e-5)
    assert half["corr_in_focus"] == pytest.approx(1.0, abs=1e-5)  # correlation ignores scale
    zero = surface_diagnostics(_StandIn(d, 0.0), stack, focus, d, grad_share=False)
    assert zero["err_in_focus"] == pytest.approx(zero["err_zero"]) and math.isnan(zero["corr_in_focus"])


def test_diagnostics_on_a_real_model_leave_it_unchanged_and_measure_isolation():
    torch.manual_seed(0)
    cfg = DualFocusConfig.tiny().replace(norm="batch", surface_units="planes")
    stack, focus = torch.rand(2, 5, 3, 32, 32), FOCUS.expand(2, 5)
    depth = torch.linspace(0.1, 1.5, 32).view(1, 1, 32, 1).expand(2, 1, 32, 32).contiguous()
    for isolated in (False, True):
        model = DualFocus(cfg.replace(head_isolation=isolated)).eval()
        before = {k: v.clone() for k, v in model.state_dict().items()}
        r = surface_diagnostics(model, stack, focus, depth)
        assert not model.training
        assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # BN statistics too
        assert all(p.grad is None for p in model.parameters())
        assert all(np.isfinite(r[k]) for k in DIAGNOSTIC_KEYS)
        assert -1 <= r["corr_in_focus"] <= 1
        if isolated:
            assert r["encoder_grad_share"] == 0.0
        else:
            assert 0 < r["encoder_grad_share"] < 1
        pe = plane_errors(model, stack, focus, depth)
        assert pe["in_focus"].shape == (5,) and pe["in_focus_count"].sum() > 0
    with pytest.raises(ValueError, match="depth"):
        surface_diagnostics(model, stack, focus, depth[:, :, :16])
    with pytest.raises(ValueError, match="sv_units"):
        surface_diagnostics(model, stack, focus, depth, loss=DualFocusLoss(sv_units="depth"))


def test_diagnostics_of_a_model_without_surfaces_give_only_the_references():
    model = DualFocus(DualFocusConfig.dfv_tiny())
    stack, focus = torch.rand(1, 5, 3, 32, 32), FOCUS
    depth = torch.full((1, 1, 32, 32), 0.4)
    r = surface_diagnostics(model, stack, focus, depth)
    assert r["err_zero"] == 0.0 and np.isfinite(r["err_depth_ref"])
    assert all(math.isnan(r[k]) for k in ("err_in_focus", "corr_in_focus", "encoder_grad_share"))


def test_surface_reliance_swaps_only_the_decoders_surface_input():
    from dflib.diagnostics import SURFACE_SWAPS, surface_reliance, swapped_surfaces
    from dflib.generalisation import stack_span_rmse

    torch.manual_seed(0)
    model = DualFocus(DualFocusConfig.tiny()).eval()
    depth = torch.linspace(0.1, 1.5, 32).view(1, 32, 1).expand(1, 32, 32).contiguous()
    data = [{"stack": torch.rand(5, 3, 32, 32), "focus": FOCUS[0], "depth": depth, "mask": torch.ones(1, 32, 32)}
            for _ in range(2)]
    with torch.no_grad():
        plain = [model(d["stack"][None], d["focus"][None]) for d in data]
    errs = surface_reliance(model, data)
    assert set(errs) == set(SURFACE_SWAPS) and all(len(v) == 2 for v in errs.values())
    assert errs["own"] == [stack_span_rmse(o["depth"][0, 0].numpy(), d) for o, d in zip(plain, data)]
    # zero surfaces == a decoder whose first convolution ignores its surface channels
    cx = model.config.volume_channels  # V*'s channels come first
    with torch.no_grad():
        with swapped_surfaces(model, SURFACE_SWAPS["zero"]):
            zeroed = model(data[0]["stack"][None], data[0]["focus"][None])
        blind = copy.deepcopy(model)
        blind.decoder.down[0][0][0].weight[:, cx:] = 0
        ref = blind(data[0]["stack"][None], data[0]["focus"][None])
    torch.testing.assert_close(zeroed["depth"], ref["depth"])
    torch.testing.assert_close(zeroed["surfaces"], plain[0]["surfaces"])  # the branch itself is untouched
    assert not torch.allclose(zeroed["depth"], plain[0]["depth"])
    with torch.no_grad():  # the hook is gone after the block
        torch.testing.assert_close(model(data[0]["stack"][None], data[0]["focus"][None])["depth"], plain[0]["depth"])
    with pytest.raises(ValueError, match="surface branch"):
        surface_reliance(DualFocus(DualFocusConfig.dfv_tiny()), data)


def test_surface_dropout_zeroes_whole_items_in_training_only():
    from dflib.diagnostics import SURFACE_SWAPS, swapped_surfaces

    torch.manual_seed(0)
    model = DualFocus(DualFocusConfig.tiny().replace(surface_dropout=0.5))  # group norm: no running statistics
    stack, focus = torch.rand(8, 5, 3, 32, 32), FOCUS.expand(8, 5)
    with torch.no_grad():
        own = model.eval()(stack, focus)["depth"]
        with swapped_surfaces(model, SURFACE_SWAPS["zero"]):
            none = model(stack, focus)["depth"]
        torch.manual_seed(1)
        dropped = model.train()(stack, focus)["depth"]
    is_own = [torch.allclose(dropped[i], own[i], atol=1e-6) for i in range(8)]
    is_none = [torch.allclose(dropped[i], none[i], atol=1e-6) for i in range(8)]
    assert all(a != b for a, b in zip(is_own, is_none))  # each item: all its surfaces kept, or all dropped
    assert 0 < sum(is_none) < 8
    torch.manual_seed(1)
    with torch.no_grad():
        torch.testing.assert_close(model(stack, focus)["depth"], dropped)  # same seed, same items dropped
    with pytest.raises(ValueError, match="surface_dropout"):
        DualFocusConfig.tiny().replace(surface_dropout=1.0)


# ----------------------------------------------------------------- regions
def test_region_masks_find_a_depth_step_and_a_flat_patch():
    depth = np.full((40, 40), 0.2)
    depth[:, 20:] = 1.0  # a step of ~1.9 planes at column 20
    aif = np.zeros((3, 40, 40))
    aif[:, :, :20] = np.random.default_rng(0).random((3, 40, 20))  # texture on the left only
    m = region_masks(depth, aif, np.array([0.1, 0.15, 0.3, 0.7, 1.5]))
    cols = np.where(m["edge"].any(axis=0))[0]
    assert cols.min() >= 16 and cols.max() <= 23  # within the radius of the step
    assert (m["edge"] ^ m["smooth"]).all()
    assert m["textured"][:, 5:15].all() and not m["textured"][:, 25:].any()
    pred = depth + 0.1
    assert region_rmse(pred, depth, m["edge"]) == pytest.approx(0.1)
    assert math.isnan(region_rmse(pred, depth, np.zeros((40, 40), bool)))


# ----------------------------------------------------------------- recipes
def test_every_stage2_recipe_keeps_its_stage1_model_and_losses():
    """finetune_<stage-1 recipe> changes the data and the schedule, never the model or the losses (bench_ablation --stage2)."""
    from pathlib import Path

    import dflib

    root = Path(dflib.__file__).parent / "recipes"
    stage2 = sorted(root.glob("finetune_*.yaml"))
    assert {p.stem for p in stage2} >= {"finetune_mid_dfv", "finetune_mid_dfv_fv", "finetune_mid_dualfocus",
                                        "finetune_mid_dualfocus_nofv", "finetune_mid_dualfocus_sdrop",
                                        "finetune_mid_dualfocus_blindenc"}
    kept = ("model", "model_overrides", "lambda_sv", "lambda_fv", "sv_penalty", "sv_tau", "sv_delta", "depth_clip",
            "batch_size", "size")
    for p in stage2:
        two, one = TrainConfig.load(p).to_dict(), TrainConfig.recipe(p.stem[len("finetune_"):]).to_dict()
        assert {k: two[k] for k in kept} == {k: one[k] for k in kept}, p.stem


def test_graft_recipes_are_their_stage1_recipes_continued_and_differ_only_by_the_branch():
    """graft_<size>_{dfv_fv,dualfocus}: the stage-1 recipe at a continuation's budget; the two arms of
    bench_ablation --graft differ only in the grafted branch (model, its loss and its learning rate)."""
    budget = {"steps", "lr", "val_every"}
    for size in ("tiny", "mid"):
        arms = {k: TrainConfig.recipe(f"graft_{size}_{k}").to_dict() for k in ("dfv_fv", "dualfocus")}
        for k, arm in arms.items():
            one = TrainConfig.recipe(f"{size}_{k}").to_dict()
            assert {f for f in arm if arm[f] != one[f]} <= budget | {"init_graft", "branch_lr_scale"}, (size, k)
            assert arm["steps"] < one["steps"] and arm["lr"] < one["lr"]
        a, b = arms["dfv_fv"], arms["dualfocus"]
        assert {f for f in a if a[f] != b[f]} == {"model", "model_overrides", "lambda_sv", "sv_penalty",
                                                  "branch_lr_scale", "init_graft"}
        assert b["init_graft"] and b["lr"] * b["branch_lr_scale"] == pytest.approx(1e-3)  # the fresh branch at stage 1's rate


def test_every_recipe_loads_and_the_ladder_changes_one_thing_at_a_time():
    from pathlib import Path

    import dflib

    root = Path(dflib.__file__).parent / "recipes"
    for size in ("tiny", "mid"):
        r = {p.stem[len(size) + 1:]: TrainConfig.load(p).to_dict() for p in root.glob(f"{size}_*.yaml")}
        assert set(r) == {"dfv", "dfv_fv", "dualfocus_nosv", "dualfocus", "dualfocus_nofv", "dualfocus_paper",
                          "dualfocus_sdrop", "dualfocus_blind", "dualfocus_binit", "dualfocus_twopath",
                          "dualfocus_blindenc"}

        def diff(a, b):
            return {k for k in r[a] if r[a][k] != r[b][k]}

        assert diff("dfv", "dfv_fv") == {"lambda_fv"}
        assert diff("dfv_fv", "dualfocus_nosv") <= {"model", "sv_penalty"}
        assert diff("dualfocus_nosv", "dualfocus_paper") == {"lambda_sv"}
        assert diff("dualfocus", "dualfocus_nofv") == {"lambda_fv"}
        assert diff("dualfocus", "dualfocus_sdrop") == {"model_overrides"}
        assert r["dualfocus_sdrop"]["model_overrides"] == {**r["dualfocus"]["model_overrides"], "surface_dropout": 0.5}
        assert diff("dualfocus", "dualfocus_blind") == {"model_overrides"}
        assert r["dualfocus_blind"]["model_overrides"] == {**r["dualfocus"]["model_overrides"], "surface_to_decoder": False}
        assert diff("dualfocus", "dualfocus_binit") == {"model_overrides"}
        assert r["dualfocus_binit"]["model_overrides"] == {**r["dualfocus"]["model_overrides"], "baseline_init": True}
        assert diff("dualfocus", "dualfocus_twopath") == {"model_overrides"}
        assert r["dualfocus_twopath"]["model_overrides"] == {**r["dualfocus"]["model_overrides"], "surface_two_path": True}
        assert diff("dualfocus_twopath", "dualfocus_blindenc") == {"model_overrides"}
        assert r["dualfocus_blindenc"]["model_overrides"] == {**r["dualfocus_twopath"]["model_overrides"], "blind_encoder": True}
        # the same budget and data everywhere
        budget = ("steps", "batch_size", "size", "lr", "train_scenes", "depth_clip", "schedule")
        assert len({tuple(str(c[k]) for k in budget) for c in r.values()}) == 1
        for cfg in r.values():
            build_model(cfg["model"], 0, cfg["model_overrides"])


def test_clip_coupling_splits_the_global_norm_and_leaves_the_model_unchanged():
    from dflib.diagnostics import clip_coupling

    torch.manual_seed(0)
    cfg = DualFocusConfig.tiny().replace(norm="batch", surface_units="planes", head_isolation=True)
    stack, focus = torch.rand(2, 5, 3, 32, 32), FOCUS.expand(2, 5)
    depth = torch.linspace(0.1, 1.5, 32).view(1, 1, 32, 1).expand(2, 1, 32, 32).contiguous()
    model = DualFocus(cfg).eval()
    loss = DualFocusLoss(lambda_sv=0.3, sv_units="planes", sv_penalty="huber", sv_tau=1.0, sv_delta=0.5)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    r = clip_coupling(model, stack, focus, depth, None, loss, max_norm=1e-6)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items()) and not model.training
    assert all(p.grad is None for p in model.parameters())
    # the global norm is what clip_grad_norm_ sees in a training step on the same batch
    model.train()
    loss(model(stack, focus), depth, focus, None)["total"].backward()
    model.load_state_dict(before)
    assert r["grad_norm"] == pytest.approx(float(torch.nn.utils.clip_grad_norm_(model.parameters(), 1e9)), rel=1e-4)
    assert r["grad_norm"] ** 2 == pytest.approx(r["grad_norm_branch"] ** 2 + r["grad_norm_rest"] ** 2)
    assert r["grad_norm_branch"] > 0 and r["grad_norm_rest"] > 0
    # both clip: the rest's step shrinks by ‖g_r‖ / ‖g‖; a bound never reached shrinks nothing
    assert r["step_shrink"] == pytest.approx(r["grad_norm_rest"] / r["grad_norm"])
    assert clip_coupling(model, stack, focus, depth, None, loss, max_norm=1e9)["step_shrink"] == 1.0
    # a network without the branch has nothing to couple
    dfv = DualFocus(DualFocusConfig.dfv_tiny()).eval()
    r = clip_coupling(dfv, stack, focus, depth, None, DualFocusLoss(lambda_sv=0.0), max_norm=1e-6)
    assert r["grad_norm_branch"] == 0.0 and r["step_shrink"] == 1.0


def test_a_blind_decoder_reads_zeros_in_place_of_the_surfaces_while_the_branch_still_trains():
    torch.manual_seed(0)
    cfg = DualFocusConfig.tiny().replace(surface_units="planes", head_isolation=True, surface_norm=True)
    seen = DualFocus(cfg)
    blind = DualFocus(cfg.replace(surface_to_decoder=False))
    blind.load_state_dict(seen.state_dict())  # same shape, same parameters
    stack, focus = torch.rand(2, 5, 3, 32, 32), FOCUS.expand(2, 5)
    inputs = []
    hook = blind.decoder.register_forward_pre_hook(lambda m, args: inputs.append(args[1]))
    for mode in (True, False):  # training and evaluation alike
        blind.train(mode), seen.train(mode)
        out_b, out_s = blind(stack, focus), seen(stack, focus)
        assert torch.count_nonzero(inputs[-1]) == 0 and inputs[-1].shape[1] == cfg.surface_channels
        assert torch.allclose(out_b["surfaces"], out_s["surfaces"])  # the branch is computed as before
        with torch.no_grad():  # the decoder's surface inputs are zero: their weights do not matter
            blind.decoder.down[0][0][0].weight[:, -cfg.surface_channels:] += 1.0
        assert torch.allclose(blind(stack, focus)["depth"], out_b["depth"], atol=1e-6)
    hook.remove()
    # L_sv still reaches the head
    blind.train()
    out = blind(stack, focus)
    loss = DualFocusLoss(lambda_sv=0.3, sv_units="planes", sv_penalty="huber", sv_tau=1.0, sv_delta=0.5)
    depth = torch.linspace(0.1, 1.5, 32).view(1, 1, 32, 1).expand(2, 1, 32, 32).contiguous()
    loss(out, depth, focus, None)["sv"].backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in blind.gradient_head.parameters())
    with pytest.raises(ValueError, match="surface_to_decoder"):
        DualFocusConfig.tiny().replace(surface_to_decoder=1)
