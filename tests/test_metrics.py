"""Tests of dflib.metrics: hand-computed values, protocols, Bump invariants."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from dflib.metrics import (
    BUMP_CLIP,
    LOG_EPS,
    METRIC_NAMES,
    PROTOCOLS,
    Protocol,
    as_percent,
    bump_map,
    depth_metrics,
    format_metrics,
    get_protocol,
)


def test_hand_computed_with_invalid_pixel():
    # valid: t = 1, 2, 4 with p = 1, 1, 8; the 4th pixel (t = 0) is a hole.
    t = np.array([[1.0, 2.0], [4.0, 0.0]])
    p = np.array([[1.0, 1.0], [8.0, 5.0]])
    m = depth_metrics(p, t)
    assert m["mse"] == pytest.approx((0 + 1 + 16) / 3)
    assert m["rmse"] == pytest.approx(math.sqrt(17 / 3))
    assert m["log_rmse"] == pytest.approx(math.log(2) * math.sqrt(2 / 3))
    assert m["abs_rel"] == pytest.approx((0 + 0.5 + 1.0) / 3)
    assert m["sq_rel"] == pytest.approx((0 + 0.5 + 4.0) / 3)
    # ratios 1, 2, 2: only the first is < 1.25, 1.5625, 1.953
    assert m["delta1"] == pytest.approx(1 / 3)
    assert m["delta2"] == pytest.approx(1 / 3)
    assert m["delta3"] == pytest.approx(1 / 3)
    assert set(m) == set(METRIC_NAMES)
    assert all(type(v) is float for v in m.values())


def test_delta_thresholds_are_strict_and_fractions():
    t = np.ones((1, 4))
    p = np.array([[1.2, 1.25**1.5, 1.25**2.5, 1.25**4]])  # ratios in each band
    m = depth_metrics(p, t)
    assert (m["delta1"], m["delta2"], m["delta3"]) == pytest.approx((0.25, 0.5, 0.75))
    # the ratio is symmetric: under-prediction by the same factor scores the same
    m2 = depth_metrics(1.0 / p, t)
    assert (m2["delta1"], m2["delta2"], m2["delta3"]) == pytest.approx((0.25, 0.5, 0.75))


def test_fod500_clips_prediction_and_target():
    t = np.array([[1.0, 2.0, 0.5, np.inf]])  # 2.0 -> 1.5; inf is a hole, not 1.5
    p = np.array([[1.2, 1.4, 3.0, 1.0]])  # 3.0 -> 1.5
    m = depth_metrics(p, t, protocol="fod500")
    # clipped: t = 1, 1.5, 0.5 ; p = 1.2, 1.4, 1.5 ; err = 0.2, -0.1, 1.0
    assert m["mse"] == pytest.approx((0.04 + 0.01 + 1.0) / 3)
    assert m["abs_rel"] == pytest.approx((0.2 + 0.1 / 1.5 + 2.0) / 3)
    assert m["delta1"] == pytest.approx(2 / 3)
    # the unclipped default protocol sees err = 0.2, -0.6, 2.5
    d = depth_metrics(p, t)
    assert d["mse"] == pytest.approx((0.04 + 0.36 + 6.25) / 3)


def test_ddff12_and_nyu_valid_ranges():
    t = np.array([[0.01, 0.0202, 0.1, 0.2825, 0.3]], dtype=np.float32)  # float32 bounds are inside
    p = t + np.float32(0.01)
    m = depth_metrics(p, t, protocol="ddff12")
    assert m["mse"] == pytest.approx(1e-4, rel=1e-5)
    valid = PROTOCOLS["ddff12"].valid_mask(t)
    assert valid.tolist() == [[False, True, True, True, False]]
    assert PROTOCOLS["nyu"].valid_mask(np.array([5e-4, 1e-3, 5.0, 10.0, 12.0])).tolist() == [
        False, True, True, True, False,
    ]


def test_rmse_is_mean_of_per_image_rmse():
    # image 0: 4 valid pixels, error 1 ; image 1: 1 valid pixel, error 3
    t = np.ones((2, 2, 2))
    t[1] = [[1.0, 0.0], [0.0, 0.0]]
    p = t + np.array([1.0, 3.0])[:, None, None]
    m = depth_metrics(p, t)
    assert m["mse"] == pytest.approx((1 + 9) / 2)
    assert m["rmse"] == pytest.approx((1 + 3) / 2)  # not sqrt(5), not pooled sqrt(13/5)
    single = [depth_metrics(p[b], t[b]) for b in range(2)]
    for k in METRIC_NAMES:
        assert m[k] == pytest.approx((single[0][k] + single[1][k]) / 2)


def test_shapes_torch_and_numpy_agree():
    rng = np.random.default_rng(0)
    t = rng.uniform(0.5, 2.0, (2, 12, 14))
    t[0, 3:5, 4:9] = 0.0
    p = t + rng.normal(0, 0.05, t.shape)
    ref = depth_metrics(p, t)
    for pp, tt in [
        (p[:, None], t[:, None]),
        (torch.from_numpy(p), torch.from_numpy(t)),
        (torch.from_numpy(p).float()[:, None], torch.from_numpy(t).float()[:, None]),
    ]:
        got = depth_metrics(pp, tt)
        for k in METRIC_NAMES:
            assert got[k] == pytest.approx(ref[k], rel=1e-5, abs=1e-7), k
    one = depth_metrics(p[0], t[0])
    assert one["mse"] == pytest.approx(depth_metrics(p[:1], t[:1])["mse"])


def test_nonfinite_prediction_counts_as_error():
    t = np.array([[1.0, 2.0, 2.0]])
    p = np.array([[1.0, np.nan, np.inf]])
    with pytest.warns(RuntimeWarning, match="2 non-finite"):
        m = depth_metrics(p, t)
    # scored as predictions of 0: errors 0, -2, -2 over all three pixels
    assert m["mse"] == pytest.approx(8 / 3)
    assert m["delta3"] == pytest.approx(1 / 3)
    assert m["abs_rel"] == pytest.approx(2 / 3)
    assert np.isfinite(m["log_rmse"]) and m["log_rmse"] > 5
    assert np.isfinite(m["bump"])


def test_nonpositive_prediction_is_clamped_in_log():
    t = np.array([[1.0, 2.0]])
    p = np.array([[-1.0, 2.0]])
    m = depth_metrics(p, t)
    assert m["log_rmse"] == pytest.approx(math.sqrt(math.log(1e-6) ** 2 / 2))  # LOG_EPS = 1e-6, as documented
    assert LOG_EPS == 1e-6
    assert m["abs_rel"] == pytest.approx(2.0 / 2)  # raw value in AbsRel
    assert m["delta1"] == pytest.approx(0.5)


def test_all_invalid_image_raises():
    t = np.ones((2, 4, 4))
    t[1] = 0.0
    with pytest.raises(ValueError, match=r"no valid pixel.*\[1\]"):
        depth_metrics(t, t)
    with pytest.raises(ValueError, match="no valid pixel"):
        depth_metrics(np.ones((4, 4)), np.full((4, 4), 0.5), protocol="ddff12")  # all above 0.2825
    with pytest.raises(ValueError, match="no valid pixel"):
        depth_metrics(np.ones((4, 4)), np.full((4, 4), np.nan))


def test_fod500_clipped_gt_stays_valid():
    m = depth_metrics(np.ones((4, 4)), np.full((4, 4), 3.0), protocol="fod500")
    assert m["mse"] == pytest.approx(0.25)


def test_bad_inputs():
    with pytest.raises(ValueError, match="same shape"):
        depth_metrics(np.ones((3, 4)), np.ones((4, 3)))
    with pytest.raises(ValueError, match=r"\[H,W\]"):
        depth_metrics(np.ones((2, 3, 4, 4)), np.ones((2, 3, 4, 4)))
    with pytest.raises(TypeError, match="pred"):
        depth_metrics([[1.0]], np.ones((1, 1)))
    with pytest.raises(ValueError, match="unknown name"):
        depth_metrics(np.ones((2, 2)), np.ones((2, 2)), protocol="kitti")
    with pytest.raises(ValueError, match="sigma"):
        depth_metrics(np.ones((2, 2)), np.ones((2, 2)), sigma=np.full((2, 2), np.nan))
    with pytest.raises(ValueError, match="valid_min"):
        Protocol("bad", "m", 2.0, 1.0)
    Protocol("point", "m", 1.0, 1.0)  # a single valid value is allowed
    assert Protocol("any", "m").valid_mask(np.array([1e-3, 0.5, 1e6])).all()  # by default every positive depth
    for clip in [(2.0, 1.0), (1.0, 1.0), (0.0, 1.0, 2.0)]:
        with pytest.raises(ValueError, match="clip"):
            Protocol("bad", "m", clip=clip)


def test_mask_and_custom_protocol():
    t = np.array([[1.0, 2.0, 4.0]])
    p = np.array([[1.0, 1.0, 8.0]])
    m = depth_metrics(p, t, mask=np.array([[True, True, False]]))
    assert m["mse"] == pytest.approx(0.5)
    proto = Protocol("upto3", "m", 0.0, 3.0, None, "test")
    assert get_protocol(proto) is proto
    assert depth_metrics(p, t, protocol=proto)["mse"] == pytest.approx(0.5)
    assert get_protocol("FoD500") is PROTOCOLS["fod500"]


def test_avg_unc_and_percent_report():
    t = np.ones((2, 2, 2))
    sigma = np.stack([np.full((2, 2), 0.1), np.full((2, 2), 0.3)])
    m = depth_metrics(t, t, sigma=torch.from_numpy(sigma))
    assert m["avg_unc"] == pytest.approx(0.2)
    assert m["delta1"] == 1.0 and as_percent(m)["delta1"] == 100.0
    assert as_percent(m)["mse"] == m["mse"]
    assert "delta1=100%" in format_metrics(m)
    assert "delta1=1 " in format_metrics(m, percent=False) + " "


def test_sigma_ranking_metrics_on_clipped_errors_over_valid_pixels():
    """AUSE/AURG rank the error after the protocol's clip, over valid pixels only, averaged over images."""
    from dflib.uncertainty import sparsification

    t = np.array([[[1.0, 0.0, 1.0], [1.0, 1.0, 1.0]]])  # one hole (t = 0)
    p = np.array([[[1.0, 9.0, 1.1], [1.3, 1.2, 3.0]]])  # fod500 clips 3.0 to 1.5: error 0.5, not 2.0
    err = np.array([0.0, 0.1, 0.3, 0.2, 0.5])
    exact = np.array([[[0.0, 99.0, 0.1], [0.3, 0.2, 0.5]]])  # σ = the clipped error; the hole's σ is ignored
    m = depth_metrics(p, t, protocol="fod500", sigma=exact)
    perfect = sparsification(err, err)
    assert m["ause"] == pytest.approx(0.0, abs=1e-12)
    assert m["aurg"] == pytest.approx(perfect.aurg) and m["aurg"] > 0.3
    # σ ranking 2.0 (the unclipped error) first would be wrong: here σ puts the 0.5 pixel third
    swapped = np.array([[[0.0, 0.0, 0.1], [0.5, 0.2, 0.3]]])
    m = depth_metrics(p, t, protocol="fod500", sigma=swapped)
    expected = sparsification(err, np.array([0.0, 0.1, 0.5, 0.2, 0.3]))
    assert m["ause"] == pytest.approx(expected.ause) and m["ause"] > 0
    assert m["aurg"] == pytest.approx(expected.aurg) and m["aurg"] < perfect.aurg
    # a perfect second image has nothing to rank and leaves the mean alone; all perfect gives NaN
    two = depth_metrics(np.concatenate([p, t]), np.concatenate([t, t]), protocol="fod500",
                        sigma=np.concatenate([swapped, swapped]))
    assert two["ause"] == pytest.approx(expected.ause) and two["aurg"] == pytest.approx(expected.aurg)
    none = depth_metrics(t, t, sigma=exact)
    assert math.isnan(none["ause"]) and math.isnan(none["aurg"]) and none["rmse"] == 0
    assert "ause" not in depth_metrics(p, t)


