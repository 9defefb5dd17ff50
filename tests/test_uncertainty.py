"""Tests of dflib.uncertainty: sparsification curves on hand-computed cases, σ in planes."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from dflib.uncertainty import plane_sigma, sparsification

ERR = np.array([[4.0, -3.0], [2.0, 1.0]])  # |err| 4, 3, 2, 1; RMSE of all √(30/4)
QUARTERS = np.array([0.0, 0.25, 0.5, 0.75])


def test_sigma_that_ranks_the_errors_is_the_oracle():
    sp = sparsification(ERR, np.abs(ERR) * 7 + 1, fractions=QUARTERS)  # any increasing function of |err|
    rmse = math.sqrt(30 / 4)
    np.testing.assert_allclose(sp.oracle, [1, math.sqrt(14 / 3) / rmse, math.sqrt(5 / 2) / rmse, 1 / rmse])
    np.testing.assert_allclose(sp.by_sigma, sp.oracle)
    assert sp.rmse == pytest.approx(rmse)
    assert sp.ause == 0.0
    # AURG by the trapezoid rule over 0, 0.25, 0.5, 0.75
    assert sp.aurg == pytest.approx(0.25 * ((1 - sp.oracle[0]) / 2 + (1 - sp.oracle[1]) + (1 - sp.oracle[2])
                                            + (1 - sp.oracle[3]) / 2))


def test_sigma_that_ranks_the_errors_backwards():
    sp = sparsification(ERR, -np.abs(ERR), fractions=QUARTERS)  # removes 1, then 2, then 3: leaves the 4 for last
    rmse = math.sqrt(30 / 4)
    np.testing.assert_allclose(sp.by_sigma, [1, math.sqrt(29 / 3) / rmse, math.sqrt(25 / 2) / rmse, 4 / rmse])
    assert sp.ause > 0 and sp.aurg < 0  # worse than the oracle, and worse than a random order


def test_constant_sigma_keeps_pixel_order_and_valid_mask_counts():
    sp = sparsification(ERR, np.zeros((2, 2)), fractions=QUARTERS)  # ties: pixel order 4, 3, 2, 1 = the oracle here
    np.testing.assert_allclose(sp.by_sigma, sp.oracle)
    valid = np.array([[False, True], [True, True]])  # without the 4: errors 3, 2, 1
    sp = sparsification(ERR, np.zeros((2, 2)), valid, fractions=np.array([0.0, 0.5]))
    assert sp.rmse == pytest.approx(math.sqrt(14 / 3))
    assert sp.by_sigma[1] == pytest.approx(1 / math.sqrt(14 / 3))  # round(1.5) = 2 removed (3, 2): the 1 is left


@pytest.mark.parametrize("kwargs, match", [
    ({"sigma": np.zeros(3)}, "one shape"),
    ({"fractions": np.array([0.1, 0.5])}, "increase from 0"),
    ({"fractions": np.array([0.0, 1.0])}, "below 1"),
    ({"fractions": np.array([0.0, 0.5, 1.0])}, "below 1"),
    ({"fractions": np.array([0.0, 0.5, 0.5])}, "increase"),
    ({"valid": np.zeros((2, 2), bool)}, "no valid"),
])
def test_bad_input(kwargs, match):
    args = {"err": ERR, "sigma": np.zeros((2, 2)), **kwargs}
    with pytest.raises(ValueError, match=match):
        sparsification(**args)
    with pytest.raises(ValueError, match="nothing to rank"):
        sparsification(np.zeros((2, 2)), np.zeros((2, 2)))


def test_plane_sigma_hand_computed():
    prob = torch.zeros(5, 1, 3)
    prob[2, 0, 0] = 1.0  # one plane: 0
    prob[0, 0, 1] = prob[4, 0, 1] = 0.5  # the two end planes: (N - 1) / 2 = 2
    prob[1:4, 0, 2] = 1 / 3  # planes 1, 2, 3: √(2/3)
    torch.testing.assert_close(plane_sigma(prob)[0], torch.tensor([0.0, 2.0, math.sqrt(2 / 3)]))
    batch = torch.stack([prob, prob.flip(0)])  # [B, N, H, W]; reversing the planes keeps the spread
    torch.testing.assert_close(plane_sigma(batch)[1], plane_sigma(prob))


def test_default_fractions():
    from dflib.uncertainty import DEFAULT_FRACTIONS

    assert len(DEFAULT_FRACTIONS) == 50 and DEFAULT_FRACTIONS[0] == 0 and DEFAULT_FRACTIONS[-1] == 0.98
    np.testing.assert_allclose(np.diff(DEFAULT_FRACTIONS), 0.02)
