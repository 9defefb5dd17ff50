"""Depth metrics of the DDFF-12 benchmark, with named, pinned evaluation protocols.

The definitions follow the DDFF-12 benchmark code as DFV (CVPR 2022) runs it
(see ``../shared/docs/ANCHORS.md``, "Metric definitions"): every metric is
computed **per image over that image's valid pixels**, then the per-image
values are **averaged over images**. In particular the reported RMSE is the
mean of per-image RMSEs (``mean_b sqrt(MSE_b)``), not ``sqrt(mean_b MSE_b)``;
the same holds for log-RMSE.

With V the valid pixels of one image, N = |V|, p the prediction and t the
ground truth::

    mse      = sum_V (p - t)^2 / N
    rmse     = sqrt(mse)
    log_rmse = sqrt(sum_V (log p - log t)^2 / N)
    abs_rel  = sum_V |p - t| / t / N
    sq_rel   = sum_V (p - t)^2 / t / N
    deltaK   = #{x in V : max(p/t, t/p) < 1.25^K} / N        (K = 1, 2, 3)
    bump     = 100 * sum_V min(0.05, ||H(p - t)||) / N
    avg_unc  = mean over all pixels of sigma                    (when sigma given)
    ause     = area between sigma's sparsification curve and the error's own, over V   (when sigma given)
    aurg     = area between a random order's sparsification curve and sigma's, over V  (when sigma given)

**δ are fractions in [0, 1]** (the original code reports percent; use
:func:`as_percent` or :func:`format_metrics` for reports). ``bump`` keeps the
original's factor 100.

A :class:`Protocol` pins what "valid" means and whether values are clipped;
``PROTOCOLS`` holds the named ones (``fod500``, ``ddff12``, ``nyu``,
``default``). Adding one is a few lines::

    PROTOCOLS["kitti"] = Protocol("kitti", "m", 1e-3, 80.0, None, "...")
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np
from skimage.filters import scharr_h, scharr_v

from dflib.checks import as_numpy
from dflib.uncertainty import sparsification
from dflib.utils import to_numpy

__all__ = [
    "Protocol",
    "PROTOCOLS",
    "get_protocol",
    "depth_metrics",
    "bump_map",
    "as_percent",
    "format_metrics",
    "METRIC_NAMES",
    "SIGMA_METRIC_NAMES",
    "LOG_EPS",
    "BUMP_CLIP",
    "REGION_NAMES",
    "region_masks",
    "region_rmse",
]

#: Non-positive predictions are clamped to this value before logs and ratios.
LOG_EPS: float = 1e-6
#: Per-pixel clip of the Hessian norm in the bump metric (the original's value).
BUMP_CLIP: float = 0.05
#: Keys of :func:`depth_metrics`' result, in reporting order (:data:`SIGMA_METRIC_NAMES` too with sigma).
METRIC_NAMES: tuple[str, ...] = (
    "mse", "rmse", "log_rmse", "abs_rel", "sq_rel", "delta1", "delta2", "delta3", "bump",
)
#: Keys :func:`depth_metrics` adds when given sigma: the mean σ, and how well σ ranks the errors.
SIGMA_METRIC_NAMES: tuple[str, ...] = ("avg_unc", "ause", "aurg")
_FRACTION_KEYS = ("delta1", "delta2", "delta3")


@dataclass(frozen=True)
class Protocol:
    """How a benchmark decides which ground-truth pixels count, and clips values.

    A pixel is valid when its ground truth ``t`` (after clipping) is finite
    *before* clipping, ``t > 0`` (0 is the universal "no measurement" code) and
    ``valid_min <= t <= valid_max`` (bounds compared in ``t``'s own float
    dtype, so a float32 ``0.2825`` is inside ``[.., 0.2825]``), and the optional
    user mask is true.

    Attributes:
        name: registry key, e.g. ``"fod500"``.
        unit: unit of depth values, e.g. ``"m"`` or ``"disparity px"``.
        valid_min: smallest valid ground truth (inclusive; ``t > 0`` is always required).
        valid_max: largest valid ground truth (inclusive).
        clip: ``(lo, hi)`` applied to prediction *and* ground truth before
            anything else (DFV's FoD500 protocol), or ``None``.
        description: one line saying where the protocol comes from.

    >>> Protocol("mine", "m", valid_min=0.5, valid_max=2.0).valid_mask(np.array([0.0, 0.4, 1.0, 2.0, np.nan])).tolist()
    [False, False, True, True, False]
    """

    name: str
    unit: str
    valid_min: float = 0.0
    valid_max: float = math.inf
    clip: tuple[float, float] | None = None
    description: str = ""

    def __post_init__(self) -> None:
        if not self.valid_min <= self.valid_max:
            raise ValueError(
                f"Protocol {self.name!r}: valid_min={self.valid_min} must be <= valid_max={self.valid_max}"
            )
        if self.clip is not None:
            if len(self.clip) != 2 or not self.clip[0] < self.clip[1]:
                raise ValueError(f"Protocol {self.name!r}: clip must be (lo, hi) with lo < hi, got {self.clip!r}")

    def valid_mask(self, gt: np.ndarray) -> np.ndarray:
        """Boolean mask of valid pixels of ``gt`` (any shape, unclipped values).

        >>> get_protocol("fod500").valid_mask(np.array([0.0, 1.0, 2.0, np.inf])).tolist()  # 2.0 clips to 1.5
        [False, True, True, False]
        """
        gt = np.asarray(gt)
        dtype = gt.dtype if np.issubdtype(gt.dtype, np.floating) else np.dtype(np.float64)
        g = gt.astype(dtype, copy=False)
        finite = np.isfinite(g)
        if self.clip is not None:
            g = np.clip(g, np.asarray(self.clip[0], dtype=dtype), np.asarray(self.clip[1], dtype=dtype))
        with np.errstate(invalid="ignore"):
            lo = np.asarray(self.valid_min, dtype=dtype)
            hi = np.asarray(self.valid_max, dtype=dtype)
            return finite & (g > 0) & (g >= lo) & (g <= hi)


PROTOCOLS: dict[str, Protocol] = {
    "default": Protocol(
        "default", "same as input", 0.0, math.inf, None,
        "valid where ground truth is finite and > 0; no clipping",
    ),
    "fod500": Protocol(
        "fod500", "m", 0.0, math.inf, (0.0, 1.5),
        "FoD500 as DFV evaluates it: prediction and target clipped to [0, 1.5] m, valid where clipped target > 0",
    ),
    "ddff12": Protocol(
        "ddff12", "disparity px", 0.0202, 0.2825, None,
        "DDFF-12: scored on disparity, valid range 0.0202-0.2825 (0 = invalid)",
    ),
    "nyu": Protocol(
        "nyu", "m", 1e-3, 10.0, None,
        "NYU-v2 synthetic focal stacks: valid ground truth 1e-3-10 m",
    ),
}


def get_protocol(protocol: str | Protocol) -> Protocol:
    """The :class:`Protocol` named ``protocol`` in ``PROTOCOLS`` (or ``protocol`` itself).

    >>> get_protocol("DDFF12").unit
    'disparity px'
    """
    if isinstance(protocol, Protocol):
        return protocol
    if not isinstance(protocol, str):
        raise TypeError(f"protocol must be a str or Protocol, got {type(protocol).__name__}")
    try:
        return PROTOCOLS[protocol.lower()]
    except KeyError:
        raise ValueError(f"protocol: unknown name {protocol!r}; known: {sorted(PROTOCOLS)}") from None


def _as_batch(x: Any, name: str) -> np.ndarray:
    """``[H,W]``, ``[B,H,W]`` or ``[B,1,H,W]`` numpy/torch → numpy ``[B,H,W]`` (no dtype change)."""
    x = as_numpy(x, name)
    if x.ndim == 2:
        return x[None]
    if x.ndim == 3:
        return x
    if x.ndim == 4 and x.shape[1] == 1:
        return x[:, 0]
    raise ValueError(f"{name} must have shape [H,W], [B,H,W] or [B,1,H,W], got {tuple(x.shape)}")


def _hessian_norm(err: np.ndarray) -> np.ndarray:
    """||H(err)|| per pixel for one ``[H,W]`` float64 image, Scharr derivatives taken twice.

    The error is first extended by 2 pixels with a point-symmetric (odd)
    reflection, ``e[-k] = 2 e[0] - e[k]``, which continues any affine function
    exactly, so a planar error has zero Hessian up to the image border.
    """
    pad = np.pad(err, 2, mode="reflect", reflect_type="odd")
    dx = scharr_v(pad)  # d/dx (along columns, axis 1)
    dy = scharr_h(pad)  # d/dy (along rows, axis 0)
    dxx, dxy = scharr_v(dx), scharr_h(dx)
    dyx, dyy = scharr_v(dy), scharr_h(dy)
    norm = np.sqrt(dxx**2 + dxy**2 + dyx**2 + dyy**2)
    return norm[2:-2, 2:-2]


def bump_map(err: Any, valid: Any | None = None) -> np.ndarray:
    """Per-pixel clipped Hessian norm ``min(0.05, ||H(err)||)`` of one error map.

    Args:
        err: error ``pred - gt``, ``[H, W]`` (numpy or torch), in depth units.
        valid: optional ``[H, W]`` bool; ``err`` is set to 0 where it is false
            before differentiating (holes do not saturate the clip).

    Returns:
        ``[H, W]`` float64 in ``[0, 0.05]``. Scale: each skimage Scharr
        derivative is 2x the unit-spacing derivative, so ``dxx`` etc. are 4x the
        per-pixel curvature (see :func:`depth_metrics`).

    A planar error has no curvature; ``0.001 x²`` has d²/dx² = 0.002 per pixel², 4x that in Scharr units:

    >>> y, x = np.mgrid[:8, :8].astype(float)
    >>> float(bump_map(0.01 * x + 0.02 * y).max()) < 1e-12
    True
    >>> round(float(bump_map(0.001 * x ** 2)[4, 4]), 6)
    0.008
    """
    e = to_numpy(err).astype(np.float64)
    if e.ndim != 2:
        raise ValueError(f"err must be [H, W], got {e.shape}")
    if valid is not None:
        v = to_numpy(valid).astype(bool)
        if v.shape != e.shape:
            raise ValueError(f"valid must have err's shape {e.shape}, got {v.shape}")
        e = np.where(v, e, 0.0)
    if not np.all(np.isfinite(e)):
        raise ValueError("err contains NaN or inf at valid pixels")
    return np.minimum(_hessian_norm(e), BUMP_CLIP)


def depth_metrics(
    pred: Any,
    gt: Any,
    protocol: str | Protocol = "default",
    sigma: Any | None = None,
    mask: Any | None = None,
) -> dict[str, float]:
    """DDFF-12 benchmark metrics, per image over valid pixels, averaged over images.

    A prediction 0.1 m too far everywhere on a 2 m plane: RMSE 0.1, AbsRel 0.05, every δ hit, no bump:

    >>> gt = np.full((8, 8), 2.0)
    >>> m = depth_metrics(gt + 0.1, gt)
    >>> round(m["rmse"], 6), round(m["abs_rel"], 6), m["delta1"], m["bump"]
    (0.1, 0.05, 1.0, 0.0)

    Args:
        pred: predicted depth (or disparity), numpy or torch, ``[H, W]``,
            ``[B, H, W]`` or ``[B, 1, H, W]``, in the protocol's unit.
        gt: ground truth, same shape as ``pred``; 0, NaN and inf mark holes.
        protocol: a name in ``PROTOCOLS`` (``"default"``, ``"fod500"``,
            ``"ddff12"``, ``"nyu"``) or a :class:`Protocol`.
        sigma: optional predicted uncertainty (std of the focus distribution),
            same shape as ``pred``; adds ``avg_unc``, ``ause`` and ``aurg``.
        mask: optional bool, same shape as ``gt``; pixels where it is false are
            excluded in addition to the protocol's own validity test.

    Returns:
        dict of Python floats: ``mse, rmse, log_rmse, abs_rel, sq_rel, delta1,
        delta2, delta3, bump`` (+ ``avg_unc, ause, aurg``). ``delta*`` are **fractions in
        [0, 1]**, not percent. ``bump`` carries the original's factor 100.
        ``rmse``/``log_rmse`` are means of per-image values.

    Raises:
        ValueError: shapes differ or are unsupported, an image has no valid
            pixel (the original silently scores such an image as all zeros and
            still counts it in the average), or ``sigma`` is not finite.
        TypeError: an input is not a numpy array or torch tensor.

    Conventions (choices where the original is silent or fragile):

    * **Non-finite predictions** (NaN, ±inf) at valid pixels are *replaced by 0*
      (before protocol clipping), so they count as misses — error ``t``,
      ratio ``t / 1e-6`` (never inside any δ), huge log error — and are never
      dropped from the valid set. A ``RuntimeWarning`` gives their count.
    * **Non-positive predictions** are clamped to ``LOG_EPS = 1e-6`` inside the
      log and the δ ratios only (MSE/AbsRel use the raw value). The original
      uses masked logs there, which silently drops such pixels from the
      log-RMSE sum while keeping them in N.
    * **Bump.** ``H`` is the Hessian of the error ``e = p - t`` from
      scikit-image's ``scharr_v`` (d/dx, columns) and ``scharr_h`` (d/dy,
      rows) applied twice: ``dxx = v(v(e)), dxy = h(v(e)), dyx = v(h(e)),
      dyy = h(h(e))``, ``||H|| = sqrt(dxx² + dxy² + dyx² + dyy²)``, clipped at
      0.05 per pixel and averaged over valid pixels, times 100. The kernels are
      ``[1, 0, -1] ⊗ [3, 10, 3] / 16``, the same weights the original gets from
      the scikit-image it calls, so the scale matches: a first derivative is
      2x the unit-spacing derivative and ``dxx`` is 4x the per-pixel curvature
      (the clip 0.05 is a curvature of 0.0125 units/px²). (The 4D light-field
      benchmark, where the metric comes from, divides by 32 instead, i.e. a
      Hessian 4x smaller.) Differences from the original code:

      1. the error is set to **0 where the ground truth is invalid** before
         differentiating; the original differentiates ``p - t`` on the
         unmasked prediction, so pixels next to holes (t = 0) see the jump to
         ``p`` and saturate the clip;
      2. **borders**: the error is extended by a point-symmetric (odd)
         reflection of 2 pixels, which continues affine functions exactly, so
         a planar error has bump 0 everywhere. Old scikit-image (which the
         original ran on) zeroed each derivative's outer ring, and current
         scikit-image reflects evenly; both put spurious curvature in the two
         outermost rows/columns;
      3. non-finite predictions are replaced by 0 (see above) rather than
         propagating NaN into the sum.
    * ``avg_unc`` is the mean of ``sigma`` over **all** pixels of each image,
      as the original computes it, then averaged over images.
    * ``ause`` and ``aurg`` (not in the original) summarise the sparsification
      curves of each image's error ``p - t`` by ``sigma`` over its valid
      pixels, after clipping (:func:`dflib.uncertainty.sparsification`; RMSE
      left after removing the largest σ first, relative to all). AUSE is 0
      when σ ranks the errors perfectly; AURG is > 0 when σ ranks them better
      than chance and ≈ 0 when no better. Both are averaged over the images
      with an error; NaN if none has one.
    """
    proto = get_protocol(protocol)
    p_raw = _as_batch(pred, "pred")
    t_raw = _as_batch(gt, "gt")
    if p_raw.shape != t_raw.shape:
        raise ValueError(f"pred and gt must have the same shape, got {tuple(p_raw.shape)} and {tuple(t_raw.shape)}")
    valid = proto.valid_mask(t_raw)
    if mask is not None:
        m = _as_batch(mask, "mask")
        if m.shape != t_raw.shape:
            raise ValueError(f"mask must have gt's shape {tuple(t_raw.shape)}, got {tuple(m.shape)}")
        valid &= m.astype(bool)
    counts = valid.reshape(valid.shape[0], -1).sum(axis=1)
    if np.any(counts == 0):
        bad = np.flatnonzero(counts == 0).tolist()
        raise ValueError(f"gt has no valid pixel under protocol {proto.name!r} in image(s) {bad}")

    p = p_raw.astype(np.float64)
    t = np.where(valid, t_raw.astype(np.float64), 0.0)
    bad_pred = ~np.isfinite(p) & valid
    if bad_pred.any():
        warnings.warn(
            f"pred has {int(bad_pred.sum())} non-finite value(s) at valid pixels; scored as predictions of 0",
            RuntimeWarning,
            stacklevel=2,
        )
    p = np.where(np.isfinite(p), p, 0.0)
    if proto.clip is not None:
        p = np.clip(p, *proto.clip)
        t = np.clip(t, *proto.clip)

    s = None
    if sigma is not None:
        s = _as_batch(sigma, "sigma").astype(np.float64)
        if s.shape != p_raw.shape:
            raise ValueError(f"sigma must have pred's shape {tuple(p_raw.shape)}, got {tuple(s.shape)}")
        if not np.all(np.isfinite(s)):
            raise ValueError("sigma contains NaN or inf")

    per_image: dict[str, list[float]] = {k: [] for k in METRIC_NAMES}
    ranked: list[tuple[float, float]] = []  # (AUSE, AURG) of each image with an error, when sigma is given
    for b in range(p.shape[0]):
        v = valid[b]
        pv, tv = p[b][v], t[b][v]
        err = pv - tv
        pc = np.maximum(pv, LOG_EPS)
        mse = float(np.mean(err**2))
        per_image["mse"].append(mse)
        per_image["rmse"].append(math.sqrt(mse))
        per_image["log_rmse"].append(float(np.sqrt(np.mean((np.log(pc) - np.log(tv)) ** 2))))
        per_image["abs_rel"].append(float(np.mean(np.abs(err) / tv)))
        per_image["sq_rel"].append(float(np.mean(err**2 / tv)))
        ratio = np.maximum(pc / tv, tv / pc)
        for k in (1, 2, 3):
            per_image[f"delta{k}"].append(float(np.mean(ratio < 1.25**k)))
        bump = bump_map(p[b] - t[b], v)
        per_image["bump"].append(float(100.0 * bump[v].mean()))
        if s is not None and np.any(err != 0):  # a perfect image has no error to rank
            curves = sparsification(err, s[b][v])
            ranked.append((curves.ause, curves.aurg))

    out = {k: float(np.mean(vals)) for k, vals in per_image.items()}
    if s is not None:
        out["avg_unc"] = float(np.mean(s.reshape(s.shape[0], -1).mean(axis=1)))
        out["ause"], out["aurg"] = (float(x) for x in np.mean(ranked, axis=0)) if ranked else (math.nan, math.nan)
    return out


def as_percent(metrics: Mapping[str, float]) -> dict[str, float]:
    """A copy of ``metrics`` with ``delta1..3`` multiplied by 100 (the original's unit).

    >>> as_percent({"rmse": 0.1, "delta1": 0.5})
    {'rmse': 0.1, 'delta1': 50.0}
    """
    return {k: (100.0 * v if k in _FRACTION_KEYS else float(v)) for k, v in metrics.items()}


def format_metrics(metrics: Mapping[str, float], percent: bool = True, digits: int = 4) -> str:
    """One-line report, e.g. ``mse=0.0150 rmse=0.1120 ... delta1=91.20%``.

    Args:
        metrics: result of :func:`depth_metrics`.
        percent: print δ as percent (``%`` suffix) rather than fractions.
        digits: significant digits.

    >>> format_metrics({"rmse": 0.11204, "delta1": 0.5})
    'rmse=0.112 delta1=50%'
    """
    vals = as_percent(metrics) if percent else dict(metrics)
    parts = []
    for k, v in vals.items():
        suffix = "%" if (percent and k in _FRACTION_KEYS) else ""
        parts.append(f"{k}={v:.{digits}g}{suffix}")
    return " ".join(parts)


_REGIONS = ("REGION_NAMES", "region_masks", "region_rmse")


def __getattr__(name: str) -> Any:
    """The region masks live in :mod:`dflib.regions` (imported on first use; it imports this module)."""
    if name in _REGIONS:
        from dflib import regions

        return getattr(regions, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
