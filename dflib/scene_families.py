"""More procedural RGB-D scene families, for training data that covers what users bring.

:mod:`dflib.scenes` has the families the embedded benchmark is built from
(slanted plane, step edge, smooth blobs, occluding objects). This module adds
eight more; :func:`family_scene` makes one, a deterministic function of
``seed`` with depth inside ``depth_range`` (metres) and no holes, textured
from a pool of ``textures`` (names for :func:`dflib.scenes.texture`), so a
caller can keep some images out of training:

- ``curved``: spheres and cylinders (and a bent background), one texture
  wrapping each surface;
- ``thin``: wires, branches and fence bars, 1-5 px wide, in front of a background;
- ``layered``: 2-4 overlapping cards (posters) at different depths, slightly rotated;
- ``wall``: a slanted, mostly texture-less wall with a few small textured patches;
- ``mismatch``: depth edges inside one continuous texture and texture edges
  on one continuous surface (the case DualFocus's spatial branch addresses);
- ``staircase``, ``relief`` and ``crease`` (stairs, a bumpy tilted plane, two
  planes meeting at a fold), which :mod:`dflib.data.diverse` holds out of training.

Inverse depth ``q = 1/z`` is what blur is linear in, so every family places
its surfaces by a fraction ``t`` of the range in inverse depth
(``t = 0`` far, ``t = 1`` near).
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from dflib.scenes import TEXTURES, RGBDScene, _check_range, _check_size, _random_texture, _smooth_field

__all__ = ["FAMILIES", "family_scene"]


def _to_depth(t: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Depth (metres) of the fraction ``t`` in [0, 1] of the inverse-depth range (0 far, 1 near)."""
    q = 1 / hi + (1 / lo - 1 / hi) * np.clip(t, 0.0, 1.0)
    return (1 / q).astype(np.float32)


def _grid(H: int, W: int) -> tuple[np.ndarray, np.ndarray]:
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    return yy, xx


def _plane(H: int, W: int, rng: np.random.Generator, t0: float, slope: float) -> np.ndarray:
    """``t`` of a plane: ``t0`` at the image centre, changing by up to ``slope`` across the image."""
    yy, xx = _grid(H, W)
    theta = rng.uniform(0, 2 * np.pi)
    return t0 + slope * (np.cos(theta) * (xx / W - 0.5) + np.sin(theta) * (yy / H - 0.5))


def _line_side(H: int, W: int, rng: np.random.Generator) -> np.ndarray:
    """Signed distance (pixels) to a random line through the middle part of the image."""
    yy, xx = _grid(H, W)
    theta = rng.uniform(0, np.pi)
    cy, cx = rng.uniform(0.3, 0.7) * H, rng.uniform(0.3, 0.7) * W
    return np.cos(theta) * (xx - cx) + np.sin(theta) * (yy - cy)


