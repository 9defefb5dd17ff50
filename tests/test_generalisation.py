"""dflib.generalisation: the benchmark's splits and scoring on tiny sizes, with hand-worked numbers."""

from __future__ import annotations

import benchmark_scripts
import numpy as np
import pytest
import torch

from dflib.evaluate import Method, sff_method
from dflib.generalisation import (
    MIDDLEBURY_CAMERAS,
    _Samples,
    generalisation_splits,
    middlebury_cameras,
    score,
    span_rmse,
    summarise,
    summary_markdown,
)


def _sample(depth: float, focus: list[float], hw=(4, 5)) -> dict:
    return {"stack": torch.zeros(len(focus), 3, *hw), "focus": torch.tensor(focus),
            "depth": torch.full((1, *hw), depth), "mask": torch.ones(1, *hw, dtype=torch.bool)}


def test_span_rmse_by_hand():
    ds = _Samples([_sample(1.0, [0.5, 1.0, 1.5]), _sample(2.0, [1.0, 3.0])])  # spans 1 m and 2 m
    preds = [np.full((4, 5), 1.2), np.full((4, 5), 1.4)]  # errors 0.2 m and 0.6 m
    assert span_rmse(preds, ds) == pytest.approx((0.2 / 1.0 + 0.6 / 2.0) / 2)
    # FoD500's protocol clips to [0, 1.5] m: the second span becomes 1.5 - 1.0 and its 2 m target 1.5
    assert span_rmse(preds, ds, "fod500") == pytest.approx((0.2 / 1.0 + 0.1 / 0.5) / 2)


def test_scoring_end_to_end_on_tiny_splits():
    from dflib.data import CachedDataset

    splits = generalisation_splits(length=2, size=(32, 32), embedded_length=1, middlebury=False)
    assert set(splits) == {"embedded", "diverse", "heldout"}
    assert splits["heldout"][0].config.split == "heldout" and splits["embedded"][1] == "fod500"
    splits = {k: (CachedDataset(ds, progress=False), p) for k, (ds, p) in splits.items()}
    truth = [(s["stack"], (s["depth"][0] * s["mask"][0]).numpy()) for ds, _ in splits.values() for s in ds.items]

    def oracle(stack, focus):  # the ground truth of the (cached, so identical) stack it is given
        return next(d for st, d in truth if st is stack), None

    table = score([Method("oracle", oracle), sff_method("lapv")], splits)
    assert len(table.rows) == 6
    for row in table.rows:
        if row["method"] == "oracle":
            assert row["rmse"] == pytest.approx(0, abs=1e-6) and row["rmse_span"] == pytest.approx(0, abs=1e-6)
            assert row["delta1"] == 1.0
        else:
            assert row["rmse"] > 0 and row["rmse_span"] > 0
    summary = summarise(table)
    assert summary["oracle"]["heldout_over_sff_span"] == pytest.approx(0, abs=1e-6)
    assert summary["sff-lapv"]["heldout_over_sff"] == 1.0
    assert summary["sff-lapv"]["heldout_over_diverse"] == pytest.approx(
        summary["sff-lapv"]["heldout_rmse"] / summary["sff-lapv"]["diverse_rmse"])
    md = summary_markdown(summary)
    assert "| oracle |" in md and "| sff-lapv |" in md and "held-out RMSE" in md


def test_middlebury_stacks_span_the_scene_and_blur_as_their_camera():
    # shrunk 4 times, not 8: at 8 the compact camera's near and far frames are equally sharp to within a noise draw
    stacks = middlebury_cameras(shrink=4)
    assert set(stacks) == set(MIDDLEBURY_CAMERAS)
    for name, ds in stacks.items():
        cam, n = MIDDLEBURY_CAMERAS[name]
        s = ds[0]
        f = s["focus"].double()
        d = s["depth"][s["mask"]].double()
        assert s["stack"].shape == (n, 3, 125, 185) and len(f) == n
        assert float(f[0]) == pytest.approx(float(d.min()), rel=1e-5) and float(f[-1]) == pytest.approx(float(d.max()), rel=1e-5)
        q = 1 / f
        assert torch.allclose(q[1:] - q[:-1], (q[1] - q[0]).expand(n - 1), rtol=1e-4)  # uniform in dioptres
        # the near frame is sharper than the far one where the scene is near (its nearest tenth), and blurrier far away
        near = s["mask"][0] & (s["depth"][0] <= torch.quantile(d.float(), 0.1))
        far = s["mask"][0] & (s["depth"][0] >= torch.quantile(d.float(), 0.9))
        grey = s["stack"].mean(1)
        lap = (grey[:, 1:-1, 1:-1] * 4 - grey[:, :-2, 1:-1] - grey[:, 2:, 1:-1] - grey[:, 1:-1, :-2] - grey[:, 1:-1, 2:]).abs()
        sharp = lambda i, m: float(lap[i][m[1:-1, 1:-1]].mean())  # noqa: E731
        assert sharp(0, near) > sharp(-1, near) and sharp(-1, far) > sharp(0, far), name


def test_band_errors_by_hand():
    """A method that predicts truth + 0.1 m below 1 m and truth − 0.2 m above: the bias per band says so."""
    import math

    import numpy as np
    import torch

    from dflib.evaluate import Method
    from dflib.generalisation import band_errors

    depth = torch.tensor([[[0.5, 0.5], [2.0, 3.0]]])  # [1, 2, 2]: two pixels at 0.5 m, one at 2 m, one at 3 m
    sample = {"stack": torch.zeros(2, 3, 2, 2), "focus": torch.tensor([0.5, 3.0]), "depth": depth,
              "mask": torch.ones(1, 2, 2, dtype=torch.bool)}
    truth = depth[0].numpy()
    method = Method("shifted", lambda stack, focus: (np.where(truth < 1, truth + 0.1, truth - 0.2), None), 0)
    rows = band_errors(method, [sample], (0.0, 1.0, 2.5, math.inf))
    assert [r["pixels"] for r in rows] == [2, 1, 1]
    assert [round(r["bias"], 6) for r in rows] == [0.1, -0.2, -0.2] and round(rows[0]["rmse"], 6) == 0.1
    clipped = band_errors(method, [sample], (0.0, 1.0, 2.5, math.inf), protocol="fod500")  # both clipped at 1.5 m
    assert [round(r["bias"], 6) for r in clipped] == [0.1, 0.0, 0.0]


def test_validation_comparison_never_draws_the_test_stacks_or_the_training_runs_validation_pools():
    """benchmarks/compare_validation.py (how stage 2 of the shipped weights was chosen): its own seed, so none
    of its stacks is a test stack (the test split's first stacks differ) or one a run validated on."""

    from dflib.data.synthetic import TEST_SEED, VAL_SEED

    cv = benchmark_scripts.load("compare_validation")
    assert cv.SEED not in (TEST_SEED, VAL_SEED)
    val = cv.validation_splits(length=1, size=256)  # the embedded test split's size
    test = generalisation_splits(length=1, size=(256, 256), embedded_length=1, middlebury=False)
    for name in ("embedded", "diverse"):
        (v, vp), (t, tp) = val[name], test[name]
        assert vp == tp and v[0]["depth"].shape == t[0]["depth"].shape  # scored as the test split is
        assert not torch.equal(v[0]["depth"], t[0]["depth"])
