"""Tests of dflib.losses: hand-worked values and invariants of the three terms."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from dflib.integrate import forward_differences
from dflib.losses import (DualFocusLoss, depth_loss, downsample_depth, focal_variational_loss,
                          sharpness_weights, spatial_variational_loss, valid_mask)

FOCUS = torch.tensor([[0.1, 0.15, 0.3, 0.7, 1.5]])


def _curves(values: list[list[float]]) -> torch.Tensor:
    """Curves ``[K, N]`` -> prob ``[1, N, 1, K]`` (one pixel per curve)."""
    return torch.tensor(values, dtype=torch.float64).T[None, :, None, :]


# ----------------------------------------------------------------- L_depth
def test_valid_mask_rejects_zero_negative_nan_inf():
    t = torch.tensor([1.0, 0.0, -1.0, float("nan"), float("inf"), 0.5])
    assert valid_mask(t).tolist() == [True, False, False, False, False, True]


def test_depth_loss_hand_value_and_invalid_pixels_ignored():
    pred = torch.tensor([0.5, 3.0, 7.0, 1.0]).view(1, 1, 2, 2).requires_grad_(True)
    target = torch.tensor([1.0, 1.0, float("nan"), 0.0]).view(1, 1, 2, 2)
    # valid: |0.5 - 1| = 0.5 -> 0.5 * 0.25 = 0.125 ; |3 - 1| = 2 -> 2 - 0.5 = 1.5
    loss = depth_loss(pred, target)
    assert loss.item() == pytest.approx((0.125 + 1.5) / 2)
    loss.backward()
    assert torch.isfinite(pred.grad).all()
    assert pred.grad[0, 0, 1].abs().sum() == 0  # invalid pixels get no gradient
    # an extra mask removes the second pixel
    m = torch.tensor([True, False, True, True]).view(1, 1, 2, 2)
    assert depth_loss(pred, target, m).item() == pytest.approx(0.125)
    # nothing valid -> 0, still differentiable
    z = depth_loss(pred, torch.zeros_like(target))
    assert z.item() == 0 and z.requires_grad


def test_depth_loss_shape_errors():
    with pytest.raises(ValueError, match="pred"):
        depth_loss(torch.zeros(1, 2, 3, 3), torch.zeros(1, 2, 3, 3))
    with pytest.raises(ValueError, match="target"):
        depth_loss(torch.zeros(1, 1, 3, 3), torch.zeros(1, 1, 3, 4))
    with pytest.raises(ValueError, match="mask"):
        depth_loss(torch.zeros(1, 1, 3, 3), torch.ones(1, 1, 3, 3), torch.ones(1, 3, 3, dtype=torch.bool))


# ----------------------------------------------------------------- q_n
def test_sharpness_weights_sum_to_one_and_peak_at_nearest_plane():
    depth = torch.tensor([0.09, 0.12, 0.2, 0.5, 1.0, 2.0, 0.31]).view(1, 1, 1, 7)
    q = sharpness_weights(depth, FOCUS)
    assert q.shape == (1, 5, 1, 7)
    torch.testing.assert_close(q.sum(dim=1), torch.ones(1, 1, 7))
    nearest = (FOCUS[0, :, None] - depth.view(1, 7)).abs().argmin(dim=0)
    assert q.argmax(dim=1).view(-1).tolist() == nearest.tolist()
    # hand value: D = f_3 exactly -> q_3 = 1 / Σ exp(-|f_n - f_3|)
    q3 = sharpness_weights(torch.full((1, 1, 1, 1), 0.3), FOCUS)[0, 2].item()
    expected = 1.0 / sum(math.exp(-abs(f - 0.3)) for f in FOCUS[0].tolist())
    assert q3 == pytest.approx(expected, rel=1e-6)


# ----------------------------------------------------------------- L_sv
def test_downsample_depth_is_mask_aware_mean():
    d = torch.arange(1.0, 17.0).view(1, 1, 4, 4)
    m = torch.ones_like(d, dtype=torch.bool)
    m[0, 0, 0, 0] = False  # top-left cell keeps 3 of 4 pixels
    m[0, 0, 2:, 2:] = False  # bottom-right cell empty
    df, mf = downsample_depth(d, m, 2)
    assert mf[0, 0].tolist() == [[True, True], [True, False]]
    assert df[0, 0, 0, 0].item() == pytest.approx((2 + 5 + 6) / 3)
    assert df[0, 0, 0, 1].item() == pytest.approx((3 + 4 + 7 + 8) / 4)
    assert df[0, 0, 1, 1].item() == 0
    # exactly half of a cell valid is enough (min_valid_fraction = 0.5, inclusive)
    half = torch.tensor([[[[True, False], [True, False]]]])
    assert downsample_depth(torch.ones(1, 1, 2, 2), half, 2)[1].item()


def _ramp(h: int, w: int, ax: float, ay: float, c: float) -> torch.Tensor:
    y, x = torch.meshgrid(torch.arange(h, dtype=torch.float64), torch.arange(w, dtype=torch.float64),
                          indexing="ij")
    return (c + ax * x + ay * y)[None, None]


def test_spatial_loss_zero_when_gradients_match_target():
    # depth plane at full resolution 8 x 12; stride 4 -> feature grid 2 x 3.
    # A plane's cell means are again a plane, with slopes 4x per feature pixel.
    d = _ramp(8, 12, 0.01, 0.02, 0.5)
    focus = FOCUS.double()
    df, _ = downsample_depth(d, valid_mask(d), 4)
    gx, gy = forward_differences(df.expand(1, 5, 2, 3))
    assert gx[0, 0, 0, 0].item() == pytest.approx(0.04)  # depth per feature pixel
    loss = spatial_variational_loss((gx, gy), d, focus)
    assert loss.item() == pytest.approx(0.0, abs=1e-12)
    # a surface off by 0.1 in every x-gradient: loss = Σ_n q_n * 0.1 over the x terms / count
    loss2 = spatial_variational_loss((gx + 0.1, gy), d, focus)
    nx, ny = 2 * 2, 1 * 3
    assert loss2.item() == pytest.approx(0.1 * nx / (nx + ny), rel=1e-9)


def test_spatial_loss_weights_only_in_focus_planes_and_masks():
    # constant depth at plane 4 (0.7 m): wrong gradients on plane 1 cost q_1, on plane 4 cost q_4
    d = torch.full((1, 1, 8, 8), 0.7, dtype=torch.float64)
    q = sharpness_weights(torch.full((1, 1, 1, 1), 0.7, dtype=torch.float64), FOCUS.double())[0, :, 0, 0]
    gx = torch.zeros(1, 5, 4, 3, dtype=torch.float64)
    gy = torch.zeros(1, 5, 3, 4, dtype=torch.float64)
    for n in (0, 3):
        gxn = gx.clone()
        gxn[:, n] = 1.0
        loss = spatial_variational_loss((gxn, gy), d, FOCUS.double(), stride=2)
        assert loss.item() == pytest.approx(q[n].item() * 12 / 24)
    # masking out the left half of the image leaves only gradients inside the right half
    mask = torch.ones(1, 1, 8, 8, dtype=torch.bool)
    mask[..., :4] = False
    gxn = gx.clone()
    gxn[..., :2] = 5.0  # gradients between columns 0-1, 1-2 of the feature grid: masked
    assert spatial_variational_loss((gxn, gy), d, FOCUS.double(), mask=mask).item() == 0
    # NaN in the target never reaches the loss
    dn = d.clone()
    dn[..., :4] = float("nan")
    assert spatial_variational_loss((gxn, gy), dn, FOCUS.double()).item() == 0


def test_spatial_loss_huber_in_planes_hand_values():
    """dflib's form: T in plane units (here one plane per pixel), Huber with δ = 0.5 plane by default."""
    depth, focus = torch.tensor([1.0, 2, 3, 4]).view(1, 1, 1, 4), torch.tensor([[1.0, 2, 3, 4]])
    gy = torch.zeros(1, 4, 0, 4)

    def loss(g: float) -> float:
        return spatial_variational_loss((torch.full((1, 4, 1, 3), g), gy), depth, focus, units="planes",
                                        penalty="huber").item()

    assert loss(1.0) == 0
    assert loss(0.8) == pytest.approx(0.5 * 0.2**2)  # quadratic below δ: e² / 2
    assert loss(0.0) == pytest.approx(0.5 * (1.0 - 0.5 / 2))  # linear above: δ (|e| - δ / 2)


