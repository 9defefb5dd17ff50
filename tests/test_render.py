"""Layered focal-stack renderer: physics of blur, occlusion, noise and holes."""

import warnings
from dataclasses import FrozenInstanceError, replace

import numpy as np
import pytest
import scipy.ndimage as ndi
import scipy.optimize
import skimage.data
import torch

from dflib.optics import ThinLens
from dflib.render import (
    NoiseConfig,
    _level,
    add_sensor_noise,
    auto_num_layers,
    fill_depth_holes,
    linear_to_srgb,
    psf_kernels,
    psf_radius,
    render_focal_stack,
    render_focal_stack_naive,
    srgb_to_linear,
)

CAM = ThinLens(0.05, 2.0, 12e-6)  # CoC slope ~ 109 px per dioptre near 1 m
OCC_CAM = ThinLens(0.025, 4.0, 12e-6)
SMALL_CAM = ThinLens(0.01, 2.8, 12e-6)  # ~3 px per dioptre


def _lin(x: torch.Tensor) -> np.ndarray:
    return srgb_to_linear(x).numpy()


def _texture(h: int, w: int) -> np.ndarray:
    return skimage.data.astronaut()[100 : 100 + h, 150 : 150 + w]


def test_srgb_round_trip():
    x = torch.linspace(0, 1, 1001)
    torch.testing.assert_close(linear_to_srgb(srgb_to_linear(x)), x, atol=2e-6, rtol=0)
    assert float(srgb_to_linear(torch.tensor(0.5))) == pytest.approx(0.21404, abs=1e-5)


def test_plane_in_focus_equals_aif():
    rgb = _texture(64, 80)
    st = render_focal_stack(rgb, np.full((64, 80), 0.8), CAM, [0.8, 2.0], noise=False)
    torch.testing.assert_close(st.images[0], st.aif, atol=2e-6, rtol=0)
    torch.testing.assert_close(st.aif, torch.from_numpy(rgb).permute(2, 0, 1).float() / 255)
    assert (st.images[1] - st.aif).abs().mean() > 0.02  # out of focus: blurred


@pytest.mark.parametrize("shape, focus, psf", [((48, 64), 1.08, "disc"), ((37, 50), 1.2, "disc"),
                                              ((61, 29), 1.5, "disc"), ((30, 34), 1.014, "disc"),
                                              ((30, 34), 1.01, "gaussian"), ((37, 50), 1.2, "gaussian")])
def test_constant_depth_blur_is_normalised_psf_convolution(shape, focus, psf):
    """The FFT blur is the direct linear convolution for any size and CoC (8, 18, 36 px; 1.5 px, just
    above the disc's delta; 1.1 px, a Gaussian of σ 0.27 px, just above its delta): no wrap-around."""
    h, w = shape
    rgb = _texture(h, w)
    c = float(CAM.coc_px(1.0, focus))
    st = render_focal_stack(rgb, np.ones((h, w)), CAM, [focus], noise=False, psf=psf)
    lin = _lin(torch.from_numpy(rgb).permute(2, 0, 1).float() / 255)
    k = psf_kernels(psf, torch.tensor([c]), psf_radius(psf, c))[0].numpy()
    assert k.max() < 0.999  # not a delta: the layer is blurred
    norm = ndi.convolve(np.ones((h, w)), k, mode="constant")
    ref = np.stack([ndi.convolve(ch, k, mode="constant") for ch in lin]) / norm
    np.testing.assert_allclose(_lin(st.images[0]), ref, atol=2e-5)


def test_level_is_the_largest_power_of_two_keeping_the_coc_above_the_minimum():
    # (CoC px, min CoC px, max_downsample) -> s, with c / s >= min while s > 1
    cases = {(40.0, 8.0, 1): 1, (15.9, 8.0, 4): 1, (16.0, 8.0, 4): 2, (40.0, 8.0, 4): 4, (200.0, 8.0, 4): 4,
             (200.0, 8.0, 16): 16, (100.0, 8.0, 16): 8, (200.0, 8.0, 6): 4, (12.0, 3.0, 64): 4, (40.0, 8.0, 2): 2}
    for (c, lo, top), s in cases.items():
        assert _level(c, lo, top) == s, (c, lo, top)