def _background(H: int, W: int, rng: np.random.Generator, tex: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """A far, possibly slanted, textured background: ``(t [H, W], rgb [H, W, 3])``."""
    t = _plane(H, W, rng, rng.uniform(0.0, 0.25), rng.uniform(0.0, 0.2))
    return t, _random_texture((H, W), rng, 0.1, tex)


def curved(H: int, W: int, rng: np.random.Generator, tex: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """A bent background and 1-3 spheres or cylinders, each wrapped in one texture."""
    yy, xx = _grid(H, W)
    u = np.cos(rng.uniform(0, np.pi)) * (xx / W - 0.5) + np.sin(rng.uniform(0, np.pi)) * (yy / H - 0.5)
    t = rng.uniform(0.05, 0.3) + rng.uniform(-0.6, 0.6) * u**2  # concave or convex
    rgb = _random_texture((H, W), rng, 0.05, tex)
    for _ in range(int(rng.integers(1, 4))):
        R = rng.uniform(0.15, 0.4) * min(H, W)
        cy, cx = rng.uniform(0, H), rng.uniform(0, W)
        if rng.uniform() < 0.5:  # sphere
            r2 = ((yy - cy) ** 2 + (xx - cx) ** 2) / R**2
        else:  # cylinder along a random axis
            a = rng.uniform(0, np.pi)
            r2 = ((np.cos(a) * (xx - cx) + np.sin(a) * (yy - cy)) / R) ** 2
        inside = r2 < 1
        height = np.sqrt(np.clip(1 - r2, 0, 1))
        t_obj = rng.uniform(0.3, 0.8) + rng.uniform(0.1, 0.3) * height
        front = inside & (t_obj > t)
        t = np.where(front, t_obj, t)
        rgb[front] = _random_texture((H, W), rng, 0.05, tex)[front]
    return t, rgb


def _segments_mask(H: int, W: int, pts: np.ndarray, width: float) -> np.ndarray:
    """Pixels within ``width / 2`` of the polyline ``pts [K, 2]`` (y, x)."""
    yy, xx = _grid(H, W)
    d2 = np.full((H, W), np.inf, np.float32)
    for (y0, x0), (y1, x1) in zip(pts[:-1], pts[1:]):
        dy, dx = y1 - y0, x1 - x0
        s = np.clip(((yy - y0) * dy + (xx - x0) * dx) / max(dy * dy + dx * dx, 1e-9), 0, 1)
        d2 = np.minimum(d2, (yy - y0 - s * dy) ** 2 + (xx - x0 - s * dx) ** 2)
    return d2 <= (width / 2) ** 2


def thin(H: int, W: int, rng: np.random.Generator, tex: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Wires, branches (random polylines) or fence bars, 1-5 px wide, in front of a background."""
    t, rgb = _background(H, W, rng, tex)
    if rng.uniform() < 0.3:  # a fence: parallel bars at one depth
        period, width = rng.uniform(8, 24), rng.uniform(1.5, 5)
        yy, xx = _grid(H, W)
        a = rng.uniform(-0.3, 0.3) + (np.pi / 2 if rng.uniform() < 0.5 else 0)
        u = np.cos(a) * xx + np.sin(a) * yy
        m = (u % period) < width
        tf = rng.uniform(0.4, 1.0)
        t = np.where(m, tf, t)
        rgb[m] = _random_texture((H, W), rng, 0.3, tex)[m]
    for _ in range(int(rng.integers(2, 7))):
        k = int(rng.integers(2, 6))
        start = rng.uniform(0, 1, 2) * (H, W)
        steps = rng.normal(0, 1, (k - 1, 2)) * rng.uniform(0.15, 0.4) * (H, W)
        pts = np.vstack([start, start + np.cumsum(steps, axis=0)])
        m = _segments_mask(H, W, pts, rng.uniform(1.0, 5.0))
        tw = rng.uniform(0.35, 1.0)
        m &= tw > t
        t = np.where(m, tw, t)
        rgb[m] = _random_texture((H, W), rng, 0.4, tex)[m]
    return t, rgb


def layered(H: int, W: int, rng: np.random.Generator, tex: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """2-4 textured cards, slightly rotated, overlapping at increasing nearness in front of a background."""
    t, rgb = _background(H, W, rng, tex)
    yy, xx = _grid(H, W)
    for tc in np.sort(rng.uniform(0.25, 1.0, int(rng.integers(2, 5)))):  # far to near: nearer painted last
        a = rng.uniform(-0.4, 0.4)
        cy, cx = rng.uniform(0.15, 0.85) * H, rng.uniform(0.15, 0.85) * W
        hy, hx = rng.uniform(0.15, 0.4) * H, rng.uniform(0.15, 0.4) * W
        v = -np.sin(a) * (xx - cx) + np.cos(a) * (yy - cy)
        u = np.cos(a) * (xx - cx) + np.sin(a) * (yy - cy)
        m = (np.abs(u) <= hx) & (np.abs(v) <= hy)
        t = np.where(m, tc + rng.uniform(-0.05, 0.05) * u / W, t)
        rgb[m] = _random_texture((H, W), rng, 0.1, tex)[m]
    return t, rgb


def wall(H: int, W: int, rng: np.random.Generator, tex: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """A slanted wall of one colour with smooth shading (texture-less), a few small textured patches on it."""
    t = _plane(H, W, rng, rng.uniform(0.2, 0.8), rng.uniform(0.1, 0.6))
    colour = rng.uniform(0.3, 0.85, 3).astype(np.float32)
    shade = 0.85 + 0.3 * _smooth_field((H, W), rng, 0.3)[..., None]
    rgb = np.clip(colour * shade, 0, 1).astype(np.float32)
    yy, xx = _grid(H, W)
    for _ in range(int(rng.integers(1, 4))):
        cy, cx = rng.uniform(0, H), rng.uniform(0, W)
        hy, hx = rng.uniform(0.04, 0.15) * H, rng.uniform(0.04, 0.15) * W
        m = (np.abs(yy - cy) <= hy) & (np.abs(xx - cx) <= hx)
        rgb[m] = _random_texture((H, W), rng, 0.0, tex)[m]
    return t, rgb


def mismatch(H: int, W: int, rng: np.random.Generator, tex: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Depth edges that are not texture edges and texture edges that are not depth edges.

    A depth step runs along one random line through a single texture; a
    texture boundary runs along another line across one side's surface.
    """
    near = _line_side(H, W, rng) > 0
    t_far, t_near = np.sort(rng.uniform(0.0, 1.0, 2))
    t = np.where(near, _plane(H, W, rng, t_near, 0.1), _plane(H, W, rng, t_far, 0.1))
    rgb = _random_texture((H, W), rng, 0.0, tex)  # continuous across the depth step
    other = _line_side(H, W, rng) > 0
    rgb[other] = _random_texture((H, W), rng, 0.1, tex)[other]
    return t, rgb


def staircase(H: int, W: int, rng: np.random.Generator, tex: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """3-7 steps nearing along a random direction, each tread slightly slanted."""
    yy, xx = _grid(H, W)
    a = rng.uniform(0, 2 * np.pi)
    s = np.cos(a) * xx / W + np.sin(a) * yy / H
    s = (s - s.min()) / (s.max() - s.min() + 1e-9)
    k = int(rng.integers(3, 8))
    step = np.minimum((s * k).astype(int), k - 1)
    t = (step + rng.uniform(0.0, 0.3) * (s * k - step)) / k
    rgb = _random_texture((H, W), rng, 0.0, tex)
    if rng.uniform() < 0.5:  # every step its own texture
        for i in range(k):
            m = step == i
            rgb[m] = _random_texture((H, W), rng, 0.1, tex)[m]
    return t, rgb


def relief(H: int, W: int, rng: np.random.Generator, tex: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """A tilted plane with bumps and ripples on it (a bas-relief)."""
    yy, xx = _grid(H, W)
    t = _plane(H, W, rng, rng.uniform(0.3, 0.6), rng.uniform(0.0, 0.5))
    for _ in range(int(rng.integers(3, 9))):
        cy, cx, r = rng.uniform(0, H), rng.uniform(0, W), rng.uniform(0.05, 0.2) * min(H, W)
        t = t + rng.uniform(-0.25, 0.25) * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r**2))
    f = rng.uniform(2, 6) * 2 * np.pi
    a = rng.uniform(0, np.pi)
    t = t + rng.uniform(0, 0.08) * np.sin(f * (np.cos(a) * xx / W + np.sin(a) * yy / H))
    return t, _random_texture((H, W), rng, 0.0, tex)


def crease(H: int, W: int, rng: np.random.Generator, tex: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Two planes meeting at a fold (a room corner or a folded card): depth continuous, its slope not."""
    d = _line_side(H, W, rng) / max(H, W)
    sign = 1.0 if rng.uniform() < 0.5 else -1.0  # convex or concave
    t = rng.uniform(0.35, 0.65) - sign * rng.uniform(0.3, 0.8) * np.abs(d)
    side = d > 0
    rgb = _random_texture((H, W), rng, 0.0, tex)
    if rng.uniform() < 0.7:
        rgb[side] = _random_texture((H, W), rng, 0.05, tex)[side]
    return t, rgb


#: family name → ``f(H, W, rng, textures) -> (t [H, W], rgb [H, W, 3])``, ``t`` the fraction of the
#: inverse-depth range (0 far, 1 near; clipped to [0, 1] by :func:`family_scene`)
FAMILIES: dict[str, Callable[..., tuple[np.ndarray, np.ndarray]]] = {
    "curved": curved, "thin": thin, "layered": layered, "wall": wall, "mismatch": mismatch,
    "staircase": staircase, "relief": relief, "crease": crease,
}


def family_scene(name: str, seed: int, size: tuple[int, int] = (256, 256),
                 depth_range: tuple[float, float] = (0.1, 3.0), textures: Sequence[str] = TEXTURES) -> RGBDScene:
    """A scene of the family ``name`` (one of :data:`FAMILIES`), deterministic in ``seed``.

    Args:
        name: family name.
        seed: seed of everything random in the scene.
        size: ``(H, W)`` pixels.
        depth_range: ``(near, far)`` metres; the depth map lies inside it.
        textures: images to texture surfaces with (names for :func:`dflib.scenes.texture`;
            procedural noise and flat colours are always possible too).

    Returns:
        :class:`~dflib.scenes.RGBDScene` with ``rgb [H, W, 3]`` and ``depth [H, W]`` (no holes).
    """
    if name not in FAMILIES:
        raise ValueError(f"name must be one of {sorted(FAMILIES)}, got {name!r}")
    if not textures:
        raise ValueError("textures must name at least one image, got an empty sequence")
    H, W = _check_size(size)
    lo, hi = _check_range(depth_range)
    t, rgb = FAMILIES[name](H, W, np.random.default_rng(int(seed)), tuple(textures))
    return RGBDScene(np.clip(rgb, 0, 1).astype(np.float32), _to_depth(t, lo, hi), f"{name}/{seed}")
