"""Each real-data loader on a tiny format-faithful fixture written here (no network)."""

from __future__ import annotations

from types import SimpleNamespace

import h5py
import imageio.v3 as iio
import numpy as np
import OpenEXR
import pytest
import tifffile
import torch
from scipy.io import savemat

from dflib.data.common import AugmentConfig, DatasetNotFoundError
from dflib.data import data_dir, fetch
from dflib.data.ddff12 import DDFF12_DISPARITIES_DFV, DDFF12_DISPARITIES_EXACT, DDFF12Dataset, disparity_to_depth
from dflib.data.fod500 import FOD500_FOCUS_M, FoD500Dataset
from dflib.data.mobile_depth import MobileDepthDataset
from dflib.data import nyu
from dflib.data.arkitscenes import ARKitScenesStacksDataset, convert_upsampling


# ------------------------------------------------------------------ FoD500
def _write_fod(folder, ids, h=16, w=20):
    rng = np.random.default_rng(0)
    truth = {}
    for i in ids:
        imgs = rng.integers(0, 256, (5, h, w, 3), dtype=np.uint8)
        for k in range(5):
            tifffile.imwrite(folder / f"{i:06d}_{k:02d}All.tif", imgs[k])
        depth = rng.uniform(0.1, 2.0, (h, w)).astype(np.float16)
        depth[0, 0] = 0
        chans = {c: np.ascontiguousarray(depth) for c in "RGB"}
        chans["G"] = np.zeros_like(depth)
        OpenEXR.File({"compression": OpenEXR.ZIP_COMPRESSION, "type": OpenEXR.scanlineimage}, chans).write(str(folder / f"{i:06d}Dpt.exr"))
        truth[i] = (imgs, depth)
    return truth


def test_fod500(tmp_path):
    truth = _write_fod(tmp_path, [3, 401])
    train, test = FoD500Dataset(tmp_path, "train"), FoD500Dataset(tmp_path, "test")
    assert (len(train), len(test)) == (1, 1)
    s = test[0]
    imgs, depth = truth[401]
    assert s["stack"].shape == (5, 3, 16, 20)
    assert torch.equal((s["stack"] * 255).round().to(torch.uint8), torch.from_numpy(imgs).permute(0, 3, 1, 2))
    assert s["focus"].tolist() == pytest.approx(FOD500_FOCUS_M)
    assert torch.equal(s["depth"][0], torch.from_numpy(depth.astype(np.float32)))  # R channel, exact float16 values
    assert not s["mask"][0, 0, 0] and s["mask"].sum() == 16 * 20 - 1
    aug = FoD500Dataset(tmp_path, "train", n_planes=3, augment=AugmentConfig(crop=(8, 8)), seed=1)
    a = aug[0]
    assert a["stack"].shape == (3, 3, 8, 8) and torch.all(a["focus"][1:] > a["focus"][:-1])
    assert set(a["focus"].tolist()) <= set(torch.tensor(FOD500_FOCUS_M).tolist())
    assert torch.equal(aug[0]["stack"], a["stack"])  # deterministic for (seed, epoch, index)
    capped = FoD500Dataset(tmp_path, "test", max_depth=1.0)[0]
    assert bool((capped["depth"][capped["mask"]] <= 1.0).all()) and float(capped["depth"].max()) <= 1.0


def test_fod500_missing(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="fetch_fod500.py"):
        FoD500Dataset(tmp_path / "nope")
    with pytest.raises(DatasetNotFoundError, match="fetch_fod500.py"):
        FoD500Dataset(tmp_path)  # exists, but empty


