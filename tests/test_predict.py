"""predict at any resolution: readout units, tiles, the working size and guided upsampling."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from dflib import predict as P


class FixedProb(nn.Module):
    """A stand-in network: focus probabilities given per pixel by a function of the input."""

    def __init__(self, fn):
        super().__init__()
        self.fn = fn
        self.dummy = nn.Parameter(torch.zeros(1))

    def forward(self, stack, focus):
        return {"prob": self.fn(stack)}


def _halves(stack):
    """Left half all on plane 0, right half split 50/50 between planes 0 and N-1."""
    b, n, _, h, w = stack.shape
    p = torch.zeros(b, n, h, w)
    p[:, 0] = 1.0
    p[..., w // 2:] = 0.0
    p[:, 0, :, w // 2:] = 0.5
    p[:, -1, :, w // 2:] = 0.5
    return p


def test_readout_units_hand_computed():
    stack = np.zeros((3, 3, 4, 6), np.float32)
    model = FixedProb(_halves)
    # metres: Σ p f -> 0.5 m on the left, (0.5 + 2) / 2 = 1.25 m on the right
    m = P.predict(stack, [0.5, 1.0, 2.0], model=model)
    assert m.unit == "m" and m.sigma_unit == "m"
    np.testing.assert_allclose(m.depth[:, 0], 0.5)
    np.testing.assert_allclose(m.depth[:, -1], 1.25)
    np.testing.assert_allclose(m.sigma[:, -1], 0.75)  # half-way between 0.5 and 2
    # with infinity the readout is in dioptres: (2 + 0) / 2 = 1 dpt -> 1 m; σ in dioptres
    inf = P.predict(stack, [0.5, 1.0, "inf"], model=model)
    assert inf.unit == "m" and inf.sigma_unit == "diopter"
    np.testing.assert_allclose(inf.depth[:, 0], 0.5)
    np.testing.assert_allclose(inf.depth[:, -1], 1.0)
    np.testing.assert_allclose(inf.sigma[:, -1], 1.0)
    # the same focus given in dioptres gives the same depth in metres
    dpt = P.predict(stack, [2.0, 1.0, 0.0], model=model, focus_unit="diopter")
    np.testing.assert_allclose(dpt.depth, inf.depth)
    # all mass on the plane at infinity -> inf metres
    far = P.predict(stack, [0.5, 1.0, math.inf], model=FixedProb(lambda s: F.one_hot(
        torch.full(s.shape[-2:], 2), 3).permute(2, 0, 1)[None].float()))
    assert np.isinf(far.depth).all()
    # disparities and indices come out in their own unit
    idx = P.predict(stack, [0, 1, 2], model=model, focus_unit="index")
    assert idx.unit == "index"
    np.testing.assert_allclose(idx.depth[:, -1], 1.0)
    # two frames are a stack (plane 0 and the last are the same two here)
    two = P.predict(stack[:2], [0.5, 2.0], model=model)
    np.testing.assert_allclose(two.depth[:, 0], 0.5)
    np.testing.assert_allclose(two.depth[:, -1], 1.25)


def test_bad_stacks_are_refused():
    stack, model = np.zeros((3, 3, 4, 6), np.float32), FixedProb(_halves)
    for images, focus, match in ((stack[:1], [1.0], "at least 2 images"), (stack, [1.0, 2.0], "3 images but 2")):
        with pytest.raises(ValueError, match=match):
            P.predict(images, focus, model=model)
    for size in (True, -1):
        with pytest.raises(ValueError, match="working_size"):
            P.predict(stack, [1.0, 2.0, 3.0], model=model, working_size=size)
    assert P.predict(stack, [1.0, 2.0, 3.0], model=model, working_size=0).depth.shape == (4, 6)  # 0: full size


def test_frames_given_far_to_near_are_reversed():
    rng = np.random.default_rng(0)
    stack = rng.random((3, 3, 5, 7), dtype=np.float32)
    model = FixedProb(lambda s: torch.softmax(s[:, :, 0] * 10, dim=1))  # depends on the frame order
    a = P.predict(stack, [0.2, 0.5, 1.0], model=model)
    b = P.predict(stack[::-1], [1.0, 0.5, 0.2], model=model)
    np.testing.assert_allclose(a.depth, b.depth, rtol=1e-6)
    assert b.order.tolist() == [2, 1, 0] and b.focus.tolist() == [0.2, 0.5, 1.0]
    with pytest.raises(ValueError, match="not monotonic"):
        P.predict(stack, [0.2, 1.0, 0.5], model=model)
    with pytest.raises(ValueError, match="value 1 of 3 is 0 m"):
        P.predict(stack, [0.0, 0.5, 1.0], model=model)
    with pytest.raises(ValueError, match="3 images but 2 focus"):
        P.predict(stack, [0.5, 1.0], model=model)


def test_tile_starts_cover_with_overlap():
    assert P.tile_starts(300, 512, 64) == [0]
    assert P.tile_starts(1000, 512, 64) == [0, 244, 488]
    for size, tile, ov in ((1000, 512, 64), (777, 100, 12), (129, 128, 16)):
        s = P.tile_starts(size, tile, ov)
        assert s[0] == 0 and s[-1] + tile == size
        assert all(b - a <= tile - ov for a, b in zip(s, s[1:]))  # neighbours share >= ov pixels


def test_tiles_blend_to_the_untiled_answer_for_a_pixelwise_model():
    # a per-pixel model gives the same probabilities in any tile: blending must reproduce them exactly
    rng = np.random.default_rng(1)
    stack = torch.from_numpy(rng.random((4, 3, 70, 90), dtype=np.float32))
    model = FixedProb(lambda s: torch.softmax(5 * s.mean(2), dim=1))
    focus = torch.tensor([0.1, 0.2, 0.4, 0.8])
    whole = P.tiled_probabilities(model, stack, focus, tile=128)
    for overlap in (8, 0, 15):  # 15: tiles spread evenly over 90 px start every 14.5 px, so up to 3 overlap
        tiled = P.tiled_probabilities(model, stack, focus, tile=32, overlap=overlap, progress=False)
        torch.testing.assert_close(tiled, whole, rtol=0, atol=1e-6)
    assert P.tile_starts(90, 32, 15) == [0, 14, 29, 44, 58]  # pixel 31 lies in three tiles
    for tile, overlap in ((32, 16), (31, 0), (32, -1)):
        with pytest.raises(ValueError, match="tile"):
            P.tiled_probabilities(model, stack, focus, tile=tile, overlap=overlap)


def test_tiles_blend_with_linear_ramps_across_the_shared_band():
    # a network whose answer is the same everywhere in a tile but differs between tiles: the blend must ramp
    # linearly across each shared band, from one tile's answer to the next's, and equal each outside it
    class PerTile(nn.Module):
        def __init__(self):
            super().__init__()
            self.w, self.calls = nn.Parameter(torch.zeros(1)), 0

        def forward(self, stack, focus):
            self.calls += 1
            p = torch.zeros(1, 2, *stack.shape[-2:])
            p[:, 0] = self.calls  # 1 in the first tile, 2 in the second, 3 in the third
            return {"prob": p}

    stack = torch.zeros(2, 3, 16, 80)
    out = P.tiled_probabilities(PerTile(), stack, torch.tensor([0.5, 1.0]), tile=32, overlap=8)[0]
    assert P.tile_starts(80, 32, 8) == [0, 24, 48]  # shared bands: columns 24..31 and 48..55
    ramp = torch.arange(1, 9) / 9  # weights (9 - j) / 9 and j / 9 of the two tiles
    expected = torch.cat([torch.full((24,), 1.0), 1 + ramp, torch.full((16,), 2.0), 2 + ramp, torch.full((24,), 3.0)])
    torch.testing.assert_close(out, expected.expand(16, 80), rtol=0, atol=1e-6)


def test_tiled_real_model_stays_close(tmp_path):
    from dflib.models import DualFocus, DualFocusConfig
    from dflib.optics import FOD500_CAMERA, FOD500_FOCUS_M
    from dflib.render import render_focal_stack
    from dflib.scenes import random_scene

    scene = random_scene(2, size=(96, 128))
    st = render_focal_stack(scene.rgb, scene.depth, FOD500_CAMERA, FOD500_FOCUS_M, seed=0, device="cpu")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = DualFocus(DualFocusConfig.tiny()).eval()
    whole = P.predict(st.images.numpy(), FOD500_FOCUS_M, model=model)
    tiled = P.predict(st.images.numpy(), FOD500_FOCUS_M, model=model, tile=64, overlap=16, progress=False)
    assert tiled.depth.shape == whole.depth.shape == (96, 128)
    span = max(FOD500_FOCUS_M) - min(FOD500_FOCUS_M)
    assert np.median(np.abs(tiled.depth - whole.depth)) < 0.1 * span


def test_lerp_matches_torch_bilinear():
    x = torch.from_numpy(np.random.default_rng(2).random((2, 5, 7), dtype=np.float32))
    ref = F.interpolate(x[None], size=(13, 17), mode="bilinear", align_corners=False)[0]
    ours = P._lerp_axis(P._lerp_axis(x, 13, 1), 17, 2)
    torch.testing.assert_close(ours, ref, rtol=0, atol=1e-6)
    torch.testing.assert_close(P._lerp_axis(x, 13, 1, 4, 9), P._lerp_axis(x, 13, 1)[:, 4:9])


def test_grey_uses_rec709_weights():
    rgb = torch.eye(3)[:, :, None, None].expand(3, 3, 2, 2)  # pure red, green, blue
    torch.testing.assert_close(P._grey(rgb)[:, 0, 0], torch.tensor([0.2126, 0.7152, 0.0722]))
    torch.testing.assert_close(P._grey(torch.ones(3, 4, 4)), torch.ones(4, 4))


def test_guided_coefficients_by_hand():
    # He et al.: in each (2r+1)^2 window (edges reflected) fit src = a guide + b with a = cov / (var + eps),
    # then average each pixel's a and b over the windows that contain it
    rng = np.random.default_rng(5)
    guide, src = rng.random((6, 7)), rng.random((6, 7))
    r, eps = 1, 0.01
    pad = lambda x: np.pad(x, r, mode="symmetric")  # scipy's "reflect" repeats the edge pixel
    gp, sp = pad(guide), pad(src)
    a, b = np.zeros((6, 7)), np.zeros((6, 7))
    for i in range(6):
        for j in range(7):
            g, s = gp[i:i + 3, j:j + 3].ravel(), sp[i:i + 3, j:j + 3].ravel()
            a[i, j] = (np.mean(g * s) - g.mean() * s.mean()) / (g.var() + eps)
            b[i, j] = s.mean() - a[i, j] * g.mean()
    box = lambda x: np.array([[pad(x)[i:i + 3, j:j + 3].mean() for j in range(7)] for i in range(6)])
    got_a, got_b = P.guided_coefficients(src, guide, radius=r, eps=eps)
    np.testing.assert_allclose(got_a, box(a), atol=1e-5)
    np.testing.assert_allclose(got_b, box(b), atol=1e-5)


def test_guided_upsampling_reproduces_affine_maps_of_the_guide_and_sharpens_edges():
    rng = np.random.default_rng(3)
    guide_hi = rng.random((64, 64)).astype(np.float32)
    guide_lo = F.interpolate(torch.from_numpy(guide_hi)[None, None], size=(16, 16), mode="area")[0, 0].numpy()
    # src = 3 guide + 1 at low resolution -> exactly 3 guide + 1 at full resolution (eps -> 0)
    up = P.guided_upsample(3 * guide_lo + 1, guide_lo, guide_hi, eps=1e-12)
    np.testing.assert_allclose(up, 3 * guide_hi + 1, atol=1e-3)
    np.testing.assert_allclose(P.guided_upsample(np.full((16, 16), 2.0), guide_lo, guide_hi), 2.0, atol=1e-6)
    # a depth step that coincides with an image edge comes back sharper than bilinear upsampling
    x = np.arange(64)
    edge_hi = np.where(x[None, :] < 27, 0.2, 0.9).repeat(64, 0).astype(np.float32)  # guide (grey)
    depth_hi = np.where(x[None, :] < 27, 1.0, 2.0).repeat(64, 0).astype(np.float32)
    area = lambda a: F.interpolate(torch.from_numpy(a)[None, None], size=(16, 16), mode="area")[0, 0].numpy()
    guided = P.guided_upsample(area(depth_hi), area(edge_hi), edge_hi)
    bilinear = F.interpolate(torch.from_numpy(area(depth_hi))[None, None], size=(64, 64), mode="bilinear",
                             align_corners=False)[0, 0].numpy()
    assert np.abs(guided - depth_hi).mean() < 0.5 * np.abs(bilinear - depth_hi).mean()


def test_working_size_outputs_full_resolution():
    rng = np.random.default_rng(4)
    stack = rng.random((3, 3, 90, 120), dtype=np.float32)
    uniform = FixedProb(lambda s: torch.full((s.shape[0], s.shape[1]) + s.shape[-2:], 1 / s.shape[1]))
    out = P.predict(stack, [0.2, 0.4, 0.8], model=uniform, working_size=40, band_pixels=17 * 120)
    assert out.working_size == (30, 40) and out.prob.shape == (3, 30, 40)
    assert out.depth.shape == (90, 120) and out.aif.shape == (3, 90, 120)
    # uniform probabilities: all-in-focus = mean frame, at full resolution; depth = mean focus
    np.testing.assert_allclose(out.aif, stack.mean(0), atol=1e-6)
    np.testing.assert_allclose(out.depth, (0.2 + 0.4 + 0.8) / 3, atol=1e-6)
    assert P.working_shape((3000, 4000), 1024) == (768, 1024)
    assert P.working_shape((300, 400), 1024) == (300, 400)
    with pytest.raises(ValueError, match="working_size"):
        P.predict(stack, [0.2, 0.4, 0.8], model=uniform, working_size=-5)


def test_upsampled_depth_and_sigma_match_the_full_resolution_answer():
    # identical frames, so the all-in-focus image is the frame whatever the probabilities; p_0 = its grey level
    # makes depth = 2 - grey m, an affine map of the guide, which guided upsampling reproduces at full resolution
    import scipy.ndimage as ndi

    rng = np.random.default_rng(6)
    frame = np.clip((ndi.gaussian_filter(rng.random((3, 96, 128)), (0, 3, 3)) - 0.5) * 12 + 0.5, 0, 1).astype(np.float32)
    stack = np.stack([frame, frame])
    model = FixedProb(lambda s: torch.stack([P._grey(s[:, 0]), 1 - P._grey(s[:, 0])], dim=1))
    full = P.predict(stack, [1.0, 2.0], model=model, working_size=None)
    np.testing.assert_allclose(full.depth, 2 - P._grey(torch.from_numpy(frame)).numpy(), atol=1e-6)
    small = P.predict(stack, [1.0, 2.0], model=model, working_size=64)
    assert small.working_size == (48, 64) and small.depth.shape == (96, 128)
    assert np.abs(small.depth - full.depth).mean() < 0.01 and np.abs(small.sigma - full.sigma).mean() < 0.04  # 0.005, 0.018
    assert small.depth.min() >= 1.0 and small.depth.max() <= 2.0 and small.sigma.min() >= 0.0


_MEMORY_SCRIPT = """
import resource, sys, numpy as np, scipy.ndimage, torch
import dflib.align, dflib.io, dflib.models.dualfocus, tqdm.auto  # what predict imports, loaded before measuring
from dflib.predict import predict