# --- Bump ---------------------------------------------------------------------

def test_bump_zero_for_affine_error_up_to_the_border():
    y, x = np.mgrid[0:15, 0:20].astype(np.float64)
    t = 2.0 + 0.01 * x
    p = t + (0.3 * x - 0.2 * y + 0.7)
    assert depth_metrics(p, t)["bump"] == pytest.approx(0.0, abs=1e-9)
    assert np.abs(bump_map(p - t)).max() < 1e-12


def test_bump_zero_for_perfect_prediction_with_holes():
    # the original differentiates p - t on the unmasked prediction, so the
    # jump p - 0 at a hole would saturate the clip around it; ours is 0.
    y, x = np.mgrid[0:16, 0:16].astype(np.float64)
    depth = 1.0 + 0.05 * x
    t = depth.copy()
    t[5:9, 5:9] = 0.0
    assert depth_metrics(depth, t)["bump"] == 0.0


def test_bump_hand_computed_scale():
    # e = a x^2: Scharr (kernel [1,0,-1] x [3,10,3]/16) gives dx = 4 a x, dxx = 8 a.
    # e = a x y: dx = 2 a y, dxy = dyx = 4 a, dxx = dyy = 0 -> ||H|| = 4 sqrt(2) a.
    a = 1e-3
    y, x = np.mgrid[0:12, 0:12].astype(np.float64)
    inner = (slice(3, -3), slice(3, -3))
    assert bump_map(a * x**2)[inner] == pytest.approx(np.full((6, 6), 8 * a))
    assert bump_map(a * x * y)[inner] == pytest.approx(np.full((6, 6), 4 * math.sqrt(2) * a))
    assert bump_map(a * y**2)[inner] == pytest.approx(np.full((6, 6), 8 * a))
    # bump = 100 * mean over valid pixels of the clipped map
    t = np.ones((12, 12))
    assert depth_metrics(t + a * x * y, t)["bump"] == pytest.approx(100 * bump_map(a * x * y).mean())
    # large curvature saturates at the clip, the original's 0.05, in all but the two edge columns (the odd
    # reflection has no curvature at its centre): bump = 100 x 0.05 x 10/12
    assert bump_map(x**2).max() == BUMP_CLIP == 0.05
    assert depth_metrics(t + x**2, t)["bump"] == pytest.approx(5.0 * 10 / 12)


