"""benchmarks/bench_ablation.py: the seed-paired statistics and the report's splits."""

from __future__ import annotations

from pathlib import Path

import benchmark_scripts
import numpy as np
import pytest


@pytest.fixture(scope="module")
def bench():
    return benchmark_scripts.load("bench_ablation")


def test_paired_ci_is_the_student_t_interval_of_the_per_seed_differences(bench):
    # differences 1, 2, 3 (seed 9 only in a: left out): mean 2, sd 1, t_{0.975, 2} = 4.302653
    d = bench.paired_ci({0: 2.0, 1: 4.0, 2: 6.0, 9: 0.0}, {0: 1.0, 1: 2.0, 2: 3.0})
    half = 4.302653 / np.sqrt(3)
    assert d["seeds"] == [0, 1, 2] and d["mean"] == pytest.approx(2.0)
    assert d["ci95"] == pytest.approx([2.0 - half, 2.0 + half], rel=1e-6)
    one = bench.paired_ci({0: 1.0}, {0: 0.5})
    assert one["mean"] == 0.5 and all(np.isnan(one["ci95"]))  # one seed: no interval


def test_report_shows_every_scored_split_with_its_paired_differences(bench):
    def part(split, a, b):
        variants = {name: {"seeds": [0, 1], "params": [10], **{k: list(v) for k in
                                                             ("rmse", "rmse_span", "bump", "rmse_edge")}}
                    for name, v in (("dualfocus", a), ("dfv", b))}
        return {"split": split, "test_stacks": 4, "variants": variants,
                "paired": bench.paired_differences(variants, bench.PAIRS)}

    result = {**part("test (embedded, TEST_SEED)", (0.30, 0.32), (0.31, 0.35)), "steps": 10, "cpu": "cpu",
              "command": "python benchmarks/bench_ablation.py", "best_sff": {},
              "in_distribution": part("diverse test", (0.2, 0.2), (0.1, 0.1)),
              "held_out": part("held-out test", (0.5, 0.7), (0.6, 0.9))}
    assert result["paired"]["dualfocus-dfv"]["mean"] == pytest.approx(-0.02)
    assert result["held_out"]["paired"]["dualfocus-dfv"]["mean"] == pytest.approx(-0.15)
    assert "dualfocus-dfv:rmse_span" in result["paired"] and "dualfocus-dfv:rmse_textured" not in result["paired"]
    md = bench.markdown(result)
    assert md.index("4 stacks (test (embedded") < md.index("own distribution") < md.index("held-out split")
    assert "| dualfocus-dfv | -0.0200 |" in md and "| dualfocus-dfv | +0.1000 |" in md
    assert "| dualfocus-dfv | -0.1500 |" in md


def test_recorded_ladders_are_read_split_by_split_and_flaws_are_named(bench):
    from dflib.ladders import ladder_parts, ladder_problems

    variants = {name: {"seeds": [0, 1, 2], "rmse": list(v), "rmse_span": list(v)}
                for name, v in (("dualfocus", (0.30, 0.32, 0.31)), ("dfv", (0.31, 0.35, 0.30)))}
    part = {"test_stacks": 96, "variants": variants, "paired": bench.paired_differences(variants, bench.PAIRS)}
    ladder = {**part, "held_out": part}
    assert [(label, metric) for label, _, metric in ladder_parts(ladder)] == [
        ("embedded", "rmse"), ("held-out", "rmse_span")]
    assert ladder_problems(part) == []
    flawed = {"test_stacks": 24, "variants": {"dfv": {"seeds": [0, 1], "rmse": [0.3]}},
              "paired": {"a-b": {"mean": 0.5, "ci95": [0.0, 0.1]}}}
    assert ladder_problems(flawed) == ["24 test stacks < 96", "dfv: 2 seeds < 3", "dfv: 1 RMSEs for 2 seeds",
                                       "a-b: mean +0.5 outside its interval [+0, +0.1]"]
    # every split of every ladder, prefixed; a ladder not run yet (None) is skipped
    from dflib.ladders import ladders_problems, pair_lines

    assert ladders_problems({"ok": ladder, "missing": None}) == []
    assert ladders_problems({"bad": {**flawed, "held_out": part}})[0] == "bad embedded: 24 test stacks < 96"
    # one line per ladder, split and pair, in metres on the embedded split and per span on the held-out one
    lines = pair_lines({"x": ladder, "missing": None}, {"dualfocus-dfv": "branch", "dualfocus-unscored": "no rung"})
    assert len(lines) == 2 and "(m)" in lines[0] and "(of the span)" in lines[1]
    # the per-seed differences are -0.01, -0.03, +0.01: mean -0.01
    assert "-0.0100 [" in lines[0] and "over seeds [0, 1, 2]" in lines[0]


