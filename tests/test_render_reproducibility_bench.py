"""benchmarks/render_reproducibility.py: a smoke run on two stacks per split."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.slow
def test_render_reproducibility_bench_compares_both_samplers(tmp_path):
    script = Path(__file__).parents[1] / "benchmarks" / "render_reproducibility.py"
    out = tmp_path / "rr.json"
    subprocess.run([sys.executable, str(script), "--stacks", "2", "--draws", "1", "--scored", "2", "--out", str(out)],
                   check=True, capture_output=True, text=True)
    result = json.loads(out.read_text())
    assert result["cpu"] and set(result["samplers"]) == {"gaussian", "poisson"}
    for shot, splits in result["samplers"].items():
        assert set(splits) == {"embedded", "diverse"}
        for r in splits.values():
            assert r["stacks"] == 2 and 0 <= r["values_off_by_a_level_or_more"] <= r["worst_stack_values_off"] <= 1
            assert r["depth_mean_abs_diff_span"] <= r["depth_worst_stack_mean_abs_diff_span"]
    # the default sampler: whatever MKL's code path, a seed renders the same stacks to one level here and there
    for r in result["samplers"]["gaussian"].values():
        assert r["max_levels"] <= 1.0 + 1e-6 and r["values_off_by_a_level_or_more"] < 1e-3
        assert r["depth_mean_abs_diff_span"] < 1e-3
    draws = result["draws"]
    assert (draws["model"], draws["stacks"], draws["draws"]) == ("dfv_mid", 2, 1)
    for split in ("embedded", "diverse", "held_out"):
        d = draws[split]
        assert len(d["gaussian"]) == len(d["poisson"]) == 1 and 0 < d["gaussian"][0] < 1
        assert d["gaussian_minus_poisson"] == d["gaussian"][0] - d["poisson"][0] and d["ci95"] is None  # one draw
