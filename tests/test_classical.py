"""Tests of dflib.classical: focus measures, peak interpolation, SFF on a render."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from scipy import ndimage

from dflib.classical import (
    FOCUS_MEASURES,
    focus_volume,
    interpolate_peak,
    sff,
    sff_depth,
    to_luminance,
)


def _gaussian_curves(mu: np.ndarray, s: np.ndarray, n: int, amp: float = 3.0) -> np.ndarray:
    i = np.arange(n, dtype=np.float64)[:, None, None]
    return amp * np.exp(-((i - mu) ** 2) / (2 * s**2))


def _texture(h: int, w: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    tex = ndimage.gaussian_filter(rng.random((h, w)), 0.7)
    return (tex - tex.min()) / (tex.max() - tex.min())


# --- peak interpolation -------------------------------------------------------

def test_gaussian_fit_exact_on_sampled_gaussians_argmax_is_not():
    rng = np.random.default_rng(1)
    n = 9
    mu = rng.uniform(1.0, n - 2.0, (6, 7))  # interior peaks
    s = rng.uniform(0.6, 2.0, (6, 7))
    vol = _gaussian_curves(mu, s, n)
    k = np.argmax(vol, axis=0)
    assert np.all((k >= 1) & (k <= n - 2))
    idx = interpolate_peak(vol, "gaussian")
    assert np.abs(idx - mu).max() < 1e-6
    arg = interpolate_peak(vol, "none")
    assert np.array_equal(arg, k.astype(float))
    assert np.abs(arg - mu).max() > 0.3
    # the widely copied MATLAB bug returns the argmax plane: ours must not
    assert np.abs(idx - np.round(idx)).max() > 0.3


def test_gaussian_fit_one_curve_and_scale_invariance():
    i = np.arange(7.0)
    curve = np.exp(-((i - 2.7) ** 2) / 2.0)
    assert interpolate_peak(curve) == pytest.approx(2.7, abs=1e-9)
    assert interpolate_peak(1e-6 * curve) == pytest.approx(2.7, abs=1e-9)
    assert interpolate_peak(torch.from_numpy(curve)) == pytest.approx(2.7, abs=1e-9)


def test_parabolic_fit_exact_on_parabola_and_biased_on_gaussian():
    i = np.arange(8.0)[:, None, None]
    mu = np.array([[2.3, 4.6, 5.2]])[None]
    vol = 50.0 - (i - mu) ** 2
    assert np.abs(interpolate_peak(vol, "parabolic")[0] - mu[0, 0]).max() < 1e-9
    g = _gaussian_curves(mu[0], np.full((1, 3), 1.0), 8)
    par = interpolate_peak(g, "parabolic")[0]
    err_par = np.abs(par - mu[0, 0])
    err_arg = np.abs(interpolate_peak(g, "none")[0] - mu[0, 0])
    assert np.all(err_par > 1e-4)  # parabola on raw values is not exact for a Gaussian
    assert err_par.max() < err_arg.max()


def test_end_planes_flat_curves_and_bounds():
    n = 6
    vol = np.zeros((n, 1, 4))
    vol[:, 0, 0] = np.arange(n)  # peak at the last plane
    vol[:, 0, 1] = np.arange(n)[::-1]  # peak at the first plane
    vol[:, 0, 2] = 1.0  # flat: argmax 0, no fit
    vol[:, 0, 3] = [0, 1, 5, 5, 1, 0]  # plateau: fit between the two maxima's
    idx = interpolate_peak(vol)
    assert idx[0, 0] == n - 1 and idx[0, 1] == 0 and idx[0, 2] == 0
    assert 2.0 <= idx[0, 3] <= 2.5
    assert np.all(np.isfinite(idx))
    for method in ("gaussian", "parabolic", "none"):
        out = interpolate_peak(np.random.default_rng(0).random((5, 8, 8)), method)
        assert out.min() >= 0 and out.max() <= 4
    with pytest.raises(ValueError, match="interpolation"):
        interpolate_peak(vol, "cubic")
    for empty in (np.zeros((0, 2, 2)), np.array(3.0)):
        with pytest.raises(ValueError, match="N >= 1"):
            interpolate_peak(empty)


@pytest.mark.parametrize("method", ["gaussian", "parabolic"])
def test_fit_stays_within_half_a_plane_of_the_argmax(method):
    """l₀ is the largest of the three samples, so the vertex is within 1/2 plane of it; end planes keep
    the argmax. Random curves reach every case, peaks at planes 1 and N-2 included."""
    vol = np.random.default_rng(3).random((6, 40, 40)) ** 3
    k = np.argmax(vol, axis=0)
    idx = interpolate_peak(vol, method)
    assert np.abs(idx - k).max() <= 0.5 + 1e-12
    ends = (k == 0) | (k == 5)
    assert ends.any() and np.array_equal(idx[ends], k[ends].astype(float))
    assert np.abs(idx - k)[~ends].min() > 0 and np.abs(idx - k)[~ends].max() > 0.4


def test_three_planes_are_enough_for_a_fit_and_a_blank_volume_gives_plane_0():
    assert interpolate_peak(np.exp(-((np.arange(3.0) - 1.3) ** 2))) == pytest.approx(1.3, abs=1e-9)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # log of zeros: offset, no -inf, no warning
        idx = interpolate_peak(np.zeros((5, 2, 2)))
    assert np.array_equal(idx, np.zeros((2, 2)))


# --- focus measures -----------------------------------------------------------

@pytest.mark.parametrize("measure", sorted(FOCUS_MEASURES))
def test_each_measure_peaks_on_the_sharp_image(measure):
    sharp = _texture(40, 40, seed=2)
    blurred = ndimage.gaussian_filter(sharp, 1.5)
    vol = focus_volume(np.stack([blurred, sharp]), measure, window=7)
    assert vol.shape == (2, 40, 40)
    assert np.all(vol >= 0)
    assert np.mean(vol[1] > vol[0]) > 0.99
    # more blur, less focus
    more = ndimage.gaussian_filter(sharp, 3.0)
    vol2 = focus_volume(np.stack([more, blurred]), measure, window=7)
    assert np.mean(vol2[1] > vol2[0]) > 0.95


def test_measures_match_scipy_reference_and_do_not_mix_planes():
    img = _texture(30, 32, seed=3)
    w = 5
    lap = ndimage.laplace(img)
    ref_lapv = ndimage.uniform_filter(lap**2, w) - ndimage.uniform_filter(lap, w) ** 2
    ref_ten = ndimage.uniform_filter(ndimage.sobel(img, 0) ** 2 + ndimage.sobel(img, 1) ** 2, w)
    ref_glvar = ndimage.uniform_filter(img**2, w) - ndimage.uniform_filter(img, w) ** 2
    # sml and lapd from shifted copies ("reflect" in scipy is numpy's "symmetric" padding)
    p = np.pad(img, 1, mode="symmetric")
    c, left, right, up, down = p[1:-1, 1:-1], p[1:-1, :-2], p[1:-1, 2:], p[:-2, 1:-1], p[2:, 1:-1]
    axes = np.abs(2 * c - left - right) + np.abs(2 * c - up - down)
    diag = np.abs(2 * c - p[:-2, :-2] - p[2:, 2:]) + np.abs(2 * c - p[:-2, 2:] - p[2:, :-2])
    ref_sml = ndimage.uniform_filter(axes, w)
    ref_lapd = ndimage.uniform_filter(axes + diag / np.sqrt(2), w)
    stack = np.stack([img, np.zeros_like(img), img])  # a blank plane between two textured ones
    for name, ref in [("lapv", ref_lapv), ("tenengrad", ref_ten), ("glvar", ref_glvar), ("sml", ref_sml),
                      ("lapd", ref_lapd)]:
        vol = focus_volume(stack, name, w)
        np.testing.assert_allclose(vol[0], np.maximum(ref, 0), atol=1e-12)
        np.testing.assert_allclose(vol[2], vol[0], atol=1e-12)
        assert np.all(vol[1] == 0), name  # no filter reaches across planes


def test_colour_luminance_and_torch_numpy_agree():
    grey = np.stack([_texture(20, 24, seed=s) for s in (4, 5, 6)])
    rgb = np.repeat(grey[:, None], 3, axis=1)
    np.testing.assert_allclose(to_luminance(rgb), grey, atol=1e-12)
    a = focus_volume(rgb, "sml", 5)
    b = focus_volume(torch.from_numpy(rgb).float(), "sml", 5)
    c = focus_volume(grey[:, None], "sml", 5)
    np.testing.assert_allclose(a, c, atol=1e-12)
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)


def test_bad_inputs():
    stack = np.zeros((3, 8, 8))
    with pytest.raises(ValueError, match="measure"):
        focus_volume(stack, "brenner")
    with pytest.raises(ValueError, match="window"):
        focus_volume(stack, "lapv", 0)
    with pytest.raises(ValueError, match="stack"):
        focus_volume(np.zeros((3, 2, 8, 8)), "lapv")
    with pytest.raises(TypeError, match="stack"):
        focus_volume(stack.tolist(), "lapv")
    with pytest.raises(ValueError, match="monotonic"):
        sff(stack, [0.1, 0.3, 0.2])
    with pytest.raises(ValueError, match="N=3"):
        sff(stack, [0.1, 0.2])
    with pytest.raises(ValueError, match="NaN"):
        focus_volume(np.full((3, 8, 8), np.nan))


# --- SFF ----------------------------------------------------------------------

def _synthetic_stack(index_true: np.ndarray, n: int, seed: int = 7) -> np.ndarray:
    """Stack whose plane n is the texture blurred by |n - index_true| (per column)."""
    tex = _texture(*index_true.shape, seed=seed)
    levels = np.linspace(0, n - 1, 4 * (n - 1) + 1)
    blurred = np.stack([ndimage.gaussian_filter(tex, 0.01 + 0.9 * l) for l in levels])
    out = np.empty((n,) + tex.shape)
    for p in range(n):
        d = np.abs(p - index_true)
        j = np.clip(np.round(d * 4).astype(int), 0, len(levels) - 1)
        out[p] = np.take_along_axis(blurred, j[None], 0)[0]
    return out


def test_sff_maps_index_to_distance_and_orientation():
    n = 6
    index_true = np.tile(np.linspace(1.0, 4.0, 48), (24, 1))
    stack = _synthetic_stack(index_true, n)
    focus_m = np.array([0.3, 0.4, 0.6, 1.0, 2.0, 5.0])  # non-uniform in metres
    r = sff(stack, focus_m, "sml", 7)
    assert r.depth.shape == r.index.shape == r.confidence.shape == (24, 48)
    np.testing.assert_allclose(r.depth, np.interp(r.index, np.arange(n), focus_m))
    # decreasing disparities: same plane indices, depth in disparity
    disp = 1.0 / focus_m
    r2 = sff(stack, disp, "sml", 7)
    np.testing.assert_allclose(r2.index, r.index)
    np.testing.assert_allclose(r2.depth, np.interp(r.index, np.arange(n), disp))
    assert np.array_equal(sff_depth(stack, focus_m, "sml", 7), r.depth)
    # the planes are recovered to well under a plane
    assert np.median(np.abs(r.index - index_true)[:, 6:-6]) < 0.3


def test_confidence_is_low_without_texture():
    n = 5
    index_true = np.full((20, 40), 2.0)
    stack = _synthetic_stack(index_true, n)
    stack[:, :, 20:] = 0.5  # texture-less right half
    r = sff(stack, np.linspace(0.5, 1.5, n), "lapv", 5)
    assert np.all(r.confidence >= 0) and np.all(r.confidence <= 1)
    assert np.all(r.confidence[:, 26:] == 0)
    assert np.median(r.confidence[:, :14]) > 0.2


def test_confidence_by_hand():
    """glvar scales with the square of the contrast: planes of contrast 0, 1 and sqrt(3) give the focus
    curve (0, 1, 3) v at every pixel, so peak / mean = 3 / (4/3) and confidence = (2.25 - 1) / 2."""
    tex = _texture(20, 24, seed=8)
    stack = np.stack([0 * tex, tex, np.sqrt(3.0) * tex])
    r = sff(stack, [0.5, 1.0, 2.0], "glvar", 5)
    np.testing.assert_allclose(r.confidence, 0.625, atol=1e-9)
    np.testing.assert_allclose(r.depth, 2.0)  # the last plane: no fit at the end
    two = sff(stack[1:], [1.0, 2.0], "glvar", 5)  # curve (1, 3) v: peak / mean = 3 / 2
    np.testing.assert_allclose(two.confidence, 0.5, atol=1e-9)
    one = sff(tex[None], [1.5], "glvar", 5)  # one plane: its depth, no confidence
    assert np.array_equal(one.depth, np.full((20, 24), 1.5)) and np.array_equal(one.confidence, np.zeros((20, 24)))


def test_sff_on_rendered_slanted_plane_interpolation_beats_argmax():
    render = pytest.importorskip("dflib.render")
    optics = pytest.importorskip("dflib.optics")
    from dflib.metrics import depth_metrics

    h, w = 64, 96
    rng = np.random.default_rng(0)
    tex = ndimage.gaussian_filter(rng.random((h, w, 3)), (0.7, 0.7, 0))
    tex = ((tex - tex.min()) / (tex.max() - tex.min())).astype(np.float32)
    # slanted plane: inverse depth linear across x, 0.5 m (left) to 1.0 m (right)
    depth = (1.0 / np.tile(np.linspace(1 / 0.5, 1 / 1.0, w), (h, 1))).astype(np.float32)
    cam = optics.ThinLens(0.025, 4.0, 1e-5)
    focus = optics.focus_uniform_diopters(0.5, 1.0, 8)
    stack = render.render_focal_stack(tex, depth, cam, focus, noise=True, seed=0, device="cpu")
    crop = (slice(8, -8), slice(8, -8))
    rmse = {}
    for interp in ("none", "parabolic", "gaussian"):
        d = sff_depth(stack.images, stack.focus_m, "lapv", 9, interpolation=interp)
        rmse[interp] = depth_metrics(d[crop], depth[crop])["rmse"]
    # argmax is bounded below by the plane quantisation; the fits are not
    assert rmse["parabolic"] < 0.7 * rmse["none"]
    assert rmse["gaussian"] < 0.5 * rmse["none"]
    assert rmse["gaussian"] < rmse["parabolic"]