def test_dflib_fetch_verifies_and_unpacks_a_hand_downloaded_fod500(tmp_path, capsys):
    import zipfile

    from dflib.cli import main

    assert main(["fetch", "fod500", "--dest", str(tmp_path)]) == 1  # not downloaded yet: the instructions, no traceback
    said = capsys.readouterr().out
    assert "MISSING" in said and "fs_6.zip" in said and "dflib fetch fod500 --dest DIR" in said
    src = tmp_path / "release"
    src.mkdir()
    truth = _write_fod(src, [7, 420])
    (tmp_path / "fod500").mkdir()
    with zipfile.ZipFile(tmp_path / "fod500" / "fs_6.zip", "w") as z:  # the release unpacks into one folder
        for f in sorted(src.iterdir()):
            z.write(f, f"fs_6/{f.name}")
    with pytest.warns(UserWarning, match="first use"):
        assert main(["fetch", "fod500", "--dest", str(tmp_path)]) == 0
    assert "1 train / 1 test stacks" in capsys.readouterr().out
    s = FoD500Dataset(data_dir("fod500", tmp_path / "fod500"), "test")[0]
    assert torch.equal((s["stack"] * 255).round().to(torch.uint8), torch.from_numpy(truth[420][0]).permute(0, 3, 1, 2))
    with pytest.raises(ValueError, match="option.*frames.*do not apply"):
        fetch("fod500", tmp_path, frames=3)
    # then evaluate on it from the command line, as the error for a folder without it says
    out = ["--out", str(tmp_path / "eval")]
    assert main(["eval", "--sff", "lapv", "--dataset", "fod500", "--data-dir", str(tmp_path / "nope"), *out]) == 2
    assert "--data-dir DIR/fod500" in capsys.readouterr().err
    assert main(["eval", "--sff", "lapv", "--dataset", "fod500", "--data-dir", str(tmp_path / "fod500"), *out]) == 0
    assert "| fod500 | sff-lapv | fod500 | 5 | 1 |" in capsys.readouterr().out


# ------------------------------------------------------------------ DDFF-12
def _write_ddff(path, s=3, h=10, w=14, float_stack=False):
    rng = np.random.default_rng(1)
    stacks = rng.integers(0, 256, (s, 10, h, w, 3), dtype=np.uint8)
    disp = rng.uniform(0.0202, 0.2825, (s, h, w)).astype(np.float32)
    disp[:, 0, :] = 0
    with h5py.File(path, "w") as f:
        for split in ("train", "val"):
            f.create_dataset(f"stack_{split}", data=stacks.astype(np.float32) if float_stack else stacks)
            f.create_dataset(f"disp_{split}", data=disp)
    return stacks, disp


def test_ddff12(tmp_path):
    stacks, disp = _write_ddff(tmp_path / "ddff-dataset-trainval.h5")
    with h5py.File(tmp_path / "ddff-dataset-test.h5", "w") as f:
        f.create_dataset("stack_test", data=stacks[:2])
    ds = DDFF12Dataset(tmp_path, "val")
    assert ds.variant == "official" and len(ds) == 3
    s = ds[1]
    assert torch.all(s["focus"][1:] > s["focus"][:-1])  # ascending disparity
    # file plane 0 (disparity 0.28, nearest) is the last plane after reordering
    assert torch.equal((s["stack"][-1] * 255).round().to(torch.uint8), torch.from_numpy(stacks[1, 0]).permute(2, 0, 1))
    assert s["focus"][-1] == pytest.approx(0.28) and s["focus"][0] == pytest.approx(0.02)
    assert not s["mask"][0, 0].any() and s["mask"][0, 1:].all()
    assert torch.allclose(s["depth"][0, 1:], torch.from_numpy(disp[1, 1:]))
    raw = DDFF12Dataset(tmp_path, "val", ascending=False)[1]
    assert torch.equal(raw["stack"], s["stack"].flip(0)) and raw["focus"][0] == pytest.approx(0.28)
    test = DDFF12Dataset(tmp_path, "test")[0]
    assert not test["mask"].any() and test["stack"].shape == (10, 3, 10, 14)
    # DFV training: 5 of 10 planes, sorted, focus values follow their planes
    tr = DDFF12Dataset(tmp_path, "train", n_planes=5, augment=AugmentConfig(crop=(8, 8)), seed=0)
    full = DDFF12Dataset(tmp_path, "train")
    a = tr[0]
    assert a["focus"].shape == (5,) and torch.all(a["focus"][1:] > a["focus"][:-1])
    idx = [int(torch.argmin((full.focus - f).abs())) for f in a["focus"]]
    assert a["focus"].tolist() == pytest.approx(full.focus[idx].tolist())
    assert a["stack"].shape == (5, 3, 8, 8)


