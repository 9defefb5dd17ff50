"""Estimating focus breathing and camera motion from the frames of a focal stack.

Each frame is registered to its *neighbour in focus* (whose blur is similar),
with ORB features matched both ways and a RANSAC fit (scikit-image), refined
by direct alignment of the two images (every pixel, Gauss-Newton on the map's
parameters), then the neighbour-to-neighbour maps are chained to one reference frame
(:func:`estimate_breathing`). The maps are homogeneous 3x3 matrices as in
:mod:`dflib.warp`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from dflib.tiling import _grey
from dflib.warp import as_stack_array, displacement_px, matrix_scale

__all__ = ["BreathingEstimate", "estimate_breathing"]

Model = Literal["similarity", "affine"]


def _grey_small(frame: np.ndarray, max_size: int | None) -> tuple[np.ndarray, float]:
    """Luminance of one ``[3, H, W]`` frame, shrunk by the smallest integer
    factor k (means of k x k blocks) that brings its long side to at most
    ``max_size``; returns it and the factor 1 / k applied."""
    from skimage.transform import downscale_local_mean

    grey = _grey(frame)
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


def _map_jacobian(gx: np.ndarray, gy: np.ndarray, x: np.ndarray, y: np.ndarray, model: str) -> list[np.ndarray]:
    """Columns of ∂(image)/∂(map parameters) for a small map near the identity, x and y about the centre:
    similarity x' = x + a x - b y + t_x, y' = y + b x + a y + t_y; affine x' = x + a₁₁ x + a₁₂ y + t_x, ..."""
    if model == "similarity":
        return [gx * x + gy * y, gy * x - gx * y, gx, gy]
    return [gx * x, gx * y, gy * x, gy * y, gx, gy]


def _small_map(p: np.ndarray, model: str) -> np.ndarray:
    """The 3x3 map of :func:`_map_jacobian`'s parameters ``p``."""
    if model == "similarity":
        a, b, tx, ty = p
        return np.array([[1 + a, -b, tx], [b, 1 + a, ty], [0, 0, 1.0]])
    return np.array([[1 + p[0], p[1], p[4]], [p[2], 1 + p[3], p[5]], [0, 0, 1.0]])


def _refine_pair(g0: np.ndarray, g1: np.ndarray, tform: np.ndarray, model: str, sigma: float = 1.5,
                 levels: int = 3, max_iter: int = 30, tol_px: float = 1e-3, margin: int = 8) -> np.ndarray:
    """Sharpen a map from frame 0's coordinates to frame 1's by direct alignment of the two images.

    Gauss-Newton on the map's parameters (Lucas-Kanade for a global map, compositional updates) minimises
    Σ (g1(T x) - α g0(x) - β)² over every pixel of frame 0 that frame 1 covers, with a gain α and an offset β
    re-solved at each step (exposure may drift). Both images are smoothed by a Gaussian of ``sigma`` pixels
    (defocus blurs are symmetric, so neither this nor the frames' different blur biases the minimum), coarse
    to fine over ``levels`` factor-2 levels. Every pixel counts, so straight edges, blurred regions and
    noise, which make a local optical flow unreliable, average out, and no random draw is involved: the
    result depends only on the two images and the start. Deterministic.

    It replaced a local optical flow (iterative Lucas-Kanade) fitted by RANSAC at 0.3 px. On a real phone
    macro stack (10 frames at 1024 x 768, blur up to tens of pixels) that flow's residuals had a robust
    spread of 1-7 px, RANSAC kept 1-30 % of the points, and the neighbour maps moved by up to 9 px at the
    corners with RANSAC's seed. This refinement's maps are the same for every seed and within 0.6 px of
    those found with the frames in reverse order, in half the time. On rendered stacks with known
    breathing each neighbour map is within 0.1-0.3 px of the truth (tests/test_align.py).
    """
    from scipy import ndimage

    t = tform.copy()
    for level in range(levels - 1, -1, -1):
        k = 2 ** level
        h0 = ndimage.gaussian_filter(g0, sigma * k)[k // 2::k, k // 2::k]
        h1 = ndimage.gaussian_filter(g1, sigma * k)[k // 2::k, k // 2::k]
        hh, ww = h0.shape
        if min(hh, ww) < 8 * margin:
            continue
        s = np.array([[k, 0, k // 2], [0, k, k // 2], [0, 0, 1.0]])  # level pixel -> full pixel
        c = np.array([[1, 0, (ww - 1) / 2], [0, 1, (hh - 1) / 2], [0, 0, 1.0]])  # parameters about the centre
        yy, xx = np.mgrid[0:hh, 0:ww].astype(np.float64)
        pts = np.stack([xx.ravel(), yy.ravel(), np.ones(xx.size)])
        xc, yc = xx - c[0, 2], yy - c[1, 2]
        ts = np.linalg.inv(s) @ t @ s
        for _ in range(max_iter):
            src = ts @ pts
            moved = ndimage.map_coordinates(h1, [src[1], src[0]], order=1, mode="nearest").reshape(hh, ww)
            use = ((src[0] >= 0) & (src[0] <= ww - 1) & (src[1] >= 0) & (src[1] <= hh - 1)).reshape(hh, ww)
            use[:margin], use[-margin:], use[:, :margin], use[:, -margin:] = False, False, False, False
            if use.sum() < 100:
                return tform
            gy, gx = np.gradient(moved)
            ref = h0[use]
            cols = _map_jacobian(gx[use], gy[use], xc[use], yc[use], model) + [-ref, -np.ones_like(ref)]
            jac = np.stack(cols, axis=1)
            step = np.linalg.lstsq(jac.T @ jac, -(jac.T @ (moved[use] - ref)), rcond=None)[0][:-2]
            ts = ts @ c @ _small_map(step, model) @ np.linalg.inv(c)
            npar = len(step) - 2
            if np.abs(step[:npar]).max() * max(hh, ww) + np.abs(step[npar:]).max() < tol_px:
                break
        t = s @ ts @ np.linalg.inv(s)
    return t


def estimate_breathing(
    images: Any,
    model: Model = "similarity",
    reference: int | Literal["auto"] = "auto",
    max_size: int | None = 1024,
    n_keypoints: int = 1000,
    residual_px: float = 1.0,
    min_inliers: int = 12,
    refine: bool = True,
    feature_size: int = 256,
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
        refine: sharpen each neighbour map by aligning the two images directly
            (:func:`_refine_pair`: a few tenths of a pixel, whatever the seed);
            off, the features alone are good to about half a pixel where they
            match well, and give way on strongly blurred frames.
        feature_size: with ``refine``, features are found on frames shrunk
            further, to at most this long side (they only start the refinement:
            on three real stacks, 256 and 512 gave the same maps to 1e-7 px, and
            256 took 0.65-0.75 of the time: ``benchmarks/feature_size.py``).
        seed: RANSAC's random seed (of the feature maps; with ``refine`` the
            result does not depend on it where the refinement converges).
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
            pair[i] = _refine_pair(greys[i], greys[i + 1], pair[i], model)
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
