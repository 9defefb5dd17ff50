"""Focus-breathing registration of real focal stacks.

Most lenses change their magnification when they refocus (*focus
breathing*): a lens that focuses by moving away from the sensor images the
scene at a distance ``v = f S / (S - f)`` behind it, so the picture grows by
``v(S) / v(S_far)``, a few per cent from infinity to a close focus on a
phone. A hand-held stack also moves a little between frames. Depth from focus
compares the same pixel across the frames, so they must line up first.

:func:`align_stack` estimates, for every frame ``n``, the map from the
reference frame's pixel coordinates ``(x, y)`` (x = column, y = row, pixel
centres at integers) to frame ``n``'s, as a homogeneous 3x3 matrix: a
similarity (scale, rotation, shift) by default, an affine map on request. It
is robust to the defocus difference between frames because it registers
each frame to its *neighbour in focus* (whose blur is similar), with ORB
features matched both ways and a RANSAC fit (scikit-image), then chains the
neighbour-to-neighbour maps. The frames are then resampled onto the
reference (bicubic; outside a frame its edge is repeated) and the part of
the reference view that every frame covers is reported as a mask
(``.valid``) and as the largest axis-aligned box inside it (``.crop``).

The reference is by default the frame with the narrowest view (the largest
magnification): every other frame then covers it, so almost nothing is
cropped and no frame is magnified by more than the breathing itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Sequence

import numpy as np

__all__ = [
    "AlignedStack",
    "BreathingEstimate",
    "StackAlignment",
    "align_stack",
    "align_if_needed",
    "as_stack_array",
    "estimate_breathing",
    "warp_stack",
    "valid_region",
    "largest_box",
    "breathing_matrices",
    "breathing_scales",
    "matrix_scale",
    "displacement_px",
]

Model = Literal["similarity", "affine"]


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
    try:
        import torch

        if isinstance(images, torch.Tensor):
            images = images.detach().cpu().numpy()
    except ImportError:  # pragma: no cover
        pass
    if isinstance(images, np.ndarray):
        arr = images
    else:
        frames = [np.asarray(im) for im in images]
        shapes = {f.shape for f in frames}
        if len(shapes) != 1:
            raise ValueError(f"images must all have the same shape, got {sorted(shapes)}")
        arr = np.stack(frames)
    if arr.ndim != 4 or 3 not in (arr.shape[1], arr.shape[-1]):
        raise ValueError(f"images must have shape [N, 3, H, W] or [N, H, W, 3], got {arr.shape}")
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


def _grey_small(frame: np.ndarray, max_size: int | None) -> tuple[np.ndarray, float]:
    """Luminance of one ``[3, H, W]`` frame, shrunk by the smallest integer
    factor k (means of k x k blocks) that brings its long side to at most
    ``max_size``; returns it and the factor 1 / k applied."""
    from skimage.transform import downscale_local_mean

    grey = 0.2126 * frame[0] + 0.7152 * frame[1] + 0.0722 * frame[2]
    k = 1 if max_size is None else max(1, -(-max(grey.shape) // int(max_size)))
    if k > 1:
        h, w = (grey.shape[0] // k) * k, (grey.shape[1] // k) * k  # whole blocks only: pixel centres stay exact
        grey = downscale_local_mean(grey[:h, :w], (k, k))
    return grey.astype(np.float64), 1.0 / k


def _scale_matrix(factor: float) -> np.ndarray:
    """Map from full-resolution to shrunk pixel coordinates (pixel centres kept aligned)."""
    o = 0.5 * factor - 0.5
    return np.array([[factor, 0, o], [0, factor, o], [0, 0, 1.0]])


# --- estimation ---------------------------------------------------------------

@dataclass
class BreathingEstimate:
    """Maps between the frames of a stack.

    Attributes:
        matrices: ``[N, 3, 3]`` float64, frame ``reference``'s pixel
            coordinates (x, y) to frame n's (homogeneous).
        reference: index of the reference frame (its matrix is the identity).
        inliers: ``[N - 1]`` RANSAC inlier matches between frames n and n + 1.
        size: ``(H, W)`` of the frames.
        model: ``"similarity"`` or ``"affine"``.
    """

    matrices: np.ndarray
    reference: int
    inliers: np.ndarray
    size: tuple[int, int]
    model: str

    @property
    def scales(self) -> np.ndarray:
        """``[N]`` magnification of each frame relative to the reference."""
        return matrix_scale(self.matrices)

    @property
    def breathing_px(self) -> float:
        """The largest distance (pixels) that any frame is off the reference
        (over the corners and the centre)."""
        return float(displacement_px(self.matrices, self.size).max())


def _features(grey: np.ndarray, n_keypoints: int):
    from skimage.feature import ORB

    orb = ORB(n_keypoints=n_keypoints, fast_threshold=0.03)
    try:
        orb.detect_and_extract(grey)
    except (RuntimeError, IndexError, ValueError):  # no corner at all (texture-less frame)
        return np.zeros((0, 2)), np.zeros((0, 256), bool)
    return orb.keypoints[:, ::-1].copy(), orb.descriptors  # (x, y)


def _pair_transform(f0, f1, model: str, rng: np.random.Generator, residual_px: float, min_inliers: int,
                    pair: tuple[int, int]) -> tuple[np.ndarray, int]:
    """Map frame ``pair[0]``'s coordinates to frame ``pair[1]``'s from their features."""
    from skimage.feature import match_descriptors
    from skimage.measure import ransac
    from skimage.transform import AffineTransform, SimilarityTransform

    (k0, d0), (k1, d1) = f0, f1
    if len(k0) < min_inliers or len(k1) < min_inliers:
        raise ValueError(
            f"images: frames {pair[0]} and {pair[1]} have too few corners to register "
            f"({len(k0)} and {len(k1)} found; need {min_inliers}); is the scene texture-less or the frame blank?")
    matches = match_descriptors(d0, d1, cross_check=True, max_ratio=0.85)
    if len(matches) < min_inliers:
        raise ValueError(
            f"images: frames {pair[0]} and {pair[1]} share only {len(matches)} matched features "
            f"(need {min_inliers}); they may show different scenes or be too differently focused")
    cls = SimilarityTransform if model == "similarity" else AffineTransform
    src, dst = k0[matches[:, 0]], k1[matches[:, 1]]
    tform, inl = ransac((src, dst), cls, min_samples=3, residual_threshold=residual_px, max_trials=2000,
                        stop_probability=0.999, rng=rng)
    n_in = 0 if inl is None else int(inl.sum())
    if tform is None or n_in < min_inliers:
        raise ValueError(
            f"images: frames {pair[0]} and {pair[1]}: only {n_in} of {len(matches)} matches agree on one "
            f"{model} map (need {min_inliers})")
    return np.asarray(tform.params, dtype=np.float64), n_in


def _refine_pair(g0: np.ndarray, g1: np.ndarray, tform: np.ndarray, model: str, rng: np.random.Generator,
                 radius: int = 7) -> np.ndarray:
    """Sharpen a map from frame 0's coordinates to frame 1's to a few hundredths
    of a pixel: frame 1 is resampled onto frame 0 with the current map, the
    residual motion is measured by iterative Lucas-Kanade optical flow
    (scikit-image's ``optical_flow_ilk``; defocus blurs are symmetric, so they
    do not bias it), and the map is refitted (RANSAC, 0.3 px) to the flow at
    the better-textured half of a grid of about 8000 points."""
    from skimage.measure import ransac
    from skimage.registration import optical_flow_ilk
    from skimage.transform import AffineTransform, SimilarityTransform, warp

    H, W = g0.shape
    if min(H, W) < 8 * radius:
        return tform
    moved = warp(g1, tform, order=1, mode="edge", preserve_range=True)
    v, u = optical_flow_ilk(g0, moved, radius=radius, num_warp=3, prefilter=False)
    gy, gx = np.gradient(g0)
    valid = valid_region(tform[None], (H, W))
    m = 2 * radius
    step = max(4, int(np.sqrt(H * W / 8000)))  # about 8000 points, half of them kept
    yy, xx = np.mgrid[m:H - m:step, m:W - m:step]
    ok = valid[yy, xx]
    texture = np.hypot(gx, gy)[yy, xx]
    if ok.sum() < 50:
        return tform
    ok &= texture >= np.median(texture[ok])
    src = np.stack([xx[ok], yy[ok]], axis=1).astype(np.float64)
    dst = src + np.stack([u[yy, xx][ok], v[yy, xx][ok]], axis=1)
    cls = SimilarityTransform if model == "similarity" else AffineTransform
    fit, inl = ransac((src, dst), cls, min_samples=3, residual_threshold=0.3, max_trials=200,
                      stop_probability=0.999, rng=rng)
    if fit is None or inl is None or inl.sum() < 20:
        return tform
    return tform @ np.asarray(fit.params, dtype=np.float64)  # frame 0 -> resampled frame 1 -> frame 1


def estimate_breathing(
    images: Any,
    model: Model = "similarity",
    reference: int | Literal["auto"] = "auto",
    max_size: int | None = 1024,
    n_keypoints: int = 1000,
    residual_px: float = 1.0,
    min_inliers: int = 12,
    refine: bool = True,
    feature_size: int = 512,
    seed: int = 0,
    progress: bool | None = None,
) -> BreathingEstimate:
    """Estimate how each frame of a focal stack is scaled, rotated and shifted.

    Each frame is registered to its neighbour in focus (ORB features, mutual
    nearest-neighbour matching, RANSAC fit with scikit-image) and the
    neighbour maps are chained, so frames far apart in focus, which look very
    different, are never compared directly.

    Args:
        images: the stack in focus order, ``[N, 3, H, W]`` or ``[N, H, W, 3]``
            (numpy or torch, float in [0, 1] or uint8), or N ``[H, W, 3]`` images.
        model: ``"similarity"`` (scale, rotation, shift: 4 parameters) or
            ``"affine"`` (6).
        reference: the frame the others are mapped from, or ``"auto"``: the
            frame with the narrowest view (largest magnification), which every
            other frame covers.
        max_size: the maps are estimated on frames shrunk by an integer
            factor to at most this long side in pixels (speed, memory); the
            matrices are for full resolution. ``None`` keeps full resolution.
        n_keypoints: ORB keypoints per frame.
        residual_px: RANSAC inlier threshold for the features, in the pixels they were found in.
        min_inliers: fewest agreeing matches accepted per neighbour pair.
        refine: sharpen each neighbour map with optical flow (a few
            hundredths of a pixel where the scene is textured); off, the
            features alone are good to about half a pixel.
        feature_size: with ``refine``, features are found on frames shrunk
            further, to at most this long side (they only start the flow).
        seed: RANSAC's random seed.
        progress: show a progress bar (None: only on a terminal, after 1 s).

    Returns:
        :class:`BreathingEstimate`. Raises ``ValueError`` naming the frames
        when a pair cannot be registered.
    """
    from tqdm.auto import tqdm

    if model not in ("similarity", "affine"):
        raise ValueError(f"model must be 'similarity' or 'affine', got {model!r}")
    stack = as_stack_array(images)
    n, _, H, W = stack.shape
    if n < 2:
        raise ValueError(f"images: a stack to align needs at least 2 frames, got {n}")
    if not (reference == "auto" or (isinstance(reference, (int, np.integer)) and -n <= reference < n)):
        raise ValueError(f"reference must be 'auto' or a frame index in [0, {n}), got {reference!r}")
    rng = np.random.default_rng(seed)
    from skimage.transform import downscale_local_mean

    greys, feats, factor, k2 = [], [], 1.0, 1
    bar = tqdm(total=2 * n - 1, desc="aligning: features", unit="step", disable=progress is False,
               delay=0 if progress else 1.0, leave=False)
    for i in range(n):
        grey, factor = _grey_small(stack[i], max_size)
        greys.append(grey)
        # features on a copy shrunk further (to <= feature_size): they only start the refinement
        k2 = 1 if not refine else max(1, -(-max(grey.shape) // int(feature_size)))
        small = grey if k2 == 1 else downscale_local_mean(grey[: grey.shape[0] // k2 * k2, : grey.shape[1] // k2 * k2],
                                                          (k2, k2))
        feats.append(_features(small, n_keypoints))
        bar.update()
    D2 = _scale_matrix(1.0 / k2)
    pair = [np.eye(3)] * (n - 1)
    inliers = np.zeros(n - 1, dtype=np.int64)
    bar.set_description("aligning: matching")
    for i in range(n - 1):
        t, inliers[i] = _pair_transform(feats[i], feats[i + 1], model, rng, residual_px, min_inliers, (i, i + 1))
        pair[i] = np.linalg.inv(D2) @ t @ D2
        if refine:
            pair[i] = _refine_pair(greys[i], greys[i + 1], pair[i], model, rng)
        bar.update()
    bar.close()
    # chain: frame 0 -> frame n, in shrunk coordinates
    chained = [np.eye(3)]
    for i in range(n - 1):
        chained.append(pair[i] @ chained[-1])
    D = _scale_matrix(factor)
    m0 = np.stack([np.linalg.inv(D) @ m @ D for m in chained])  # full resolution, frame 0 -> frame n
    ref = int(np.argmax(matrix_scale(m0))) if reference == "auto" else int(reference) % n
    mats = m0 @ np.linalg.inv(m0[ref])
    mats[ref] = np.eye(3)
    mats /= mats[:, 2:, 2:]
    return BreathingEstimate(mats, ref, inliers, (H, W), model)


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


# --- all together -------------------------------------------------------------

@dataclass
class AlignedStack:
    """A focal stack resampled onto its reference frame.

    Attributes:
        images: ``[N, 3, H, W]`` float32 in [0, 1], every frame in the reference
            frame's geometry; outside ``valid`` a frame's edge is repeated.
        matrices: ``[N, 3, 3]`` float64, reference pixel (x, y) -> frame n's.
        reference: index of the reference frame.
        valid: ``[H, W]`` bool, pixels covered by every frame.
        crop: ``(y0, y1, x0, x1)``, the largest box inside ``valid``
            (``images[..., y0:y1, x0:x1]``, see :meth:`cropped`).
        inliers: ``[N - 1]`` matches that agreed between neighbouring frames.
    """

    images: np.ndarray
    matrices: np.ndarray
    reference: int
    valid: np.ndarray
    crop: tuple[int, int, int, int]
    inliers: np.ndarray

    @property
    def scales(self) -> np.ndarray:
        """``[N]`` magnification of each frame relative to the reference."""
        return matrix_scale(self.matrices)

    @property
    def breathing_px(self) -> float:
        """How far (pixels) the most displaced frame was off the reference."""
        return float(displacement_px(self.matrices, self.valid.shape).max())

    def cropped(self) -> np.ndarray:
        """``[N, 3, y1 - y0, x1 - x0]``: the frames inside :attr:`crop` (a view)."""
        y0, y1, x0, x1 = self.crop
        return self.images[..., y0:y1, x0:x1]


def align_stack(
    images: Any,
    model: Model = "similarity",
    reference: int | Literal["auto"] = "auto",
    max_size: int | None = 1024,
    inplace: bool = False,
    seed: int = 0,
    progress: bool | None = None,
) -> AlignedStack:
    """Register the frames of a focal stack and resample them onto one frame.

    See :func:`estimate_breathing` for the arguments; ``inplace=True``
    overwrites ``images`` (an ``[N, 3, H, W]`` float32 array) to save memory.

    Example::

        res = align_stack(stack.images)     # [N, 3, H, W]
        res.scales, res.breathing_px        # magnification per frame, worst offset (px)
        res.cropped()                       # the part every frame covers
    """
    stack = as_stack_array(images)
    est = estimate_breathing(stack, model=model, reference=reference, max_size=max_size, seed=seed, progress=progress)
    if inplace and stack is not images:
        raise ValueError("inplace=True needs images as an [N, 3, H, W] float32 numpy array")
    out = warp_stack(stack, est.matrices, out=stack if inplace else None, progress=progress)
    size = stack.shape[-2:]
    return AlignedStack(out, est.matrices, est.reference, valid_region(est.matrices, size),
                        largest_box(est.matrices, size), est.inliers)


@dataclass
class StackAlignment:
    """What :func:`align_if_needed` did.

    Attributes:
        images: ``[N, 3, h, w]`` the frames to use: aligned and cropped to the
            region every frame covers (a view), or the input as it was.
        applied: whether the frames were resampled.
        estimate: the estimated maps, or None when not estimated.
        crop: ``(y0, y1, x0, x1)`` of ``images`` in the reference frame, or None.
        message: one line saying what was done and why.
    """

    images: np.ndarray
    applied: bool
    estimate: BreathingEstimate | None
    crop: tuple[int, int, int, int] | None
    message: str


def align_if_needed(
    images: Any,
    align: bool | None = None,
    model: Model = "similarity",
    threshold_px: float = 0.5,
    max_size: int | None = 1024,
    inplace: bool = False,
    seed: int = 0,
    progress: bool | None = None,
) -> StackAlignment:
    """Align a stack when it needs it: the default for ``dflib predict``.

    Args:
        images: ``[N, 3, H, W]`` (see :func:`estimate_breathing`).
        align: True: always align (errors propagate); False: never; None
            (auto): for N > 2 frames, estimate the maps and align when some
            frame is more than ``threshold_px`` pixels off the reference
            (a failed estimate is reported and the frames are used as they are).
        model, max_size, seed, progress: see :func:`estimate_breathing`.
        inplace: resample into ``images`` itself (an ``[N, 3, H, W]`` float32
            array) instead of a new array.
    """
    stack = as_stack_array(images)
    n, _, H, W = stack.shape
    if align is False:
        return StackAlignment(stack, False, None, None, "alignment: off (--no-align)")
    if align is None and n <= 2:
        return StackAlignment(stack, False, None, None, f"alignment: off for {n} frames (--align to force it)")
    try:
        est = estimate_breathing(stack, model=model, max_size=max_size, seed=seed, progress=progress)
    except ValueError as exc:
        if align:
            raise
        return StackAlignment(stack, False, None, None,
                              f"alignment: skipped, the frames could not be registered ({exc}); used as they are")
    b = est.breathing_px
    s = est.scales
    spread = f"frames differ by up to {b:.1f} px (magnification {s.min():.4f} to {s.max():.4f} of the reference)"
    if align is None and b <= threshold_px:
        return StackAlignment(stack, False, est, None,
                              f"alignment: not needed, {spread}, within {threshold_px:g} px (--align forces it)")
    if inplace and stack is not images:
        raise ValueError("inplace=True needs images as an [N, 3, H, W] float32 numpy array")
    out = warp_stack(stack, est.matrices, out=stack if inplace else None, progress=progress)
    y0, y1, x0, x1 = largest_box(est.matrices, (H, W))
    why = "" if align else f" (more than {threshold_px:g} px; --no-align skips it)"
    msg = (f"alignment: {spread}{why}: aligned onto frame {est.reference + 1} of {n} with {est.model} maps, "
           f"cropped to the {x1 - x0}x{y1 - y0} pixels every frame covers (x {x0}..{x1 - 1}, y {y0}..{y1 - 1})")
    return StackAlignment(out[..., y0:y1, x0:x1], True, est, (y0, y1, x0, x1), msg)
