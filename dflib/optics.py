"""Thin-lens optics: circle of confusion, focus-plane helpers, PSF kernels, camera presets.

A thin lens of focal length ``f`` and f-number ``N`` has aperture diameter
``A = f / N``. Focused at distance ``S1`` (metres), a point at distance ``S2``
images to a disc on the sensor (the circle of confusion, CoC) of diameter::

    c = A * f * |S2 - S1| / (S2 * (S1 - f))          [metres on the sensor]
      = A * f * S1 / (S1 - f) * |1/S2 - 1/S1|

so blur is *linear in inverse depth* (dioptres): a set of focus planes that is
uniform in dioptres samples blur uniformly. Dividing by the pixel pitch gives
the diameter in pixels.

All functions accept numpy arrays or torch tensors (and Python floats) and
broadcast; a torch input gives a torch output, otherwise numpy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Union

import numpy as np
import torch

ArrayLike = Union[np.ndarray, torch.Tensor, float]

__all__ = [
    "ThinLens",
    "focus_uniform_diopters",
    "stack_blur_px",
    "depth_to_disparity",
    "disparity_to_depth",
    "FOD500_CAMERA",
    "FOD500_FOCUS_M",
    "FOD500_DEPTH_MAX_M",
    "NYU_CAMERA",
    "disc_psf",
    "gaussian_psf",
    "psf_kernels",
    "psf_radius",
]


def _any_torch(*xs: Any) -> bool:
    return any(isinstance(x, torch.Tensor) for x in xs)


def _as_array(x: Any, name: str, like_torch: bool, ref: torch.Tensor | None = None) -> Any:
    """Convert ``x`` to a float numpy array or tensor (matching ``ref``'s device/dtype)."""
    if like_torch:
        if isinstance(x, torch.Tensor):
            return x if x.is_floating_point() else x.to(torch.float32)
        dev = ref.device if ref is not None else None
        dt = ref.dtype if ref is not None and ref.is_floating_point() else torch.float32
        try:
            return torch.as_tensor(np.asarray(x, dtype=np.float64), dtype=dt, device=dev)
        except (TypeError, ValueError) as e:
            raise TypeError(f"{name} must be numeric (array, tensor or float), got {type(x).__name__}") from e
    try:
        return np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise TypeError(f"{name} must be numeric (array, tensor or float), got {type(x).__name__}") from e


def _min_value(x: Any) -> float:
    if isinstance(x, torch.Tensor):
        finite = x[torch.isfinite(x)]
        return float(finite.min()) if finite.numel() else math.inf
    finite = x[np.isfinite(x)]
    return float(finite.min()) if finite.size else math.inf


@dataclass(frozen=True)
class ThinLens:
    """A thin-lens camera.

    Attributes:
        focal_length_m: focal length ``f`` in metres (> 0).
        f_number: f-number ``N`` (> 0); aperture diameter ``A = f / N``.
        pixel_pitch_m: sensor pixel pitch in metres (> 0).

    >>> ThinLens(50e-3, 8.0, 0.0)
    Traceback (most recent call last):
    ...
    ValueError: ThinLens.pixel_pitch_m must be a finite positive number, got 0.0
    """

    focal_length_m: float
    f_number: float
    pixel_pitch_m: float

    def __post_init__(self) -> None:
        for name in ("focal_length_m", "f_number", "pixel_pitch_m"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float, np.floating, np.integer)):
                raise TypeError(f"ThinLens.{name} must be a real number, got {type(v).__name__} ({v!r})")
            if not math.isfinite(float(v)) or float(v) <= 0:
                raise ValueError(f"ThinLens.{name} must be a finite positive number, got {v!r}")
            object.__setattr__(self, name, float(v))

    @property
    def aperture_m(self) -> float:
        """Aperture diameter ``A = f / N`` in metres.

        >>> ThinLens(50e-3, 2.0, 5e-6).aperture_m  # 50 mm at f/2: 25 mm
        0.025
        """
        return self.focal_length_m / self.f_number

    def _check(self, depth_m: Any, focus_m: Any) -> tuple[Any, Any]:
        like_torch = _any_torch(depth_m, focus_m)
        ref = depth_m if isinstance(depth_m, torch.Tensor) else (focus_m if isinstance(focus_m, torch.Tensor) else None)
        d = _as_array(depth_m, "depth_m", like_torch, ref)
        s = _as_array(focus_m, "focus_m", like_torch, ref)
        dmin = _min_value(d)
        if dmin < 0:
            raise ValueError(f"depth_m must be non-negative (metres), got a minimum of {dmin!r}")
        smin = _min_value(s)
        if not smin > self.focal_length_m:
            raise ValueError(
                f"focus_m must be greater than the focal length {self.focal_length_m!r} m, got {smin!r} m"
            )
        return d, s

    def coc_per_diopter_px(self, focus_m: ArrayLike) -> Any:
        """Slope ``k`` of the CoC in pixels per dioptre: ``c_px = k * |1/S2 - 1/S1|``.

        ``k = A * f * S1 / ((S1 - f) * pixel_pitch)``; same type/shape as ``focus_m``.

        A 50 mm f/8 lens with 12 µm pixels focused at 2 m: k = 6.25 mm x 50 mm x 2 m / (1.95 m x 12 µm),
        so a point 0.5 dioptre away (at 1 m) blurs to 0.5 k = 13.35 px (as :meth:`coc_px`):

        >>> round(float(ThinLens(50e-3, 8.0, 12e-6).coc_per_diopter_px(2.0)), 2)
        26.71
        """
        _, s = self._check(focus_m, focus_m)
        f = self.focal_length_m
        return self.aperture_m * f * s / ((s - f) * self.pixel_pitch_m)

    def coc_m(self, depth_m: ArrayLike, focus_m: ArrayLike) -> Any:
        """CoC diameter on the sensor in metres; broadcasts ``depth_m`` against ``focus_m``.

        Args:
            depth_m: object distance ``S2`` in metres (>= 0; 0 gives ``inf``), any shape.
            focus_m: focus distance ``S1`` in metres (> focal length), any broadcastable shape.

        Returns:
            ``c = A f |S2 - S1| / (S2 (S1 - f))``; a tensor if either input is a
            tensor, else a numpy array.

        >>> round(float(ThinLens(50e-3, 8.0, 12e-6).coc_m(1.0, 2.0)) * 1e3, 4)  # mm: 6.25 x 50 x 1 / (1 x 1950)
        0.1603
        """
        d, s = self._check(depth_m, focus_m)
        f = self.focal_length_m
        if isinstance(d, torch.Tensor):
            return self.aperture_m * f * torch.abs(d - s) / (d * (s - f))
        with np.errstate(divide="ignore", invalid="ignore"):
            return self.aperture_m * f * np.abs(d - s) / (d * (s - f))

    def coc_px(self, depth_m: ArrayLike, focus_m: ArrayLike) -> Any:
        """CoC diameter in pixels (``coc_m / pixel_pitch_m``); see :meth:`coc_m`.

        A 50 mm f/8 lens (aperture 6.25 mm) focused at 2 m blurs a point at 1 m to
        6.25 mm x 50 mm x 1 m / (1 m x 1.95 m) = 0.160 mm, 13.35 px of 12 µm:

        >>> cam = ThinLens(50e-3, 8.0, 12e-6)
        >>> round(float(cam.coc_px(1.0, 2.0)), 2), float(cam.coc_px(2.0, 2.0))
        (13.35, 0.0)
        """
        return self.coc_m(depth_m, focus_m) / self.pixel_pitch_m