def test_heldout_family_breakdown_is_the_per_span_difference_grouped_by_family():
    module = benchmark_scripts.load("heldout_families")
    from dflib.data.diverse import DiverseConfig, DiverseFocalStackDataset

    data = DiverseFocalStackDataset(6, (256, 256), DiverseConfig(split="heldout"), seed=7)
    specs = [data.spec(i) for i in range(6)]
    span = np.array([max(s.focus_m) - min(s.focus_m) for s in specs])
    rng = np.random.default_rng(0)
    a, b = rng.uniform(0.01, 0.1, (2, 6)), rng.uniform(0.01, 0.1, (2, 6))
    ladder = {"held_out": {"test_stacks": 6, "variants": {
        "dualfocus": {"seeds": [0, 1], "rmse_per_stack": a.tolist()},
        "dfv": {"seeds": [1, 0], "rmse_per_stack": b.tolist()}}}}  # seeds listed in another order: paired by seed
    out = module.family_differences(ladder, seed=7)
    diff = (a - b[::-1]) / span
    assert out["all"]["stacks"] == 6 and out["all"]["per_seed"] == pytest.approx(diff.mean(1).tolist())
    for family in {s.family for s in specs}:
        idx = [i for i, s in enumerate(specs) if s.family == family]
        assert out[family]["per_seed"] == pytest.approx(diff[:, idx].mean(1).tolist())
        assert out[family]["ci95"][0] <= out[family]["mean"] <= out[family]["ci95"][1]
    # the two-way split of the same per-span differences, paired by seed
    from dflib.ladders import seed_stack_noise

    assert module.noise_split(ladder, seed=7) == pytest.approx(seed_stack_noise(diff))


def test_seed_stack_noise_splits_the_spread_of_per_seed_means():
    from dflib.ladders import seed_stack_noise

    # by hand: per-seed means 2, 5; stack means 1.5, 5.5; residuals ±1, so MS_res = 4 and MS_seed = 2 · 4.5 = 9
    out = seed_stack_noise(np.array([[1.0, 3.0], [2.0, 8.0]]))
    assert out == pytest.approx({"seeds": 2, "stacks": 2, "between_seed_sd": np.sqrt(4.5),
                                 "seed_sd": np.sqrt((9 - 4) / 2), "stack_noise_sd": np.sqrt(4 / 2)})
    rng = np.random.default_rng(0)
    alpha, beta = rng.normal(0, 0.01, (5, 1)), rng.normal(0, 0.05, (1, 96))
    # seed and stack effects without interaction: all of the spread is the training path's
    out = seed_stack_noise(0.002 + alpha + beta)
    assert out["stack_noise_sd"] == pytest.approx(0, abs=1e-12)
    assert out["seed_sd"] == pytest.approx(alpha.std(ddof=1)) == pytest.approx(out["between_seed_sd"])
    # interaction noise only (sigma 0.04 per stack): on a mean over 400 stacks 0.002, and no seed effect beyond it
    out = seed_stack_noise(beta.mean() + rng.normal(0, 0.04, (40, 400)))
    assert out["stack_noise_sd"] == pytest.approx(0.04 / np.sqrt(400), rel=0.05)
    assert out["seed_sd"] < out["stack_noise_sd"]
    with pytest.raises(ValueError, match="seeds, stacks"):
        seed_stack_noise(np.zeros(5))


def test_seeds_for_halfwidth_is_the_first_n_whose_t_interval_fits():
    from dflib.ladders import paired_ci, seeds_for_halfwidth

    # by hand: n = 15 gives 2.1448 * 0.0075 / sqrt(15) = 0.00415, n = 16 gives 2.1314 * 0.0075 / 4 = 0.00400
    assert seeds_for_halfwidth(0.0075, 0.004) == 16
    assert seeds_for_halfwidth(0.0, 0.001) == 2
    # the interval paired_ci draws over that many seeds with exactly that SD is as narrow as asked
    d = np.resize([1.0, -1.0], 16) * 0.0075 * np.sqrt(15 / 16)  # 16 values of mean 0 and sample SD 0.0075
    ci = paired_ci(dict(enumerate(d)), dict.fromkeys(range(16), 0.0))["ci95"]
    assert ci[1] == pytest.approx(0.004, abs=5e-6)
    with pytest.raises(ValueError, match="halfwidth"):
        seeds_for_halfwidth(0.01, 0.0)
    with pytest.raises(ValueError, match="more than 10"):
        seeds_for_halfwidth(1.0, 0.01, max_seeds=10)


