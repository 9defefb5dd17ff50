"""Thin-lens optics: hand-worked CoC, invariants, helpers and input checks."""

import numpy as np
import pytest
import torch

from dflib.optics import (
    FOD500_CAMERA,
    FOD500_DEPTH_MAX_M,
    FOD500_FOCUS_M,
    NYU_CAMERA,
    ThinLens,
    depth_to_disparity,
    disc_psf,
    disparity_to_depth,
    focus_uniform_diopters,
    gaussian_psf,
    psf_kernels,
    psf_radius,
)

CAM = ThinLens(focal_length_m=0.05, f_number=2.0, pixel_pitch_m=10e-6)


def test_coc_hand_worked_case():
    # A = 50 mm / 2 = 25 mm; S1 = 2 m, S2 = 4 m:
    # c = 0.025 * 0.05 * |4 - 2| / (4 * (2 - 0.05)) = 0.0025 / 7.8 = 3.2051e-4 m = 32.051 px
    assert CAM.aperture_m == pytest.approx(0.025)
    assert float(CAM.coc_m(4.0, 2.0)) == pytest.approx(0.0025 / 7.8, rel=1e-12)
    assert float(CAM.coc_px(4.0, 2.0)) == pytest.approx(32.05128205, rel=1e-8)
    # a near object: S2 = 1 m -> 0.025*0.05*1/(1*1.95) m
    assert float(CAM.coc_px(1.0, 2.0)) == pytest.approx(0.025 * 0.05 / 1.95 / 10e-6, rel=1e-12)


def test_coc_zero_at_focus_distance():
    focus = np.array([0.3, 1.0, 2.5, 7.0])
    np.testing.assert_allclose(CAM.coc_px(focus, focus), 0.0, atol=1e-12)


def test_coc_linear_in_inverse_depth():
    focus = 1.5
    q = np.linspace(1 / 1.5 + 0.01, 5.0, 50)  # all nearer than focus
    c = CAM.coc_px(1 / q, focus)
    np.testing.assert_allclose(np.diff(c, 2), 0.0, atol=1e-9 * c.max())
    slope = CAM.coc_per_diopter_px(focus)
    np.testing.assert_allclose(c, slope * np.abs(q - 1 / focus), rtol=1e-12)
    # equal dioptric distance either side of focus: equal blur
    qf = 1 / focus
    np.testing.assert_allclose(CAM.coc_px(1 / (qf + 0.3), focus), CAM.coc_px(1 / (qf - 0.3), focus), rtol=1e-12)


def test_coc_broadcasts_and_keeps_type():
    depth = np.linspace(0.5, 5.0, 7)
    focus = np.array([1.0, 2.0, 3.0])[:, None]
    c = CAM.coc_px(depth, focus)
    assert isinstance(c, np.ndarray) and c.shape == (3, 7)
    ct = CAM.coc_px(torch.tensor(depth, dtype=torch.float64), torch.tensor(focus))
    assert isinstance(ct, torch.Tensor) and ct.shape == (3, 7) and ct.dtype == torch.float64
    np.testing.assert_allclose(ct.numpy(), c, rtol=1e-12)
    mixed = CAM.coc_px(torch.tensor(depth, dtype=torch.float32), 2.0)
    assert isinstance(mixed, torch.Tensor) and mixed.dtype == torch.float32
    np.testing.assert_allclose(mixed.numpy(), c[1], rtol=1e-5)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(focal_length_m=0.0, f_number=2, pixel_pitch_m=1e-5), "focal_length_m"),
        (dict(focal_length_m=0.05, f_number=-1, pixel_pitch_m=1e-5), "f_number"),
        (dict(focal_length_m=0.05, f_number=2, pixel_pitch_m=0.0), "pixel_pitch_m"),
    ],
)
def test_bad_camera_raises(kwargs, name):
    with pytest.raises(ValueError, match=name):
        ThinLens(**kwargs)


def test_camera_rejects_a_bool():
    with pytest.raises(TypeError, match="focal_length_m must be a real number"):
        ThinLens(True, 2.0, 1e-5)


def test_bad_depth_and_focus_raise():
    with pytest.raises(ValueError, match="focus_m"):
        CAM.coc_px(1.0, 0.05)  # focus equal to focal length
    with pytest.raises(ValueError, match="focus_m"):
        CAM.coc_px(1.0, np.array([1.0, 0.01]))
    with pytest.raises(ValueError, match="depth_m.*-0.5"):
        CAM.coc_px(np.array([1.0, -0.5]), 2.0)
    with pytest.raises(ValueError, match="depth_m"):
        CAM.coc_px(torch.tensor([-1.0]), 2.0)


