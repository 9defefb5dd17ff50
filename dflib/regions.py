"""Where a depth-from-focus method is expected to struggle: masks of depth edges and of
regions without texture, and the RMSE inside one of them (:func:`region_rmse`).
Also importable from :mod:`dflib.metrics` as before.
"""

from __future__ import annotations

import numpy as np

from dflib.metrics import Protocol, get_protocol

__all__ = ["REGION_NAMES", "region_masks", "region_rmse"]


#: names of the masks :func:`region_masks` returns
REGION_NAMES: tuple[str, ...] = ("edge", "smooth", "textured", "textureless")


def region_masks(depth: np.ndarray, aif: np.ndarray, focus: np.ndarray, edge_threshold: float = 0.2,
                 edge_radius: int = 3, texture_window: int = 9, texture_threshold: float = 0.03
                 ) -> dict[str, np.ndarray]:
    """Where a depth-from-focus method is expected to struggle: depth edges, and regions without texture.

    - ``edge``: pixels within ``edge_radius`` px of a depth edge, a pixel where
      the ground truth's gradient magnitude, in focal-plane units (the depth
      clipped to the focus range and mapped to the fractional plane index, see
      :func:`dflib.losses.plane_index`), exceeds ``edge_threshold`` planes per
      pixel; ``smooth`` is the rest.
    - ``textured``: the local standard deviation of the all-in-focus image's
      grey level (sRGB values in [0, 1]) over a ``texture_window`` square
      exceeds ``texture_threshold``; ``textureless`` is the rest.

    Holes (gt <= 0 or non-finite) are in no region.

    Args:
        depth: ``[H, W]`` ground truth (units of ``focus``); aif: ``[3, H, W]``
            or ``[H, W]``; focus: ``[N]`` (monotonic).

    Returns:
        dict of bool ``[H, W]`` arrays, keys :data:`REGION_NAMES`.
    """
    from scipy import ndimage

    d = np.asarray(depth, dtype=np.float64)
    f = np.asarray(focus, dtype=np.float64).reshape(-1)
    valid = np.isfinite(d) & (d > 0)
    u = np.zeros_like(d)
    dd = np.where(valid, d, f[0])
    for lo, hi in zip(f[:-1], f[1:]):
        u += np.clip((dd - lo) / (hi - lo), 0.0, 1.0)
    gy, gx = np.gradient(u)
    edge = ndimage.binary_dilation(np.hypot(gx, gy) > edge_threshold,
                                   structure=np.ones((2 * edge_radius + 1,) * 2, bool)) & valid
    grey = np.asarray(aif, dtype=np.float64)
    grey = grey.mean(axis=0) if grey.ndim == 3 else grey
    mean = ndimage.uniform_filter(grey, texture_window)
    std = np.sqrt(np.maximum(ndimage.uniform_filter(grey ** 2, texture_window) - mean ** 2, 0.0))
    textured = (std > texture_threshold) & valid
    return {"edge": edge, "smooth": valid & ~edge, "textured": textured, "textureless": valid & ~textured}


def region_rmse(pred: np.ndarray, gt: np.ndarray, region: np.ndarray, protocol: str | Protocol = "default") -> float:
    """RMSE of one image over the protocol's valid pixels inside ``region`` (NaN when there are none).

    Args: ``[H, W]`` arrays (``region`` bool); values clipped as the protocol says.
    """
    p = get_protocol(protocol)
    pred = np.asarray(pred, dtype=np.float64)
    gt = np.asarray(gt, dtype=np.float64)
    m = p.valid_mask(gt) & np.asarray(region, bool)
    if not m.any():
        return float("nan")
    if p.clip is not None:
        pred, gt = np.clip(pred, *p.clip), np.clip(gt, *p.clip)
    return float(np.sqrt(np.mean((pred[m] - gt[m]) ** 2)))
