"""Measuring a stack's defocus blur from its images: Gaussian blurs of known width, rendered stacks of known
circles of confusion, and the note dflib predict prints from it."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage
from skimage.data import camera

from dflib.blur_estimate import largest_blur_px
from dflib.optics import ThinLens, focus_uniform_diopters
from dflib.predict import (
    DEFAULT_WORKING_SIZE,
    _size_for_blur,
    auto_working_size,
    blur_range_note,
)
from dflib.render import render_focal_stack
from dflib.scenes import middlebury_motorcycle

DIVERSE = {"data": "diverse", "data_options": {}}  # the shipped mid models' training data: blur 3-25 px


def _texture(size: int = 256) -> np.ndarray:
    return camera()[:size, :size].astype(np.float64) / 255


def _rgb(frames: list[np.ndarray]) -> np.ndarray:
    """Grey frames ``[H, W]`` as a colour stack ``[N, 3, H, W]`` float32."""
    return np.repeat(np.stack(frames)[:, None], 3, axis=1).astype(np.float32)


@pytest.mark.parametrize("sigma", [1.0, 3.0, 6.0])
def test_a_gaussian_blur_of_known_width_is_measured_as_its_disc(sigma):
    sharp = _texture()
    stack = np.stack([sharp, ndimage.gaussian_filter(sharp, 0.6 * sigma), ndimage.gaussian_filter(sharp, sigma)])
    est = largest_blur_px(stack)
    assert est is not None and not est.saturated
    # a disc of diameter 4 sigma has the Gaussian's second moment; the search steps by a quarter octave
    assert est.largest_px == pytest.approx(4 * sigma, rel=0.1)
    assert np.median(est.per_patch_px) == pytest.approx(4 * sigma, rel=0.1)


def test_rendered_stacks_measure_their_largest_circle_of_confusion():
    scene = middlebury_motorcycle()
    rgb, depth = np.ascontiguousarray(scene.rgb[::2, ::2]), scene.depth[::2, ::2] * 0.05  # 0.1-0.25 m
    focus = focus_uniform_diopters(0.1, 0.3, 5)
    valid = depth[depth > 0]
    for cam in (ThinLens(4.2e-3, 1.8, 15e-6), ThinLens(6e-3, 1.4, 15e-6)):  # about 4 and 11 px at most
        stack = render_focal_stack(rgb, depth, cam, focus, seed=0, device="cpu").images.numpy()
        truth = max(cam.coc_px(np.array([valid.min(), valid.max()]), f).max() for f in focus)
        est = largest_blur_px(stack)
        assert est is not None and est.largest_px == pytest.approx(truth, rel=0.25), (est.largest_px, truth)


def test_no_estimate_without_texture_or_blur():
    flat = np.full((3, 128, 128), 0.5)
    assert largest_blur_px(flat) is None
    same = np.stack([_texture()] * 3)  # frames that never change with focus
    assert largest_blur_px(same) is None
    with pytest.raises(ValueError, match="N >= 2"):
        largest_blur_px(_texture()[None])


def test_blur_range_note_suggests_a_working_size():
    sharp = _texture(512)
    stack = _rgb([sharp, ndimage.gaussian_filter(sharp, 4.0), ndimage.gaussian_filter(sharp, 12.0)])  # 48 px at most
    note, info = blur_range_note(stack, None, DIVERSE)
    assert info["working_size"] == [512, 512] and info["largest_px_at_working_size"] == pytest.approx(48, rel=0.1)
    assert note is not None and "3-25 px" in note
    suggested = int(note.split("--working-size ")[1].split()[0])
    assert suggested % 32 == 0 and suggested == pytest.approx(512 * 25 / info["largest_px_at_working_size"], abs=16)
    # at the suggested size the blur is within what the weights learned: no note
    note_small, info_small = blur_range_note(stack, suggested, DIVERSE)
    assert note_small is None and info_small["largest_px_at_working_size"] <= 1.25 * 25
    # above 512 px the blur is measured at half the working size and doubled: a stack twice the size has twice
    # the blur at full size, and the same as before at 512 px
    big = np.repeat(np.repeat(stack, 2, axis=2), 2, axis=3)
    assert blur_range_note(big, None, DIVERSE)[1]["largest_px_at_working_size"] == pytest.approx(
        2 * info["largest_px_at_working_size"], rel=0.02)
    assert blur_range_note(big, 512, DIVERSE)[1] == info
    assert "3-12 px" in blur_range_note(stack, None, {"data": "diverse", "data_options": {"coc_px": (3.0, 12.0)}})[0]
    # models trained on the embedded data record no blur range
    assert blur_range_note(stack, None, {"data": "synthetic"}) == (None, None)


def test_auto_working_size_shrinks_only_what_blurs_too_much():
    sharp = _texture(512)
    blurry = _rgb([sharp, ndimage.gaussian_filter(sharp, 4.0), ndimage.gaussian_filter(sharp, 12.0)])  # ~48 px
    size, why = auto_working_size(blurry, DIVERSE)
    blur = blur_range_note(blurry, DEFAULT_WORKING_SIZE, DIVERSE)[1]["largest_px_at_working_size"]  # about 48
    assert size == 32 * round(512 * 25 / blur / 32) and 256 <= size <= 288 and f"{size} px" in why
    assert blur_range_note(blurry, size, DIVERSE)[0] is None
    mild = _rgb([sharp, ndimage.gaussian_filter(sharp, 1.0), ndimage.gaussian_filter(sharp, 2.0)])  # ~8 px
    assert auto_working_size(mild, DIVERSE)[0] == 512  # the whole stack: the default's long side, not enlarged
    size, why = auto_working_size(blurry, {"data": "synthetic"})
    assert size == DEFAULT_WORKING_SIZE and "no blur measured" in why
    assert _size_for_blur(1024, 50.0, 25.0) == 512 and _size_for_blur(512, 200.0, 25.0) == 128  # never below 128 px