@pytest.mark.parametrize("units, penalty", [("depth", "l1"), ("planes", "huber")])
def test_spatial_loss_treats_x_and_y_alike(units, penalty):
    """Transposing the scene and swapping gx and gy leaves L_sv unchanged (the y terms are the x terms')."""
    g = torch.Generator().manual_seed(3)
    d = 0.1 + 1.4 * torch.rand(1, 1, 8, 12, generator=g, dtype=torch.float64)
    d[..., 2:4, 6:8] = 0.0  # one invalid feature pixel inside the grid: its gradients drop out
    gx = torch.randn(1, 5, 4, 5, generator=g, dtype=torch.float64)
    gy = torch.randn(1, 5, 3, 6, generator=g, dtype=torch.float64)
    loss = spatial_variational_loss((gx, gy), d, FOCUS.double(), stride=2, units=units, penalty=penalty)
    swapped = spatial_variational_loss((gy.transpose(-1, -2), gx.transpose(-1, -2)), d.transpose(-1, -2),
                                       FOCUS.double(), stride=2, units=units, penalty=penalty)
    assert loss.item() > 0 and swapped.item() == pytest.approx(loss.item(), rel=1e-12)
    # and the y terms count: a wrong gy alone costs something
    assert spatial_variational_loss((gx * 0, gy), d, FOCUS.double(), stride=2, units=units,
                                    penalty=penalty).item() > 0