class PerPixel(torch.nn.Module):  # a network that costs no memory of its own
    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.ones(1))

    def forward(self, stack, focus):
        return {"prob": torch.softmax(self.w * stack.mean(2), dim=1)}


model = PerPixel()
stack = np.random.default_rng(0).random((5, 3, 1500, 2000), dtype=np.float32)  # 3 MP, 172 MiB
rss = lambda: int(open("/proc/self/statm").read().split()[1]) * resource.getpagesize() / 2**20
base = rss()
out = predict(stack, [0.1, 0.15, 0.3, 0.7, 1.5], model=model, working_size=256, progress=False)
assert out.depth.shape == (1500, 2000) and out.aif.shape == (3, 1500, 2000)
# VmHWM, not ru_maxrss: after fork + exec, Linux's ru_maxrss keeps the parent's size (a big pytest worker)
hwm = [l for l in open("/proc/self/status") if l.startswith("VmHWM:")][0]
print(base, int(hwm.split()[1]) / 1024)
"""


def test_full_resolution_work_is_banded():
    # Measured in a subprocess: peak resident memory over what the stack takes, with a stand-in network
    # that needs none. At full resolution there must be only the outputs (aif, depth, σ: 57 MiB at 3 MP),
    # bands of 2**18 pixels (~30 MiB) and first-call overheads (~40 MiB): 115-135 MiB measured. A copy of
    # the stack (172 MiB) or full-resolution probabilities (57 MiB) on top would exceed the bound.
    import subprocess
    import sys

    res = subprocess.run([sys.executable, "-c", _MEMORY_SCRIPT], capture_output=True, text=True, check=True)
    base, peak = map(float, res.stdout.split())
    assert peak - base < 165, f"peak {peak:.0f} MiB over {base:.0f} MiB with the stack loaded"


def test_training_range_note_follows_the_models_training_data() -> None:
    """Embedded-data weights: a note for a focus range or frame count off FoD500's; diverse weights: only N."""
    fod = np.array([0.1, 0.15, 0.3, 0.7, 1.5])
    assert P.training_range_note(fod, "m", 5) is None
    far = P.training_range_note(np.array([0.5, 1.0, 2.0, 4.0, np.inf]), "m", 5)
    assert far is not None and "0.5 to inf m" in far
    assert "7 frames" in P.training_range_note(np.linspace(0.1, 1.5, 7), "m", 7)
    assert "focused at 0.1 to 3 m" in P.training_range_note(np.array([0.1, 0.15, 0.3, 0.7, 3.0]), "m", 5)
    assert "focused at 0.05 to 1.5 m" in P.training_range_note(np.array([20.0, 10, 5, 2, 1 / 1.5]), "diopter", 5)
    diverse = {"data": "diverse", "data_options": {"span_m": 1.4}}
    assert P.training_range_note(np.array([0.5, 1.0, 2.0, 4.0, np.inf]), "m", 5, diverse) is None
    for n in (3, 10):
        assert P.training_range_note(np.linspace(1, 2, n), "m", n, diverse) is None
    note = P.training_range_note(np.linspace(1, 2, 12), "m", 12, diverse)
    assert note is not None and "3 to 10 frames" in note and "12 frames" in note
    fewer = {"data": "diverse", "data_options": {"n_planes": (4, 6)}}  # the model's own range, not the default's
    assert "4 to 6 frames" in P.training_range_note(np.linspace(1, 2, 3), "m", 3, fewer)