def test_focus_uniform_in_diopters():
    f = focus_uniform_diopters(0.5, 10.0, 10)
    assert f[0] == pytest.approx(0.5) and f[-1] == pytest.approx(10.0)
    assert np.all(np.diff(f) > 0)
    np.testing.assert_allclose(np.diff(1 / f), np.diff(1 / f)[0], rtol=1e-10)
    # equal CoC steps between consecutive planes for an object at infinity-ish
    fi = focus_uniform_diopters(1.0, np.inf, 3)
    np.testing.assert_allclose(1 / fi, [1.0, 0.5, 0.0])
    # one plane: the dioptric midpoint, (2 + 0.5) / 2 = 1.25 D = 0.8 m
    assert focus_uniform_diopters(0.5, 2.0, 1).tolist() == pytest.approx([0.8])
    with pytest.raises(ValueError, match="far_m"):
        focus_uniform_diopters(2.0, 1.0, 3)
    with pytest.raises(ValueError, match="far_m"):
        focus_uniform_diopters(1.0, 1.0, 3)
    for near in (0.0, np.inf):
        with pytest.raises(ValueError, match="near_m"):
            focus_uniform_diopters(near, 2.0, 3)
    for n in (0, True, 2.0):
        with pytest.raises(ValueError, match="n must be a positive integer"):
            focus_uniform_diopters(1.0, 2.0, n)


def test_depth_disparity_round_trip_and_holes():
    d = np.array([0.5, 1.0, 4.0, 0.0, np.nan, np.inf])
    disp = depth_to_disparity(d, 100.0)
    np.testing.assert_allclose(disp, [200.0, 100.0, 25.0, 0.0, 0.0, 0.0])
    np.testing.assert_allclose(disparity_to_depth(disp, 100.0), [0.5, 1.0, 4.0, 0.0, 0.0, 0.0])
    t = depth_to_disparity(torch.tensor([2.0, 0.5, 0.0]), 10.0)
    assert isinstance(t, torch.Tensor) and t.tolist() == [5.0, 20.0, 0.0]
    np.testing.assert_allclose(depth_to_disparity(np.array([0.25]), 0.5), [2.0])  # any positive b·f
    with pytest.raises(ValueError, match="baseline_focal"):
        depth_to_disparity(d, 0.0)


def test_presets():
    assert FOD500_CAMERA.focal_length_m == 2.9e-3 and FOD500_CAMERA.f_number == 1.0
    assert FOD500_FOCUS_M == (0.1, 0.15, 0.3, 0.7, 1.5) and FOD500_DEPTH_MAX_M == 3.0  # scenes 0.1-3 m
    assert (NYU_CAMERA.focal_length_m, NYU_CAMERA.f_number, NYU_CAMERA.pixel_pitch_m) == (0.05, 8.0, 12e-6)
    # FoD500 at 256 px: blur of a few pixels, not zero and not huge, over 0.1-3 m
    c = FOD500_CAMERA.coc_px(np.array([0.1, 3.0])[:, None], np.array(FOD500_FOCUS_M)[None])
    assert 5.0 < c.max() < 10.0
    with pytest.raises(Exception):
        FOD500_CAMERA.f_number = 2.0  # frozen


def _axis_variance(k: np.ndarray) -> float:
    """Per-axis second moment (px²) of a centred ``[2R+1, 2R+1]`` kernel."""
    ax = np.arange(k.shape[-1]) - k.shape[-1] // 2
    return float((k.sum(0) * ax**2).sum())


def test_disc_psf_is_a_flat_disc_of_the_coc():
    d = 10.0
    k = disc_psf(d).numpy()
    r = d / 2
    assert k.shape == (2 * psf_radius("disc", d) + 1,) * 2 == (13, 13)
    assert psf_radius("disc", 5.0) == 3 and disc_psf(5.0).shape == (7, 7)  # the rim ends at r + 0.5 = 3
    assert k.sum() == pytest.approx(1.0, abs=1e-6) and np.allclose(k, k.T) and np.allclose(k, k[::-1])
    ax = np.arange(13) - 6
    dist = np.hypot(ax[:, None], ax[None, :])
    inside, outside = dist <= r - 0.5, dist >= r + 0.5
    assert np.ptp(k[inside]) == 0 and k[outside].max() == 0  # flat top, nothing past the rim
    assert 1.0 / k.max() == pytest.approx(np.pi * r**2, rel=0.02)  # its area: π r²
    assert _axis_variance(k) == pytest.approx(r**2 / 4, rel=0.05)  # a disc's per-axis variance


def test_gaussian_psf_matches_the_disc_second_moment():
    d = 8.0  # σ = d / 4 = 2 px
    k = gaussian_psf(d).numpy()
    assert k.shape == (2 * psf_radius("gaussian", d) + 1,) * 2 == (13, 13)  # R = ceil(3σ) = 6
    assert k.sum() == pytest.approx(1.0, abs=1e-6) and np.allclose(k, k.T)
    assert _axis_variance(k) == pytest.approx(_axis_variance(disc_psf(d).numpy()), rel=0.05)
    assert _axis_variance(k) == pytest.approx(4.0, rel=0.03)  # truncated at 3σ: a little under σ²
    assert k.max() == pytest.approx(1 / (2 * np.pi * 4.0), rel=0.02)
    # below σ = 0.2 px a delta; at 0.2 px already a spread kernel
    assert gaussian_psf(0.79).numpy()[psf_radius("gaussian", 0.79)].tolist() == [0.0, 1.0, 0.0]
    assert gaussian_psf(0.8).numpy().max() < 1.0
    batch = psf_kernels("gaussian", torch.tensor([0.0, 8.0]))
    np.testing.assert_allclose(batch[1].numpy(), k, atol=1e-7)
    with pytest.raises(ValueError, match="psf must be"):
        psf_kernels("airy", torch.tensor([1.0]))
