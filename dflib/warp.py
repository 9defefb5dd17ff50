"""Maps between the frames of a focal stack, as homogeneous 3x3 matrices from the
reference frame's pixel coordinates ``(x, y)`` (x = column, y = row, pixel
centres at integers) to another frame's: the thin-lens model of focus
breathing, how far a map moves pixels, resampling a stack onto the reference,
and the region every frame covers. Estimating the maps from the images is
:mod:`dflib.registration`; the whole step is :func:`dflib.align.align_stack`.

>>> scales = breathing_scales([0.5, 2.0], focal_length_m=0.004)  # a 4 mm lens focused at 0.5 m and 2 m
>>> m = breathing_matrices(scales, (30, 40))
>>> [round(float(s), 5) for s in matrix_scale(m)], displacement_px(m, (30, 40)).round(3).tolist()
([1.00806, 1.002], [0.196, 0.049])
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch

from dflib.checks import as_numpy, check_shape

__all__ = ["as_stack_array", "breathing_matrices", "breathing_scales", "displacement_px", "largest_box", "matrix_scale",
           "valid_region", "warp_stack"]


# --- matrices -----------------------------------------------------------------

def breathing_matrices(
    scales: Sequence[float], size: tuple[int, int], shifts: Sequence[Sequence[float]] | None = None,
    rotations_deg: Sequence[float] | None = None,
) -> np.ndarray:
    """Homogeneous maps ``[N, 3, 3]`` from reference pixel coordinates (x, y) to
    frame n's for a magnification ``scales[n]`` about the image centre, a
    rotation ``rotations_deg[n]`` (counter-clockwise on screen is negative,
    as y points down) and then a shift ``shifts[n] = (dx, dy)`` pixels:
    ``p_n = c + s R (p - c) + t`` with ``c = ((W - 1) / 2, (H - 1) / 2)``.

    Args:
        scales: N magnifications (> 0), 1 = none.
        size: ``(H, W)`` of the frames in pixels.
        shifts: N shifts ``(dx, dy)`` in pixels (default none).
        rotations_deg: N rotations in degrees (default none).
    """
    s = np.asarray(scales, dtype=np.float64).reshape(-1)
    n = s.size
    if n == 0 or not np.all(np.isfinite(s)) or np.any(s <= 0):
        raise ValueError(f"scales must be N >= 1 finite positive magnifications, got {s.tolist()}")
    t = np.zeros((n, 2)) if shifts is None else np.asarray(shifts, dtype=np.float64)
    if t.shape != (n, 2):
        raise ValueError(f"shifts must have shape [N, 2] = [{n}, 2] (dx, dy in pixels), got {t.shape}")
    r = np.zeros(n) if rotations_deg is None else np.deg2rad(np.asarray(rotations_deg, dtype=np.float64))
    if r.shape != (n,):
        raise ValueError(f"rotations_deg must have N = {n} entries, got shape {r.shape}")
    H, W = size
    c = np.array([(W - 1) / 2, (H - 1) / 2])
    out = np.tile(np.eye(3), (n, 1, 1))
    for i in range(n):
        lin = s[i] * np.array([[np.cos(r[i]), -np.sin(r[i])], [np.sin(r[i]), np.cos(r[i])]])
        out[i, :2, :2] = lin
        out[i, :2, 2] = c + t[i] - lin @ c
    return out


def breathing_scales(focus_m: Sequence[float], focal_length_m: float) -> np.ndarray:
    """Magnification of each frame relative to focus at infinity, ``[N]``, for a
    lens that focuses by moving as a whole (unit focusing, as phone lenses do):
    the image distance is ``v = f S / (S - f)`` so the picture scales by
    ``v / f = S / (S - f)``; ``inf`` gives 1.

    Args:
        focus_m: N focus distances in metres (> focal length; ``inf`` allowed).
        focal_length_m: focal length ``f`` in metres.
    """
    s = np.asarray(focus_m, dtype=np.float64).reshape(-1)
    f = float(focal_length_m)
    if not f > 0:
        raise ValueError(f"focal_length_m must be > 0, got {focal_length_m!r}")
    if np.any(np.isnan(s)) or np.any(s <= f):
        raise ValueError(f"focus_m must be greater than the focal length {f} m, got {s.tolist()}")
    with np.errstate(invalid="ignore"):
        return np.where(np.isinf(s), 1.0, s / (s - f))


def matrix_scale(matrices: np.ndarray) -> np.ndarray:
    """Isotropic scale ``sqrt(|det A|)`` of the linear part of each ``[..., 3, 3]`` map."""
    m = np.asarray(matrices, dtype=np.float64)
    return np.sqrt(np.abs(np.linalg.det(m[..., :2, :2])))


def displacement_px(matrices: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Largest distance in pixels, over the frame's four corners and centre, that
    each map ``[N, 3, 3]`` moves a point: ``[N]``. This is how far apart the
    frames are before alignment."""
    H, W = size
    pts = np.array([[0, 0, 1], [W - 1, 0, 1], [0, H - 1, 1], [W - 1, H - 1, 1], [(W - 1) / 2, (H - 1) / 2, 1]], float)
    m = np.asarray(matrices, dtype=np.float64)
    moved = np.einsum("nij,kj->nki", m, pts)
    moved = moved[..., :2] / moved[..., 2:]
    return np.linalg.norm(moved - pts[None, :, :2], axis=-1).max(axis=-1)


