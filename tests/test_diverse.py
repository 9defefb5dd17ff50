"""dflib.data.diverse, dflib.scene_families and dflib.data.batching: the physics of the diverse
stacks (cameras, blur, focus sets), the held-out split, determinism, and batches of equal N."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, Subset

import dflib.scenes
from dflib.data.batching import bucketed_batches, ordered_batches, plane_counts
from dflib.data.diverse import (
    CAMERA_BOX,
    HELD_OUT_CAMERAS,
    HELD_OUT_FAMILIES,
    HELD_OUT_TEXTURES,
    TRAIN_TEXTURES,
    DiverseConfig,
    DiverseFocalStackDataset,
    coc_range_px,
)
from dflib.optics import FOD500_CAMERA, FOD500_DEPTH_MAX_M, FOD500_FOCUS_M, ThinLens
from dflib.scene_families import FAMILIES, family_scene
from dflib.scenes import TEXTURES
from dflib.train import TrainConfig, train
from dflib.train_data import batches_for_epoch

TRAIN = DiverseFocalStackDataset(64, (32, 32), seed=3)
HELD = DiverseFocalStackDataset(32, (32, 32), DiverseConfig(split="heldout"), seed=3)


@pytest.mark.parametrize("ds", [TRAIN, HELD], ids=["train", "heldout"])
def test_largest_coc_is_in_range_and_is_the_thin_lens_blur_of_the_far_end_seen_from_the_near_focus(ds):
    for i in range(len(ds)):
        s = ds.spec(i)
        f = np.asarray(s.focus_m)
        assert 3.0 - 1e-9 <= s.max_coc_px <= 25.0 + 1e-9
        cam = s.camera
        # hand-worked: c = A f (1/S_1 - 1/S_N) / (p (1 - f/S_1))
        by_hand = cam.aperture_m * cam.focal_length_m * (1 / f[0] - 1 / f[-1]) / (cam.pixel_pitch_m * (1 - cam.focal_length_m / f[0]))
        assert s.max_coc_px == pytest.approx(by_hand, rel=1e-9)
        # no pair (depth in the focus range, focus plane) blurs more
        depths = np.linspace(f[0], f[-1], 50)
        assert cam.coc_px(depths[:, None], f[None]).max() <= s.max_coc_px * (1 + 1e-9)


def test_rendered_depth_lies_in_the_focus_range_so_no_pixel_blurs_more_than_the_largest_coc():
    for i in range(4):
        s, x = TRAIN.spec(i), TRAIN[i]
        d = x["depth"][0][x["mask"][0]].double()
        assert float(d.min()) >= s.focus_m[0] * (1 - 1e-6) and float(d.max()) <= s.focus_m[-1] * (1 + 1e-6)
        assert float(s.camera.coc_px(d[:, None], x["focus"].double()[None]).max()) <= s.max_coc_px * (1 + 1e-4)
        assert x["stack"].shape == (len(s.focus_m), 3, 32, 32) and x["stack"].dtype == torch.float32


def test_depth_past_the_focus_set_changes_only_the_depth_range_and_renders_past_the_planes():
    """beyond_prob draws after everything else: camera, focus, scene and noise stay those of the plain sample."""
    cfg = DiverseConfig(beyond_prob=1.0, beyond_frac=0.5)
    past = DiverseFocalStackDataset(6, (48, 48), cfg, seed=3)
    plain = DiverseFocalStackDataset(6, (48, 48), DiverseConfig(), seed=3)
    outside = 0
    for i in range(6):
        a, b = past.spec(i), plain.spec(i)
        assert (a.camera, a.focus_m, a.family, a.scene_seed, a.noise) == (b.camera, b.focus_m, b.family, b.scene_seed, b.noise)
        near, far = a.depth_range_m
        z0, z1 = cfg.depth_envelope_m
        assert z0 * (1 - 1e-9) <= near <= a.focus_m[0] and a.focus_m[-1] <= far <= z1 * (1 + 1e-9)
        span = 1 / a.focus_m[0] - 1 / a.focus_m[-1]  # dioptres; each side reaches at most half of it further
        assert 1 / near - 1 / a.focus_m[0] <= 0.5 * span + 1e-9 and 1 / a.focus_m[-1] - 1 / far <= 0.5 * span + 1e-9
        x = past[i]
        d = x["depth"][0][x["mask"][0]]
        assert float(d.min()) >= near * (1 - 1e-5) and float(d.max()) <= far * (1 + 1e-5)
        outside += int(((d < a.focus_m[0] * (1 - 1e-3)) | (d > a.focus_m[-1] * (1 + 1e-3))).sum())
    assert outside > 0  # some pixels really lie past the planes
    heldout = DiverseFocalStackDataset(6, (48, 48), DiverseConfig(split="heldout", beyond_prob=1.0))
    assert all(heldout.spec(i).depth_m is None for i in range(6))  # the held-out split is never changed


def test_fod500_samples_are_the_embedded_setting_scaled_like_the_rest():
    ds = DiverseFocalStackDataset(4, (48, 48), DiverseConfig(fod500_prob=1.0, span_m=2.8), seed=1)
    for i in range(4):
        s = ds.spec(i)
        assert s.family == "classic" and s.camera_name == "fod500" and s.scale == pytest.approx(2.0)
        assert s.focus_m == pytest.approx(tuple(2 * f for f in FOD500_FOCUS_M))
        assert s.depth_range_m == pytest.approx((2 * FOD500_FOCUS_M[0], 2 * FOD500_DEPTH_MAX_M))
        assert s.camera.f_number == FOD500_CAMERA.f_number and s.camera.focal_length_m == pytest.approx(2 * 2.9e-3)
        assert s.max_coc_px == pytest.approx(FOD500_CAMERA.coc_px(FOD500_FOCUS_M[-1], FOD500_FOCUS_M[0]))
    assert ds[0]["stack"].shape == (5, 3, 48, 48)


def test_middlebury_crops_replace_some_fod500_samples_and_leave_the_others_unchanged():
    cfg = DiverseConfig(fod500_prob=1.0, fod500_middlebury=0.5, span_m=2.8)
    mixed = DiverseFocalStackDataset(16, (48, 48), cfg, seed=2)
    plain = DiverseFocalStackDataset(16, (48, 48), DiverseConfig(fod500_prob=1.0, span_m=2.8), seed=2)
    mb = [i for i in range(16) if mixed.spec(i).family == "middlebury"]
    assert 0 < len(mb) < 16
    scene = dflib.scenes.middlebury_motorcycle()
    for i in range(16):
        a, b = mixed.spec(i), plain.spec(i)
        assert (a.camera, a.focus_m, a.scene_seed, a.noise, a.scale) == (b.camera, b.focus_m, b.scene_seed, b.noise, b.scale)
        if i not in mb:
            assert a == b
    x, s = mixed[mb[0]], mixed.spec(mb[0])
    d = x["depth"][0][x["mask"][0]]
    # the whole crop lies past the last plane, in the scaled world (2 x 2.11-5.02 m)
    assert float(d.min()) > s.focus_m[-1] and float(d.min()) >= 2 * 2.11 * (1 - 1e-3) and float(d.max()) <= 2 * 5.02
    # and it is a crop of the real scene: its depth map appears verbatim (times the scale) in the scene's
    crop = dflib.scenes.middlebury_crop(scene, (48, 48), np.random.default_rng(s.scene_seed))
    assert np.allclose(x["depth"][0].numpy(), 2 * crop.depth * (crop.depth > 0), rtol=1e-6)
    assert s.depth_range_m == pytest.approx((2 * 2.11, 2 * 5.02))


def test_focus_sets_are_strictly_increasing_inside_the_envelope_with_3_to_10_planes():
    uniform = irregular = 0
    for ds in (TRAIN, HELD):
        for i in range(len(ds)):
            f = np.asarray(ds.spec(i).focus_m)
            assert 3 <= len(f) <= 10
            assert np.all(np.diff(f) > 0) and f[0] >= 0.1 * (1 - 1e-12) and f[-1] <= 3.0 * (1 + 1e-12)
            steps = np.diff(1 / f)
            if np.allclose(steps, steps[0], rtol=1e-9):
                uniform += 1  # uniform in dioptres
            else:
                irregular += 1
                assert steps.max() / steps.min() <= 1 / 0.3 + 1e-9  # gaps drawn in [0.3, 1] of each other
    assert uniform > 10 and irregular > 10


def test_fod500_camera_range_by_hand():
    # k = A f / p = (2.9 mm)^2 / 12 um = 0.70 px/dpt; 0.1-3 m spans 9.667 dpt; 1/(1 - f/0.1 m) = 1/0.971
    lo, hi = coc_range_px(FOD500_CAMERA, DiverseConfig())
    assert lo == 3.0 and hi == pytest.approx(2.9e-3**2 / 12e-6 * (10 - 1 / 3) / (1 - 2.9e-3 * 10), rel=1e-12)
    lo, hi = coc_range_px(ThinLens(2.9e-3, 8.0, 12e-6), DiverseConfig())  # f/8: at most 0.87 px, infeasible
    assert lo > hi


def test_world_scaling_keeps_the_images_and_the_blur_and_sets_the_span():
    scaled = DiverseFocalStackDataset(64, (32, 32), DiverseConfig(span_m=1.4), seed=3)
    for i in (0, 1, 2):
        s, t = TRAIN.spec(i), scaled.spec(i)
        assert t.focus_m[-1] - t.focus_m[0] == pytest.approx(1.4) and t.scale == pytest.approx(1.4 / (s.focus_m[-1] - s.focus_m[0]))
        assert np.allclose(t.focus_m, np.asarray(s.focus_m) * t.scale, rtol=1e-12)
        assert t.camera.focal_length_m == pytest.approx(s.camera.focal_length_m * t.scale) and t.camera.f_number == s.camera.f_number
        assert t.max_coc_px == pytest.approx(s.max_coc_px, rel=1e-9)  # CoC in pixels: scale-invariant
        a, b = TRAIN[i], scaled[i]
        assert torch.allclose(b["depth"], a["depth"] * t.scale, rtol=1e-5)
        assert (a["stack"] - b["stack"]).abs().max() <= 1 / 255 + 1e-6  # the same images (up to one 8-bit level)


def test_same_seed_same_sample_and_different_seed_different_sample():
    again = DiverseFocalStackDataset(64, (32, 32), seed=3)
    for i in (0, 5):
        a, b = TRAIN[i], again[i]
        assert all(torch.equal(a[k], b[k]) for k in a)
    assert TRAIN.spec(0) == again.spec(0)
    assert DiverseFocalStackDataset(64, (32, 32), seed=4).spec(0) != TRAIN.spec(0)


def test_held_out_photos_families_and_cameras_never_appear_in_training(monkeypatch):
    assert not set(HELD_OUT_TEXTURES) & set(TRAIN_TEXTURES) and not set(HELD_OUT_TEXTURES) & set(TEXTURES)
    used: set[str] = set()
    source = dflib.scenes._texture_source

    def spy(name):
        used.add(name)
        return source(name)

    monkeypatch.setattr(dflib.scenes, "_texture_source", spy)
    for i in range(len(TRAIN)):
        s = TRAIN.spec(i)
        assert s.family not in HELD_OUT_FAMILIES and s.camera_name == "random"
        if i >= 32:
            continue  # making the scenes (textures from the full-size photographs) is the costly part
        for field, (lo, hi) in CAMERA_BOX.items():
            assert lo <= getattr(s.camera, field) <= hi
        TRAIN.scene(s)
    assert used and not used & set(HELD_OUT_TEXTURES)
    used.clear()
    for i in range(16):
        s = HELD.spec(i)
        assert s.family in HELD_OUT_FAMILIES and s.camera_name in HELD_OUT_CAMERAS
        HELD.scene(s)
    assert used and used <= set(HELD_OUT_TEXTURES)
    for cam in HELD_OUT_CAMERAS.values():  # outside the training box in at least two fields
        outside = [not lo <= getattr(cam, f) <= hi for f, (lo, hi) in CAMERA_BOX.items()]
        assert sum(outside) >= 2


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_every_family_is_deterministic_and_stays_in_its_depth_range(name):
    a = family_scene(name, 7, (40, 48), (0.5, 2.0))
    b = family_scene(name, 7, (40, 48), (0.5, 2.0))
    assert np.array_equal(a.rgb, b.rgb) and np.array_equal(a.depth, b.depth)
    assert a.rgb.shape == (40, 48, 3) and 0 <= a.rgb.min() and a.rgb.max() <= 1
    assert a.depth.min() >= 0.5 and a.depth.max() <= 2.0 and np.ptp(a.depth) > 0


def test_new_texture_pool_leaves_the_embedded_scenes_unchanged():
    # random_scene draws from TEXTURES exactly as before (the embedded benchmark's numbers hold)
    scene = dflib.scenes.random_scene(11, (24, 24))
    rng = np.random.default_rng(5)
    a = dflib.scenes._random_texture((8, 8), rng, 0.0)
    b = dflib.scenes._random_texture((8, 8), np.random.default_rng(5), 0.0, TEXTURES)
    assert np.array_equal(a, b) and scene.depth.shape == (24, 24)


@pytest.mark.parametrize("field,value", [("split", "test"), ("coc_px", (0, 5)), ("n_planes", (1, 4)),
                                         ("depth_envelope_m", (2, 1)), ("noise_prob", 1.5), ("beyond_prob", -0.1),
                                         ("beyond_frac", -1.0), ("fod500_prob", 2.0),
                                         ("fod500_middlebury", -0.5)])
def test_bad_config_names_the_field(field, value):
    with pytest.raises(ValueError, match=f"DiverseConfig.{field}"):
        DiverseConfig(**{field: value})


# ----------------------------------------------------------------- batching
def test_bucketed_batches_share_n_never_repeat_and_keep_their_count_every_epoch():
    counts = plane_counts(TRAIN)
    assert counts == [len(TRAIN.spec(i).focus_m) for i in range(len(TRAIN))]
    sizes = set()
    for epoch in range(3):
        batches = bucketed_batches(counts, 3, seed=0, epoch=epoch)
        flat = [i for b in batches for i in b]
        assert len(flat) == len(set(flat))
        assert all(len(b) == 3 and len({counts[i] for i in b}) == 1 for b in batches)
        sizes.add(len(batches))
    assert len(sizes) == 1
    shards = [bucketed_batches(counts, 3, seed=0, epoch=1, rank=r, world=2) for r in (0, 1)]
    assert len(shards[0]) == len(shards[1]) and not {i for b in shards[0] for i in b} & {i for b in shards[1] for i in b}


def test_uniform_n_keeps_the_existing_batches():
    cfg = TrainConfig(batch_size=3)
    assert batches_for_epoch(20, cfg, 2, 0, 1, [5] * 20) == batches_for_epoch(20, cfg, 2, 0, 1)
    plain = [b.tolist() for b in DataLoader(range(10), batch_size=4)]
    assert ordered_batches(10, 4) == ordered_batches(10, 4, [5] * 10) == plain
    assert ordered_batches(5, 4, [3, 3, 4, 4, 4]) == [[0, 1], [2, 3, 4]]
    assert plane_counts(Subset(TRAIN, [3, 1])) == [plane_counts(TRAIN)[3], plane_counts(TRAIN)[1]]


@pytest.mark.slow
def test_training_on_diverse_stacks_runs_and_validates(tmp_path):
    cfg = TrainConfig(data="diverse", data_options={"n_planes": [3, 4], "coc_px": [3, 6]}, size=(32, 32),
                      train_scenes=6, val_scenes=3,
                      batch_size=2, steps=3, warmup_steps=1, log_every=1, val_every=3, ckpt_every=3,
                      out_dir=str(tmp_path / "run"), cache_dir=str(tmp_path / "cache"))
    result = train(cfg, progress=False)
    assert result.step == 3 and all(math.isfinite(r["total"]) for r in result.history)
    assert math.isfinite(result.val_metrics["rmse"]) and result.val_metrics["rmse"] > 0
    assert len(list((tmp_path / "cache").glob("diverse_*.pt"))) == 2


def test_a_batch_larger_than_every_plane_count_group_is_explained(tmp_path):
    # 4 items over N in {3, 4}: no N has 4 items, though the training set does
    cfg = TrainConfig(data="diverse", data_options={"n_planes": [3, 4], "coc_px": [3, 6]}, size=(32, 32),
                      train_scenes=4, val_scenes=2, batch_size=4, steps=1, warmup_steps=0,
                      out_dir=str(tmp_path / "run"), cache_dir=str(tmp_path / "cache"))
    with pytest.raises(ValueError, match=r"share a plane count N .*items per N \{3: \d, 4: \d\}"):
        train(cfg, progress=False)


def test_data_options_only_with_diverse_data_and_existing_configs_unchanged():
    with pytest.raises(ValueError, match="TrainConfig.data_options"):
        TrainConfig(data="synthetic", data_options={"n_planes": [3, 4]})
    with pytest.raises(ValueError, match="TrainConfig.data_options"):
        TrainConfig(data="diverse", data_options={"planes": [3, 4]})
    old = TrainConfig.recipe("tiny_dualfocus").to_dict()
    del old["data_options"]  # a config.json written before the field existed
    assert TrainConfig.from_dict(old) == TrainConfig.recipe("tiny_dualfocus")


@pytest.mark.parametrize("kind", ["dualfocus", "dfv", "dfv_fv", "dualfocus_nosv", "dualfocus_nofv", "dualfocus_paper"])
def test_mid_recipes_are_the_tiny_recipes_on_diverse_data_at_10k_steps(kind):
    mid, tiny = TrainConfig.recipe(f"mid_{kind}").to_dict(), TrainConfig.recipe(f"tiny_{kind}").to_dict()
    assert mid["data"] == "diverse" and mid["steps"] >= 10_000
    changed = {k for k in mid if mid[k] != tiny[k]}
    assert changed <= {"model", "data", "data_options", "steps", "train_scenes", "val_scenes", "val_every", "ckpt_every",
                       "log_every"}, changed