@pytest.mark.parametrize("shape", [(64, 80), (61, 77)])
def test_downsampled_blur_is_close_to_full_resolution(shape):
    """``max_downsample`` blurs big CoCs at 1/s scale (18 and 36 px here: s = 2 and 4) within the documented
    error, also when s does not divide the size, and leaves small ones (2 px) at full resolution."""
    rgb = _texture(*shape)
    focus = [1.02, 1.2, 1.5]
    assert [_level(float(CAM.coc_px(1.0, f)), 8.0, 4) for f in focus] == [1, 2, 4]
    full = render_focal_stack(rgb, np.ones(shape), CAM, focus, noise=False).images
    down = render_focal_stack(rgb, np.ones(shape), CAM, focus, noise=False, max_downsample=4).images
    assert down.shape == full.shape
    torch.testing.assert_close(down[0], full[0], atol=1e-5, rtol=0)
    err = (down[1:] - full[1:]).abs() * 255
    assert float(err.mean()) < 1.0 and float(err.max()) < 20.0
    assert float(err.amax(dim=(1, 2, 3)).min()) > 0.1  # they were blurred at reduced scale


def test_one_layer_renders_the_whole_scene_at_the_mean_inverse_depth():
    rgb = _texture(40, 48)
    depth = np.linspace(0.5, 2.0, 40 * 48).reshape(40, 48)
    one = render_focal_stack(rgb, depth, CAM, [0.7, 1.5], noise=False, layers=1)
    z_mid = 2.0 / (1 / 0.5 + 1 / 2.0)
    assert one.n_layers == 1 and float(one.layer_depth_m[0]) == pytest.approx(z_mid, rel=1e-6)
    flat = render_focal_stack(rgb, np.full((40, 48), z_mid), CAM, [0.7, 1.5], noise=False)
    torch.testing.assert_close(one.images, flat.images, atol=1e-6, rtol=0)


def test_flat_scene_is_one_layer_whatever_k_is_asked():
    rgb = _texture(32, 32)
    auto = render_focal_stack(rgb, np.full((32, 32), 1.2), CAM, [1.0], noise=False)
    four = render_focal_stack(rgb, np.full((32, 32), 1.2), CAM, [1.0], noise=False, layers=4)
    assert auto.n_layers == four.n_layers == 1
    assert torch.isfinite(four.images).all()
    torch.testing.assert_close(four.images, auto.images, atol=0, rtol=0)


def test_each_depth_is_sharp_in_its_own_focus_plane():
    """Three bands at 0.6, 0.9 and 1.5 m, each focused in turn: the focused band's interior (beyond its
    neighbours' blur) is the all-in-focus image, so every pixel went to the layer of its own depth."""
    rgb = _texture(40, 96)
    depth = np.repeat([0.6, 0.9, 1.5], 32)[None].repeat(40, axis=0)
    def interior(j: int) -> slice:  # 14 px from the next band; the neighbours' CoC here: < 14 px
        return slice(32 * j + 14, 32 * j + 18)

    st = render_focal_stack(rgb, depth, OCC_CAM, [0.6, 0.9, 1.5], noise=False)
    assert st.n_layers > 3  # the bands fall on automatic layers, not on a layer of their own
    for i in range(3):
        band, other = interior(i), interior((i + 1) % 3)
        torch.testing.assert_close(st.images[i, :, :, band], st.aif[:, :, band], atol=2e-3, rtol=0)
        assert float((st.images[i, :, :, other] - st.aif[:, :, other]).abs().mean()) > 0.01
    # three layers at 1/q = 1.5, 0.857 and 0.6 m: each band goes to the layer nearest in inverse depth
    three = render_focal_stack(rgb, depth, OCC_CAM, [1.5, 1 / (7 / 6), 0.6], noise=False, layers=3)
    np.testing.assert_allclose(three.layer_depth_m.numpy(), [1.5, 6 / 7, 0.6], rtol=1e-6)
    for i in range(3):
        band = interior(2 - i)  # far band first
        torch.testing.assert_close(three.images[i, :, :, band], three.aif[:, :, band], atol=2e-3, rtol=0)


