"""dflib.data.common: data dir, checksums (published / first use), samples, augmentation."""

from __future__ import annotations

import json

import numpy as np
import pooch
import pytest
import torch

from dflib.data import common as C


def test_data_dir_resolution(monkeypatch, tmp_path):
    monkeypatch.setenv(C.ENV_VAR, str(tmp_path / "env"))
    assert C.data_dir(tmp_path / "x") == tmp_path / "x"
    assert C.data_dir() == tmp_path / "env"
    monkeypatch.delenv(C.ENV_VAR)
    assert C.data_dir() == pooch.os_cache("dflib")


def test_not_found_message_names_script(tmp_path):
    err = C.DatasetNotFoundError("FoD500", tmp_path, "fetch_fod500.py")
    assert isinstance(err, FileNotFoundError)
    assert "python data_scripts/fetch_fod500.py --dest DIR" in str(err)


def test_published_hash_mismatch_reported(tmp_path):
    f = tmp_path / "a.bin"
    f.write_bytes(b"hello")
    good = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"  # sha256(b"hello")
    assert C.verify_sha256(f, good) == good
    f.write_bytes(b"hellO")
    with pytest.raises(C.ChecksumMismatchError, match="checksum mismatch") as ei:
        C.verify_sha256(f, "sha256:" + good)
    assert ei.value.expected == good and ei.value.actual != good


def test_trust_on_first_use_manual_file(tmp_path):
    entry = {"fname": "data.zip", "url": None, "sha256": None, "dataset": "X", "script": "fetch_x.py", "instructions": "get it"}
    with pytest.raises(C.DatasetNotFoundError, match="fetch_x.py"):
        C.fetch_file(entry, tmp_path, log=lambda s: None)
    (tmp_path / "data.zip").write_bytes(b"abc")
    with pytest.warns(UserWarning, match="first use"):
        C.fetch_file(entry, tmp_path, log=lambda s: None)
    local = json.loads((tmp_path / C.LOCAL_REGISTRY_NAME).read_text())
    assert local["data.zip"] == C.file_sha256(tmp_path / "data.zip")
    C.fetch_file(entry, tmp_path, log=lambda s: None)  # verifies, no warning needed
    (tmp_path / "data.zip").write_bytes(b"abd")  # corrupted later
    with pytest.raises(C.ChecksumMismatchError, match="first-use"):
        C.fetch_file(entry, tmp_path, log=lambda s: None)


def test_pooch_redownloads_corrupt_file_with_fake_downloader(tmp_path):
    payload = b"the real file"
    calls = []

    def fake_download(url, output_file, pooch_obj):
        calls.append(url)
        with open(output_file, "wb") as fh:
            fh.write(payload)

    entry = {"fname": "f.bin", "url": "https://example.invalid/f.bin", "sha256": None}
    with pytest.warns(UserWarning):
        C.fetch_file(entry, tmp_path, downloader=fake_download, progressbar=False, log=lambda s: None)
    (tmp_path / "f.bin").write_bytes(b"truncated")  # corrupt: hash now mismatches the first-use record
    C.fetch_file(entry, tmp_path, downloader=fake_download, progressbar=False, log=lambda s: None)
    assert (tmp_path / "f.bin").read_bytes() == payload and len(calls) == 2
    bad = {"fname": "g.bin", "url": "https://example.invalid/g.bin", "sha256": "0" * 64}
    with pytest.raises(C.ChecksumMismatchError):
        C.fetch_file(bad, tmp_path, downloader=fake_download, progressbar=False, log=lambda s: None)


def test_registry_entries_well_formed():
    reg = C.load_registry()
    for name, e in reg.items():
        if name.startswith("_"):
            continue
        assert {"fname", "url", "sha256", "script"} <= set(e), name
        assert e["url"] or e.get("instructions"), f"{name}: manual entries need instructions"
        assert e["sha256"] is None or len(e["sha256"]) == 64