def test_two_by_two_effects_are_the_averaged_paired_differences(bench):
    # x(fv, branch) per seed; seed 3 lacks one rung and is left out of every effect
    cells = {"dfv": (0.30, 0.40, 0.50, 9.0), "dfv+fv": (0.28, 0.36, 0.50, 9.0),
             "dualfocus_nofv": (0.34, 0.42, 0.52, 9.0), "dualfocus": (0.30, 0.40, 0.50)}
    variants = {n: {"seeds": list(range(len(v))), "rmse": list(v)} for n, v in cells.items()}
    paired = bench.paired_differences(variants, bench.PAIRS)
    # per seed: fv = [(dfv+fv - dfv) + (df - df_nofv)] / 2 = (-0.03, -0.03, -0.01)
    #           branch = [(df_nofv - dfv) + (df - dfv+fv)] / 2 = (0.03, 0.03, 0.01)
    #           interaction = (df - df_nofv) - (dfv+fv - dfv) = (-0.02, 0.02, -0.02)
    fv, branch, inter = (paired[k] for k in ("fv main effect", "branch main effect", "fv x branch interaction"))
    assert fv["seeds"] == branch["seeds"] == inter["seeds"] == [0, 1, 2]
    assert fv["mean"] == pytest.approx(-0.07 / 3) and branch["mean"] == pytest.approx(0.07 / 3)
    assert inter["mean"] == pytest.approx(-0.02 / 3)
    half = 4.302653 * np.std([-0.03, -0.03, -0.01], ddof=1) / np.sqrt(3)
    assert fv["ci95"] == pytest.approx([-0.07 / 3 - half, -0.07 / 3 + half], rel=1e-5)
    assert "fv main effect:rmse_span" not in paired  # no rung had rmse_span
    del variants["dualfocus_nofv"]
    assert "fv main effect" not in bench.paired_differences(variants, bench.PAIRS)  # three rungs: no design


def test_generalisation_candidates_never_land_in_the_readme_table(tmp_path):
    """bench_generalisation.py --candidate needs its own --out and the scores part: the shipped table stays the shipped models'."""
    import subprocess
    import sys

    script = Path(__file__).parents[1] / "benchmarks" / "bench_generalisation.py"
    out = ["--out", str(tmp_path / "c.json")]
    for extra in ([], [*out, "--part", "all"], [*out, "--part", "scores", "--candidate", "no-equals-sign"]):
        r = subprocess.run([sys.executable, str(script), "--candidate", "x=run/last.pt", *extra], capture_output=True, text=True)
        assert r.returncode == 2 and "--candidate" in r.stderr
    assert not (tmp_path / "c.json").exists()


def test_surface_reliance_by_family_pairs_per_family_means_over_seeds():
    sr = benchmark_scripts.load("surface_reliance")
    families = {"held_out": ["crease", "relief", "crease"]}
    # variant "df": per stack own / zero / rotated; reference "ref": own only; seeds 0 and 1
    runs = {"df": {"0": {"held_out": {"per_stack": {"own": [0.1, 0.5, 0.3], "zero": [0.2, 0.5, 0.4],
                                                     "rotated": [0.3, 0.9, 0.3]}}},
                   "1": {"held_out": {"per_stack": {"own": [0.2, 0.4, 0.2], "zero": [0.2, 0.6, 0.2],
                                                     "rotated": [0.2, 0.4, 0.6]}}}},
            "ref": {"0": {"held_out": {"per_stack": {"own": [0.1, 0.1, 0.1]}}},
                    "1": {"held_out": {"per_stack": {"own": [0.0, 0.2, 0.2]}}}}}
    table = sr.by_family(runs, "df", ["ref", "absent"], families)
    crease, relief = table["held_out"]["crease"], table["held_out"]["relief"]
    assert crease["stacks"] == 2 and relief["stacks"] == 1
    # crease own: seed 0 mean(0.1, 0.3) = 0.2, seed 1 mean(0.2, 0.2) = 0.2; zero: 0.3 and 0.2
    assert crease["rmse_span"]["own"] == pytest.approx(0.2) and crease["rmse_span"]["zero"] == pytest.approx(0.25)
    assert crease["zero - own"]["mean"] == pytest.approx(0.05) and crease["zero - own"]["seeds"] == [0, 1]
    # crease against ref: seed 0 0.2 - 0.1, seed 1 0.2 - 0.1 -> 0.1 with a zero-width interval
    assert crease["df - ref"]["mean"] == pytest.approx(0.1) and crease["df - ref"]["ci95"] == pytest.approx([0.1, 0.1])
    assert relief["rotated - own"]["mean"] == pytest.approx((0.4 + 0.0) / 2)
    assert "df - absent" not in crease
    md = sr.markdown({"runs": {}, "paired_over_seeds": {}, "by_family": {"stage1": table}, "variant": "df",
                      "split": "validation", "cpu": "test", "command": "x"})
    assert "| held_out | crease | 2 | 0.2000 |" in md and "+0.1000 [+0.1000, +0.1000]" in md
    # --recorded: reference runs missing here come from an earlier result on the same stacks, and are named
    result = {"split": "validation", "runs": {"stage1": {"df": runs["df"]}}}
    sr.add_recorded(result, {"split": "validation", "runs": {"stage1": {"ref": runs["ref"], "df": {}}}},
                    "stage1", ["ref", "absent"], "old.json")
    assert result["runs"]["stage1"]["ref"] is runs["ref"] and result["runs"]["stage1"]["df"] is runs["df"]
    assert result["recorded"] == {"stage1": ["ref"]}
    with pytest.raises(SystemExit, match="not 'validation'"):
        sr.add_recorded(result, {"split": "other stacks", "runs": {}}, "stage1", ["ref"], "old.json")


