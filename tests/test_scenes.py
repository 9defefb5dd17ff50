"""Embedded scenes and the on-the-fly synthetic dataset."""

import numpy as np
import pytest
import torch

from dflib.data import SyntheticFocalStackDataset
from dflib.scenes import (
    MIDDLEBURY_MOTORCYCLE_CALIB,
    RGBDScene,
    fronto_parallel_plane,
    middlebury_crop,
    middlebury_motorcycle,
    occluding_objects,
    random_scene,
    slanted_plane,
    smooth_blobs,
    step_edge,
    texture,
)


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4, 5])
def test_random_scene_is_deterministic_and_in_range(seed):
    a = random_scene(seed, size=(48, 64), depth_range=(0.2, 2.0))
    b = random_scene(seed, size=(48, 64), depth_range=(0.2, 2.0))
    assert np.array_equal(a.rgb, b.rgb) and np.array_equal(a.depth, b.depth)
    assert a.rgb.shape == (48, 64, 3) and a.rgb.dtype == np.float32 and a.depth.dtype == np.float32
    assert 0.0 <= a.rgb.min() and a.rgb.max() <= 1.0
    assert a.depth.min() >= 0.2 - 1e-6 and a.depth.max() <= 2.0 + 1e-6
    c = random_scene(seed + 100, size=(48, 64), depth_range=(0.2, 2.0))
    assert not np.array_equal(a.rgb, c.rgb)


def test_slanted_plane_is_linear_in_inverse_depth():
    s = slanted_plane(0.5, 2.0, size=(40, 50), seed=3)
    q = 1.0 / s.depth.astype(np.float64)
    assert q.min() == pytest.approx(0.5, rel=1e-5) and q.max() == pytest.approx(2.0, rel=1e-5)
    # a plane: inverse depth is affine in the pixel coordinates
    yy, xx = np.mgrid[0:40, 0:50]
    A = np.stack([xx.ravel(), yy.ravel(), np.ones(xx.size)], 1)
    coef, *_ = np.linalg.lstsq(A, q.ravel(), rcond=None)
    np.testing.assert_allclose(A @ coef, q.ravel(), atol=1e-5)


def test_generators_geometry():
    e = step_edge(0.3, 2.0, size=(32, 40), seed=1)
    assert np.all(e.depth[:, :20] == np.float32(0.3)) and np.all(e.depth[:, 20:] == np.float32(2.0))
    p = fronto_parallel_plane(1.2, size=(16, 16), seed=0, texture_name="brick")
    assert np.all(p.depth == np.float32(1.2)) and p.rgb.std() > 0.01
    o = occluding_objects(size=(64, 64), seed=2, depth_range=(0.2, 3.0), n_objects=3)
    assert len(np.unique(o.depth)) >= 2  # objects in front of the background
    b = smooth_blobs(size=(64, 64), seed=0, depth_range=(0.5, 1.5))
    assert 0.5 - 1e-5 <= b.depth.min() and b.depth.max() <= 1.5 + 1e-5


def test_texture_less_regions_exist():
    flat = texture("flat", (8, 8), np.random.default_rng(0))
    assert np.ptp(flat, axis=(0, 1)).max() == 0.0
    b = smooth_blobs(size=(64, 64), seed=0)
    # some 3x3 neighbourhoods of the blob scene are exactly constant (no focus cue)
    from scipy.ndimage import generic_filter

    local = generic_filter(b.rgb[..., 0], np.ptp, size=3)
    assert (local == 0).mean() > 0.05
    with pytest.raises(ValueError, match="texture"):
        texture("nope", (8, 8), np.random.default_rng(0))


def test_middlebury_crop_reaches_every_position_and_refuses_a_larger_size():
    rgb = np.random.default_rng(0).random((5, 7, 3)).astype(np.float32)
    scene = RGBDScene(rgb, np.arange(35, dtype=np.float32).reshape(5, 7) + 1, "grid")
    whole = middlebury_crop(scene, (5, 7), np.random.default_rng(0))
    assert np.array_equal(whole.rgb, rgb) and np.array_equal(whole.depth, scene.depth)
    rng = np.random.default_rng(1)
    corners = {(int(c.depth[0, 0]) - 1) for c in (middlebury_crop(scene, (2, 3), rng) for _ in range(400))}
    assert corners == {7 * y + x for y in range(4) for x in range(5)}  # every top-left corner, none outside
    with pytest.raises(ValueError, match="larger than"):
        middlebury_crop(scene, (6, 7), rng)


