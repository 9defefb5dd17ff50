"""benchmarks/real_stack.py: the pseudo-truth (sharpest frame per patch) and the agreement measures on hand-made
cases, and one run on a small breathing stack written as files."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import ndimage
from skimage.data import grass

from benchmark_scripts import load
from dflib import align, io

real_stack = load("real_stack")


def _stack(sharp_frame_of_column: list[int], n: int = 3, patch: int = 64, blur: float = 3.0, row: int = 0) -> np.ndarray:
    """``[n, 3, patch, patch * C]``: column block c is sharp in frame ``sharp_frame_of_column[c]`` (0-based) and
    blurred by ``blur`` px (Gaussian σ) per frame of distance elsewhere; the texture is row ``row`` of 64 px blocks of
    scikit-image's grass."""
    tex = grass()[row * patch:(row + 1) * patch, : patch * len(sharp_frame_of_column)].astype(np.float64) / 255
    frames = np.zeros((n, patch, tex.shape[1]))
    for c, k in enumerate(sharp_frame_of_column):
        block = tex[:, c * patch:(c + 1) * patch]
        for f in range(n):
            frames[f, :, c * patch:(c + 1) * patch] = ndimage.gaussian_filter(block, blur * abs(f - k)) if f != k else block
    return np.repeat(frames[:, None], 3, axis=1).astype(np.float32)


def test_sharpest_frames_finds_each_patch_in_focus():
    ref, clear = real_stack.sharpest_frames(_stack([0, 2, 1]))
    np.testing.assert_array_equal(ref, [[1.0, 3.0, 2.0]])  # frames numbered from 1
    assert clear.all()
    flat = np.full((3, 3, 64, 128), 0.5, np.float32)
    assert not real_stack.sharpest_frames(flat)[1].any()  # no texture: no clear peak


def test_agreement_on_a_hand_made_depth_map():
    ref, clear = np.array([[1.0, 3.0]]), np.array([[True, False]])
    depth = np.ones((64, 128))
    depth[:16, :64] = 3.0  # a quarter of the clear patch reads 2 planes off (its median stays 1)
    depth[:, 64:] = 9.0  # the unclear patch is ignored
    got = real_stack.agreement(depth, ref, clear)
    assert got == {"patch_mean_abs_planes": 0.0, "patch_within_1": 1.0, "pixels_off_by_1_5": 0.25}
    depth[:] = 2.4  # everywhere 1.4 planes off: outside one plane, not off by 1.5
    assert real_stack.agreement(depth, ref, clear) == {"patch_mean_abs_planes": 1.4, "patch_within_1": 0.0,
                                                       "pixels_off_by_1_5": 0.0}
    assert real_stack.agreement(depth, ref, clear & False)["patch_mean_abs_planes"] is None


def test_sigma_mask_on_a_hand_made_map():
    clear = np.array([[True, False]])
    ps = np.zeros((64, 128))
    ps[:32, :64] = 1.5  # half the clear patch above one plane
    ps[:, 64:] = 2.0  # all of the unclear one
    ps[32:, 64:] = 1.0  # not above: the threshold is strict
    assert real_stack.sigma_mask(ps, clear) == {"masked_at_1_plane": 0.5, "masked_at_1_plane_in_clear_patches": 0.5}
    assert real_stack.sigma_mask(ps, clear & False)["masked_at_1_plane_in_clear_patches"] is None


def test_runs_on_a_stack_of_files(tmp_path):
    rows = [[0, 1, 2, 1, 0], [2, 1, 0, 1, 2], [1, 0, 1, 2, 1]]
    frames = np.concatenate([_stack(r, blur=1.5, row=i) for i, r in enumerate(rows)], axis=2)  # [3, 3, 192, 320], mild enough to register
    truth = align.breathing_matrices([1.02, 1.01, 1.0], frames.shape[-2:])  # near focus magnifies most
    for i, f in enumerate(align.warp_stack(frames, np.linalg.inv(truth), progress=False)):
        io.write_image(tmp_path / f"f{i}.png", f)
    out = tmp_path / "r.json"
    res = real_stack.main(["--images", str(tmp_path), "--focus", "1", "2", "3", "--sizes", "128", "--out", str(out)])
    assert json.loads(out.read_text())["clear_patches"] == res["clear_patches"]
    assert res["clear_patches"][0] > 0  # blocks in focus in one frame only (the crop after alignment shifts the grid)
    assert [r["model"] for r in res["results"]] == list(real_stack.MODELS)
    assert all(0 <= r["patch_within_1"] <= 1 and r["working_size"] == 128 and 0 <= r["masked_at_1_plane"] <= 1
               for r in res["results"])
    consistency = res["map_consistency"]
    assert consistency["seed_0_vs_1_px"] < 0.01 and consistency["forward_vs_reverse_px"] < 0.5
    assert res["order_note"] is None  # near to far, magnifying toward near focus
    assert res["scales"] == pytest.approx([1.0, 1.01 / 1.02, 1 / 1.02], abs=2e-3)
