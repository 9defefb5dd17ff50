"""benchmarks/feature_size.py: one run on a small breathing stack written as files."""

from __future__ import annotations

import json

import numpy as np
from benchmark_scripts import load
from skimage.data import grass

from dflib import align, io

feature_size = load("feature_size")


def test_feature_sizes_give_the_same_maps(tmp_path):
    tex = grass()[:192, :256].astype(np.float32) / 255
    frames = np.repeat(np.stack([tex] * 3)[:, None], 3, axis=1)
    truth = align.breathing_matrices([1.02, 1.01, 1.0], frames.shape[-2:])  # near focus magnifies most
    for i, f in enumerate(align.warp_stack(frames, np.linalg.inv(truth), progress=False)):
        io.write_image(tmp_path / f"f{i}.png", f)
    out = tmp_path / "fs.json"
    res = feature_size.main(["--images", str(tmp_path), "--sizes", "256", "64", "--repeats", "1", "--out", str(out)])
    assert json.loads(out.read_text()) == res and res["frames"] == [3, 3, 192, 256] and res["cpu"]
    assert res["sizes"]["256"]["max_px_from_first"] < 1e-9  # the first size against itself
    assert res["sizes"]["64"]["max_px_from_first"] < 0.05  # features at 64 px start the same refinement
    assert all(v["seconds"] > 0 for v in res["sizes"].values())
