"""Focus-breathing registration: recovered maps, the common region, the auto decision."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from dflib import align
from dflib.optics import ThinLens, focus_uniform_diopters
from dflib.registration import _grey_small, _scale_matrix, estimate_breathing
from dflib.render import render_focal_stack
from dflib.scenes import middlebury_motorcycle

SCALES = np.linspace(1.04, 1.0, 5)  # near focus magnifies most, as a unit-focusing lens does
SHIFTS = np.array([[0.6, -0.4], [1.3, 0.7], [-0.9, 1.1], [0.4, -1.4], [-0.2, 0.3]])


@pytest.fixture(scope="module")
def rendered():
    """A 5-frame stack of the Middlebury scene (half size, scaled to 0.1-0.25 m)
    rendered with a phone-like camera: the frames differ in defocus (CoC up to ~4 px)."""
    scene = middlebury_motorcycle()
    rgb, depth = np.ascontiguousarray(scene.rgb[::2, ::2]), scene.depth[::2, ::2] * 0.05
    cam = ThinLens(4.2e-3, 1.8, 15e-6)
    focus = focus_uniform_diopters(0.1, 0.3, 5)
    return render_focal_stack(rgb, depth, cam, focus, seed=0, device="cpu").images.numpy()  # [5, 3, 250, 371]


@pytest.fixture(scope="module")
def breathing(rendered):
    H, W = rendered.shape[-2:]
    truth = align.breathing_matrices(SCALES, (H, W), SHIFTS, rotations_deg=[0.0, 0.1, -0.1, 0.05, 0.0])
    captured = align.warp_stack(rendered, np.linalg.inv(truth))  # what a breathing lens records
    return captured, truth


def test_breathing_matrices_hand_computed():
    m = align.breathing_matrices([2.0], (11, 21), [[1.0, -3.0]])[0]
    c = np.array([10.0, 5.0])
    # the centre moves by the shift only; a point 1 px right of it lands 2 px right
    np.testing.assert_allclose(m @ [*c, 1], [11.0, 2.0, 1.0])
    np.testing.assert_allclose(m @ [11.0, 5.0, 1], [13.0, 2.0, 1.0])
    r = align.breathing_matrices([1.0], (11, 21), rotations_deg=[90.0])[0]
    np.testing.assert_allclose(r @ [11.0, 5.0, 1], [10.0, 6.0, 1.0], atol=1e-12)  # +x turns to +y
    with pytest.raises(ValueError, match="scales"):
        align.breathing_matrices([1.0, 0.0], (4, 4))


def test_breathing_scales_of_a_unit_focusing_lens():
    # v = f S / (S - f): f = 4 mm focused at 0.1 m images 0.1 / 0.096 = 1.041666... larger than at infinity
    s = align.breathing_scales([0.1, 0.5, np.inf], 4e-3)
    np.testing.assert_allclose(s, [0.1 / 0.096, 0.5 / 0.496, 1.0])
    for at_or_inside in ([0.003], [4e-3], [np.nan]):  # focused at f the image is at infinity
        with pytest.raises(ValueError, match="focal length"):
            align.breathing_scales(at_or_inside, 4e-3)
    for f in (0.0, -4e-3, np.nan):
        with pytest.raises(ValueError, match="focal_length_m must be > 0"):
            align.breathing_scales([0.1], f)


def test_recovers_focus_breathing(breathing):
    captured, truth = breathing
    H, W = captured.shape[-2:]
    res = align.align_stack(captured, progress=False)
    assert res.reference == 0  # the most magnified frame: every other frame covers it
    expected = truth @ np.linalg.inv(truth[res.reference])
    scale_err = np.abs(res.scales - align.matrix_scale(expected))
    assert scale_err.max() < 0.003, scale_err
    # distance between where the estimated and the true map send the corners and the centre
    off = align.displacement_px(np.linalg.inv(expected) @ res.matrices, (H, W))
    assert off.max() < 0.3, off
    assert res.breathing_px > 5  # the stack really breathes (4 % of a 371 px frame)
    # resampled frames match the stack rendered without breathing, far better than the captured ones
    y0, y1, x0, x1 = res.crop
    inside = (slice(None), slice(None), slice(y0 + 2, y1 - 2), slice(x0 + 2, x1 - 2))
    before = np.abs(captured - captured[0:1])[inside].mean()
    after = np.abs(res.images - res.images[0:1])[inside].mean()
    assert after < 0.5 * before


def test_maps_found_on_shrunk_frames_hold_at_full_resolution(breathing):
    # frames shrunk 2x for the refinement (max_size) and features found 2x smaller still (feature_size): the maps,
    # scaled back, stay within a quarter pixel (0.26 px measured; 0.13 px at full size)
    captured, truth = breathing
    est = estimate_breathing(captured, max_size=200, feature_size=100, progress=False)
    expected = truth @ np.linalg.inv(truth[est.reference])
    assert align.displacement_px(np.linalg.inv(expected) @ est.matrices, captured.shape[-2:]).max() < 0.4


def test_reference_may_be_counted_from_the_end(breathing):
    captured, _ = breathing
    fast = {"max_size": 200, "feature_size": 100, "progress": False}
    last, first = estimate_breathing(captured, reference=-1, **fast), estimate_breathing(captured, reference=-5, **fast)
    assert last.reference == 4 and first.reference == 0
    np.testing.assert_allclose(last.matrices, estimate_breathing(captured, reference=4, **fast).matrices)
    np.testing.assert_allclose(first.matrices, last.matrices @ np.linalg.inv(last.matrices[0]), atol=1e-9)  # one chain
    for bad in (5, -6, 1.0, "first"):
        with pytest.raises(ValueError, match="reference"):
            estimate_breathing(captured, reference=bad, **fast)


def test_shrinking_keeps_pixel_centres():
    # a 3 x 3 block mean's centre is its middle pixel: full-resolution pixel 4 (block 1) maps to shrunk pixel 1
    np.testing.assert_allclose(_scale_matrix(1 / 3) @ [4.0, 1.0, 1.0], [1.0, 0.0, 1.0], atol=1e-12)
    np.testing.assert_allclose(_scale_matrix(0.5) @ [0.5, 2.5, 1.0], [0.0, 1.0, 1.0], atol=1e-12)
    frame = np.random.default_rng(0).random((3, 10, 7))
    grey = 0.2126 * frame[0] + 0.7152 * frame[1] + 0.0722 * frame[2]  # Rec. 709 luminance
    small, factor = _grey_small(frame, 4)  # long side 10 -> k = 3, whole 3 x 3 blocks only (9 x 6 pixels)
    assert factor == pytest.approx(1 / 3) and small.shape == (3, 2)
    np.testing.assert_allclose(small, grey[:9, :6].reshape(3, 3, 2, 3).mean(axis=(1, 3)))
    for max_size in (None, 10):
        np.testing.assert_allclose(_grey_small(frame, max_size)[0], grey)


def test_recovered_maps_bring_frames_onto_the_reference(rendered, breathing):
    captured, truth = breathing
    res = align.align_stack(captured, reference=4, model="affine", progress=False)
    expected = truth @ np.linalg.inv(truth[4])
    assert align.displacement_px(np.linalg.inv(expected) @ res.matrices, captured.shape[-2:]).max() < 0.5
    # frame 4 is the widest view: the others (up to 4 % larger) leave its border uncovered
    y0, y1, x0, x1 = res.crop
    H, W = captured.shape[-2:]
    assert (W - 1) / 1.04 - 4 <= x1 - x0 <= (W - 1) / 1.04 + 2
    assert (H - 1) / 1.04 - 4 <= y1 - y0 <= (H - 1) / 1.04 + 2
    assert res.valid[y0:y1, x0:x1].all() and not res.valid.all()
    # inside the crop, the resampled frames are the unbreathed rendering (up to interpolation)
    err = np.abs(res.cropped() - rendered[..., y0:y1, x0:x1])[..., 3:-3, 3:-3]
    assert np.median(err) < 0.02


@pytest.mark.parametrize("model", ["similarity", "affine"])
def test_refinement_recovers_a_known_map_from_a_rough_start(model):
    from scipy import ndimage
    from skimage.data import camera
    from skimage.transform import warp

    from dflib.registration import _refine_pair

    g0 = camera()[96:352, 96:416].astype(np.float64) / 255  # 256 x 320
    truth = align.breathing_matrices([1.02], g0.shape, [[1.3, -0.7]], rotations_deg=[0.3])[0]  # frame 0 -> frame 1
    if model == "affine":
        truth = truth @ np.array([[1.0, 0.01, 0.0], [0.0, 0.995, 0.0], [0, 0, 1]])
    # frame 1 shows frame 0 through the map, more blurred (defocus) and darker (exposure): g1(T x) = 0.9 g0(x) + 0.03
    g1 = 0.9 * ndimage.gaussian_filter(warp(g0, np.linalg.inv(truth), order=3, mode="edge"), 2.0) + 0.03
    start = truth @ align.breathing_matrices([1.006], g0.shape, [[2.0, -1.5]], rotations_deg=[-0.2])[0]
    assert align.displacement_px((np.linalg.inv(truth) @ start)[None], g0.shape)[0] > 3
    refined = _refine_pair(g0, g1, start, model)
    assert align.displacement_px((np.linalg.inv(truth) @ refined)[None], g0.shape)[0] < 0.05


def test_refined_maps_do_not_depend_on_the_feature_seed(breathing):
    captured, _ = breathing
    a, b = (align.estimate_breathing(captured, seed=s, progress=False).matrices for s in (0, 1))
    # RANSAC's draws move the feature maps; the direct refinement converges to the same maps from either
    assert align.displacement_px(np.linalg.inv(a) @ b, captured.shape[-2:]).max() < 0.005


def test_displacement_is_the_largest_corner_move():
    """Magnifying 1.1x about one corner moves the opposite corner most: by 0.1 of the diagonal, 0.1 x 50 px."""
    H, W = 31, 41
    for cx, cy in ((0, 0), (W - 1, 0), (0, H - 1), (W - 1, H - 1)):
        m = np.array([[1.1, 0, -0.1 * cx], [0, 1.1, -0.1 * cy], [0, 0, 1]])
        assert align.displacement_px(m[None], (H, W))[0] == pytest.approx(5.0, abs=1e-12)
    shift = align.breathing_matrices([1.0], (H, W), [[3.0, -4.0]])
    assert align.displacement_px(shift, (H, W))[0] == pytest.approx(5.0, abs=1e-12)


def test_valid_region_and_largest_box_hand_computed():
    # a 1.25x magnification about the centre of a 101x101 frame: 0 <= 50 + 1.25 (x - 50) <= 100 <=> 10 <= x <= 90
    m = align.breathing_matrices([1.0, 1.25], (101, 101))
    valid = align.valid_region(m, (101, 101))
    expected = np.zeros((101, 101), bool)
    expected[10:91, 10:91] = True
    np.testing.assert_array_equal(valid, expected)
    assert align.largest_box(m, (101, 101)) == (10, 91, 10, 91)


@pytest.mark.parametrize("rotations", [[0, 2.0, -3.0], [0, 9.0, -4.0], [0, 90.0, 0]])  # 90: x' depends on y only
def test_valid_region_matches_brute_force(rotations):
    rng = np.random.default_rng(1)
    size = (40, 60)
    m = align.breathing_matrices([1.0, 1.03, 0.98], size, rng.uniform(-3, 3, (3, 2)), rotations_deg=rotations)
    yy, xx = np.mgrid[: size[0], : size[1]]
    pts = np.stack([xx, yy, np.ones_like(xx)], -1).reshape(-1, 3).T
    inside = np.ones(pts.shape[1], bool)
    for mi in m:
        q = mi @ pts
        inside &= (q[0] >= -1e-9) & (q[0] <= size[1] - 1 + 1e-9) & (q[1] >= -1e-9) & (q[1] <= size[0] - 1 + 1e-9)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no division by a zero coefficient at 90 degrees
        np.testing.assert_array_equal(align.valid_region(m, size), inside.reshape(size))
        y0, y1, x0, x1 = align.largest_box(m, size)
    assert inside.reshape(size)[y0:y1, x0:x1].all()
    # and no box inside the region is larger: for every pair of rows, the longest run of columns valid in all
    best, valid = 0, inside.reshape(size)
    for top in range(size[0]):
        cols = np.ones(size[1], bool)
        for bottom in range(top, size[0]):
            cols &= valid[bottom]
            runs = np.diff(np.flatnonzero(np.diff(np.r_[0, cols.astype(int), 0])))[::2]
            best = max(best, (bottom - top + 1) * int(runs.max(initial=0)))
    assert (y1 - y0) * (x1 - x0) == best


def test_align_if_needed_decides(rendered, breathing):
    steady = align.align_if_needed(rendered, progress=False)
    assert not steady.applied and "not needed" in steady.message
    assert steady.estimate is not None and steady.estimate.breathing_px <= 0.5
    assert steady.images is rendered or np.shares_memory(steady.images, rendered)
    two = align.align_if_needed(rendered[:2])
    assert not two.applied and two.estimate is None and "2 frames" in two.message
    off = align.align_if_needed(breathing[0], align=False)
    assert not off.applied and "--no-align" in off.message


def test_texture_less_frames_are_a_clear_error():
    flat = np.full((3, 3, 64, 64), 0.5, np.float32)
    with pytest.raises(ValueError, match="frames 0 and 1"):
        align.estimate_breathing(flat, progress=False)
    res = align.align_if_needed(flat)  # auto: reported, frames used as they are
    assert not res.applied and "could not be registered" in res.message


def test_input_layouts_and_errors():
    a = np.random.default_rng(0).random((2, 8, 9, 3)).astype(np.float32)
    np.testing.assert_array_equal(align.as_stack_array(a), np.moveaxis(a, -1, 1))
    np.testing.assert_array_equal(align.as_stack_array(list(a)), np.moveaxis(a, -1, 1))
    u8, u16 = np.round(a * 255).astype(np.uint8), np.round(a * 65535).astype(np.uint16)
    for ints, full in ((u8, 255), (u16, 65535)):  # integers are scaled by their full range
        got = align.as_stack_array(ints)
        assert got.dtype == np.float32
        np.testing.assert_allclose(got, np.moveaxis(ints, -1, 1) / full, rtol=1e-6)
        assert got.max() <= 1.0
    flipped = align.as_stack_array(np.moveaxis(a, -1, 1)[:, :, ::-1])  # a reversed view is copied
    assert all(st > 0 for st in flipped.strides)
    np.testing.assert_array_equal(flipped[:, :, 0], np.moveaxis(a, -1, 1)[:, :, -1])
    with pytest.raises(ValueError, match="same shape"):
        align.as_stack_array([a[0], a[1, :4]])
    with pytest.raises(ValueError, match="model"):
        align.estimate_breathing(a, model="projective")
    with pytest.raises(ValueError, match="matrices"):
        align.warp_stack(a, np.eye(3)[None])
    same = np.full((2, 3, 8, 9), 7.0, np.float32)  # identity maps copy the frames into out
    assert align.warp_stack(a, np.tile(np.eye(3), (2, 1, 1)), out=same) is same
    np.testing.assert_array_equal(same, np.moveaxis(a, -1, 1))
    for bad_out in (np.zeros((2, 3, 8, 9)), np.zeros((2, 3, 8, 8), np.float32)):  # float64; wrong shape
        with pytest.raises(ValueError, match="out must be float32 with shape"):
            align.warp_stack(a, np.tile(np.eye(3), (2, 1, 1)), out=bad_out)