def test_losses_with_nothing_valid_are_zero_and_keep_the_graph():
    gx = torch.ones(1, 5, 4, 3, requires_grad=True)
    gy = torch.ones(1, 5, 3, 4, requires_grad=True)
    none = torch.zeros(1, 1, 8, 8, dtype=torch.bool)
    sv = spatial_variational_loss((gx, gy), torch.ones(1, 1, 8, 8), FOCUS, mask=none)
    sv.backward()
    assert sv.item() == 0 and gx.grad.abs().sum() == 0 and gy.grad.abs().sum() == 0
    prob = _curves([[0.1, 0.4, 0.1, 0.3, 0.1]]).requires_grad_()
    fv = focal_variational_loss(prob, torch.zeros(1, 1, 1, 1, dtype=torch.bool))
    fv.backward()
    assert fv.item() == 0 and torch.isfinite(prob.grad).all()


def test_surface_target_weights_are_a_softmax_with_temperature():
    """q_n = softmax_n(-|f_n - D*| / tau) in depth units; tau > 0."""
    from dflib.loss_targets import surface_target

    d = torch.full((1, 1, 2, 2), 0.3, dtype=torch.float64)
    f = FOCUS.double()
    torch.testing.assert_close(surface_target(d, f, (2, 2)).q, surface_target(d, f, (2, 2), tau=1.0).q)  # default
    for tau in (1.0, 0.05):
        q = surface_target(d, f, (2, 2), tau=tau).q[0, :, 0, 0]
        torch.testing.assert_close(q, torch.softmax(-(f[0] - 0.3).abs() / tau, dim=0))
    assert surface_target(d, f, (2, 2), tau=0.05).q[0, 2, 0, 0] > 0.5  # a low temperature: the nearest plane
    with pytest.raises(ValueError, match="tau must be > 0"):
        surface_target(d, f, (2, 2), tau=0.0)


def test_spatial_loss_shape_errors():
    gx, gy = torch.zeros(1, 5, 4, 3), torch.zeros(1, 5, 3, 4)
    with pytest.raises(ValueError, match="gy"):
        spatial_variational_loss((gx, torch.zeros(1, 5, 4, 4)), torch.ones(1, 1, 8, 8), FOCUS)
    with pytest.raises(ValueError, match="surface_grad must be"):
        spatial_variational_loss((gx, gy[0]), torch.ones(1, 1, 8, 8), FOCUS)
    with pytest.raises(ValueError, match="focus"):
        spatial_variational_loss((gx, gy), torch.ones(1, 1, 8, 8), FOCUS[:, :3])
    with pytest.raises(ValueError, match="grid"):
        spatial_variational_loss((gx, gy), torch.ones(1, 1, 8, 8), FOCUS, stride=4)


# ----------------------------------------------------------------- L_fv
def test_focal_loss_zero_for_unimodal_and_monotone_curves():
    p = _curves([
        [0.1, 0.2, 0.4, 0.2, 0.1],  # peaked
        [0.5, 0.2, 0.15, 0.1, 0.05],  # decreasing
        [0.05, 0.1, 0.15, 0.2, 0.5],  # increasing
        [0.2, 0.2, 0.2, 0.2, 0.2],  # flat
        [0.0, 0.4, 0.4, 0.2, 0.0],  # plateau at the top
        [1.0, 0.0, 0.0, 0.0, 0.0],  # one-hot
    ])
    assert focal_variational_loss(p).item() == 0