def test_bump_positive_for_checkerboard():
    # 3-pixel squares: a 1-pixel checkerboard sits at Nyquist, where the
    # [1, 0, -1] Scharr derivative is zero in the interior.
    yy, xx = np.mgrid[0:24, 0:24]
    board = 0.1 * (((yy // 3) + (xx // 3)) % 2)
    t = np.ones((24, 24))
    m = depth_metrics(t + board, t)
    assert m["bump"] > 1.0
    assert m["bump"] <= 100 * BUMP_CLIP
    # bump is blind to a constant offset and to sign
    assert depth_metrics(t - board, t)["bump"] == pytest.approx(m["bump"])
    assert depth_metrics(t + board + 0.3, t)["bump"] == pytest.approx(m["bump"])


def test_region_helpers_are_reachable_from_metrics():
    import dflib.metrics
    from dflib import regions

    for name in ("REGION_NAMES", "region_masks", "region_rmse"):
        assert getattr(dflib.metrics, name) is getattr(regions, name)
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        dflib.metrics.nothing  # noqa: B018


def test_delta_thresholds_are_strict_and_percent_scales():
    """δ_k counts max(p/t, t/p) < 1.25^k, strictly (the DDFF-12 code): a ratio of exactly 1.25 misses δ1."""
    t = np.array([[1.0, 1.25, 1.0, 1.0]])
    p = np.array([[1.25, 1.0, 1.1, 2.0]])  # ratios 1.25 (both ways, exact in binary), 1.1, 2.0
    m = depth_metrics(p, t)
    assert (m["delta1"], m["delta2"], m["delta3"]) == (0.25, 0.75, 0.75)  # 1.25^2 = 1.5625, 1.25^3 = 1.953
    pc = as_percent(m)
    assert (pc["delta1"], pc["delta2"]) == (25.0, 75.0) and pc["rmse"] == m["rmse"]
