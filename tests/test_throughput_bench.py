"""benchmarks/bench_throughput.py: a smoke run records the thread count it timed on."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import benchmark_scripts
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
    gflop = {r: d["gflop_per_step"]["total"] for r, d in result["recipes"].items()}
    assert gflop["tiny_dualfocus"] > gflop["tiny_dfv"] > 0 and gflop["mid_dualfocus_blindenc"] > gflop["mid_dfv"]
    assert result["arithmetic"]["gflop_ratio"] == pytest.approx(gflop["tiny_dualfocus"] / gflop["tiny_dfv"])
    bad = subprocess.run([sys.executable, str(script), "--threads", "0", "--out", str(out)],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "--threads" in bad.stderr


def test_operation_count_sees_the_oneDNN_convolutions():
    # 2 x (output voxels) x C_out x C_in x 27 for a 3x3x3 convolution, forward; its backward twice that
    # (input and weight gradients); the counter knows no formula for oneDNN's op, which the patch routes around
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    import dflib.models.blocks as blocks

    bench = benchmark_scripts.load("bench_throughput")
    conv = blocks.Conv3d(8, 4, 3, padding=1, bias=False)
    x = torch.randn(2, 8, 3, 6, 5, requires_grad=True)
    forward = 2 * (2 * 3 * 6 * 5) * 4 * 8 * 27
    with bench._countable_convolutions(), FlopCounterMode(display=False) as counter:
        conv(x).sum().backward()
    assert counter.get_total_flops() == 3 * forward
    assert blocks.conv3d.__name__ == "conv3d"  # restored


def test_arithmetic_reads_the_extra_work_rate():
    bench = benchmark_scripts.load("bench_throughput")
    # DFV: 10 GFLOP in 1 s; DualFocus: 12 GFLOP in 1.25 s -> the extra 2 GFLOP took 0.25 s: 8 GFLOP/s against 10
    a = bench._arithmetic({"gflop_per_step": {"total": 12.0}, "median_step_s": 1.25},
                          {"gflop_per_step": {"total": 10.0}, "median_step_s": 1.0}, target=1.2)
    assert a["gflop_ratio"] == pytest.approx(1.2) and a["extra_gflop"] == pytest.approx(2.0)
    assert a["extra_rate_over_dfv_rate"] == pytest.approx(0.8)
    assert a["extra_rate_over_dfv_rate_for_target"] == pytest.approx(1.0)  # at the DFV rate the ratio is 1.2