def test_focal_loss_bimodal_hand_value():
    # k = 2nd plane; pairs after it: (0.4 -> 0.1) ok, (0.1 -> 0.3) rises by 0.2 -> 0.04, (0.3 -> 0.1) ok
    p = _curves([[0.1, 0.4, 0.1, 0.3, 0.1]])
    assert focal_variational_loss(p).item() == pytest.approx(0.04)
    # dip before the peak: [0.3, 0.1, 0.2, 0.4] k = 4th -> (0.3 -> 0.1) falls by 0.2 -> 0.04
    p2 = _curves([[0.3, 0.1, 0.2, 0.4]])
    assert focal_variational_loss(p2).item() == pytest.approx(0.04)
    # averaged over valid pixels: a bimodal and a unimodal pixel, or masked out
    both = torch.cat([p, _curves([[0.1, 0.2, 0.4, 0.2, 0.1]])], dim=3)
    assert focal_variational_loss(both).item() == pytest.approx(0.02)
    mask = torch.tensor([[[[False, True]]]])
    assert focal_variational_loss(both, mask).item() == 0
    assert focal_variational_loss(both, ~mask).item() == pytest.approx(0.04)
    # a mask keeping two of three pixels averages over those two; a [B, H, W] mask is the same
    three = torch.cat([p, p, _curves([[0.1, 0.2, 0.4, 0.2, 0.1]])], dim=3)  # 0.04, 0.04, 0
    keep = torch.tensor([[[[True, False, True]]]])
    assert focal_variational_loss(three, keep).item() == pytest.approx(0.02)
    assert focal_variational_loss(three, keep[:, 0]).item() == pytest.approx(0.02)


def test_focal_loss_matches_loop_reference_on_random_curves():
    g = torch.Generator().manual_seed(0)
    p = torch.softmax(torch.randn(2, 6, 3, 4, generator=g, dtype=torch.float64) * 2, dim=1)
    ref = 0.0
    for b in range(2):
        for y in range(3):
            for x in range(4):
                c = p[b, :, y, x].tolist()
                k = max(range(6), key=lambda i: c[i])
                ref += sum(max(0, c[i] - c[i + 1]) ** 2 for i in range(k))
                ref += sum(max(0, c[i + 1] - c[i]) ** 2 for i in range(k, 5))
    assert focal_variational_loss(p).item() == pytest.approx(ref / 24, rel=1e-12)
    assert ref > 0


def test_focal_loss_first_maximum_on_ties_and_exact_gradient():
    """The peak is the first maximum; the one-pass backward equals autograd through the textbook formula."""
    # peaks at planes 0 and 3: from the first, the rises 0.2 -> 0.3 -> 0.4 cost 2 x 0.01 (from the last: 0.04)
    assert focal_variational_loss(_curves([[0.4, 0.2, 0.3, 0.4]])).item() == pytest.approx(0.02)

    def textbook(prob: torch.Tensor) -> torch.Tensor:
        k = prob.argmax(dim=1, keepdim=True)
        d = prob[:, 1:] - prob[:, :-1]
        rising = torch.arange(prob.shape[1] - 1).view(1, -1, 1, 1) < k
        return (torch.where(rising, torch.relu(-d), torch.relu(d)) ** 2).sum(dim=1).mean()

    g = torch.Generator().manual_seed(1)
    for n in (2, 3, 7):
        p = torch.softmax(torch.randn(2, n, 4, 5, generator=g, dtype=torch.float64) * 2, dim=1)
        p[0, :, 0, 0] = torch.tensor([0.3] * 2 + [0.1] * (n - 2), dtype=torch.float64)  # a tie
        p.requires_grad_()
        ours, = torch.autograd.grad(focal_variational_loss(p), p)
        ref, = torch.autograd.grad(textbook(p), p)
        torch.testing.assert_close(ours, ref, rtol=0, atol=1e-15)
        assert (ours.abs().sum() > 0) == (n > 2)  # two planes are always unimodal
    p = torch.softmax(torch.randn(1, 5, 3, 3, generator=g, dtype=torch.float64), dim=1).requires_grad_()
    assert torch.autograd.gradcheck(focal_variational_loss, (p,))


def test_focal_loss_errors():
    with pytest.raises(ValueError, match="prob"):
        focal_variational_loss(torch.zeros(2, 1, 3, 3))
    with pytest.raises(ValueError, match="mask"):
        focal_variational_loss(torch.zeros(2, 3, 3, 3), torch.ones(2, 1, 3, 4, dtype=torch.bool))