@pytest.mark.slow
def test_graft_continues_each_dfv_fv_run_in_two_arms_that_start_alike(tmp_path):
    """bench_ablation.py --graft --quick: both arms start from the seed's dfv+fv run; the grafted arm starts as it."""
    import json
    import subprocess
    import sys

    import torch

    from dflib.train import TrainConfig, load_model

    script = Path(__file__).parents[1] / "benchmarks" / "bench_ablation.py"
    args = [sys.executable, str(script), "--size", "tiny", "--quick", "--jobs", "1", "--runs", str(tmp_path / "runs"),
            "--out", str(tmp_path / "out")]
    bad = subprocess.run([*args, "--graft"], capture_output=True, text=True)  # the default rungs: refused
    assert bad.returncode == 2 and "--graft" in bad.stderr
    subprocess.run([*args, "--variants", "dfv+fv", "--graft"], check=True, capture_output=True, text=True)
    result = json.loads((tmp_path / "out" / "ladder_quick.json").read_text())
    assert set(result["variants"]) == {"dfv+fv", "dfv+fv_cont", "dualfocus_graft"}
    assert {"dualfocus_graft-dfv+fv_cont", "dfv+fv_cont-dfv+fv"} <= set(result["paired"])
    base = tmp_path / "runs" / "ladder" / "dfv+fv_s0" / "last.pt"
    for arm in ("dfv+fv_cont", "dualfocus_graft"):
        cfg = TrainConfig.load(tmp_path / "runs" / "graft" / f"{arm}_s0" / "config.json")
        assert cfg.init == str(base) and cfg.init_graft == (arm == "dualfocus_graft") and cfg.seed == 0
    trained = load_model(tmp_path / "runs" / "graft" / "dualfocus_graft_s0" / "last.pt", "cpu")
    assert trained.config.surface_branch and torch.count_nonzero(trained.decoder.down[0][0][0].weight[:, 32:]) > 0


@pytest.mark.slow
def test_probe_reads_each_runs_frozen_encoder_with_a_fresh_baseline_decoder(tmp_path):
    """bench_ablation.py --probe --quick: one probe per rung and seed, on that run's encoder; only probes scored."""
    import json
    import subprocess
    import sys

    import torch

    from dflib.train import TrainConfig, load_model

    script = Path(__file__).parents[1] / "benchmarks" / "bench_ablation.py"
    args = [sys.executable, str(script), "--size", "tiny", "--quick", "--jobs", "1", "--runs", str(tmp_path / "runs"),
            "--out", str(tmp_path / "out"), "--variants", "dfv+fv", "dualfocus"]
    bad = subprocess.run([*args, "--probe", "--graft"], capture_output=True, text=True)
    assert bad.returncode == 2 and "--probe" in bad.stderr
    subprocess.run([*args, "--probe"], check=True, capture_output=True, text=True)
    result = json.loads((tmp_path / "out" / "ladder_quick.json").read_text())
    assert set(result["variants"]) == {"dfv+fv_probe", "dualfocus_probe"}
    assert result["variants"]["dualfocus_probe"]["recipe"] == "tiny_dfv_fv"
    assert "dualfocus_probe-dfv+fv_probe" in result["paired"]
    for rung in ("dfv+fv", "dualfocus"):
        cfg = TrainConfig.load(tmp_path / "runs" / "probe" / f"{rung}_s0" / "config.json")
        source = tmp_path / "runs" / "ladder" / f"{rung}_s0" / "last.pt"
        assert cfg.probe_encoder == str(source) and cfg.model == "dfv_tiny" and cfg.seed == 0
        probe = load_model(tmp_path / "runs" / "probe" / f"{rung}_s0" / "last.pt", "cpu")
        assert not probe.config.surface_branch
        assert all(torch.equal(v, load_model(source, "cpu").encoder.state_dict()[k])
                   for k, v in probe.encoder.state_dict().items())


