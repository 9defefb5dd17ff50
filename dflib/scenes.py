"""Embedded RGB-D scenes (no network): procedural scenes and Middlebury "motorcycle".

Procedural scenes are textured with the images scikit-image ships (brick,
grass, gravel, camera, astronaut, ...) and with procedural noise, and contain
texture-less regions on purpose (they carry no focus information). Every
generator is deterministic for a given ``seed``.

The real scene is the Middlebury 2014 "Motorcycle" left view that
``skimage.data.stereo_motorcycle()`` ships, 4x downsampled to 500x741, with its
ground-truth disparity converted to metric depth (see
:func:`middlebury_motorcycle`).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Callable

import numpy as np
import scipy.ndimage
import skimage.data
import skimage.transform

__all__ = [
    "RGBDScene",
    "TEXTURES",
    "MORE_TEXTURES",
    "texture",
    "fronto_parallel_plane",
    "slanted_plane",
    "step_edge",
    "smooth_blobs",
    "occluding_objects",
    "random_scene",
    "middlebury_motorcycle",
    "middlebury_crop",
    "MIDDLEBURY_MOTORCYCLE_CALIB",
]

#: scikit-image images used as textures (all ship inside the wheel).
TEXTURES: tuple[str, ...] = (
    "brick", "grass", "gravel", "camera", "astronaut", "coffee", "chelsea", "rocket", "moon", "coins",
)
#: more scikit-image images that ship inside the wheel, never drawn by :func:`random_scene` (the diverse
#: training data, :mod:`dflib.data.diverse`, trains on some and holds the others out for evaluation).
MORE_TEXTURES: tuple[str, ...] = (
    "hubble_deep_field", "cell", "checkerboard", "immunohistochemistry", "text", "clock",
)

#: Calibration valid for skimage's 4x-downsampled Motorcycle (500x741), from the
#: ``skimage.data.stereo_motorcycle`` docstring; it equals Middlebury's calib.txt
#: (cam0 focal 3979.911 px, doffs 124.343 px, baseline 193.001 mm) with the
#: focal length and doffs divided by 4.
MIDDLEBURY_MOTORCYCLE_CALIB = {"focal_px": 994.978, "doffs_px": 31.086, "baseline_m": 0.193001}


@dataclass
class RGBDScene:
    """An RGB-D image.

    Attributes:
        rgb: ``[H, W, 3]`` float32 sRGB in [0, 1].
        depth: ``[H, W]`` float32 metres; 0 marks a hole (no ground truth).
        name: a short description.
    """

    rgb: np.ndarray
    depth: np.ndarray
    name: str = ""

    def __post_init__(self) -> None:
        if self.rgb.ndim != 3 or self.rgb.shape[-1] != 3:
            raise ValueError(f"rgb must have shape [H, W, 3], got {self.rgb.shape}")
        if self.depth.shape != self.rgb.shape[:2]:
            raise ValueError(f"depth shape {self.depth.shape} does not match rgb {self.rgb.shape[:2]}")

    @property
    def mask(self) -> np.ndarray:
        """``[H, W]`` bool, True where depth is valid (finite and > 0)."""
        return np.isfinite(self.depth) & (self.depth > 0)


def _check_size(size: tuple[int, int]) -> tuple[int, int]:
    if len(size) != 2 or min(size) < 4:
        raise ValueError(f"size must be (H, W) with H, W >= 4, got {size!r}")
    return int(size[0]), int(size[1])


def _check_range(depth_range: tuple[float, float]) -> tuple[float, float]:
    lo, hi = float(depth_range[0]), float(depth_range[1])
    if not (0 < lo < hi < np.inf):
        raise ValueError(f"depth_range must be (near, far) with 0 < near < far < inf, got {depth_range!r}")
    return lo, hi


@functools.lru_cache(maxsize=None)
def _texture_source(name: str) -> np.ndarray:
    img = getattr(skimage.data, name)()
    img = np.asarray(img, dtype=np.float32) / 255.0
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=-1)
    img.setflags(write=False)
    return img[..., :3]


def _noise_texture(size: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """Coloured multi-scale (1/f-like) noise, ``[H, W, 3]`` in [0, 1]."""
    H, W = size
    out = np.zeros((H, W, 3), np.float32)
    for sigma, amp in ((0.7, 0.35), (2.0, 0.3), (6.0, 0.2), (16.0, 0.15)):
        n = scipy.ndimage.gaussian_filter(rng.standard_normal((H, W, 3)).astype(np.float32), (sigma, sigma, 0))
        out += amp * n / (n.std() + 1e-8)
    out = 0.5 + 0.18 * out
    return np.clip(out, 0.0, 1.0)


def texture(name: str, size: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """A ``[H, W, 3]`` float32 texture in [0, 1].

    Args:
        name: one of :data:`TEXTURES` or :data:`MORE_TEXTURES` (randomly scaled, cropped
            and tiled; grey images are tinted), ``"noise"`` (procedural) or ``"flat"``
            (a constant colour: texture-less).
        size: ``(H, W)``.
        rng: numpy Generator.
    """
    H, W = _check_size(size)
    if name == "flat":
        return np.broadcast_to(rng.uniform(0.15, 0.85, 3).astype(np.float32), (H, W, 3)).copy()
    if name == "noise":
        return _noise_texture((H, W), rng)
    if name not in TEXTURES + MORE_TEXTURES:
        raise ValueError(f"texture name must be one of {TEXTURES + MORE_TEXTURES + ('noise', 'flat')}, got {name!r}")
    src = _texture_source(name)
    scale = rng.uniform(0.5, 1.0)
    img = skimage.transform.rescale(src, scale, channel_axis=-1, anti_aliasing=True, order=1).astype(np.float32)
    reps = (int(np.ceil(H / img.shape[0])) + 1, int(np.ceil(W / img.shape[1])) + 1, 1)
    if reps[0] > 1 or reps[1] > 1:
        img = np.tile(img, reps)
    y0 = int(rng.integers(0, img.shape[0] - H + 1))
    x0 = int(rng.integers(0, img.shape[1] - W + 1))
    out = img[y0 : y0 + H, x0 : x0 + W]
    if np.allclose(src[..., 0], src[..., 1]):  # grey source: tint it
        out = out * rng.uniform(0.6, 1.0, 3).astype(np.float32)
    return np.ascontiguousarray(np.clip(out, 0.0, 1.0), dtype=np.float32)


def _random_texture(size: tuple[int, int], rng: np.random.Generator, flat_prob: float = 0.15,
                    names: tuple[str, ...] = TEXTURES) -> np.ndarray:
    """Flat (``flat_prob``), procedural noise (0.25) or one of the images ``names``."""
    u = rng.uniform()
    if u < flat_prob:
        return texture("flat", size, rng)
    if u < flat_prob + 0.25:
        return texture("noise", size, rng)
    return texture(str(rng.choice(names)), size, rng)


def _get_rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def fronto_parallel_plane(
    depth_m: float = 1.0, size: tuple[int, int] = (256, 256), seed: int = 0, texture_name: str | None = None
) -> RGBDScene:
    """A textured plane at constant depth ``depth_m`` (metres)."""
    H, W = _check_size(size)
    if not depth_m > 0:
        raise ValueError(f"depth_m must be > 0, got {depth_m!r}")
    rng = _get_rng(seed)
    rgb = texture(texture_name, (H, W), rng) if texture_name else _random_texture((H, W), rng, flat_prob=0.0)
    return RGBDScene(rgb, np.full((H, W), depth_m, np.float32), f"plane@{depth_m:g}m")


def slanted_plane(
    near_m: float = 0.3, far_m: float = 3.0, size: tuple[int, int] = (256, 256), seed: int = 0
) -> RGBDScene:
    """A textured plane whose inverse depth varies linearly from ``near_m`` to ``far_m``
    along a random direction (as a real slanted plane does in the image)."""
    H, W = _check_size(size)
    near_m, far_m = _check_range((near_m, far_m))
    rng = _get_rng(seed)
    theta = rng.uniform(0, 2 * np.pi)
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    t = np.cos(theta) * xx / W + np.sin(theta) * yy / H
    t = (t - t.min()) / (t.max() - t.min())
    q = 1 / far_m + (1 / near_m - 1 / far_m) * t
    return RGBDScene(_random_texture((H, W), rng, 0.0), (1 / q).astype(np.float32), "slanted plane")


def step_edge(
    near_m: float = 0.3, far_m: float = 2.0, size: tuple[int, int] = (256, 256), seed: int = 0
) -> RGBDScene:
    """Two textured fronto-parallel planes meeting at a vertical depth step in the middle."""
    H, W = _check_size(size)
    near_m, far_m = _check_range((near_m, far_m))
    rng = _get_rng(seed)
    rgb = _random_texture((H, W), rng, 0.0)
    rgb[:, W // 2 :] = _random_texture((H, W - W // 2), rng, 0.0)
    depth = np.full((H, W), far_m, np.float32)
    depth[:, : W // 2] = near_m
    return RGBDScene(rgb, depth, "step edge")


def _smooth_field(size: tuple[int, int], rng: np.random.Generator, sigma_frac: float) -> np.ndarray:
    H, W = size
    f = scipy.ndimage.gaussian_filter(rng.standard_normal((H, W)), sigma_frac * min(H, W), mode="reflect")
    return (f - f.min()) / (f.max() - f.min() + 1e-12)


def smooth_blobs(
    size: tuple[int, int] = (256, 256), seed: int = 0, depth_range: tuple[float, float] = (0.1, 3.0)
) -> RGBDScene:
    """A smooth random depth surface (uniform in inverse depth over ``depth_range``),
    with a random texture and some texture-less patches."""
    H, W = _check_size(size)
    lo, hi = _check_range(depth_range)
    rng = _get_rng(seed)
    t = _smooth_field((H, W), rng, rng.uniform(0.08, 0.2))
    q = 1 / hi + (1 / lo - 1 / hi) * t
    rgb = _random_texture((H, W), rng, 0.0)
    field = _smooth_field((H, W), rng, 0.1)
    patches = field > np.quantile(field, 0.85)  # texture-less islands, ~15 % of the image
    rgb[patches] = rng.uniform(0.2, 0.8, 3).astype(np.float32)
    return RGBDScene(rgb, (1 / q).astype(np.float32), "smooth blobs")


def occluding_objects(
    size: tuple[int, int] = (256, 256),
    seed: int = 0,
    depth_range: tuple[float, float] = (0.1, 3.0),
    n_objects: int | None = None,
) -> RGBDScene:
    """A background (fronto-parallel or slanted) with textured discs, rectangles and
    blobs at nearer depths occluding it and each other."""
    H, W = _check_size(size)
    lo, hi = _check_range(depth_range)
    rng = _get_rng(seed)
    qlo, qhi = 1 / hi, 1 / lo
    # background in the far third of inverse depth, maybe slanted
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    qb0 = qlo + (qhi - qlo) * rng.uniform(0.0, 0.2)
    slope = (qhi - qlo) * rng.uniform(0.0, 0.15) * rng.choice([0, 1])
    t = (xx / W) if rng.uniform() < 0.5 else (yy / H)
    q = qb0 + slope * t
    rgb = _random_texture((H, W), rng, 0.1)
    n = int(rng.integers(2, 6)) if n_objects is None else int(n_objects)
    qs = np.sort(qlo + (qhi - qlo) * rng.uniform(0.2, 1.0, n))  # far to near: nearer painted last
    for qi in qs:
        kind = rng.integers(0, 3)
        cy, cx = rng.uniform(0, H), rng.uniform(0, W)
        ry, rx = rng.uniform(0.08, 0.3) * H, rng.uniform(0.08, 0.3) * W
        if kind == 0:
            m = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1
        elif kind == 1:
            m = (np.abs(yy - cy) <= ry) & (np.abs(xx - cx) <= rx)
        else:
            m = _smooth_field((H, W), rng, 0.06) > rng.uniform(0.65, 0.8)
        if not m.any():
            continue
        q = np.where(m, qi, q)
        tex = _random_texture((H, W), rng)
        rgb[m] = tex[m]
    return RGBDScene(rgb, (1 / q).astype(np.float32), "occluding objects")


_GENERATORS: dict[str, Callable[..., RGBDScene]] = {
    "slanted_plane": lambda size, seed, lo, hi, rng: slanted_plane(
        *np.sort(1 / rng.uniform(1 / hi, 1 / lo, 2)), size=size, seed=seed),
    "step_edge": lambda size, seed, lo, hi, rng: step_edge(
        *np.sort(1 / rng.uniform(1 / hi, 1 / lo, 2)), size=size, seed=seed),
    "smooth_blobs": lambda size, seed, lo, hi, rng: smooth_blobs(size, seed, (lo, hi)),
    "occluding_objects": lambda size, seed, lo, hi, rng: occluding_objects(size, seed, (lo, hi)),
}


def random_scene(
    seed: int, size: tuple[int, int] = (256, 256), depth_range: tuple[float, float] = (0.1, 3.0)
) -> RGBDScene:
    """A random procedural scene (slanted plane, step edge, smooth blobs or occluding
    objects; occluding objects half of the time), deterministic in ``seed``.

    Depth lies within ``depth_range`` (metres); there are no holes.
    """
    H, W = _check_size(size)
    lo, hi = _check_range(depth_range)
    rng = _get_rng(seed)
    names = list(_GENERATORS)
    kind = str(rng.choice(names, p=[0.15, 0.15, 0.2, 0.5]))
    sub_seed = int(rng.integers(0, 2**31 - 1))
    scene = _GENERATORS[kind]((H, W), sub_seed, lo, hi, rng)
    depth = np.clip(scene.depth, lo, hi).astype(np.float32)
    return RGBDScene(scene.rgb.astype(np.float32), depth, f"random/{kind}/{seed}")


def middlebury_motorcycle() -> RGBDScene:
    """The Middlebury 2014 Motorcycle left view with metric ground-truth depth.

    ``depth = baseline * focal / (disparity + doffs)`` with the calibration in
    :data:`MIDDLEBURY_MOTORCYCLE_CALIB` (valid for skimage's 4x-downsampled
    500x741 image). Pixels without ground truth (non-finite disparity) are
    holes (depth 0). Depth lies in about 2.1-5.0 m, median ~2.75 m.

    Returns:
        :class:`RGBDScene` with ``rgb [500, 741, 3]`` and ``depth [500, 741]``.
    """
    left, _right, disp = skimage.data.stereo_motorcycle()
    c = MIDDLEBURY_MOTORCYCLE_CALIB
    disp = np.asarray(disp, dtype=np.float64)
    valid = np.isfinite(disp) & (disp + c["doffs_px"] > 0)
    depth = np.zeros(disp.shape, np.float32)
    depth[valid] = c["baseline_m"] * c["focal_px"] / (disp[valid] + c["doffs_px"])
    return RGBDScene(np.asarray(left, np.float32) / 255.0, depth, "middlebury motorcycle")


def middlebury_crop(scene: RGBDScene, size: tuple[int, int], rng: np.random.Generator) -> RGBDScene:
    """A random ``size`` crop of a scene (the embedded data's Middlebury samples).

    Args:
        scene: e.g. :func:`middlebury_motorcycle`.
        size: ``(H, W)`` pixels, at most the scene's.
        rng: draws the top row, then the left column.
    """
    H, W = size
    if H > scene.depth.shape[0] or W > scene.depth.shape[1]:
        raise ValueError(f"size {size} is larger than the {scene.name} image {scene.depth.shape}")
    y0 = int(rng.integers(0, scene.depth.shape[0] - H + 1))
    x0 = int(rng.integers(0, scene.depth.shape[1] - W + 1))
    return RGBDScene(scene.rgb[y0 : y0 + H, x0 : x0 + W], scene.depth[y0 : y0 + H, x0 : x0 + W], scene.name)
