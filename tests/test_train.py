"""dflib.train: config validation and (de)serialisation, determinism, exact resume, checkpoints."""

from __future__ import annotations

import json

import pytest
import torch

from dflib.train import TrainConfig, build_datasets, load_model, train

SMALL = dict(size=(32, 32), train_scenes=4, val_scenes=2, batch_size=2, steps=6, warmup_steps=2,
             log_every=2, val_every=3, ckpt_every=3)


def _cfg(tmp_path, name, **kw):
    return TrainConfig(out_dir=str(tmp_path / name), **{**SMALL, **kw})


@pytest.mark.parametrize("field,value", [("lr", -1.0), ("batch_size", 0), ("model", "huge"), ("size", (8, 8)),
                                         ("lambda_sv", float("nan")), ("schedule", "step"), ("n_planes", 1)])
def test_bad_config_values_name_the_field(field, value):
    with pytest.raises(ValueError, match=f"TrainConfig.{field}"):
        TrainConfig(**{field: value})


def test_unknown_config_field_is_an_error():
    with pytest.raises(ValueError, match="unknown field.*learning_rate"):
        TrainConfig.from_dict({"learning_rate": 1e-3})


@pytest.mark.parametrize("suffix", [".json", ".yaml"])
def test_config_roundtrip(tmp_path, suffix):
    cfg = TrainConfig(model="dfv_tiny", size=(48, 64), lambda_fv=0.5, seed=3)
    cfg.save(tmp_path / f"c{suffix}")
    assert TrainConfig.load(tmp_path / f"c{suffix}") == cfg


def test_same_seed_same_numbers_and_files(tmp_path):
    a = train(_cfg(tmp_path, "a"), progress=False)
    b = train(_cfg(tmp_path, "b"), progress=False)
    assert a.val_metrics and a.val_metrics == b.val_metrics
    assert [r["total"] for r in a.history] == [r["total"] for r in b.history]
    c = train(_cfg(tmp_path, "c", seed=1), progress=False)
    assert c.val_metrics != a.val_metrics
    for name in ("config.json", "log.csv", "last.pt", "final_metrics.json"):
        assert (tmp_path / "a" / name).is_file()
    assert TrainConfig.load(tmp_path / "a" / "config.json") == _cfg(tmp_path, "a")
    logged = json.loads((tmp_path / "a" / "final_metrics.json").read_text())
    assert logged["step"] == 6 and logged["val"] == a.val_metrics


def test_resume_is_bit_for_bit(tmp_path):
    full = train(_cfg(tmp_path, "full"), progress=False)
    part = train(_cfg(tmp_path, "resumed"), progress=False, stop_after=3)
    assert part.step == 3
    rest = train(_cfg(tmp_path, "resumed"), resume=True, progress=False)
    assert rest.step == 6
    s_full = torch.load(tmp_path / "full" / "last.pt", weights_only=True)
    s_res = torch.load(tmp_path / "resumed" / "last.pt", weights_only=True)
    for k, v in s_full["model"].items():
        assert torch.equal(v, s_res["model"][k]), k
    assert rest.val_metrics == full.val_metrics


def test_checkpoint_loads_with_weights_only_and_predicts(tmp_path):
    res = train(_cfg(tmp_path, "a", steps=2, val_scenes=0), progress=False)
    state = torch.load(res.out_dir / "last.pt", weights_only=True)
    assert {"model", "model_config", "train_config", "optimizer", "scheduler", "step"} <= set(state)
    model = load_model(res.out_dir / "last.pt", "cpu")
    out = model(torch.rand(1, 5, 3, 32, 32), torch.tensor([[0.1, 0.15, 0.3, 0.7, 1.5]]))
    assert out["depth"].shape == (1, 1, 32, 32)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_model(tmp_path / "missing.pt")


def test_on_log_sees_every_logged_row(tmp_path):
    rows = []
    res = train(_cfg(tmp_path, "a", val_scenes=0), progress=False, on_log=rows.append)
    assert [r["step"] for r in rows] == [2, 4, 6] and rows == res.history
    assert all(r["total"] >= r["depth"] >= 0 for r in rows)


def test_a_fresh_run_in_a_used_folder_starts_a_fresh_log(tmp_path):
    cfg = _cfg(tmp_path, "a", val_scenes=0)
    train(cfg, progress=False)
    train(cfg, progress=False)
    lines = (tmp_path / "a" / "log.csv").read_text().splitlines()
    assert len(lines) == 1 + 3  # header + steps 2, 4, 6 once


def test_rendered_pool_is_cached_on_disk_and_reused(tmp_path):
    from torch.utils.data import Dataset

    from dflib.data import CachedDataset, SyntheticFocalStackDataset

    class Refuses(Dataset):
        def __len__(self):
            return 2

        def __getitem__(self, i):
            raise AssertionError("a cached pool must not be rendered again")

    cfg = TrainConfig(model="dfv_tiny", size=(32, 32), train_scenes=2, val_scenes=1, cache_dir=str(tmp_path / "cache"))
    train_set, val_set = build_datasets(cfg)
    files = sorted((tmp_path / "cache").glob("synthetic_*.pt"))
    assert len(files) == 2 and any("_s0_n2_32x32_p5_" in f.name for f in files)
    again = CachedDataset(Refuses(), cache_file=next(f for f in files if "_s0_" in f.name))
    for a, b in zip(train_set.items, again.items):
        assert all(torch.equal(a[k], b[k]) for k in a)
    fresh = SyntheticFocalStackDataset(2, size=(32, 32), n_planes=5, seed=0)[1]
    assert torch.equal(fresh["stack"], again[1]["stack"])