def test_ddff12_dfv_variant_and_exact_focus(tmp_path):
    stacks, _ = _write_ddff(tmp_path / "my_ddff_trainVal.h5", float_stack=True)
    ds = DDFF12Dataset(tmp_path, "train", focus_values="exact")
    assert ds.variant == "dfv"
    s = ds[0]
    assert torch.equal((s["stack"][0] * 255).round().to(torch.uint8), torch.from_numpy(stacks[0, -1]).permute(2, 0, 1))
    # exact disparities: planes uniform in disparity for depths 0.5..7 m
    assert DDFF12_DISPARITIES_EXACT[0] == pytest.approx(0.2825, abs=2e-4) and DDFF12_DISPARITIES_EXACT[-1] == pytest.approx(0.0202, abs=2e-4)
    assert float(disparity_to_depth(torch.tensor(DDFF12_DISPARITIES_EXACT[0]))) == pytest.approx(0.5, rel=1e-6)
    assert np.allclose(np.diff(DDFF12_DISPARITIES_DFV), -0.26 / 9)


def test_ddff12_pickles_without_handle(tmp_path):
    import pickle

    _write_ddff(tmp_path / "ddff-dataset-trainval.h5")
    ds = DDFF12Dataset(tmp_path, "train")
    ds[0]  # opens the file
    clone = pickle.loads(pickle.dumps(ds))
    assert clone._h5 is None and torch.equal(clone[2]["stack"], ds[2]["stack"])
    with pytest.raises(DatasetNotFoundError, match="fetch_ddff12.py"):
        DDFF12Dataset(tmp_path / "none")


# ------------------------------------------------------------------ NYU
def _stub_render(rgb, depth, camera, focus_m, noise=True, seed=0):
    """Stub renderer: plane n = AIF scaled by (n+1)/N, so the test can tell planes apart."""
    n = len(focus_m)
    imgs = torch.stack([rgb * (k + 1) / n for k in range(n)])
    return SimpleNamespace(images=imgs, focus_m=torch.as_tensor(focus_m), depth=depth, aif=rgb)