def test_breathing_order_note_flags_index_frames_that_magnify_toward_far_focus():
    from dflib.predict import breathing_order_note

    growing = [0.871, 0.880, 0.896, 0.915, 0.928, 0.942, 0.957, 0.970, 0.985, 1.0]  # a real phone stack, given far to near
    note = breathing_order_note(np.array(growing), "index")
    assert note is not None and "0.8710 to 1.0000" in note and "--focus 10 9 ... 1" in note and "rail" in note
    for n in (3, 4, 6):  # up to 6 frames the reversed order is written out
        rev = " ".join(str(i) for i in range(n, 0, -1))
        assert f"--focus {rev})" in breathing_order_note(np.array(growing[:n]) / growing[n - 1], "index")
    assert breathing_order_note(np.array(growing[::-1]), "index") is None  # near to far: magnifies toward near
    assert breathing_order_note(np.array(growing), "m") is None  # metres carry their own order
    assert breathing_order_note(np.array([1.0, 1.001, 1.002, 1.004]), "index") is None  # under 0.5 %: no breathing
    assert breathing_order_note(np.array([1.0, 1.002, 1.004, 1.007]), "index") is not None  # 0.7 %: breathing
    assert breathing_order_note(np.array([1.0, 1.03, 0.99, 1.02, 1.01]), "index") is None  # no steady trend