def test_one_pixel_object_is_rendered():
    """A layer that holds a single pixel is composited like any other."""
    rgb = np.full((21, 21, 3), 0.1, np.float32)
    rgb[10, 10] = 1.0
    depth = np.full((21, 21), 2.0)
    depth[10, 10] = 0.5
    st = render_focal_stack(rgb, depth, CAM, [0.5], noise=False)
    torch.testing.assert_close(st.images[0, :, 10, 10], torch.ones(3), atol=1e-5, rtol=0)


def test_shallow_scene_still_gets_its_automatic_layers():
    """1.0-1.5 m spans only 1/3 dioptre, yet at ~110 px of CoC per dioptre it needs tens of layers."""
    depth = np.linspace(1.0, 1.5, 24 * 24).reshape(24, 24)
    focus = [1.0, 1.5]
    st = render_focal_stack(np.zeros((24, 24, 3), np.uint8), depth, CAM, focus, noise=False)
    k = auto_num_layers(1 / 1.5, 1.0, CAM.coc_per_diopter_px(np.array(focus)))
    assert k > 20 and st.n_layers == k


def test_auto_num_layers_by_hand():
    # 1 dioptre at 3 px per dioptre: 3 px of CoC -> 3 steps of 1 px -> 4 layers (not 5: ceil is exact)
    assert auto_num_layers(0.5, 1.5, [1.0, 3.0]) == 4
    assert auto_num_layers(0.5, 1.5, [2.5]) == 4  # 2.5 px -> 3 steps
    assert auto_num_layers(0.5, 1.5, [3.0], max_step_px=0.5) == 7
    assert auto_num_layers(1.0, 1.0, [3.0]) == 1


def test_max_layers_caps_the_automatic_count_with_a_warning():
    depth = np.linspace(0.3, 3.0, 40 * 40).reshape(40, 40)
    rgb = np.zeros((40, 40, 3), np.uint8)
    k = render_focal_stack(rgb, depth, SMALL_CAM, [0.4, 2.5], noise=False).n_layers
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # at the cap: no warning
        assert render_focal_stack(rgb, depth, SMALL_CAM, [0.4, 2.5], noise=False, max_layers=k).n_layers == k
    with pytest.warns(UserWarning, match=f"auto layer count {k} exceeds max_layers={k - 1}"):
        capped = render_focal_stack(rgb, depth, SMALL_CAM, [0.4, 2.5], noise=False, max_layers=k - 1)
    assert capped.n_layers == k - 1


def _disc_edge_width(diameter: float, lo: float = 0.1, hi: float = 0.9) -> float:
    """10-90 % width of a straight edge blurred by a uniform disc (analytic)."""
    r = diameter / 2

    def frac(u):  # fraction of the disc area at x < u
        return 0.5 + (u * np.sqrt(r * r - u * u) + r * r * np.arcsin(u / r)) / (np.pi * r * r)

    return scipy.optimize.brentq(lambda u: frac(u) - hi, -r, r) - scipy.optimize.brentq(lambda u: frac(u) - lo, -r, r)