def _write_labeled_mat(path, n=4, h=480, w=640):
    rng = np.random.default_rng(2)
    rgb = rng.integers(0, 256, (n, h, w, 3), dtype=np.uint8)
    depth = rng.uniform(0.7, 9.0, (n, h, w)).astype(np.float32)
    depth[:, h // 2, w // 2] = 12.0  # beyond the valid range
    with h5py.File(path, "w") as f:  # MATLAB v7.3 layout: transposed
        f.create_dataset("images", data=rgb.transpose(0, 3, 2, 1))  # [N,3,W,H]
        f.create_dataset("depths", data=depth.transpose(0, 2, 1))  # [N,W,H]
    return rgb, depth


def test_nyu_convert_and_load(tmp_path):
    rgb, depth = _write_labeled_mat(tmp_path / "nyu_depth_v2_labeled.mat")
    savemat(tmp_path / "splits.mat", {"testNdxs": np.array([[2], [4]]), "trainNdxs": np.array([[1], [3]])})
    assert nyu.read_split_indices(tmp_path / "splits.mat", "test").tolist() == [1, 3]
    paths = nyu.convert_labeled_mat(tmp_path / "nyu_depth_v2_labeled.mat", tmp_path / "splits.mat", tmp_path,
                                    camera=SimpleNamespace(focal_length_m=0.05, f_number=8.0, pixel_pitch_m=12e-6),
                                    render_fn=_stub_render, progress=False)
    assert [p.name for p in paths] == ["nyu_test_gt_range_n5.h5", "nyu_test_fixed_n5.h5"]
    ds = nyu.NYUStacksDataset(tmp_path, "test", "gt_range")
    assert len(ds) == 2
    s = ds[1]  # labeled index 3
    crop_d = depth[3, 48:432, 64:576]
    assert s["stack"].shape == (5, 3, 384, 512) and s["depth"].shape == (1, 384, 512)
    # top plane of the stub is the AIF: pixels equal the centre crop of the source RGB
    assert torch.equal((s["stack"][-1] * 255).round().to(torch.uint8), torch.from_numpy(rgb[3, 48:432, 64:576]).permute(2, 0, 1))
    valid = crop_d < 10
    assert s["mask"][0].numpy().tolist() == valid.tolist() and float(s["depth"][0, 192, 256]) == 0.0
    assert s["focus"][0] == pytest.approx(crop_d[valid].min()) and s["focus"][-1] == pytest.approx(crop_d[valid].max())
    assert np.allclose(np.diff(s["focus"].numpy()), np.diff(s["focus"].numpy())[0], rtol=1e-5)
    fixed = nyu.NYUStacksDataset(tmp_path, "test", "fixed")[0]
    assert fixed["focus"].tolist() == pytest.approx(nyu.NYU_FIXED_FOCUS_M)
    with h5py.File(paths[0]) as f:
        assert f["stack"].dtype == np.uint8 and f["index"][:].tolist() == [1, 3] and f.attrs["protocol"] == "gt_range"
    with pytest.raises(DatasetNotFoundError, match="fetch_nyu.py"):
        nyu.NYUStacksDataset(tmp_path, "test", "gt_range", rendered_planes=10)


def test_nyu_real_renderer_small(tmp_path):
    render = pytest.importorskip("dflib.render")
    from dflib.optics import NYU_CAMERA

    rgb = np.random.default_rng(3).integers(0, 256, (24, 32, 3), dtype=np.uint8)
    depth = np.full((24, 32), 2.0, np.float32)
    depth[:, 16:] = 5.0
    out = nyu.render_stacks_to_h5([(0, rgb, depth)], tmp_path / "x.h5", 1, NYU_CAMERA, "gt_range", 5, crop=(16, 24),
                                  render_fn=render.render_focal_stack, progress=False)
    with h5py.File(out) as f:
        assert f["stack"].shape == (1, 5, 16, 24, 3) and f["focus"][0].tolist() == pytest.approx(np.linspace(2, 5, 5).tolist())


# ------------------------------------------------------------------ Mobile Depth
def test_mobile_depth(tmp_path):
    rng = np.random.default_rng(4)
    for scene, n in (("keyboard", 4), ("plants/aligned", 3)):
        d = tmp_path / scene
        d.mkdir(parents=True)
        for k in range(n):
            iio.imwrite(d / f"a{k:02d}.png", rng.integers(0, 256, (6, 8, 3), dtype=np.uint8))
    np.savetxt(tmp_path / "plants/aligned/focus.txt", [0.5, 0.7, 0.9])
    ds = MobileDepthDataset(tmp_path)
    assert ds.scenes == ["keyboard", "plants__aligned"]
    s = ds[0]
    assert s["stack"].shape == (4, 3, 6, 8) and s["focus"].tolist() == [0, 1, 2, 3]
    assert not s["mask"].any() and not s["depth"].any()
    assert ds[1]["focus"].tolist() == pytest.approx([0.5, 0.7, 0.9])
    with pytest.raises(DatasetNotFoundError, match="fetch_mobile_depth.py"):
        MobileDepthDataset(tmp_path / "none")


# ------------------------------------------------------------------ ARKitScenes
def test_arkitscenes_convert_and_load(tmp_path):
    rng = np.random.default_rng(5)
    vid = tmp_path / "src" / "111"
    (vid / "wide").mkdir(parents=True)
    (vid / "highres_depth").mkdir()
    for t in range(3):
        iio.imwrite(vid / "wide" / f"111_{t}.000.png", rng.integers(0, 256, (480, 640, 3), dtype=np.uint8))
        dm = np.full((480, 640), 2500, np.uint16)
        dm[:10] = 0
        iio.imwrite(vid / "highres_depth" / f"111_{t}.000.png", dm)
    paths = convert_upsampling(tmp_path / "src", tmp_path / "out", ["111"], frames_per_video=2,
                               camera=SimpleNamespace(focal_length_m=0.05, f_number=8.0, pixel_pitch_m=12e-6),
                               protocols=("fixed",), render_fn=_stub_render, progress=False)
    assert paths[0].name == "arkitscenes_test_fixed_n5.h5"
    ds = ARKitScenesStacksDataset(tmp_path / "out", protocol="fixed")
    assert len(ds) == 2
    s = ds[0]
    assert s["stack"].shape == (5, 3, 384, 512) and torch.allclose(s["depth"][s["mask"]], torch.tensor(2.5))
    with pytest.raises(DatasetNotFoundError, match="fetch_arkitscenes.py"):
        ARKitScenesStacksDataset(tmp_path / "out", protocol="gt_range")