def _sample(n=5, h=12, w=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    stack = torch.rand(n, 3, h, w, generator=g)
    depth = torch.rand(1, h, w, generator=g) + 0.5
    depth[0, :2] = 0  # invalid rows
    return C.make_sample(stack, torch.linspace(1, 2, n), depth)


def test_make_sample_conventions():
    s = C.make_sample(np.full((2, 4, 5, 3), 255, np.uint8), [1, 2], np.array([[0, np.nan, 1, 2, 3]] * 4, np.float32))
    assert s["stack"].shape == (2, 3, 4, 5) and s["stack"].dtype == torch.float32 and float(s["stack"].max()) == 1.0
    assert s["mask"].dtype == torch.bool and s["mask"][0, 0].tolist() == [False, False, True, True, True]
    assert float(s["depth"][0, 0, 1]) == 0.0  # NaN -> 0, invalid
    with pytest.raises(ValueError, match="focus"):
        C.make_sample(np.zeros((2, 4, 5, 3), np.uint8), [1, 2, 3], None)


def test_plane_choice():
    assert C.choose_planes(10, 5).tolist() == [0, 2, 4, 7, 9]
    assert C.choose_planes(5, None).tolist() == [0, 1, 2, 3, 4]
    for i in range(20):
        idx = C.choose_planes(10, 5, C.sample_generator(3, 0, i))
        assert len(set(idx.tolist())) == 5 and idx.tolist() == sorted(idx.tolist())
    with pytest.raises(ValueError, match="n_planes"):
        C.choose_planes(5, 6)


def test_augmentation_deterministic_and_consistent():
    s = _sample()
    cfg = C.AugmentConfig(crop=(8, 10), p_flip=0.5)
    a = C.augment_sample(s, cfg, C.sample_generator(1, 2, 3))
    b = C.augment_sample(s, cfg, C.sample_generator(1, 2, 3))
    assert all(torch.equal(a[k], b[k]) for k in a)
    outs = {tuple(C.augment_sample(s, cfg, C.sample_generator(1, e, 3))["stack"].flatten()[:4].tolist()) for e in range(8)}
    assert len(outs) > 1  # epochs differ
    # identical geometry: plant the depth map as channel 0 of every plane, it must follow exactly
    s2 = dict(s, stack=s["depth"].expand(5, 1, 12, 16).repeat(1, 3, 1, 1).clone())
    for e in range(16):
        o = C.augment_sample(s2, C.AugmentConfig(crop=(7, 9)), C.sample_generator(0, e, 0))
        assert o["stack"].shape == (5, 3, 7, 9) and o["depth"].shape == (1, 7, 9)
        assert torch.equal(o["stack"][:, 0], o["depth"].expand(5, 7, 9))
        assert torch.equal(o["mask"], o["depth"] > 0)
    with pytest.raises(ValueError, match="crop"):
        C.augment_sample(s, C.AugmentConfig(crop=(13, 4)), C.sample_generator(0, 0, 0))


def test_min_valid_fraction_rejects_invalid_crops():
    s = _sample(h=12, w=16)  # rows 0-1 invalid
    cfg = C.AugmentConfig(crop=(2, 16), min_valid_fraction=1.0, crop_tries=200, hflip=False, vflip=False)
    for i in range(10):
        assert bool(C.augment_sample(s, cfg, C.sample_generator(0, 0, i))["mask"].all())


def test_synthetic_data_takes_the_same_augmentation():
    from dflib.data import AugmentConfig, SyntheticFocalStackDataset

    plain = SyntheticFocalStackDataset(2, size=(48, 40), seed=5)[1]
    cfg = AugmentConfig(crop=(24, 16), hflip=False, vflip=False)
    ds = SyntheticFocalStackDataset(2, size=(48, 40), seed=5, augment=cfg)
    a = ds[1]
    assert a["stack"].shape == (5, 3, 24, 16) and a["aif"].shape == (3, 24, 16) and a["depth"].shape == (1, 24, 16)
    # the crop is a window of the unaugmented sample, the same window for every image of the sample
    top, left = [(t, l) for t in range(25) for l in range(25)
                 if torch.equal(plain["depth"][..., t:t + 24, l:l + 16], a["depth"])][0]
    for k in ("stack", "mask", "aif"):
        assert torch.equal(plain[k][..., top:top + 24, left:left + 16], a[k]), k
    assert all(torch.equal(a[k], ds[1][k]) for k in a)  # deterministic
    ds.set_epoch(1)
    assert not torch.equal(ds[1]["depth"], a["depth"])  # another epoch, another window
