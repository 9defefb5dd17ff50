"""Classical shape from focus: focus measures and sub-plane peak interpolation.

The baseline every learned depth-from-focus method is compared with:

1. a **focus measure** turns every focal image into a map of local sharpness
   (windowed, vectorised with :mod:`scipy.ndimage`) → focus volume ``[N, H, W]``;
2. per pixel, the plane ``k`` with the sharpest response is found (argmax);
3. a **3-point peak fit** through planes ``k-1, k, k+1`` refines it to a
   fractional plane index (Gaussian fit on the log focus curve by default);
4. the fractional index is mapped to distance by linear interpolation of the
   focus distances (``np.interp`` on the index), because planes that are
   uniform in diopters are not uniform in metres.

Focus measures (all are local means over a ``window x window`` box, so their
scale does not depend on ``window``; names follow Pertuz et al., 2013,
"Analysis of focus measure operators for shape-from-focus"):

* ``sml``: sum-modified Laplacian (Nayar & Nakagawa), ``|2I - I_left - I_right|
  + |2I - I_up - I_down|`` averaged over the window (no threshold);
* ``tenengrad``: Sobel gradient energy ``gx² + gy²`` averaged over the window;
* ``lapv``: variance of the 4-neighbour Laplacian over the window;
* ``lapd``: diagonal Laplacian (Thelen et al.), ``|Lx| + |Ly| + |Ld1| + |Ld2|``
  with the diagonal second differences divided by sqrt(2), averaged;
* ``glvar``: grey-level variance over the window.

Image borders use scipy's ``"reflect"`` mode. No filter ever mixes focal planes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
from scipy import ndimage

from dflib.checks import as_numpy, check_focus

__all__ = [
    "FOCUS_MEASURES",
    "SFFResult",
    "focus_volume",
    "interpolate_peak",
    "sff",
    "sff_depth",
    "to_luminance",
    "sml",
    "tenengrad",
    "lapv",
    "lapd",
    "glvar",
]

#: Rec. 709 luma weights (scikit-image's ``rgb2gray``).
_LUMA = np.array([0.2125, 0.7154, 0.0721])
_INTERPOLATIONS = ("gaussian", "parabolic", "none")
#: Focus curves peaking below this fraction of the volume's maximum carry no information.
_NO_TEXTURE_REL = 1e-9


def to_luminance(stack: Any) -> np.ndarray:
    """Grey focal stack ``[N, H, W]`` float64 from ``[N, 3, H, W]``, ``[N, 1, H, W]`` or ``[N, H, W]``.

    Colour is reduced with Rec. 709 luma weights (as ``skimage.color.rgb2gray``),
    applied to the values as given (no gamma handling).

    >>> to_luminance(np.ones((2, 3, 4, 5))).shape, float(to_luminance(np.ones((1, 3, 1, 1)))[0, 0, 0])
    ((2, 4, 5), 1.0)
    """
    s = as_numpy(stack, "stack").astype(np.float64)
    if s.ndim == 4 and s.shape[1] == 3:
        return np.tensordot(_LUMA, s, axes=([0], [1]))
    if s.ndim == 4 and s.shape[1] == 1:
        return s[:, 0]
    if s.ndim == 3:
        return s
    raise ValueError(f"stack must have shape [N,3,H,W], [N,1,H,W] or [N,H,W], got {tuple(s.shape)}")


def _check_window(window: int) -> int:
    if isinstance(window, bool) or not isinstance(window, (int, np.integer)) or window < 1:
        raise ValueError(f"window must be a positive int, got {window!r}")
    return int(window)


def _plane_filter(img: np.ndarray, kernel2d: np.ndarray) -> np.ndarray:
    """Correlate each plane of ``[N, H, W]`` with a 2-D kernel (never across planes)."""
    return ndimage.correlate(img, np.asarray(kernel2d, dtype=np.float64)[None], mode="reflect")


def _local_mean(x: np.ndarray, window: int) -> np.ndarray:
    return ndimage.uniform_filter(x, size=(1, window, window), mode="reflect")


def _local_var(x: np.ndarray, window: int) -> np.ndarray:
    m = _local_mean(x, window)
    return np.maximum(_local_mean(x * x, window) - m * m, 0.0)


def sml(img: np.ndarray, window: int = 9) -> np.ndarray:
    """Sum-modified Laplacian, ``[N, H, W]`` → ``[N, H, W]`` (window mean of the modified Laplacian).

    >>> img = np.zeros((1, 5, 5)); img[0, 2, 2] = 1.0  # one bright pixel
    >>> float(sml(img, window=1)[0, 2, 2])  # |2 - 0 - 0| twice
    4.0
    """
    window = _check_window(window)
    lx = _plane_filter(img, [[0, 0, 0], [-1, 2, -1], [0, 0, 0]])
    ly = _plane_filter(img, [[0, -1, 0], [0, 2, 0], [0, -1, 0]])
    return _local_mean(np.abs(lx) + np.abs(ly), window)


def tenengrad(img: np.ndarray, window: int = 9) -> np.ndarray:
    """Tenengrad, window mean of the squared Sobel gradient magnitude, ``[N, H, W]`` → ``[N, H, W]``.

    >>> ramp = np.tile(np.arange(6.0), (1, 6, 1))  # slope 1 along x: Sobel gives (1 + 2 + 1) x 2 = 8
    >>> float(tenengrad(ramp, window=1)[0, 3, 3])
    64.0
    """
    window = _check_window(window)
    sob = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], dtype=np.float64)
    gx = _plane_filter(img, sob)
    gy = _plane_filter(img, sob.T)
    return _local_mean(gx * gx + gy * gy, window)


def lapv(img: np.ndarray, window: int = 9) -> np.ndarray:
    """Variance of the 4-neighbour Laplacian over the window, ``[N, H, W]`` → ``[N, H, W]``.

    >>> img = np.zeros((1, 5, 5)); img[0, 2, 2] = 1.0  # Laplacian -4 at the pixel, 1 at its 4 neighbours
    >>> round(float(lapv(img, window=3)[0, 2, 2]), 4)  # (4 x 1 + 16) / 9, mean 0
    2.2222
    """
    window = _check_window(window)
    lap = _plane_filter(img, [[0, 1, 0], [1, -4, 1], [0, 1, 0]])
    return _local_var(lap, window)


def lapd(img: np.ndarray, window: int = 9) -> np.ndarray:
    """Diagonal Laplacian (sum of |second differences| in 4 directions), window mean.

    >>> img = np.zeros((1, 5, 5)); img[0, 2, 2] = 1.0
    >>> round(float(lapd(img, window=1)[0, 2, 2]), 4)  # 2 + 2 + 2/sqrt(2) + 2/sqrt(2)
    6.8284
    """
    window = _check_window(window)
    r2 = 1.0 / np.sqrt(2.0)
    kernels = [
        np.array([[0, 0, 0], [-1, 2, -1], [0, 0, 0]], dtype=np.float64),
        np.array([[0, -1, 0], [0, 2, 0], [0, -1, 0]], dtype=np.float64),
        np.array([[0, 0, -1], [0, 2, 0], [-1, 0, 0]], dtype=np.float64) * r2,
        np.array([[-1, 0, 0], [0, 2, 0], [0, 0, -1]], dtype=np.float64) * r2,
    ]
    acc = sum(np.abs(_plane_filter(img, k)) for k in kernels)
    return _local_mean(acc, window)


def glvar(img: np.ndarray, window: int = 9) -> np.ndarray:
    """Grey-level variance over the window, ``[N, H, W]`` → ``[N, H, W]``.

    >>> img = np.zeros((1, 5, 5)); img[0, 2, 2] = 1.0
    >>> round(float(glvar(img, window=3)[0, 2, 2]), 6) == round(1 / 9 - 1 / 81, 6)
    True
    """
    window = _check_window(window)
    return _local_var(img, window)


#: name → function ``(grey [N, H, W], window) -> focus volume [N, H, W]`` (>= 0).
FOCUS_MEASURES: dict[str, Callable[[np.ndarray, int], np.ndarray]] = {
    "sml": sml,
    "tenengrad": tenengrad,
    "lapv": lapv,
    "lapd": lapd,
    "glvar": glvar,
}


def focus_volume(stack: Any, measure: str = "lapv", window: int = 9) -> np.ndarray:
    """Focus measure of every focal image.

    Args:
        stack: focal stack ``[N, 3, H, W]``, ``[N, 1, H, W]`` or ``[N, H, W]``
            (numpy or torch, any float range); colour is reduced to luminance.
        measure: a key of ``FOCUS_MEASURES``.
        window: side of the square averaging window, pixels.

    Returns:
        ``[N, H, W]`` float64, non-negative; larger = sharper.

    >>> rng = np.random.default_rng(0)
    >>> vol = focus_volume(np.stack([rng.random((8, 8)), np.full((8, 8), 0.5)]), "glvar", 3)
    >>> vol.shape, bool((vol[0] > vol[1]).all())  # texture beats a flat plane everywhere
    ((2, 8, 8), True)
    """
    if measure not in FOCUS_MEASURES:
        raise ValueError(f"measure must be one of {sorted(FOCUS_MEASURES)}, got {measure!r}")
    grey = to_luminance(stack)
    if not np.all(np.isfinite(grey)):
        raise ValueError("stack contains NaN or inf")
    return FOCUS_MEASURES[measure](grey, window)


def interpolate_peak(volume: Any, interpolation: str = "gaussian") -> np.ndarray:
    """Fractional plane index of the peak of each pixel's focus curve.

    Args:
        volume: focus volume ``[N, H, W]`` (or ``[N]`` for one curve), values >= 0.
        interpolation: ``"gaussian"`` — parabola through the *log* focus values
            at ``k-1, k, k+1`` (k the argmax), exact for Gaussian focus curves;
            ``"parabolic"`` — the same on the raw values; ``"none"`` — argmax.

    Returns:
        index, ``[H, W]`` (a numpy float for ``[N]``) float64 in ``[0, N-1]``.
        The vertex offset ``(l₋ - l₊) / (2 (l₋ - 2 l₀ + l₊))`` lies in
        ``[-0.5, 0.5]`` because ``l₀`` is the maximum. At the end planes
        (``k = 0`` or ``N-1``) and where the curve is flat (zero curvature) no fit
        is made and the argmax index is returned. For the log, values are
        offset by ``1e-12 x`` the volume's maximum so zeros stay finite.

    A Gaussian focus curve peaking at plane 1.3 is recovered exactly:

    >>> curve = np.exp(-(np.arange(5) - 1.3) ** 2)
    >>> round(float(interpolate_peak(curve)), 6), float(interpolate_peak(curve, "none"))
    (1.3, 1.0)
    """
    if interpolation not in _INTERPOLATIONS:
        raise ValueError(f"interpolation must be one of {_INTERPOLATIONS}, got {interpolation!r}")
    v = as_numpy(volume, "volume").astype(np.float64)
    if v.ndim < 1 or v.shape[0] < 1:
        raise ValueError(f"volume must be [N, ...] with N >= 1, got {tuple(v.shape)}")
    one_curve = v.ndim == 1
    if one_curve:
        v = v[:, None]
    n = v.shape[0]
    k = np.argmax(v, axis=0)
    index = k.astype(np.float64)
    if interpolation == "none" or n < 3:
        return index[0] if one_curve else index
    if interpolation == "gaussian":
        tiny = 1e-12 * max(float(v.max()), 0.0) + 1e-300
        v = np.log(np.maximum(v, 0.0) + tiny)
    kc = np.clip(k, 1, n - 2)  # centre of the 3 samples; replaced by argmax at the ends below
    fm = np.take_along_axis(v, (kc - 1)[None], axis=0)[0]
    f0 = np.take_along_axis(v, kc[None], axis=0)[0]
    fp = np.take_along_axis(v, (kc + 1)[None], axis=0)[0]
    denom = fm - 2.0 * f0 + fp
    interior = (k >= 1) & (k <= n - 2) & (denom < 0)
    safe = np.where(interior, denom, -1.0)
    offset = np.where(interior, (fm - fp) / (2.0 * safe), 0.0)
    index = np.where(interior, kc + offset, index)  # |offset| <= 1/2 and 1 <= kc <= N-2: inside [0, N-1]
    return index[0] if one_curve else index


@dataclass(frozen=True)
class SFFResult:
    """Shape-from-focus output for one stack.

    Attributes:
        depth: ``[H, W]`` float64, in the unit of ``focus`` (metres, or disparity).
        index: ``[H, W]`` float64 fractional plane index in ``[0, N-1]``.
        confidence: ``[H, W]`` float64 in ``[0, 1]``, peak sharpness
            ``(max_n f_n / mean_n f_n - 1) / (N - 1)``: 0 for a flat focus curve
            (texture-less region, no information), 1 when all focus response is
            in one plane. 0 where the curve's peak is below ``1e-9`` x the
            volume's maximum (no texture: only rounding residue of the filters).
        volume: the focus volume ``[N, H, W]`` it was computed from.
    """

    depth: np.ndarray
    index: np.ndarray
    confidence: np.ndarray
    volume: np.ndarray


def _check_focus(focus: Any, n: int) -> np.ndarray:
    """``[N]`` float64 focus positions, one per focal image, finite and strictly monotonic."""
    f = np.asarray(focus, np.float64) if isinstance(focus, (list, tuple)) else as_numpy(focus, "focus", np.float64)
    return check_focus(f.reshape(-1), "N", N=n)


def sff(
    stack: Any,
    focus: Any,
    measure: str = "lapv",
    window: int = 9,
    interpolation: str = "gaussian",
) -> SFFResult:
    """Shape from focus: depth, fractional plane index and confidence of one focal stack.

    Args:
        stack: ``[N, 3, H, W]``, ``[N, 1, H, W]`` or ``[N, H, W]``, numpy or torch.
        focus: ``[N]`` focus distances of the planes, strictly monotonic (metres
            increasing, or DDFF-12 disparities decreasing; any unit).
        measure: a key of ``FOCUS_MEASURES``.
        window: focus-measure window side, pixels.
        interpolation: ``"gaussian"`` (default), ``"parabolic"`` or ``"none"``
            (see :func:`interpolate_peak`).

    Returns:
        :class:`SFFResult`. ``depth = np.interp(index, arange(N), focus)``:
        linear between neighbouring planes in the unit of ``focus``.

    Only the middle plane has texture, so every pixel is in focus there, with full confidence:

    >>> flat = np.full((16, 16), 0.5)
    >>> r = sff(np.stack([flat, np.random.default_rng(0).random((16, 16)), flat]), [0.5, 1.0, 2.0])
    >>> float(np.median(r.depth)), float(np.median(r.confidence))
    (1.0, 1.0)
    """
    vol = focus_volume(stack, measure, window)
    n = vol.shape[0]
    f = _check_focus(focus, n)
    index = interpolate_peak(vol, interpolation)
    depth = np.interp(index, np.arange(n, dtype=np.float64), f)
    mean = vol.mean(axis=0)
    peak = vol.max(axis=0)
    informative = peak > _NO_TEXTURE_REL * float(vol.max())
    ratio = np.where(informative, peak / np.where(informative, mean, 1.0), 1.0)
    confidence = (ratio - 1.0) / (n - 1) if n > 1 else np.zeros_like(ratio)
    return SFFResult(depth=depth, index=index, confidence=np.clip(confidence, 0.0, 1.0), volume=vol)


def sff_depth(
    stack: Any,
    focus: Any,
    measure: str = "lapv",
    window: int = 9,
    interpolation: str = "gaussian",
) -> np.ndarray:
    """Depth ``[H, W]`` float64 (unit of ``focus``) by shape from focus; see :func:`sff`.

    A textured plane at 0.3 m, rendered with FoD500's camera, is sharpest in the plane focused at 0.3 m:

    >>> from dflib.optics import FOD500_CAMERA, FOD500_FOCUS_M
    >>> from dflib.render import render_focal_stack
    >>> rgb = np.random.default_rng(0).random((48, 48, 3))
    >>> st = render_focal_stack(rgb, np.full((48, 48), 0.3), FOD500_CAMERA, FOD500_FOCUS_M, noise=False, device="cpu")
    >>> d = sff_depth(st.images, FOD500_FOCUS_M, interpolation="none")  # the sharpest plane, no sub-plane fit
    >>> float(np.median(d))
    0.3
    """
    return sff(stack, focus, measure=measure, window=window, interpolation=interpolation).depth