# --- input --------------------------------------------------------------------

def as_stack_array(images: Any) -> np.ndarray:
    """A focal stack as one ``[N, 3, H, W]`` float32 numpy array, from
    ``[N, 3, H, W]`` / ``[N, H, W, 3]`` arrays or tensors (float in [0, 1],
    uint8 or uint16) or a sequence of ``[H, W, 3]`` images; no copy when it
    already is one."""
    if isinstance(images, (np.ndarray, torch.Tensor)):
        arr = as_numpy(images, "images")
    else:
        frames = [np.asarray(im) for im in images]
        shapes = {f.shape for f in frames}
        if len(shapes) != 1:
            raise ValueError(f"images must all have the same shape, got {sorted(shapes)}")
        arr = np.stack(frames)
    check_shape(arr, "N 3 H W | N H W 3", "images")
    if arr.shape[1] != 3:
        arr = np.moveaxis(arr, -1, 1)
    if arr.dtype == np.uint8:
        arr = arr.astype(np.float32) / 255.0
    elif arr.dtype == np.uint16:
        arr = arr.astype(np.float32) / 65535.0
    arr = np.asarray(arr, dtype=np.float32)
    if any(s < 0 for s in arr.strides):  # a reversed view: torch cannot wrap it
        arr = np.ascontiguousarray(arr)
    return arr


# --- resampling and the common region -----------------------------------------