def test_max_sigma_leaves_no_depth_where_the_focus_spreads_over_planes(tmp_path):
    """Left half on one plane (σ = 0 planes), right half split between the end planes of 5 (σ = 2 planes)."""
    import json

    import imageio.v3 as iio

    stack = np.random.default_rng(5).random((5, 3, 8, 12), dtype=np.float32)
    pred = P.predict(stack, [1, 2, 3, 4, 5], model=FixedProb(_halves), focus_unit="index", working_size=None)
    np.testing.assert_allclose(pred.plane_sigma(), np.where(np.arange(12) < 6, 0.0, 2.0)[None].repeat(8, 0), atol=1e-6)
    paths = P.write_prediction(tmp_path / "d.png", pred, max_sigma=1.5)
    depth, png = np.load(paths["npy"]), iio.imread(paths["png"])
    assert np.isnan(depth[:, 6:]).all() and (png[:, 6:] == 0).all()
    np.testing.assert_allclose(depth[:, :6], 1.0)  # plane 0 = index 1, kept
    assert (png[:, :6] == 1000).all()
    preview = iio.imread(paths["preview"])
    assert (preview[:, 6:] == 128).all() and not (preview[:, :6] == 128).all()
    assert json.loads(paths["json"].read_text())["mask"] == {"max_sigma_planes": 1.5, "masked_share": 0.5}
    np.testing.assert_allclose(np.load(paths["sigma"]), pred.sigma)  # σ itself keeps every pixel
    assert not np.isnan(np.load(P.write_prediction(tmp_path / "e.png", pred, max_sigma=2.5)["npy"])).any()


