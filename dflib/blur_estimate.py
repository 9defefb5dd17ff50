"""How much defocus blur a focal stack shows, measured from its images alone.

A learned model reads blur in pixels, so a stack whose blur is far beyond what the model learned (the shipped
weights: 3-25 px between the nearest and the farthest plane) is better shrunk first (``dflib predict
--working-size``). Real stacks rarely come with their camera's parameters, so :func:`largest_blur_px`
measures the blur instead: in each textured patch, the sharpest frame is blurred by Gaussians of growing
width until it matches the patch's most blurred frame (least squares, with a gain and an offset), and the
width is converted to the diameter of the disc with the same second moment (4σ). The stack's largest blur
is a high percentile of these diameters over the patches.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["BlurEstimate", "largest_blur_px"]


@dataclass
class BlurEstimate:
    """What :func:`largest_blur_px` measured.

    Attributes:
        largest_px: the ``percentile``-th percentile of the per-patch blur (disc diameter, pixels of the
            images given); at least ``max_px`` means "``max_px`` or more".
        per_patch_px: ``[P]`` the largest blur found in each measured patch.
        max_px: the widest blur the search tried.
    """

    largest_px: float
    per_patch_px: np.ndarray
    max_px: float

    @property
    def saturated(self) -> bool:
        """Whether the estimate reached the widest blur tried (the true blur may be larger)."""
        return self.largest_px >= self.max_px


def _patch_sums(x: np.ndarray, patch: int) -> np.ndarray:
    """``[..., ph * patch, pw * patch]`` -> ``[..., ph, pw]`` sums over each patch."""
    *lead, h, w = x.shape
    return x.reshape(*lead, h // patch, patch, w // patch, patch).sum(axis=(-3, -1))


def largest_blur_px(images: Any, patch: int = 32, percentile: float = 90.0, max_px: float = 64.0,
                    min_patches: int = 10) -> BlurEstimate | None:
    """Estimate the largest defocus blur that a focal stack's scene shows, in pixels.

    Args:
        images: the stack, ``[N, 3, H, W]``, ``[N, H, W, 3]`` or grey ``[N, H, W]`` (numpy or torch, values
            in [0, 1], or uint8), N >= 2.
        patch: side of the square patches, in pixels.
        percentile: which percentile of the patches' blur to report.
        max_px: widest blur to try (disc diameter; Gaussians of σ up to ``max_px / 4``).
        min_patches: fewest usable patches for an estimate.

    Returns:
        A :class:`BlurEstimate`, or None when fewer than ``min_patches`` patches are textured and change
        with focus (a texture-less scene, or frames with hardly any blur between them).

    A patch counts when its sharpest frame has texture (mean squared Laplacian of Gaussian above 1e-5) and
    its most blurred frame keeps at most half of that. On rendered stacks the 90th percentile lands within
    25 % of the scene's largest circle of confusion (4-45 px) (``tests/test_blur_estimate.py``).
    """
    from scipy import ndimage

    from dflib.checks import as_numpy
    from dflib.warp import as_stack_array

    x = as_numpy(images, "images") if getattr(images, "ndim", 0) == 3 else as_stack_array(images).mean(axis=1)
    if x.shape[0] < 2:
        raise ValueError(f"images: need N >= 2 frames, got {x.shape[0]}")
    n, h, w = x.shape
    x = x[:, : h // patch * patch, : w // patch * patch].astype(np.float64)
    if x.shape[1] == 0 or x.shape[2] == 0:
        return None
    focus = _patch_sums(np.stack([ndimage.gaussian_laplace(f, 1.0) ** 2 for f in x]), patch) / patch**2
    sharp, blurred = focus.argmax(axis=0), focus.argmin(axis=0)  # [ph, pw]
    fs, fb = focus.max(axis=0), focus.min(axis=0)
    use = (fs > 1e-5) & (fb <= 0.5 * fs)
    use[0, :] = use[-1, :] = False  # the filters' edges
    use[:, 0] = use[:, -1] = False
    if use.sum() < min_patches:
        return None
    ph, pw = use.shape
    rows, cols = np.nonzero(use)
    t = x.reshape(n, ph, patch, pw, patch)[blurred[rows, cols], rows, :, cols, :]  # [P, patch, patch], most blurred
    tc = t - t.mean(axis=(1, 2), keepdims=True)
    sigmas = np.geomspace(0.25, max_px / 4, int(round(4 * np.log2(max_px))) + 1)  # quarter-octave steps
    best = np.full(len(rows), np.inf)
    width = np.zeros(len(rows))
    for s in np.unique(sharp[rows, cols]):
        idx = np.nonzero(sharp[rows, cols] == s)[0]
        for sigma in sigmas:
            b = ndimage.gaussian_filter(x[s], sigma, truncate=3.0)
            p = b.reshape(ph, patch, pw, patch)[rows[idx], :, cols[idx], :]  # [P_s, patch, patch]
            pc = p - p.mean(axis=(1, 2), keepdims=True)
            # residual of t ~ gain * p + offset, least squares
            spp = (pc * pc).sum(axis=(1, 2))
            spt = (pc * tc[idx]).sum(axis=(1, 2))
            res = (tc[idx] ** 2).sum(axis=(1, 2)) - spt**2 / np.maximum(spp, 1e-12)
            better = res < best[idx]
            best[idx[better]] = res[better]
            width[idx[better]] = 4.0 * sigma
    return BlurEstimate(float(np.percentile(width, percentile)), width, float(4.0 * sigmas[-1]))
