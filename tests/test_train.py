"""dflib.train: config validation and (de)serialisation, determinism, exact resume, checkpoints."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import threading
import time

import benchmark_scripts
import pytest
import torch

from dflib.train import TrainConfig, TrainingInterrupted, build_datasets, load_model, train

SMALL = dict(size=(32, 32), train_scenes=4, val_scenes=2, batch_size=2, steps=6, warmup_steps=2,
             log_every=2, val_every=3, ckpt_every=3)


def _cfg(tmp_path, name, **kw):
    return TrainConfig(out_dir=str(tmp_path / name), **{**SMALL, **kw})


@pytest.mark.parametrize("field,value", [("lr", -1.0), ("batch_size", 0), ("model", "huge"), ("size", (8, 8)),
                                         ("lambda_sv", float("nan")), ("schedule", "step"), ("n_planes", 1),
                                         ("init", "")])
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


def test_resume_drops_the_log_rows_past_the_checkpoint(tmp_path):
    """A run killed after logging past its last checkpoint repeats those steps on resume: each is logged once."""
    full = train(_cfg(tmp_path, "full", val_scenes=0), progress=False)
    train(_cfg(tmp_path, "a", val_scenes=0), progress=False, stop_after=4)
    log = tmp_path / "a" / "log.csv"
    log.write_text(log.read_text() + log.read_text().splitlines()[-1].replace("4,", "6,", 1) + "\n")  # a lost step 6
    train(_cfg(tmp_path, "a", val_scenes=0), resume=True, progress=False)
    steps = [line.split(",")[0] for line in log.read_text().splitlines()[1:]]
    assert steps == ["2", "4", "6"]
    assert log.read_text() == (tmp_path / "full" / "log.csv").read_text() and full.step == 6


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


def _weights(path):
    return torch.load(path, weights_only=True)["model"]


def _assert_same_weights(a, b):
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


@pytest.mark.skipif(threading.current_thread() is not threading.main_thread(), reason="signals reach the main thread")
def test_ctrl_c_saves_the_step_reached_and_resume_is_bit_for_bit(tmp_path):
    full = train(_cfg(tmp_path, "full", val_scenes=0, ckpt_every=100), progress=False)

    def interrupt(row):
        if row["step"] == 3:
            os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C in the middle of the run

    cfg = _cfg(tmp_path, "cut", val_scenes=0, ckpt_every=100, log_every=1)
    before = signal.getsignal(signal.SIGINT)  # SIG_IGN when pytest runs in the background
    with pytest.raises(TrainingInterrupted) as stop:
        train(cfg, progress=False, on_log=interrupt)
    assert stop.value.signum == signal.SIGINT and stop.value.step == 3
    assert torch.load(stop.value.checkpoint, weights_only=True)["step"] == 3  # saved although ckpt_every=100
    assert not (tmp_path / "cut" / "final_metrics.json").exists()
    assert signal.getsignal(signal.SIGINT) is before  # handlers restored
    rest = train(cfg, resume=True, progress=False)
    assert rest.step == full.step == 6
    _assert_same_weights(_weights(tmp_path / "full" / "last.pt"), _weights(tmp_path / "cut" / "last.pt"))


def _log_rows(path):
    if not path.is_file():
        return []
    with path.open() as f:
        return list(csv.DictReader(f))


@pytest.mark.slow
def test_sigterm_to_a_training_process_then_resume_matches_an_uninterrupted_run(tmp_path):
    """A cluster pre-empts `dflib train` with SIGTERM mid-run: last.pt holds the step reached,
    the process exits 143, and --resume ends on the same weights as a run never stopped."""
    steps = 40
    common = dict(size=(32, 32), train_scenes=4, val_scenes=0, batch_size=2, steps=steps, warmup_steps=2,
                  log_every=1, ckpt_every=1000, device="cpu")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}

    TrainConfig(out_dir=str(tmp_path / "cut"), **common).save(tmp_path / "cut.json")

    def start(*extra):
        return subprocess.Popen([sys.executable, "-m", "dflib", "train", "--config", str(tmp_path / "cut.json"), *extra],
                                env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    proc = start()
    deadline = time.monotonic() + 240
    while len(_log_rows(tmp_path / "cut" / "log.csv")) < 3:  # training is under way
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "training did not start"
        time.sleep(0.02)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM, err
    state = torch.load(tmp_path / "cut" / "last.pt", weights_only=True)
    reached = state["step"]
    assert 3 <= reached < steps, reached
    assert f"stopped by SIGTERM at step {reached}" in err.strip().splitlines()[-1]
    assert len(_log_rows(tmp_path / "cut" / "log.csv")) == reached
    assert not (tmp_path / "cut" / "final_metrics.json").exists()

    resumed = start("--resume")
    assert resumed.wait(timeout=240) == 0, resumed.communicate()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as in the subprocesses: the same numbers bit for bit
    try:
        train(TrainConfig(out_dir=str(tmp_path / "full"), **common), progress=False)  # never stopped
    finally:
        torch.set_num_threads(threads)
    _assert_same_weights(_weights(tmp_path / "full" / "last.pt"), _weights(tmp_path / "cut" / "last.pt"))
    losses = [[r["total"] for r in _log_rows(tmp_path / n / "log.csv")] for n in ("full", "cut")]
    assert losses[0] == losses[1] and len(losses[0]) == steps


def test_read_log_gives_the_history_and_keeps_the_last_row_of_a_repeated_step(tmp_path):
    from dflib.train import read_log

    res = train(_cfg(tmp_path, "a", val_scenes=0), progress=False)
    log = tmp_path / "a" / "log.csv"
    assert read_log(log) == res.history and all(isinstance(r["step"], int) for r in read_log(log))
    lines = log.read_text().splitlines()
    log.write_text("\n".join([lines[0], lines[3], lines[1].replace("2,", "6,", 1), lines[1], lines[2]]) + "\n")
    rows = read_log(log)
    assert [r["step"] for r in rows] == [2, 4, 6] and rows[2]["lr"] == float(lines[1].split(",")[1])


def test_a_fine_tuned_run_ships_with_its_weights_and_both_stages_of_its_curve(tmp_path):
    """ship_weights.py: weights only (same tensors, no optimiser), the curve of stage 1 then stage 2, shifted."""

    from dflib.checkpoint import read_checkpoint
    from dflib.train import read_log, run_history

    first = train(_cfg(tmp_path, "a", val_scenes=0), progress=False)
    second = train(_cfg(tmp_path, "b", val_scenes=0, steps=4, init=str(first.out_dir / "last.pt")), progress=False)
    rows = run_history(second.out_dir)
    n1 = len(first.history)
    assert [r["stage"] for r in rows] == [0] * n1 + [1] * len(second.history)
    assert [r["step"] for r in rows] == [r["step"] for r in first.history] + [
        first.history[-1]["step"] + r["step"] for r in second.history]
    assert [r["total"] for r in rows[n1:]] == [r["total"] for r in second.history]

    ship_weights = benchmark_scripts.load("ship_weights")
    path = ship_weights.ship(second.out_dir, "mine", weights=tmp_path / "w", results=tmp_path / "r")
    shipped, trained = read_checkpoint(path), read_checkpoint(second.out_dir / "last.pt")
    assert "optimizer" not in shipped and "optimizer" in trained and shipped["step"] == trained["step"] == 4
    assert all(torch.equal(v, trained["model"][k]) for k, v in shipped["model"].items())
    assert read_log(tmp_path / "r" / "train_log_mine.csv") == rows
    unfinished = TrainConfig.load(second.out_dir / "config.json").to_dict()
    (second.out_dir / "config.json").write_text(json.dumps({**unfinished, "steps": 8}))
    with pytest.raises(ValueError, match="stopped at step 4 of 8"):
        ship_weights.ship(second.out_dir, "mine", weights=tmp_path / "w", results=tmp_path / "r")


def test_init_starts_from_a_checkpoints_weights_and_refuses_another_model(tmp_path):
    """Fine-tuning: the run's model starts as the checkpoint's (files and shipped names), never as another model."""
    from dflib.train import _start

    first = train(_cfg(tmp_path, "a", val_scenes=0), progress=False)
    src = load_model(first.out_dir / "last.pt", "cpu").state_dict()
    run = _start(_cfg(tmp_path, "b", val_scenes=0, init=str(first.out_dir / "last.pt")), resume=False)
    assert all(torch.equal(v, run.model.state_dict()[k]) for k, v in src.items())
    fresh = _start(_cfg(tmp_path, "c", val_scenes=0), resume=False)
    assert not all(torch.equal(v, fresh.model.state_dict()[k]) for k, v in src.items())
    with pytest.raises(ValueError, match="TrainConfig.init"):
        _start(_cfg(tmp_path, "d", val_scenes=0, init="dfv_tiny"), resume=False)  # SMALL trains DualFocus-tiny
    from dflib.models import load_pretrained
    from dflib.models.pretrained import pretrained_train_config

    overrides = pretrained_train_config("dualfocus_tiny")["model_overrides"]  # the shipped recipe's surface branch
    with pytest.raises(ValueError, match="TrainConfig.init"):
        _start(_cfg(tmp_path, "e", val_scenes=0, init="dualfocus_tiny"), resume=False)  # without them
    shipped = _start(_cfg(tmp_path, "e", val_scenes=0, init="dualfocus_tiny", model_overrides=overrides), resume=False)

    assert all(torch.equal(v, shipped.model.state_dict()[k]) for k, v in load_pretrained("dualfocus_tiny", "cpu").state_dict().items())