def stack_blur_px(camera: ThinLens, focus_m: ArrayLike) -> float:
    """The largest blur a focus set gives a scene that lies within it, pixels: the CoC of a point at the
    farthest focus distance in the image focused at the nearest (how :mod:`dflib.data.diverse` sizes its
    stacks, 3–25 px by default).

    A 50 mm f/8 lens focused at 1 m blurs a point at 2 m to 6.25 mm x 50 mm x 1 m / (2 m x 0.95 m) = 0.164 mm,
    13.71 px of 12 µm:

    >>> round(stack_blur_px(ThinLens(50e-3, 8.0, 12e-6), [1.0, 1.5, 2.0]), 2)
    13.71
    """
    f = np.asarray(focus_m, dtype=np.float64)
    return float(camera.coc_px(f.max(), f.min()))


def focus_uniform_diopters(near_m: float, far_m: float, n: int) -> np.ndarray:
    """``n`` focus distances in metres, increasing, uniformly spaced in dioptres (1/m).

    Args:
        near_m: nearest focus distance (> 0), metres.
        far_m: farthest focus distance (> near_m; ``inf`` allowed), metres.
        n: number of planes (>= 1; with 1, the dioptric midpoint).

    Returns:
        ``[n]`` float64 array, ``near_m`` first and ``far_m`` last when ``n >= 2``.

    >>> focus_uniform_diopters(0.5, 2.0, 4).round(4).tolist()  # 2, 1.5, 1, 0.5 dioptres
    [0.5, 0.6667, 1.0, 2.0]
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    if not (near_m > 0 and math.isfinite(near_m)):
        raise ValueError(f"near_m must be a finite positive distance in metres, got {near_m!r}")
    if not far_m > near_m:
        raise ValueError(f"far_m must be greater than near_m={near_m!r}, got {far_m!r}")
    q_near, q_far = 1.0 / near_m, (0.0 if math.isinf(far_m) else 1.0 / far_m)
    if n == 1:
        q = np.array([(q_near + q_far) / 2])
    else:
        q = np.linspace(q_near, q_far, n)
    with np.errstate(divide="ignore"):
        return 1.0 / q


def _bf_check(baseline_focal: float) -> float:
    if not (isinstance(baseline_focal, (int, float, np.floating, np.integer)) and baseline_focal > 0):
        raise ValueError(f"baseline_focal must be a positive number (baseline x focal length), got {baseline_focal!r}")
    return float(baseline_focal)


def _reciprocal_valid(x: Any, scale: float) -> Any:
    """``scale / x`` where ``x`` is finite and > 0, else 0 (invalid stays invalid)."""
    if isinstance(x, torch.Tensor):
        x = x if x.is_floating_point() else x.to(torch.float32)
        valid = torch.isfinite(x) & (x > 0)
        return torch.where(valid, scale / torch.where(valid, x, torch.ones_like(x)), torch.zeros_like(x))
    x = np.asarray(x, dtype=np.float64)
    valid = np.isfinite(x) & (x > 0)
    return np.where(valid, scale / np.where(valid, x, 1.0), 0.0)


def depth_to_disparity(depth: ArrayLike, baseline_focal: float) -> Any:
    """Disparity ``b*f / depth``; invalid depth (<= 0, NaN, inf) maps to 0.

    Units: ``baseline_focal`` in (disparity unit x depth unit), e.g. m*px gives px.

    >>> depth_to_disparity(np.array([2.0, 0.0, np.inf]), 100.0).tolist()  # b*f = 100 px*m
    [50.0, 0.0, 0.0]
    """
    return _reciprocal_valid(depth, _bf_check(baseline_focal))


def disparity_to_depth(disparity: ArrayLike, baseline_focal: float) -> Any:
    """Depth ``b*f / disparity``; invalid disparity (<= 0, NaN, inf) maps to 0.

    >>> disparity_to_depth(np.array([25.0, 0.0]), 100.0).tolist()
    [4.0, 0.0]
    """
    return _reciprocal_valid(disparity, _bf_check(baseline_focal))


# --- PSFs: the blur of a point at CoC diameter d (pixels) ------------------------

def disc_psf(diameter_px: torch.Tensor | float, radius: int | None = None) -> torch.Tensor:
    """Antialiased, unit-sum disc PSFs.

    Each pixel's weight is its approximate coverage by the disc,
    ``clip(r + 0.5 - dist, 0, 1)`` with ``r = diameter / 2``, so the kernel
    changes continuously with the diameter; a diameter below 1 px is a delta.

    Args:
        diameter_px: ``[B]`` (or scalar) CoC diameters in pixels (>= 0).
        radius: kernel half-size; default just large enough for the largest disc.

    Returns:
        ``[B, 2R+1, 2R+1]`` float kernels (``[2R+1, 2R+1]`` for a scalar).

    >>> disc_psf(0.5).tolist()  # below 1 px: a delta
    [[0.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 0.0]]
    >>> k = disc_psf(torch.tensor([2.0, 6.0]))
    >>> tuple(k.shape), [round(s, 6) for s in k.sum(dim=(-2, -1)).tolist()]  # R = ceil(6 / 2 + 0.5) = 4
    ((2, 9, 9), [1.0, 1.0])
    """
    d = torch.as_tensor(diameter_px, dtype=torch.float32)
    scalar = d.ndim == 0
    d = d.reshape(-1)
    r = d / 2
    R = int(math.ceil(float(r.max()) + 0.5)) if radius is None else int(radius)
    ax = torch.arange(-R, R + 1, dtype=torch.float32, device=d.device)
    dist = torch.sqrt(ax[:, None] ** 2 + ax[None, :] ** 2)
    k = (r[:, None, None] + 0.5 - dist[None]).clamp(0.0, 1.0)
    k = k / k.sum(dim=(-2, -1), keepdim=True)
    return k[0] if scalar else k


def gaussian_psf(diameter_px: torch.Tensor | float, radius: int | None = None) -> torch.Tensor:
    """Unit-sum Gaussian PSFs with the second moment of a disc of the given diameter.

    A disc of radius r has per-axis variance r^2/4, so ``sigma = diameter / 4``.
    Below sigma = 0.2 px the kernel is a delta. Shapes as :func:`disc_psf`.

    A diameter of 8 px gives sigma = 2 px, a per-axis variance of 4 px²:

    >>> k = gaussian_psf(8.0, radius=12)
    >>> round(float((k.sum(0) * torch.arange(-12.0, 13.0) ** 2).sum()), 3)
    4.0
    """
    d = torch.as_tensor(diameter_px, dtype=torch.float32)
    scalar = d.ndim == 0
    d = d.reshape(-1)
    sigma = d / 4
    R = int(math.ceil(3 * float(sigma.max()))) if radius is None else int(radius)
    ax = torch.arange(-R, R + 1, dtype=torch.float32, device=d.device)
    dist2 = ax[:, None] ** 2 + ax[None, :] ** 2
    s2 = (2 * sigma.clamp(min=1e-6) ** 2)[:, None, None]
    k = torch.exp(-dist2[None] / s2)
    delta = (dist2 == 0).to(k.dtype)[None].expand_as(k)
    k = torch.where((sigma < 0.2)[:, None, None], delta, k)
    k = k / k.sum(dim=(-2, -1), keepdim=True)
    return k[0] if scalar else k


def psf_kernels(kind: str, diam: torch.Tensor, radius: int | None = None) -> torch.Tensor:
    """Unit-sum PSFs ``[B, 2R+1, 2R+1]`` of kind ``"disc"`` (:func:`disc_psf`) or ``"gaussian"`` (:func:`gaussian_psf`).

    >>> tuple(psf_kernels("gaussian", torch.tensor([0.0, 4.0])).shape)  # R = ceil(3 x 4 / 4) = 3
    (2, 7, 7)
    """
    if kind == "disc":
        return disc_psf(diam, radius)
    if kind == "gaussian":
        return gaussian_psf(diam, radius)
    raise ValueError(f"psf must be 'disc' or 'gaussian', got {kind!r}")


def psf_radius(kind: str, diam: float) -> int:
    """Half-size in pixels of a kernel that holds the PSF of a CoC of ``diam`` px.

    >>> psf_radius("disc", 6.0), psf_radius("gaussian", 6.0)
    (4, 5)
    """
    return int(math.ceil(diam / 2 + 0.5)) if kind == "disc" else int(math.ceil(3 * diam / 4))


# --- presets -----------------------------------------------------------------

#: FoD500 (DefocusNet's Blender data): f = 2.9 mm, f/1. The pixel pitch is not
#: published; 12 um makes 256x256 renders behave like FoD500: the largest CoC
#: in the 0.1-3 m depth range at its five focus planes is about 7 px, and the
#: 0.1 m plane focused at 1.5 m blurs by ~6.6 px.
FOD500_CAMERA = ThinLens(focal_length_m=2.9e-3, f_number=1.0, pixel_pitch_m=12e-6)
#: FoD500 focus distances in metres.
FOD500_FOCUS_M: tuple[float, ...] = (0.1, 0.15, 0.3, 0.7, 1.5)
#: FoD500's maximum scene depth in metres (DefocusNet's data setting).
FOD500_DEPTH_MAX_M = 3.0
#: NYU-v2 synthetic focal stacks (HybridDepth / DualFocus): f = 50 mm, f/8, 12 um pixels.
NYU_CAMERA = ThinLens(focal_length_m=50e-3, f_number=8.0, pixel_pitch_m=12e-6)