def test_recorded_rungs_join_a_new_one_only_on_the_same_split(bench):
    new = {"dualfocus_sdrop": {"seeds": [0, 1, 2], "rmse": [0.29, 0.30, 0.31]}}
    means = [0.4 + 1e-3 * i for i in range(96)]
    recorded = {"split": "test (embedded, TEST_SEED)", "test_stacks": 96, "stack_means": means,
                "variants": {"dualfocus": {"seeds": [0, 1, 2], "rmse": [0.30, 0.32, 0.31]},
                             "dualfocus_sdrop": {"seeds": [0], "rmse": [9.0]}}}
    merged = bench.with_recorded(new, recorded, "test (embedded, TEST_SEED)", means, "old.json")
    assert merged["dualfocus_sdrop"] is new["dualfocus_sdrop"]  # a rung scored here wins over the recorded one
    assert merged["dualfocus"]["recorded"] == "old.json" and "recorded" not in recorded["variants"]["dualfocus"]
    d = bench.paired_differences(merged, [("dualfocus_sdrop", "dualfocus")])["dualfocus_sdrop-dualfocus"]
    assert d["mean"] == pytest.approx(-0.01) and d["seeds"] == [0, 1, 2]
    assert bench.with_recorded(new, None, "x", means, None) is new  # no --recorded: unchanged
    # more seeds of a recorded rung: merged seed by seed, every per-seed list kept in seed order
    more = {"dualfocus": {"recipe": "r", "changes": {}, "seeds": [4, 3], "rmse": [0.5, 0.4], "only_here": [1, 2]}}
    old = {**recorded, "variants": {"dualfocus": {"recipe": "r", "changes": {}, "seeds": [0, 1, 2],
                                                  "rmse": [0.30, 0.32, 0.31]}}}
    five = bench.with_recorded(more, old, "test (embedded, TEST_SEED)", means, "old.json")["dualfocus"]
    assert five["seeds"] == [0, 1, 2, 3, 4] and five["rmse"] == [0.30, 0.32, 0.31, 0.4, 0.5]
    assert "only_here" not in five and five["recorded_seeds"] == {"seeds": [0, 1, 2], "source": "old.json"}
    with pytest.raises(SystemExit, match="another recipe"):
        bench.with_recorded({"dualfocus": {**more["dualfocus"], "recipe": "other"}}, old,
                            "test (embedded, TEST_SEED)", means, "old.json")
    for split, m, part in (("test (embedded, TEST_SEED)", means + [0.5] * 48, recorded), ("other", means, recorded),
                           ("test (embedded, TEST_SEED)", means, None)):
        with pytest.raises(SystemExit, match="not the one scored here"):
            bench.with_recorded(new, part, split, m, "old.json")
    # the same split on other stacks (another draw of the noise moves a stack's mean by ~1e-5), or recorded before
    # the stacks' means were: refused; a difference of rounding (1e-8) is the same stacks
    redrawn = [*means[:5], means[5] + 2e-5, *means[6:]]
    with pytest.raises(SystemExit, match="stacks are not the ones scored here"):
        bench.with_recorded(new, recorded, "test (embedded, TEST_SEED)", redrawn, "old.json")
    rounded = [m + 1e-8 for m in means]
    assert "dualfocus" in bench.with_recorded(new, recorded, "test (embedded, TEST_SEED)", rounded, "old.json")
    unfingerprinted = {k: v for k, v in recorded.items() if k != "stack_means"}
    with pytest.raises(SystemExit, match="without its stacks' means"):
        bench.with_recorded(new, unfingerprinted, "test (embedded, TEST_SEED)", means, "old.json")
