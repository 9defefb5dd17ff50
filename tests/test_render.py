"""Layered focal-stack renderer: physics of blur, occlusion, noise and holes."""

import numpy as np
import pytest
import scipy.ndimage as ndi
import scipy.optimize
import skimage.data
import torch

from dflib.optics import ThinLens
from dflib.render import (
    NoiseConfig,
    add_sensor_noise,
    disc_psf,
    linear_to_srgb,
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


def test_constant_depth_blur_is_normalised_disc_convolution():
    rgb = _texture(48, 64)
    c = float(CAM.coc_px(1.0, 1.08))
    st = render_focal_stack(rgb, np.ones((48, 64)), CAM, [1.08], noise=False)
    lin = _lin(torch.from_numpy(rgb).permute(2, 0, 1).float() / 255)
    k = disc_psf(c).numpy()
    norm = ndi.convolve(np.ones((48, 64)), k, mode="constant")
    ref = np.stack([ndi.convolve(ch, k, mode="constant") for ch in lin]) / norm
    np.testing.assert_allclose(_lin(st.images[0]), ref, atol=2e-5)


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
    with pytest.raises(ValueError, match="depth"):
        render_focal_stack(rgb, -d, CAM, [1.0])
    with pytest.raises(ValueError, match="depth"):
        render_focal_stack(rgb, np.ones((8, 9)), CAM, [1.0])
    with pytest.raises(ValueError, match="focus_m"):
        render_focal_stack(rgb, d, CAM, [0.01])
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
