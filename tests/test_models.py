"""Tests of dflib.models: presets, shapes, readout maths, gradient flow, overfitting."""

from __future__ import annotations

import dataclasses
import math

import benchmark_scripts
import pytest
import torch

from dflib.integrate import forward_differences
from dflib.losses import DualFocusLoss, spatial_variational_loss
from dflib.models import DualFocus, DualFocusConfig, focal_difference_volume, focus_readout

FOCUS_M = (0.1, 0.15, 0.3, 0.7, 1.5)


def _model(config: DualFocusConfig, seed: int = 0) -> DualFocus:
    """A model initialised from ``seed`` without touching the global RNG."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return DualFocus(config)


def _inputs(b: int, n: int, h: int, w: int, seed: int = 0, disparity: bool = False):
    g = torch.Generator().manual_seed(seed)
    stack = torch.rand(b, n, 3, h, w, generator=g)
    focus = torch.linspace(0.1, 1.5, n).expand(b, n).clone()
    if disparity:
        focus = 1.0 / focus  # decreasing
    return stack, focus


# ----------------------------------------------------------------- config
@pytest.mark.parametrize("name, lo, hi", [
    ("tiny", 0, 1_000_000), ("dfv_tiny", 0, 1_000_000), ("plain_tiny", 0, 1_000_000),
    ("mid", 1_000_000, 3_000_000), ("dfv_mid", 1_000_000, 3_000_000),
    ("paper", 23_000_000, 31_000_000), ("dfv", 19_000_000, 31_000_000),
    ("plain", 19_000_000, 31_000_000)])
def test_parameter_counts(name, lo, hi):
    cfg = DualFocusConfig.preset(name)
    with torch.device("meta"):  # no memory, no RNG: just the parameter shapes
        model = DualFocus(cfg)
    count = model.num_parameters()
    print(f"{name}: {count:,} parameters")
    assert lo < count < hi


def test_paper_preset_is_within_15_percent_of_27m():
    with torch.device("meta"):
        count = DualFocus(DualFocusConfig.paper()).num_parameters()
    assert abs(count - 27e6) / 27e6 < 0.15


def test_config_roundtrip_and_validation():
    from dflib.models.config import PRESETS

    for name in PRESETS:
        cfg = DualFocusConfig.preset(name)
        assert DualFocusConfig.from_dict(cfg.to_dict()) == cfg
    assert not DualFocusConfig.dfv().surface_branch and DualFocusConfig.dfv().focal_differences
    assert not DualFocusConfig.plain_tiny().focal_differences
    for field, bad in [("feature_stride", 8), ("norm", "layer"), ("surface_channels", 0),
                       ("encoder_blocks", (1, 1)), ("decoder_widths", ()), ("focal_differences", 1),
                       ("stem_kernel", 4)]:
        with pytest.raises(ValueError, match=field):
            DualFocusConfig.tiny().replace(**{field: bad})
    with pytest.raises(ValueError, match="unknown"):
        DualFocusConfig.from_dict({"bogus": 1})
    with pytest.raises(ValueError, match="preset"):
        DualFocusConfig.preset("huge")
    with pytest.raises(dataclasses.FrozenInstanceError):
        DualFocusConfig.tiny().norm = "none"  # type: ignore[misc]


# ----------------------------------------------------------------- readout
def test_one_hot_probability_reads_out_that_plane():
    b, n, h, w = 2, 5, 3, 4
    focus = torch.tensor([FOCUS_M, [1 / f for f in FOCUS_M]])  # metres / disparities
    stack = torch.rand(b, n, 3, h, w, generator=torch.Generator().manual_seed(0))
    idx = torch.randint(0, n, (b, h, w), generator=torch.Generator().manual_seed(1))
    prob = torch.nn.functional.one_hot(idx, n).permute(0, 3, 1, 2).float()
    depth, sigma, aif = focus_readout(prob, focus, stack)
    expected = torch.gather(focus, 1, idx.view(b, -1)).view(b, 1, h, w)
    torch.testing.assert_close(depth, expected)
    assert (sigma == 0).all()
    expected_aif = torch.gather(stack, 1, idx[:, None, None].expand(b, 1, 3, h, w))[:, 0]
    torch.testing.assert_close(aif, expected_aif)


def test_readout_is_the_expectation_and_its_std():
    # two planes at 1 m and 3 m, p = (0.25, 0.75): D = 2.5, sigma = sqrt(.25*2.25 + .75*.25) = sqrt(.75)
    prob = torch.tensor([0.25, 0.75]).view(1, 2, 1, 1).requires_grad_(True)
    depth, sigma, aif = focus_readout(prob, torch.tensor([[1.0, 3.0]]))
    assert aif is None
    assert depth.item() == pytest.approx(2.5)
    assert sigma.item() == pytest.approx(math.sqrt(0.75))
    (depth + sigma).sum().backward()
    assert torch.isfinite(prob.grad).all()
    # the guarded sqrt keeps a finite gradient at sigma = 0
    p0 = torch.tensor([1.0, 0.0]).view(1, 2, 1, 1).requires_grad_(True)
    focus_readout(p0, torch.tensor([[1.0, 3.0]]))[1].sum().backward()
    assert torch.isfinite(p0.grad).all()


def test_focal_difference_volume_matches_definition():
    v = torch.arange(2 * 4, dtype=torch.float32).view(1, 2, 4, 1, 1) ** 2  # C = 2, N = 4
    vs = focal_difference_volume(v)
    assert vs.shape == (1, 4, 4, 1, 1)
    torch.testing.assert_close(vs[:, :2], v)
    for nn in range(3):
        torch.testing.assert_close(vs[:, 2:, nn], v[:, :, nn + 1] - v[:, :, nn])
    torch.testing.assert_close(vs[:, 2:, 3], v[:, :, 3] - v[:, :, 2])


@pytest.mark.parametrize("convs", [1, 2])
def test_decoder_with_extra_channels_is_the_decoder_of_their_concatenation(convs):
    from dflib.models.blocks import VolumeDecoder

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        dec = VolumeDecoder(36, (16, 32), convs, "group")
        x, extra = torch.randn(2, 32, 5, 8, 8, requires_grad=True), torch.randn(2, 4, 5, 8, 8, requires_grad=True)
    split = dec(x, extra)
    joint = dec(torch.cat([x, extra], 1))
    torch.testing.assert_close(split, joint, rtol=1e-5, atol=1e-5)
    grads = [torch.autograd.grad(y.square().sum(), (x, extra, *dec.parameters())) for y in (split, joint)]
    for a, b in zip(*grads):  # equal to rounding (float32 sums in another order)
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5 * float(b.abs().max()))


@pytest.mark.parametrize("b, c, stride", [(1, 4, (1, 1, 1)), (1, 16, (1, 2, 2)), (2, 8, (1, 1, 1))])
def test_conv3d_agrees_with_torch_in_values_and_gradients(b, c, stride):
    # B·C·N·H <= 20480: PyTorch itself would use its reference kernel; dflib's conv3d goes to oneDNN on CPU
    from dflib.models.blocks import Conv3d, channels_last_on_cpu, conv3d

    with pytest.raises(ValueError, match="without dilation or groups"):
        Conv3d(c, 8, 3, padding=2, dilation=2)

    g = torch.Generator().manual_seed(0)
    x = torch.randn(b, c, 5, 16, 24, generator=g, requires_grad=True)
    w = torch.randn(8, c, 3, 3, 3, generator=g, requires_grad=True)
    bias = torch.randn(8, generator=g, requires_grad=True)
    ours = conv3d(channels_last_on_cpu(x), w, bias, stride, (1, 1, 1))
    ref = torch.nn.functional.conv3d(x, w, bias, stride=stride, padding=1)
    torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-4)
    for a, r in zip(torch.autograd.grad(ours.square().sum(), (x, w, bias)),
                    torch.autograd.grad(ref.square().sum(), (x, w, bias))):
        torch.testing.assert_close(a, r, rtol=1e-4, atol=1e-5 * float(r.abs().max()))


# ----------------------------------------------------------------- forward
@pytest.mark.parametrize("n, h, w", [(2, 16, 16), (3, 19, 23), (7, 33, 17)])
def test_forward_shapes_any_n_and_odd_sizes(n, h, w):
    model = _model(DualFocusConfig.tiny())
    stack, focus = _inputs(2, n, h, w)
    out = model(stack, focus)
    s = model.config.feature_stride
    hf, wf = -(-h // s), -(-w // s)
    assert out["depth"].shape == (2, 1, h, w)
    assert out["sigma"].shape == (2, 1, h, w)
    assert out["prob"].shape == out["logits"].shape == (2, n, h, w)
    assert out["aif"].shape == (2, 3, h, w)
    assert out["surface"].shape == (2, n, hf, wf)
    assert out["surfaces"].shape == (2, n, model.config.surface_channels, hf, wf)
    gx, gy = out["surface_grad"]
    assert gx.shape == (2, n, hf, wf - 1) and gy.shape == (2, n, hf - 1, wf)
    torch.testing.assert_close(out["prob"].sum(1), torch.ones(2, h, w))
    # the depth is a convex combination of the focus distances
    assert (out["depth"] >= 0.1 - 1e-6).all() and (out["depth"] <= 1.5 + 1e-6).all()
    # θ_grad is the gradient of the returned surface (integrable by construction)
    ex, ey = forward_differences(out["surface"])
    torch.testing.assert_close(gx, ex)
    torch.testing.assert_close(gy, ey)


def test_surfaces_are_zero_mean_least_squares_solutions():
    model = _model(DualFocusConfig.tiny())
    stack, focus = _inputs(1, 3, 32, 32)  # a multiple of pad_multiple: no cropping
    out = model(stack, focus)
    z = out["surfaces"]
    assert z.mean(dim=(-2, -1)).abs().max() < 1e-5
    # the mixed surface is the 1x1 map of the C2 surfaces (linear, so still integrable)
    wmix = model.surface_mix.weight.view(-1)
    torch.testing.assert_close(out["surface"], (z * wmix.view(1, 1, -1, 1, 1)).sum(2))


def test_disparity_focus_gives_depth_in_disparity_units():
    model = _model(DualFocusConfig.tiny())
    stack, focus_m = _inputs(1, 5, 16, 16)
    out_m = model(stack, focus_m)
    out_d = model(stack, 1.0 / focus_m)
    # the network never sees the focus: same probabilities, readout in the other units
    torch.testing.assert_close(out_m["prob"], out_d["prob"])
    torch.testing.assert_close(out_d["depth"], focus_readout(out_m["prob"], 1.0 / focus_m)[0])


@pytest.mark.parametrize("name", ["dfv_tiny", "plain_tiny"])
def test_baseline_presets_run_without_surfaces(name):
    model = _model(DualFocusConfig.preset(name))
    stack, focus = _inputs(2, 4, 20, 20)
    out = model(stack, focus)
    assert out["depth"].shape == (2, 1, 20, 20)
    assert "surface_grad" not in out and "surface" not in out
    parts = DualFocusLoss(1.0, 1.0)(out, torch.full((2, 1, 20, 20), 0.5), focus)
    assert parts["sv"].item() == 0
    parts["total"].backward()


def test_paper_preset_forward_and_eval_mode():
    model = _model(DualFocusConfig.paper()).eval()
    stack, focus = _inputs(1, 2, 32, 40)
    with torch.no_grad():
        out = model(stack, focus)
    assert out["depth"].shape == (1, 1, 32, 40)
    assert torch.isfinite(out["depth"]).all()


def test_feature_stride_two():
    model = _model(DualFocusConfig.tiny().replace(feature_stride=2))
    stack, focus = _inputs(1, 3, 21, 18)
    out = model(stack, focus)
    assert out["surface"].shape == (1, 3, 11, 9)
    assert out["depth"].shape == (1, 1, 21, 18)


@pytest.mark.parametrize("stack_shape, focus, match", [
    ((2, 5, 3, 16), None, "stack"),
    ((2, 5, 1, 16, 16), None, "stack"),
    ((2, 1, 3, 16, 16), [[0.5], [0.5]], "N >= 2"),
    ((2, 3, 3, 16, 16), [[0.1, 0.2], [0.1, 0.2]], "focus"),
    ((1, 3, 3, 16, 16), [[0.1, 0.3, 0.2]], "monotonic"),
    ((1, 3, 3, 16, 16), [[0.1, 0.1, 0.2]], "monotonic"),
    ((1, 3, 3, 16, 16), [[0.1, float("nan"), 0.2]], "finite"),
    ((1, 3, 3, 16, 16), [[0.1, 0.2, float("inf")]], "finite"),
])
def test_bad_inputs_raise(stack_shape, focus, match):
    model = _model(DualFocusConfig.tiny())
    stack = torch.rand(stack_shape)
    f = torch.tensor(focus) if focus is not None else torch.linspace(0.1, 1, 5).expand(2, 5)
    with pytest.raises(ValueError, match=match):
        model(stack, f)


def test_bad_types_raise():
    model = _model(DualFocusConfig.tiny())
    with pytest.raises(TypeError, match="stack"):
        model(torch.zeros(1, 2, 3, 8, 8, dtype=torch.uint8), torch.tensor([[0.1, 0.2]]))
    with pytest.raises(TypeError, match="config"):
        DualFocus({"norm": "batch"})  # type: ignore[arg-type]


# ----------------------------------------------------------------- gradients, determinism
def test_spatial_loss_gradient_reaches_encoder_through_projection():
    model = _model(DualFocusConfig.tiny())
    stack, focus = _inputs(1, 3, 32, 32)
    out = model(stack, focus)
    yy = torch.linspace(0.2, 1.2, 32).view(1, 1, 32, 1).expand(1, 1, 32, 32)
    loss = spatial_variational_loss(out["surface_grad"], yy, focus)
    loss.backward()
    first = model.encoder.stem[0].weight.grad
    assert first is not None and torch.isfinite(first).all() and first.abs().sum() > 0
    assert torch.isfinite(model.surface_mix.weight.grad).all()
    # the decoder is not upstream of L_sv
    assert all(p.grad is None for p in model.decoder.parameters())


def test_same_seed_same_output_and_no_global_rng_leak():
    stack, focus = _inputs(1, 3, 16, 16)
    before = torch.random.get_rng_state()
    a = _model(DualFocusConfig.tiny(), seed=3)(stack, focus)["depth"]
    b = _model(DualFocusConfig.tiny(), seed=3)(stack, focus)["depth"]
    c = _model(DualFocusConfig.tiny(), seed=4)(stack, focus)["depth"]
    assert torch.equal(torch.random.get_rng_state(), before)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


# ----------------------------------------------------------------- overfitting
def _fixed_rendered_batch() -> dict[str, torch.Tensor]:
    from dflib.data.synthetic import SyntheticFocalStackDataset

    sample = SyntheticFocalStackDataset(1, size=(96, 96), n_planes=5, seed=0)[0]
    return {k: torch.as_tensor(sample[k])[None] for k in ("stack", "focus", "depth", "mask")}


@pytest.mark.slow
def test_tiny_model_overfits_one_rendered_batch():
    """Adam on one fixed rendered stack (5 planes, 96 x 96): the depth RMSE over all
    valid pixels falls below 10 % of the untrained model's (measured: 0.077 after
    600 steps). 96 x 96 rather than smaller because the logits live on the
    1/4-resolution grid: at 64 x 64 the pixels next to depth steps dominate and
    the same budget only reaches ~0.09-0.10."""
    batch = _fixed_rendered_batch()
    stack, focus, depth, mask = batch["stack"], batch["focus"], batch["depth"], batch["mask"].bool()
    assert stack.shape == (1, 5, 3, 96, 96) and mask.float().mean() > 0.5

    def rmse(pred: torch.Tensor) -> float:
        return ((pred - depth)[mask] ** 2).mean().sqrt().item()

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = DualFocus(DualFocusConfig.tiny())
        opt = torch.optim.Adam(model.parameters(), lr=2e-3)
        loss_fn = DualFocusLoss(lambda_sv=0.1, lambda_fv=0.1)
        with torch.no_grad():
            init = rmse(model(stack, focus)["depth"])
        for _ in range(600):
            parts = loss_fn(model(stack, focus), depth, focus, mask)
            opt.zero_grad()
            parts["total"].backward()
            opt.step()
        with torch.no_grad():
            final = rmse(model(stack, focus)["depth"])
    print(f"overfit RMSE: {init:.4f} -> {final:.4f} (ratio {final / init:.3f})")
    assert final < 0.1 * init


def test_channels_last_layout_changes_no_value_beyond_rounding():
    # benchmarks/bench_throughput.py times the model with the layout switched off; both must compute the same map

    import dflib.models.blocks as blocks

    bench = benchmark_scripts.load("bench_throughput")
    model = _model(DualFocusConfig.tiny()).eval()
    stack, focus = _inputs(1, 5, 48, 64)
    with torch.no_grad():
        ours = model(stack, focus)["logits"]
        with bench._default_layout():
            assert blocks.channels_last_on_cpu(torch.zeros(1, 2, 3, 4, 5)).is_contiguous()
            default = model(stack, focus)["logits"]
    assert not blocks.channels_last_on_cpu(torch.zeros(1, 2, 3, 4, 5)).is_contiguous()  # restored
    torch.testing.assert_close(ours, default, rtol=1e-5, atol=1e-5)
