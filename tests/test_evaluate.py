"""dflib.evaluate: results tables, the embedded benchmark, perfect predictions."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch

from dflib.data import SyntheticFocalStackDataset
from dflib.evaluate import Method, ResultsTable, embedded_benchmark, evaluate, sff_method, summarise_seeds


@pytest.fixture(scope="module")
def small_set():
    return SyntheticFocalStackDataset(3, size=(48, 48), seed=5)


def test_perfect_prediction_scores_zero_error(small_set):
    truth = iter([small_set[i]["depth"][0].numpy() for i in range(len(small_set))])
    oracle = Method("oracle", lambda stack, focus: (next(truth), None))
    row = evaluate([oracle], {"set": (small_set, "default")}, progress=False).rows[0]
    assert row["mse"] == 0 and row["rmse"] == 0 and row["abs_rel"] == 0 and row["bump"] == 0
    assert row["delta1"] == 1.0 and row["n_planes"] == 5 and row["n_images"] == 3


def test_constant_offset_prediction_matches_hand_computed_rmse(small_set):
    truth = iter([small_set[i] for i in range(len(small_set))])

    def off_by_10cm(stack, focus):
        s = next(truth)
        return np.where(s["mask"][0].numpy(), s["depth"][0].numpy() + 0.1, 0.0), None

    row = evaluate([Method("offset", off_by_10cm)], {"set": (small_set, "default")}, progress=False).rows[0]
    assert row["rmse"] == pytest.approx(0.1, abs=1e-6)
    assert row["bump"] == pytest.approx(0.0, abs=1e-6)  # a constant error has no curvature



def test_sigma_columns_rank_the_errors(small_set):
    """A σ equal to the error ranks it perfectly (AUSE 0); a random σ is no better than chance (AURG ≈ 0)."""
    samples = [small_set[i] for i in range(len(small_set))]
    rng = np.random.default_rng(0)
    noise = [rng.normal(0.0, 0.05, s["depth"][0].shape) for s in samples]

    def method(name, sigma_of):
        it = iter(zip(samples, noise))

        def predict(stack, focus):
            s, e = next(it)
            return s["depth"][0].numpy() + e, sigma_of(e)

        return Method(name, predict)

    rows = evaluate([method("oracle", np.abs), method("random", lambda e: rng.random(e.shape))],
                    {"set": (small_set, "default")}, progress=False).rows
    assert [r["method"] for r in rows] == ["oracle", "random"]
    assert rows[0]["ause"] == pytest.approx(0.0, abs=1e-12) and rows[0]["aurg"] > 0.2
    assert abs(rows[1]["aurg"]) < 0.03 and rows[1]["ause"] == pytest.approx(rows[0]["aurg"], abs=0.03)
    assert "aurg" in ResultsTable(rows).to_markdown()

def test_table_writes_csv_json_markdown(tmp_path, small_set):
    table = evaluate([sff_method("lapv")], {"set": (small_set, "fod500")}, progress=False)
    paths = table.write(tmp_path)
    rows = list(csv.DictReader(paths["csv"].open()))
    assert rows[0]["method"] == "sff-lapv" and rows[0]["protocol"] == "fod500"
    assert json.loads(paths["json"].read_text())[0]["rmse"] == pytest.approx(float(rows[0]["rmse"]))
    md = paths["md"].read_text()
    assert "delta1 (%)" in md and f"{100 * table.rows[0]['delta1']:.4g}" in md


def test_embedded_benchmark_is_fixed_and_fod500_like():
    a, b = embedded_benchmark(length=2), embedded_benchmark(length=2)
    sa, sb = a[1], b[1]
    assert torch.equal(sa["stack"], sb["stack"])
    assert sa["stack"].shape == (5, 3, 256, 256)
    assert sa["focus"].tolist() == pytest.approx([0.1, 0.15, 0.3, 0.7, 1.5])


def test_summarise_seeds_mean_and_sample_std():
    out = summarise_seeds([{"rmse": 1.0}, {"rmse": 2.0}, {"rmse": 3.0}], keys=["rmse"])
    assert out["rmse"] == "2 ± 1"


def test_markdown_of_empty_and_mixed_rows():
    t = ResultsTable([{"method": "a", "rmse": 0.5}, {"method": "b", "delta1": 0.25}])
    md = t.to_markdown()
    assert "| b |  | 25 |" in md