def warp_stack(images: Any, matrices: np.ndarray, out: np.ndarray | None = None, order: int = 3,
               progress: bool | None = None) -> np.ndarray:
    """Resample frame n at ``matrices[n] @ (x, y, 1)`` for every output pixel (x, y).

    With the matrices of :func:`estimate_breathing` this puts every frame in
    the reference frame's geometry; with their inverses it simulates breathing.
    Outside a frame its edge pixels are repeated (see :func:`valid_region`).

    Args:
        images: ``[N, 3, H, W]`` (or see :func:`estimate_breathing`).
        matrices: ``[N, 3, 3]`` output (x, y) -> frame n's (x, y).
        out: optional ``[N, 3, H, W]`` float32 array to write into; it may be
            the input itself (in place: frames are warped one channel at a time,
            so the extra memory is one channel).
        order: interpolation order: 3 (bicubic, the default) or 1 (bilinear).
            Resampling blurs a little, by an amount that changes with the
            sub-pixel offset, i.e. differently in every frame, and depth from
            focus reads blur as depth: bilinear resampling of a breathing stack
            made the shipped model's RMSE 45 % worse than bicubic
            (notebook 08's scene: 0.056 vs 0.038 m; 0.036 m without breathing).

    Returns:
        ``[N, 3, H, W]`` float32, clipped to [0, 1] (bicubic overshoots at edges).
    """
    from skimage.transform import warp
    from tqdm.auto import tqdm

    stack = as_stack_array(images)
    m = np.asarray(matrices, dtype=np.float64)
    if m.shape != (stack.shape[0], 3, 3):
        raise ValueError(f"matrices must have shape [N, 3, 3] = [{stack.shape[0]}, 3, 3], got {m.shape}")
    if out is None:
        out = np.empty_like(stack)
    elif out.shape != stack.shape or out.dtype != np.float32:
        raise ValueError(f"out must be float32 with shape {stack.shape}, got {out.dtype} {out.shape}")
    for i in tqdm(range(stack.shape[0]), desc="aligning: warping", unit="frame", disable=progress is False,
                  delay=0 if progress else 1.0, leave=False):
        if np.allclose(m[i], np.eye(3), atol=1e-9):
            if out is not stack:
                out[i] = stack[i]
            continue
        for c in range(stack.shape[1]):
            out[i, c] = warp(stack[i, c], m[i], order=order, mode="edge", preserve_range=True)
        np.clip(out[i], 0.0, 1.0, out=out[i])
    return out


def _row_intervals(matrices: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """For every output row y, the interval ``[lo[y], hi[y]]`` of x whose image
    under every (affine) map lies inside its frame, ``[0, W-1] x [0, H-1]``."""
    H, W = size
    y = np.arange(H, dtype=np.float64)
    lo = np.zeros(H)
    hi = np.full(H, W - 1.0)
    for m in np.asarray(matrices, dtype=np.float64):
        if not np.allclose(m[2], [0, 0, 1]):
            raise ValueError("valid_region handles affine maps only (last row 0, 0, 1)")
        for row, limit in ((0, W - 1.0), (1, H - 1.0)):
            a, b, c = m[row]
            off = b * y + c  # coordinate = a x + off, must lie in [0, limit]
            if abs(a) < 1e-12:
                bad = (off < -1e-9) | (off > limit + 1e-9)
                hi = np.where(bad, -1.0, hi)
                continue
            x1, x2 = (0 - off) / a, (limit - off) / a
            lo = np.maximum(lo, np.minimum(x1, x2) - 1e-9)
            hi = np.minimum(hi, np.maximum(x1, x2) + 1e-9)
    return np.ceil(lo), np.floor(hi)


def valid_region(matrices: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``[H, W]`` bool: the output pixels that every frame covers, i.e. whose
    position under every map lies inside ``[0, W-1] x [0, H-1]`` (only the
    outermost pixel ring of a frame then reaches repeated edge pixels)."""
    lo, hi = _row_intervals(matrices, size)
    x = np.arange(size[1])
    return (x[None, :] >= lo[:, None]) & (x[None, :] <= hi[:, None])


def largest_box(matrices: np.ndarray, size: tuple[int, int]) -> tuple[int, int, int, int]:
    """The largest-area axis-aligned box ``(y0, y1, x0, x1)`` (half-open) inside
    :func:`valid_region`; exact for any region whose rows are intervals."""
    lo, hi = _row_intervals(matrices, size)
    H = size[0]
    best, box = 0.0, (0, 0, 0, 0)
    for y0 in range(H):
        if hi[y0] < lo[y0]:
            continue
        l = np.maximum.accumulate(lo[y0:])
        h = np.minimum.accumulate(hi[y0:])
        width = np.maximum(h - l + 1, 0)
        area = width * np.arange(1, H - y0 + 1)
        k = int(np.argmax(area))
        if area[k] > best:
            best, box = float(area[k]), (y0, y0 + k + 1, int(l[k]), int(h[k]) + 1)
    if best == 0:
        raise ValueError("the frames have no region in common: the estimated maps are implausible")
    return box
