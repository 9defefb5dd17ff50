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
from typing import Any, Literal

import numpy as np
from dflib.registration import BreathingEstimate, Model, estimate_breathing
from dflib.warp import (
    as_stack_array,
    breathing_matrices,
    breathing_scales,
    displacement_px,
    largest_box,
    matrix_scale,
    valid_region,
    warp_stack,
)

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