# ----------------------------------------------------------------- combined
def test_dualfocus_loss_combines_and_skips_terms():
    prob = _curves([[0.1, 0.4, 0.1, 0.3, 0.1]]).float().expand(1, 5, 8, 8).contiguous()
    depth_gt = torch.full((1, 1, 8, 8), 0.3)
    out = {"depth": torch.full((1, 1, 8, 8), 0.5), "prob": prob,
           "surface_grad": (torch.full((1, 5, 2, 1), 0.1), torch.zeros(1, 5, 1, 2))}
    parts = DualFocusLoss(lambda_sv=2.0, lambda_fv=3.0)(out, depth_gt, FOCUS)
    assert parts["depth"].item() == pytest.approx(0.5 * 0.2**2)
    assert parts["fv"].item() == pytest.approx(0.04)
    assert parts["sv"].item() == pytest.approx(0.1 * 2 / 4)
    assert parts["total"].item() == pytest.approx(0.02 + 2 * 0.05 + 3 * 0.04)
    off = DualFocusLoss(lambda_sv=0.0, lambda_fv=0.0)(out, depth_gt, FOCUS)
    assert off["sv"].item() == 0 and off["fv"].item() == 0
    assert off["total"].item() == pytest.approx(0.02)
    # by default every term weighs 1, and a bfloat16 prediction is scored in float32
    unit = DualFocusLoss()(out, depth_gt, FOCUS)
    assert unit["total"].item() == pytest.approx(0.02 + 0.05 + 0.04)
    half = DualFocusLoss()({"depth": out["depth"].bfloat16(), "prob": prob.bfloat16(),
                            "surface_grad": tuple(g.bfloat16() for g in out["surface_grad"])}, depth_gt, FOCUS)
    assert all(v.dtype == torch.float32 for v in half.values())
    assert half["depth"].item() == pytest.approx(0.02) and half["fv"].item() == pytest.approx(0.04, rel=1e-2)
    # depth_clip: a truth beyond the last plane (3 m > 1.5 m) is scored against 1.5 m, per stack
    far = torch.full((2, 1, 8, 8), 3.0)
    at_last = {"depth": torch.full((2, 1, 8, 8), 1.5), "prob": prob.expand(2, 5, 8, 8)}
    focus2 = torch.cat([FOCUS, FOCUS * 0.5])  # the second stack's last plane is 0.75 m
    clipped = DualFocusLoss(lambda_fv=0.0, depth_clip=True)(at_last, far, focus2)
    assert clipped["depth"].item() == pytest.approx((0.0 + 0.5 * 0.75**2) / 2)  # errors 0 and 0.75 (smooth-L1)
    assert DualFocusLoss(lambda_fv=0.0)(at_last, far, focus2)["depth"].item() == pytest.approx(1.5 - 0.5)
    no_branch = {k: v for k, v in out.items() if k != "surface_grad"}
    assert DualFocusLoss()(no_branch, depth_gt, FOCUS)["sv"].item() == 0
    with pytest.raises(ValueError, match="lambda_sv"):
        DualFocusLoss(lambda_sv=-1.0)
    with pytest.raises(ValueError, match="lambda_fv"):
        DualFocusLoss(lambda_fv=float("nan"))
    for kwargs in ({"beta": 0.0}, {"sv_tau": 0.0}, {"sv_delta": 0.0}):
        with pytest.raises(ValueError, match=next(iter(kwargs))):
            DualFocusLoss(**kwargs)
    # the blind path's L_depth and L_fv join the total; "depth" and "fv" stay the main path's
    blind = {**out, "depth_blind": torch.full((1, 1, 8, 8), 0.4),
             "prob_blind": _curves([[0.1, 0.3, 0.1, 0.4, 0.1]]).float().expand(1, 5, 8, 8).contiguous()}
    two = DualFocusLoss(lambda_sv=2.0, lambda_fv=3.0)(blind, depth_gt, FOCUS)
    assert two["depth"].item() == pytest.approx(0.02) and two["fv"].item() == pytest.approx(0.04)
    # blind L_depth: 0.5 x 0.1² = 0.005; blind L_fv: peak at the 4th plane, (0.3 -> 0.1) falls before it: 0.2² = 0.04
    assert two["total"].item() == pytest.approx(0.02 + 0.005 + 2 * 0.05 + 3 * (0.04 + 0.04))


def test_smooth_l1_agrees_with_torch_reference():
    g = torch.Generator().manual_seed(1)
    pred = torch.rand(2, 1, 5, 6, generator=g) * 2
    target = torch.rand(2, 1, 5, 6, generator=g) * 2 + 0.01
    torch.testing.assert_close(depth_loss(pred, target, beta=0.5), F.smooth_l1_loss(pred, target, beta=0.5))