def test_uncertain_note_suggests_max_sigma_when_much_of_the_frame_is_above_one_plane(tmp_path):
    import json

    stack = np.random.default_rng(5).random((5, 3, 8, 12), dtype=np.float32)
    pred = P.predict(stack, [1, 2, 3, 4, 5], model=FixedProb(_halves), focus_unit="index", working_size=None)
    said = []
    paths = P.write_prediction(tmp_path / "d.png", pred, log=said.append)
    assert json.loads(paths["json"].read_text())["sigma_above_1_plane"] == 0.5
    assert any("above one focus plane over 50% of the frame" in line and "--max-sigma 1" in line for line in said)
    said.clear()
    P.write_prediction(tmp_path / "d.png", pred, max_sigma=1.0, log=said.append)  # asked for: the mask line only
    assert not any("note:" in line for line in said) and any(line.startswith("mask: 50.0%") for line in said)
    assert P.uncertain_note(pred.prob, share=0.5) == (None, 0.5)  # at the share itself: no note
    assert P.uncertain_note(pred.prob[:, :, :6]) == (None, 0.0)


def test_plane_sigma_is_upsampled_from_the_working_size():
    stack = np.random.default_rng(6).random((5, 3, 40, 60), dtype=np.float32)
    pred = P.predict(stack, [1, 2, 3, 4, 5], model=FixedProb(_halves), focus_unit="index", working_size=30)
    ps = pred.plane_sigma()
    assert pred.working_size == (20, 30) and ps.shape == (40, 60)
    np.testing.assert_allclose(ps[:, :28], 0.0, atol=1e-6)
    np.testing.assert_allclose(ps[:, 32:], 2.0, atol=1e-6)
