"""How far to trust σ: sparsification curves of a depth map's uncertainty, and σ in focus planes.

The readout's σ (:func:`dflib.models.dualfocus.focus_readout`) is the spread of the focus distribution. It is
useful when it ranks the pixels by their error: remove the pixels with the largest σ first and the error of
those left should fall almost as fast as when the pixels with the largest true error are removed first (the
*oracle*). The *sparsification curve* is the RMSE of the pixels left after removing a fraction of them,
divided by the RMSE of all; its summaries (Ilg et al., ECCV 2018; Poggi et al., CVPR 2020):

- AUSE, the area between the σ curve and the oracle curve (0: σ ranks the errors perfectly);
- AURG, the area between a random order's curve (1 everywhere, in expectation) and the σ curve (> 0: σ
  ranks better than chance; 0: no better).

:func:`dflib.metrics.depth_metrics` given σ reports both, per image and averaged, so every ``dflib eval`` table of
a learned model has them.

:func:`plane_sigma` is σ counted in focus planes (the spread of the plane index), the same for every unit of
focus: what ``dflib predict --max-sigma`` thresholds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy.integrate import trapezoid

__all__ = ["DEFAULT_FRACTIONS", "Sparsification", "plane_sigma", "sparsification"]

#: removed fractions at which the curves are evaluated: 0, 0.02, ..., 0.98
DEFAULT_FRACTIONS = np.round(np.arange(0.0, 0.99, 0.02), 2)


@dataclass(frozen=True)
class Sparsification:
    """Sparsification of one error map by one uncertainty map (:func:`sparsification`).

    Curves are ``[K]`` RMSE of the pixels left after removing ``fractions[k]`` of them, divided by the RMSE of
    all (so each starts at 1): ``by_sigma`` removes the largest σ first, ``oracle`` the largest error first."""

    fractions: np.ndarray
    by_sigma: np.ndarray
    oracle: np.ndarray
    rmse: float  #: RMSE of all pixels (units of the error)

    @property
    def ause(self) -> float:
        """Area between the σ and oracle curves over the removed fraction (0 = σ ranks errors perfectly)."""
        return float(trapezoid(self.by_sigma - self.oracle, self.fractions))

    @property
    def aurg(self) -> float:
        """Area between the random order's curve (1) and the σ curve (> 0 = σ ranks better than chance)."""
        return float(trapezoid(1.0 - self.by_sigma, self.fractions))


def _left_rmse(err_sq_sorted: np.ndarray, fractions: np.ndarray) -> np.ndarray:
    """RMSE of ``err_sq_sorted[k:]`` for k = round(f n): removing the first k (largest first) of n pixels."""
    n = err_sq_sorted.size
    tail = np.concatenate([np.cumsum(err_sq_sorted[::-1])[::-1], [0.0]])  # tail[k] = Σ_{i ≥ k}
    k = np.minimum(np.round(fractions * n).astype(int), n - 1)
    return np.sqrt(tail[k] / (n - k))


def sparsification(err: np.ndarray, sigma: np.ndarray, valid: np.ndarray | None = None,
                   fractions: np.ndarray = DEFAULT_FRACTIONS) -> Sparsification:
    """Sparsification curves of one image's error by its σ (module docstring).

    Args:
        err: ``[H, W]`` depth error (prediction − truth, any unit); its sign is ignored.
        sigma: ``[H, W]`` uncertainty, any unit (only its order counts). Ties are broken by pixel order.
        valid: optional ``[H, W]`` bool mask of the pixels to count (default: all).
        fractions: ``[K]`` removed fractions in [0, 1), increasing, starting at 0.
    """
    err, sigma = np.asarray(err, np.float64), np.asarray(sigma, np.float64)
    if err.shape != sigma.shape:
        raise ValueError(f"err and sigma must have one shape, got {err.shape} and {sigma.shape}")
    fractions = np.asarray(fractions, np.float64)
    if fractions.ndim != 1 or fractions[0] != 0 or np.any(np.diff(fractions) <= 0) or fractions[-1] >= 1:
        raise ValueError("fractions must increase from 0 and stay below 1")
    keep = np.ones(err.shape, bool) if valid is None else np.asarray(valid, bool)
    e2, s = err[keep] ** 2, sigma[keep]
    if e2.size == 0:
        raise ValueError("no valid pixels")
    rmse = float(np.sqrt(e2.mean()))
    if rmse == 0:
        raise ValueError("the error is 0 everywhere: nothing to rank")
    by_sigma = _left_rmse(e2[np.argsort(-s, kind="stable")], fractions) / rmse
    oracle = _left_rmse(np.sort(e2)[::-1], fractions) / rmse
    return Sparsification(fractions, by_sigma, oracle, rmse)


def plane_sigma(prob: torch.Tensor) -> torch.Tensor:
    """σ in focus planes: the readout's σ (:func:`~dflib.models.dualfocus.focus_readout`) with the plane index
    0..N−1 as the focus.

    Args:
        prob: ``[..., N, H, W]`` focus probability, summing to 1 over N (planes near to far).

    Returns:
        ``[..., H, W]``: 0 for a distribution on one plane; (N − 1)/2 at most (half on each end plane).
    """
    from dflib.models.dualfocus import focus_readout

    n, h, w = prob.shape[-3:]
    flat = prob.reshape(-1, n, h, w)
    index = torch.arange(n, dtype=prob.dtype, device=prob.device).expand(flat.shape[0], n)
    return focus_readout(flat, index)[1].reshape(prob.shape[:-3] + (h, w))