def test_image_textures_keep_their_range_and_sizes_and_ranges_are_checked():
    rng = np.random.default_rng(0)
    for name in ("astronaut", "brick"):  # a colour and a grey (tinted) source, both scaled to [0, 1]
        tex = texture(name, (64, 64), rng)
        assert tex.dtype == np.float32 and 0.0 <= tex.min() and 0.6 < tex.max() <= 1.0, name
    assert texture("noise", (4, 4), rng).shape == (4, 4, 3)  # the smallest size
    for size in ((3, 8), (8, 3), (8,)):
        with pytest.raises(ValueError, match="size must be"):
            texture("noise", size, rng)
    for depth_range in ((1.0, 1.0), (0.0, 1.0), (2.0, 1.0), (1.0, np.inf)):
        with pytest.raises(ValueError, match="depth_range must be"):
            random_scene(0, size=(8, 8), depth_range=depth_range)


def test_middlebury_depth_is_metric_and_plausible():
    s = middlebury_motorcycle()
    assert isinstance(s, RGBDScene)
    assert s.rgb.shape == (500, 741, 3) and s.depth.shape == (500, 741)
    m = s.mask
    assert 0.02 < (~m).mean() < 0.2  # holes exist (occlusions), masked with depth 0
    assert np.all(s.depth[~m] == 0)
    med = float(np.median(s.depth[m]))
    assert 1.5 < med < 4.0  # a motorcycle ~2-3 m from the rig
    assert 1.0 < s.depth[m].min() and s.depth[m].max() < 10.0
    # Z * (d + doffs) = baseline * focal at every valid pixel
    import skimage.data

    disp = skimage.data.stereo_motorcycle()[2]
    c = MIDDLEBURY_MOTORCYCLE_CALIB
    np.testing.assert_allclose(
        s.depth[m] * (disp[m] + c["doffs_px"]), c["baseline_m"] * c["focal_px"], rtol=1e-5
    )
    assert c["focal_px"] == pytest.approx(3979.911 / 4, rel=1e-5)


def test_dataset_is_deterministic_and_well_formed():
    ds = SyntheticFocalStackDataset(8, size=(48, 48), seed=5, crop=(32, 40))
    a, b = ds[2], ds[2]
    for k in a:
        assert torch.equal(a[k], b[k])
    assert a["stack"].shape == (5, 3, 32, 40) and a["stack"].dtype == torch.float32
    assert a["focus"].shape == (5,) and a["depth"].shape == (1, 32, 40) and a["aif"].shape == (3, 32, 40)
    assert a["mask"].dtype == torch.bool and a["mask"].shape == (1, 32, 40)
    assert 0 <= a["stack"].min() and a["stack"].max() <= 1
    assert not torch.equal(ds[3]["stack"], a["stack"])
    other = SyntheticFocalStackDataset(8, size=(48, 48), seed=6, crop=(32, 40))
    assert not torch.equal(other[2]["stack"], a["stack"])
    torch.testing.assert_close(a["focus"], torch.tensor([0.1, 0.15, 0.3, 0.7, 1.5]))


def test_dataset_middlebury_sample_has_holes_with_zero_depth():
    ds = SyntheticFocalStackDataset(8, size=(64, 96), seed=0, focus_m=None, n_planes=3, depth_range=(1.0, 6.0))
    s = ds[7]
    assert [i for i in range(8) if ds.is_middlebury(i)] == [7]
    assert float(s["depth"][s["mask"]].min()) >= 2.11  # the real scene's depth, not a procedural one's
    assert (~s["mask"]).any() or s["mask"].all()
    assert torch.all(s["depth"][~s["mask"]] == 0) and torch.all(s["depth"][s["mask"]] > 1.0)
    assert torch.isfinite(s["stack"]).all()
    f = s["focus"].double()
    np.testing.assert_allclose(np.diff(1 / f.numpy()), np.diff(1 / f.numpy())[0], rtol=1e-5)
    with pytest.raises(ValueError, match="n_planes"):
        SyntheticFocalStackDataset(4, focus_m=[0.5, 1.0], n_planes=5)
