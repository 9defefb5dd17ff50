"""benchmarks/sigma_sparsification.py on two small rendered stacks with a stand-in network: what it records holds
together (identities between its figures), and its figure is drawn."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from benchmark_scripts import load
from dflib.data.diverse import DiverseConfig, DiverseFocalStackDataset
from dflib.models.dualfocus import focus_readout

bench = load("sigma_sparsification")


class RandomFocus(nn.Module):
    """Per-pixel focus probabilities from seeded random logits (no dependence on the stack but its shape)."""

    def forward(self, stack, focus):
        g = torch.Generator().manual_seed(int(stack.shape[-1]) + int(stack.shape[1]))
        prob = torch.softmax(2 * torch.randn(stack.shape[0], stack.shape[1], *stack.shape[-2:], generator=g), dim=1)
        depth, sigma, _ = focus_readout(prob, focus)
        return {"prob": prob, "depth": depth, "sigma": sigma}


@pytest.fixture(scope="module")
def scored():
    data = DiverseFocalStackDataset(2, (32, 32), DiverseConfig(split="train"), seed=5)
    return bench.score_split({"random": RandomFocus()}, data, "test")["random"]


def test_recorded_figures_hold_together(scored):
    for kind in bench.MEASURES:
        assert scored[kind]["ause"]["mean"] >= 0  # the oracle's curve is never above any other order's
    assert set(scored["aurg_minus_sigma_metres"]) == set(bench.MEASURES) - {"sigma_metres"}
    rows = scored["thresholds"]
    shares = [r["masked_share"] for r in rows]
    assert shares == sorted(shares, reverse=True) and 0 < shares[0] <= 1
    for r in rows:  # masked ∧ off = share masked × off among them = share of the off ones caught × off among all
        if r["masked_share"] > 0:
            assert r["masked_share"] * r["off_by_1_masked"] == pytest.approx(r["off_by_1_caught"] * scored["off_by_1_all"])
    assert 0 <= scored["within_1_sigma"] <= scored["within_2_sigma"] <= 1


def test_figure_is_drawn(scored, tmp_path):
    bench.figure({"random": {"a split": scored}}, tmp_path / "f.png")
    assert (tmp_path / "f.png").stat().st_size > 10_000