@pytest.mark.parametrize("focus", [1.08, 1.2])
def test_step_edge_width_matches_coc(focus):
    H, W = 32, 128
    rgb = np.zeros((H, W, 3), np.float32)
    rgb[:, W // 2 :] = 1.0
    c = float(CAM.coc_px(1.0, focus))
    st = render_focal_stack(rgb, np.ones((H, W)), CAM, [focus], noise=False)
    prof = _lin(st.images[0, 0, H // 2])  # linear light, 0 -> 1 across the edge
    x = np.arange(W, dtype=float)
    x10, x90 = np.interp(0.1, prof, x), np.interp(0.9, prof, x)
    assert x90 - x10 == pytest.approx(_disc_edge_width(c), abs=0.6)
    support = np.count_nonzero((prof > 1e-3) & (prof < 1 - 1e-3))
    assert support == pytest.approx(c, abs=2.0)
    assert np.interp(0.5, prof, x) == pytest.approx(W / 2 - 0.5, abs=0.3)  # edge stays put


def test_blur_preserves_mean_brightness():
    H, W = 96, 96
    rgb = np.full((H, W, 3), 0.3, np.float32)
    rgb[40:56, 36:60] = np.array([1.0, 0.8, 0.5], np.float32)  # bright patch, its blur stays far from the border
    for psf in ("disc", "gaussian"):
        st = render_focal_stack(rgb, np.full((H, W), 0.7), CAM, [0.72, 0.75, 0.8], noise=False, psf=psf)
        assert 15 < float(CAM.coc_px(0.7, 0.8)) < 20
        lin_in = _lin(st.aif).sum(axis=(1, 2))
        for img in st.images:
            np.testing.assert_allclose(_lin(img).sum(axis=(1, 2)), lin_in, rtol=1e-5)


def _occlusion_scene(H=96, W=96):
    rng = np.random.default_rng(0)
    rgb = rng.uniform(0.75, 1.0, (H, W, 3)).astype(np.float32)  # bright background
    depth = np.full((H, W), 3.0)
    rgb[32:64, 32:64] = rng.uniform(0.05, 0.25, (32, 32, 3))  # dark foreground square
    depth[32:64, 32:64] = 0.5
    return rgb, depth


def test_occlusion_sharp_foreground_is_not_touched_by_background():
    rgb, depth = _occlusion_scene()
    assert float(OCC_CAM.coc_px(3.0, 0.5)) > 20  # background strongly blurred
    st = render_focal_stack(rgb, depth, OCC_CAM, [0.5], noise=False)
    fg = st.images[0, :, 32:64, 32:64]
    torch.testing.assert_close(fg, st.aif[:, 32:64, 32:64], atol=2e-6, rtol=0)  # every pixel, edges too
    # the blurred background next to the square stays bright (no dark halo) ...
    ring = st.images[0, :, 28:31, 32:64]
    assert float(ring.min()) > 0.85
    # ... whereas the naive gather bleeds the sharp dark square into it
    naive = render_focal_stack_naive(rgb, depth, OCC_CAM, [0.5], noise=False)
    assert float(naive.images[0, :, 28:31, 32:64].mean()) < float(ring.mean()) - 0.05


def test_occlusion_blurred_foreground_spills_over_sharp_background():
    rgb, depth = _occlusion_scene()
    c_fg = float(OCC_CAM.coc_px(0.5, 3.0))
    st = render_focal_stack(rgb, depth, OCC_CAM, [3.0], noise=False)
    img, aif = _lin(st.images[0]), _lin(st.aif)
    # just outside the square's top edge the dark foreground spills over the background
    assert (aif[:, 30, 40:56] - img[:, 30, 40:56]).mean() > 0.25 * (aif[:, 30].mean() - aif[:, 48, 48].mean())
    # beyond the foreground's blur radius the in-focus background is untouched
    far = int(np.ceil(c_fg / 2)) + 2
    np.testing.assert_allclose(img[:, : 32 - far], aif[:, : 32 - far], atol=1e-5)
    # the naive gather does not spill: background pixels keep their own (sharp) colour
    naive = render_focal_stack_naive(rgb, depth, OCC_CAM, [3.0], noise=False)
    np.testing.assert_allclose(_lin(naive.images[0])[:, 30, 40:56], aif[:, 30, 40:56], atol=1e-5)


def test_auto_layers_are_within_one_pixel_of_coc():
    H, W = 40, 40
    depth = np.linspace(0.3, 3.0, H * W).reshape(H, W)
    focus = [0.4, 1.0, 2.5]
    st = render_focal_stack(np.zeros((H, W, 3), np.uint8), depth, SMALL_CAM, focus, noise=False)
    q = 1 / st.layer_depth_m.double().numpy()
    c = SMALL_CAM.coc_per_diopter_px(np.array(focus))[:, None] * np.abs(q[None] - 1 / np.array(focus)[:, None])
    step = np.abs(np.diff(c, axis=1)).max()
    assert 0.8 < step <= 1.0 + 1e-6  # <= 1 px, and K is not needlessly large
    assert q[0] == pytest.approx(1 / 3.0) and q[-1] == pytest.approx(1 / 0.3)


def test_holes_are_filled_and_never_nan():
    rgb = _texture(48, 48)
    depth = np.full((48, 48), 1.5)
    depth[:, :24] = 0.8
    depth[10:20, 20:30] = np.nan
    depth[30:35, 5:10] = 0.0
    depth[0, 47] = np.inf
    st = render_focal_stack(rgb, depth, CAM, [0.8, 1.5])
    assert torch.isfinite(st.images).all() and torch.isfinite(st.depth).all()
    mask = st.mask.numpy()
    assert not mask[10:20, 20:30].any() and not mask[30:35, 5:10].any() and not mask[0, 47]
    assert mask.sum() == 48 * 48 - 100 - 25 - 1
    d = st.depth.numpy()
    np.testing.assert_allclose(d[15, 21], 0.8, rtol=1e-6)  # nearest valid is the left plane
    np.testing.assert_allclose(d[15, 29], 1.5, rtol=1e-6)
    np.testing.assert_allclose(d[0, 47], 1.5, rtol=1e-6)


def test_holes_take_the_depth_of_the_nearest_valid_pixel():
    depth = np.linspace(1.0, 2.0, 12)[:, None].repeat(16, axis=1)  # depth changes down the rows only
    want = depth.copy()
    want[3], want[4] = depth[2], depth[5]
    depth[3:5] = 0.0  # two rows of holes: the upper takes the row above, the lower the row below
    filled, valid = fill_depth_holes(depth)
    np.testing.assert_array_equal(filled, want)
    assert valid.sum() == 12 * 16 - 32 and not valid[3:5].any()
    filled3, _ = fill_depth_holes(torch.from_numpy(depth)[None])  # [1, H, W] as well
    np.testing.assert_array_equal(filled3, want)


def test_noise_is_seeded_and_has_the_configured_variance():
    rgb = np.full((64, 64, 3), 0.5, np.float32)
    depth = np.ones((64, 64))
    a = render_focal_stack(rgb, depth, CAM, [1.0], seed=3)
    b = render_focal_stack(rgb, depth, CAM, [1.0], seed=3)
    c = render_focal_stack(rgb, depth, CAM, [1.0], seed=4)
    assert torch.equal(a.images, b.images)
    assert not torch.equal(a.images, c.images)
    cfg = NoiseConfig()
    x = float(linear_to_srgb(srgb_to_linear(torch.tensor(0.5))))
    expected = np.sqrt(cfg.poisson_scale * x + cfg.gaussian_std**2)
    assert float(a.images.std()) == pytest.approx(expected, rel=0.1)
    assert torch.equal(torch.round(a.images * 255), a.images * 255)  # 8-bit levels
    quiet = render_focal_stack(rgb, depth, CAM, [1.0], noise=False)
    assert float(quiet.images.std()) < 1e-6


@pytest.mark.parametrize("shot", ["gaussian", "poisson"])
def test_sensor_noise_has_the_configured_mean_and_variance(shot):
    x = torch.full((400, 400), 0.3)
    cfg = NoiseConfig(shot=shot, bits=0)
    y = add_sensor_noise(x, cfg, generator=1)
    assert float(y.mean()) == pytest.approx(0.3, abs=3e-4)
    assert float(y.var()) == pytest.approx(cfg.poisson_scale * 0.3 + cfg.gaussian_std**2, rel=0.02)


def test_default_noise_is_about_4_levels_at_mid_grey():
    # the documented defaults: a = 5e-4, b = 2e-3, so std = sqrt(a x + b^2) is 0.0159 (~4/255) at x = 0.5
    # and 0.0054 at x = 0.05 (where read noise is a seventh of the variance)
    cfg = replace(NoiseConfig(), bits=0)
    for x, std in ((0.5, 0.01594), (0.05, 0.00539)):
        y = add_sensor_noise(torch.full((500, 500), x), cfg, generator=2)
        assert float(y.std()) == pytest.approx(std, rel=0.01)


@pytest.mark.parametrize("shot", ["gaussian", "poisson"])
def test_each_noise_term_alone(shot):
    x = torch.full((400, 400), 0.3)
    shot_only = add_sensor_noise(x, NoiseConfig(gaussian_std=0.0, bits=0, shot=shot), generator=1)
    assert float(shot_only.var()) == pytest.approx(5e-4 * 0.3, rel=0.02)
    read_only = add_sensor_noise(x, NoiseConfig(poisson_scale=0.0, gaussian_std=0.01, bits=0, shot=shot), generator=1)
    assert float(read_only.var()) == pytest.approx(1e-4, rel=0.02)  # a = 0 turns shot noise off, no x / 0
    clean = add_sensor_noise(x, NoiseConfig(poisson_scale=0.0, gaussian_std=0.0, bits=0, shot=shot))
    assert torch.equal(clean, x)


def test_noisy_values_are_clamped_and_quantised():
    x = torch.tensor([0.0, 1.0, 1.5, -0.5]).repeat(1000)  # out-of-range input is clamped first
    y = add_sensor_noise(x, NoiseConfig(poisson_scale=0.0, gaussian_std=0.1, bits=0), generator=0)
    assert float(y.min()) == 0.0 and float(y.max()) == 1.0
    assert 0.4 < float((y[0::4] > 0).float().mean()) < 0.6  # half the noise at 0 is cut off
    assert 0.4 < float((y[2::4] < 1).float().mean()) < 0.6 and 0.4 < float((y[3::4] > 0).float().mean()) < 0.6
    one_bit = add_sensor_noise(torch.linspace(0, 1, 101), NoiseConfig(gaussian_std=0.0, poisson_scale=0.0, bits=1))
    assert set(one_bit.tolist()) == {0.0, 1.0}
    four = add_sensor_noise(torch.linspace(0, 1, 101), NoiseConfig(gaussian_std=0.0, poisson_scale=0.0, bits=4))
    assert torch.equal(four * 15, torch.round(torch.linspace(0, 1, 101) * 15)) and len(set(four.tolist())) == 16
    assert float(linear_to_srgb(torch.tensor(1.5))) == pytest.approx(1.0, abs=1e-6)
    assert float(linear_to_srgb(torch.tensor(-0.5))) == 0.0


def test_noise_config_checks_its_fields():
    for ok in ({"poisson_scale": 0.0}, {"gaussian_std": 0.0}, {"bits": 0}, {"bits": 16}):
        NoiseConfig(**ok)
    for bad in ({"poisson_scale": -1e-4}, {"poisson_scale": float("nan")}, {"gaussian_std": -0.01},
                {"bits": 17}, {"bits": -1}, {"bits": 2.5}, {"shot": "exact"}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            NoiseConfig(**bad)
    with pytest.raises(FrozenInstanceError):
        NoiseConfig().bits = 12  # type: ignore[misc]


def test_noise_field_depends_on_the_seed_not_on_the_clean_image():
    """One normal draw per pixel: a clean image changed in one row keeps the noise of every other pixel
    (the exact Poisson draw samples by rejection and can re-draw the pixels after a changed dark one)."""
    x = 0.9 * torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0)) ** 3  # dark pixels too
    x2 = x.clone()
    x2[0, 0, 3] += 0.001
    cfg = NoiseConfig(bits=0)
    n, n2 = add_sensor_noise(x, cfg, 5) - x, add_sensor_noise(x2, cfg, 5) - x2
    others = torch.ones_like(x, dtype=torch.bool)
    others[0, 0, 3] = False
    assert torch.equal(n[others], n2[others])
    assert float(n[others].std()) > 0.01  # there is noise to compare


def test_input_layouts_and_types_agree():
    rgb = _texture(32, 40)
    depth = np.linspace(0.5, 2.0, 32 * 40).reshape(32, 40)
    ref = render_focal_stack(rgb, depth, OCC_CAM, [0.7, 1.5], noise=False).images
    chw = torch.from_numpy(rgb).permute(2, 0, 1).float() / 255
    other = render_focal_stack(chw, torch.from_numpy(depth).float(), OCC_CAM, torch.tensor([0.7, 1.5]), noise=False)
    torch.testing.assert_close(other.images, ref, atol=1e-5, rtol=0)
    assert other.images.dtype == torch.float32 and other.images.shape == (2, 3, 32, 40)


def test_bad_inputs_raise():
    rgb = np.zeros((8, 8, 3), np.uint8)
    d = np.ones((8, 8))
    with pytest.raises(ValueError, match="rgb"):
        render_focal_stack(np.zeros((8, 8, 4)), d, CAM, [1.0])
    with pytest.raises(ValueError, match="rgb"):
        render_focal_stack(np.full((8, 8, 3), 255.0), d, CAM, [1.0])
    for bad in (np.nan, -0.01, 1.01):
        x = np.full((8, 8, 3), 0.5)
        x[2, 3, 1] = bad
        with pytest.raises(ValueError, match=r"float rgb must lie in \[0, 1\]"):
            render_focal_stack(x, d, CAM, [1.0])
    with pytest.raises(TypeError, match="uint8 or floating point"):
        render_focal_stack(np.zeros((8, 8, 3), np.int32), d, CAM, [1.0])
    edge = render_focal_stack(np.full((8, 8, 3), 1 + 5e-7), d, CAM, [1.0], noise=False)  # rounding: clamped
    assert float(edge.aif.max()) == 1.0
    with pytest.raises(ValueError, match="depth"):
        render_focal_stack(rgb, -d, CAM, [1.0])
    with pytest.raises(ValueError, match="depth"):
        render_focal_stack(rgb, np.ones((8, 9)), CAM, [1.0])
    with pytest.raises(ValueError, match="focus_m"):
        render_focal_stack(rgb, d, CAM, [0.01])
    with pytest.raises(ValueError, match="focus_m must be a non-empty 1-D"):
        render_focal_stack(rgb, d, CAM, [[1.0, 2.0]])
    with pytest.raises(ValueError, match="focus_m must be a non-empty 1-D"):
        render_focal_stack(rgb, d, CAM, [])
    with pytest.raises(ValueError, match="psf"):
        render_focal_stack(rgb, d, CAM, [1.0], psf="box")
    with pytest.raises(TypeError, match="camera"):
        render_focal_stack(rgb, d, "camera", [1.0])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    rgb, depth = _occlusion_scene()
    a = render_focal_stack(rgb, depth, OCC_CAM, [0.5, 3.0], noise=False, device="cpu")
    b = render_focal_stack(rgb, depth, OCC_CAM, [0.5, 3.0], noise=False, device="cuda")
    torch.testing.assert_close(b.images.cpu(), a.images, atol=1e-4, rtol=0)
