"""benchmarks/bench_throughput.py: a smoke run records the thread count it timed on."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.slow
def test_throughput_bench_times_on_the_threads_it_was_given(tmp_path):
    script = Path(__file__).parents[1] / "benchmarks" / "bench_throughput.py"
    out = tmp_path / "throughput.json"
    subprocess.run([sys.executable, str(script), "--quick", "--rounds", "1", "--threads", "1", "--device", "cpu",
                    "--out", str(out)], check=True, capture_output=True, text=True)
    result = json.loads(out.read_text())
    assert result["threads"] == 1 and result["rounds"] == 1 and result["cpu"]
    assert set(result["recipes"]) == {"tiny_dualfocus", "tiny_dfv", "mid_dualfocus_blindenc", "mid_dfv"}
    tiny = result["recipes"]["tiny_dualfocus"]
    assert 0 < tiny["projection_share"] < 1 and tiny["median_step_s"] > 0
    assert "projection_share" not in result["recipes"]["tiny_dfv"]  # no surface branch, nothing to project
    bad = subprocess.run([sys.executable, str(script), "--threads", "0", "--out", str(out)],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "--threads" in bad.stderr
