"""Diverse synthetic focal stacks: many scene families, photographs, cameras, focus sets and noise levels.

The embedded data (:class:`~dflib.data.SyntheticFocalStackDataset`) renders
four procedural families with FoD500's camera and five fixed planes. Models
trained on it are tied to that camera. Here every sample draws its own:

- **scene**: one of the embedded families (``"classic"``, i.e.
  :func:`dflib.scenes.random_scene`) or of :data:`dflib.scene_families.FAMILIES`,
  textured from a pool of scikit-image photographs;
- **camera**: focal length, f-number and pixel pitch log-uniform in
  :data:`CAMERA_BOX` (FoD500-, phone- and DSLR-like cameras all lie inside),
  kept when the blur it gives can be brought into ``coc_px``;
- **depth and focus**: a target largest circle of confusion ``c`` (pixels,
  log-uniform in ``coc_px``) fixes the span of the focus set in dioptres:
  with ``k = A f / p`` the CoC slope of an infinitely far focus, a focus set
  from ``S_1`` (near) to ``S_N`` (far) blurs a point at ``S_N`` seen at
  ``S_1`` by ``c = k (1/S_1 - 1/S_N) / (1 - f/S_1)`` pixels
  (:meth:`dflib.optics.ThinLens.coc_px`), the largest blur of the stack since
  the scene's depth lies in ``[S_1, S_N]`` (unless ``beyond_prob`` lets it
  reach past them). N planes (``n_planes``,
  inclusive) uniform in dioptres or irregularly spaced;
- **noise**: :class:`~dflib.render.NoiseConfig` with random shot and read noise;
- optionally (off by default) **depth past the focus set** (``beyond_prob``)
  and **embedded-data samples** (``fod500_prob``: FoD500's camera and planes;
  ``fod500_middlebury``: some of them crops of the Middlebury scene, as in the
  embedded data).

The ``"heldout"`` split draws from what the ``"train"`` split never uses:
the families :data:`HELD_OUT_FAMILIES`, the photographs
:data:`HELD_OUT_TEXTURES` (also absent from the embedded data) and the
cameras :data:`HELD_OUT_CAMERAS` (outside :data:`CAMERA_BOX`). Neither
split includes the Middlebury scene (:mod:`dflib.generalisation` scores it
on its own) unless ``fod500_middlebury`` puts it in the training split.
Depth lies in ``depth_envelope_m`` (FoD500's 0.1-3 m by default), or, with
``span_m``, in a world scaled so that every focus set spans the same metres
(for training: the images are the same).

Sample ``i`` is a deterministic function of ``(seed, split, i)``;
:meth:`DiverseFocalStackDataset.spec` gives its recipe (camera, focus,
family, textures, noise) without rendering it. Items differ in N, so a
loader must batch items of equal N together (:mod:`dflib.data.batching`,
which :func:`dflib.train.train` uses).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from dflib.optics import FOD500_CAMERA, FOD500_DEPTH_MAX_M, FOD500_FOCUS_M, ThinLens
from dflib.render import NoiseConfig, render_focal_stack
from dflib.scene_families import FAMILIES, family_scene
from dflib.scenes import MORE_TEXTURES, TEXTURES, RGBDScene, middlebury_crop, middlebury_motorcycle, random_scene

__all__ = [
    "CAMERA_BOX",
    "DiverseConfig",
    "DiverseFocalStackDataset",
    "HELD_OUT_CAMERAS",
    "HELD_OUT_FAMILIES",
    "HELD_OUT_TEXTURES",
    "StackSpec",
    "TRAIN_FAMILIES",
    "TRAIN_TEXTURES",
]

#: photographs the held-out split textures with (never in training, nor in the embedded data)
HELD_OUT_TEXTURES: tuple[str, ...] = ("immunohistochemistry", "text", "clock")
#: photographs of the training split: the embedded data's and the rest of :data:`dflib.scenes.MORE_TEXTURES`
TRAIN_TEXTURES: tuple[str, ...] = TEXTURES + tuple(t for t in MORE_TEXTURES if t not in HELD_OUT_TEXTURES)
#: scene families of the held-out split (:data:`dflib.scene_families.FAMILIES`)
HELD_OUT_FAMILIES: tuple[str, ...] = ("staircase", "relief", "crease")
#: scene families of the training split; ``classic`` is :func:`dflib.scenes.random_scene`
TRAIN_FAMILIES: tuple[str, ...] = ("classic",) + tuple(f for f in FAMILIES if f not in HELD_OUT_FAMILIES)
#: ranges (log-uniform) of the training cameras: ``(low, high)`` per :class:`~dflib.optics.ThinLens` field
CAMERA_BOX: dict[str, tuple[float, float]] = {
    "focal_length_m": (2.5e-3, 85e-3),
    "f_number": (1.0, 11.0),
    "pixel_pitch_m": (1.0e-6, 12e-6),
}
#: cameras of the held-out split, each outside :data:`CAMERA_BOX` in two of its three fields
HELD_OUT_CAMERAS: dict[str, ThinLens] = {
    "ultrawide phone (1.6 mm f/2.4, 0.7 um)": ThinLens(1.6e-3, 2.4, 0.7e-6),
    "telephoto (135 mm f/22, 8 um)": ThinLens(135e-3, 22.0, 8e-6),
    "cine (35 mm f/0.95, 16 um)": ThinLens(35e-3, 0.95, 16e-6),
}
#: (near, far) metres of the Middlebury scene's ground truth (:func:`dflib.scenes.middlebury_motorcycle`)
MIDDLEBURY_DEPTH_M: tuple[float, float] = (2.11, 5.02)

_SPLIT_CODE = {"train": 0, "heldout": 1}


@dataclass(frozen=True)
class DiverseConfig:
    """What a diverse split draws from (see the module docstring).

    Attributes:
        split: ``"train"`` or ``"heldout"``.
        coc_px: ``(low, high)`` of the stack's largest circle of confusion, pixels.
        n_planes: ``(low, high)`` number of focus planes N, both inclusive.
        depth_envelope_m: ``(near, far)`` metres every scene lies in.
        min_span_dpt: narrowest focus span, dioptres.
        irregular_prob: probability of an irregular focus set (else uniform in dioptres).
        classic_prob: train split: probability of an embedded-data family (``"classic"``).
        noise_prob: probability of sensor noise (shot noise scale log-uniform
            in 1e-4-3e-3, read noise 0.5-5 thousandths, 8 bits).
        beyond_prob: train split: probability that the scene extends past the
            focus set (real scenes do; the embedded data's reaches 3 m behind a
            1.5 m last plane). Off by default, which keeps every earlier sample.
        beyond_frac: how far it may extend on each side, as a fraction of the
            focus span in dioptres (each side drawn uniformly in [0, beyond_frac],
            clamped to ``depth_envelope_m``).
        fod500_prob: train split: probability of an embedded-data sample instead:
            a ``"classic"`` scene at 0.1-3 m seen by FoD500's camera at its five
            planes (:data:`dflib.optics.FOD500_CAMERA`). Off by default.
        fod500_middlebury: probability that such a sample's scene is a random
            crop of the Middlebury scene (2.1-5 m, all past FoD500's last plane)
            instead, as 1/8 of the embedded data's are (``0.125`` matches them).
            Off by default. A model trained with it has seen the scene that
            :mod:`dflib.generalisation` scores on its own (under other cameras).
        span_m: None for physical metres, or a span in metres that every
            sample's world is scaled to: scene depth, focus distances, focal
            length and pixel pitch all times ``s = span_m / (f_N - f_1)``. The
            images do not change (the CoC in pixels is invariant under that
            scaling) and the network never sees the focus distances, but a
            depth loss in metres then weighs every stack alike (physical spans
            run from millimetres to metres). FoD500's span is 1.4 m.
    """

    split: str = "train"
    coc_px: tuple[float, float] = (3.0, 25.0)
    n_planes: tuple[int, int] = (3, 10)
    depth_envelope_m: tuple[float, float] = (0.1, 3.0)
    min_span_dpt: float = 0.05
    irregular_prob: float = 0.5
    classic_prob: float = 0.25
    noise_prob: float = 0.9
    beyond_prob: float = 0.0
    beyond_frac: float = 0.5
    fod500_prob: float = 0.0
    fod500_middlebury: float = 0.0
    span_m: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "coc_px", tuple(float(c) for c in self.coc_px))
        object.__setattr__(self, "n_planes", tuple(int(n) for n in self.n_planes))
        object.__setattr__(self, "depth_envelope_m", tuple(float(d) for d in self.depth_envelope_m))
        (c0, c1), (n0, n1), (z0, z1) = self.coc_px, self.n_planes, self.depth_envelope_m
        checks = {
            "split": (self.split in _SPLIT_CODE, "'train' or 'heldout'"),
            "coc_px": (0 < c0 <= c1 < math.inf, "(low, high) pixels with 0 < low <= high"),
            "n_planes": (2 <= n0 <= n1, "(low, high) with 2 <= low <= high"),
            "depth_envelope_m": (0 < z0 < z1 < math.inf, "(near, far) metres with 0 < near < far"),
            "min_span_dpt": (0 < self.min_span_dpt < 1 / z0 - 1 / z1, f"in (0, {1 / z0 - 1 / z1:.3g}) dioptres"),
            "irregular_prob": (0 <= self.irregular_prob <= 1, "a probability"),
            "classic_prob": (0 <= self.classic_prob <= 1, "a probability"),
            "noise_prob": (0 <= self.noise_prob <= 1, "a probability"),
            "beyond_prob": (0 <= self.beyond_prob <= 1, "a probability"),
            "beyond_frac": (0 <= self.beyond_frac < math.inf, "a fraction >= 0 of the focus span"),
            "fod500_prob": (0 <= self.fod500_prob <= 1, "a probability"),
            "fod500_middlebury": (0 <= self.fod500_middlebury <= 1, "a probability"),
            "span_m": (self.span_m is None or 0 < self.span_m < math.inf, "None or a positive span in metres"),
        }
        for name, (ok, expected) in checks.items():
            if not ok:
                raise ValueError(f"DiverseConfig.{name}: got {getattr(self, name)!r}, expected {expected}")

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


@dataclass(frozen=True)
class StackSpec:
    """Everything one diverse sample is rendered from.

    Attributes:
        family: scene family (``"classic"``, ``"middlebury"`` (a crop of that scene) or a key of
            :data:`dflib.scene_families.FAMILIES`).
        scene_seed: seed of the scene.
        textures: the photographs the scene may be textured with.
        camera: the thin-lens camera; camera_name: ``"random"`` or a key of :data:`HELD_OUT_CAMERAS`.
        focus_m: N focus distances, metres, near to far.
        max_coc_px: the largest CoC of the stack, ``camera.coc_px(focus_m[-1], focus_m[0])``, pixels.
        noise: sensor noise, or None; noise_seed: its seed.
        scale: the world scaling applied (``DiverseConfig.span_m``; 1 for physical metres): ``camera``,
            ``focus_m`` and the depth are the physical ones times ``scale``.
        depth_m: ``(near, far)`` metres of the scene, or None: the focus range ``[focus_m[0], focus_m[-1]]``.
    """

    family: str
    scene_seed: int
    textures: tuple[str, ...]
    camera: ThinLens
    camera_name: str
    focus_m: tuple[float, ...]
    max_coc_px: float
    noise: NoiseConfig | None
    noise_seed: int
    scale: float = 1.0
    depth_m: tuple[float, float] | None = None

    @property
    def depth_range_m(self) -> tuple[float, float]:
        """``(near, far)`` metres the scene's depth lies in."""
        return self.depth_m if self.depth_m is not None else (self.focus_m[0], self.focus_m[-1])


def _log_uniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(math.exp(rng.uniform(math.log(lo), math.log(hi))))


def coc_range_px(camera: ThinLens, config: DiverseConfig) -> tuple[float, float]:
    """The largest-CoC range (pixels) ``camera`` can give inside the config's envelope and ``coc_px``.

    Empty (low > high) when the camera cannot blur enough or too little. The
    nearest focus allowed is ``max(near envelope, 2 f)`` (1:1 magnification).
    """
    z0, z1 = config.depth_envelope_m
    q_hi = min(1 / z0, 1 / (2 * camera.focal_length_m))
    q_lo = 1 / z1
    if q_hi - q_lo < config.min_span_dpt:
        return math.inf, -math.inf
    k = camera.aperture_m * camera.focal_length_m / camera.pixel_pitch_m
    f = camera.focal_length_m
    widest = k * (q_hi - q_lo) / (1 - f * q_hi)  # span from the nearest focus to the far end
    narrowest = k * config.min_span_dpt / (1 - f * (q_lo + config.min_span_dpt))
    return max(config.coc_px[0], narrowest), min(config.coc_px[1], widest)


def _focus_set(camera: ThinLens, c: float, n: int, irregular: bool, config: DiverseConfig,
               rng: np.random.Generator) -> np.ndarray:
    """N focus distances (metres, near to far) whose largest CoC is ``c`` pixels."""
    z0, z1 = config.depth_envelope_m
    f = camera.focal_length_m
    k = camera.aperture_m * f / camera.pixel_pitch_m
    q_hi = min(1 / z0, 1 / (2 * f))
    q_lo = 1 / z1
    # span s with c = k s / (1 - f (q_far + s)) for the far end q_far: s = c (1 - f q_far) / (k + c f);
    # c / k bounds it above, so a far end drawn in [q_lo, q_hi - c / k] keeps the near end inside the envelope
    top = max(q_lo, min(q_hi - c / k, q_hi - config.min_span_dpt))
    q_far = float(rng.uniform(q_lo, top))
    span = c * (1 - f * q_far) / (k + c * f)
    span = min(span, q_hi - q_far)
    if irregular:
        gaps = rng.uniform(0.3, 1.0, n - 1)
        frac = np.concatenate([[0.0], np.cumsum(gaps) / gaps.sum()])
    else:
        frac = np.linspace(0.0, 1.0, n)
    q = q_far + span * frac[::-1]  # near (largest q) first
    q[0], q[-1] = q_far + span, q_far
    return 1.0 / q


def _beyond(focus: np.ndarray, config: DiverseConfig, rng: np.random.Generator) -> tuple[float, float]:
    """A scene depth range reaching past the focus set (near to far, metres) by up to ``beyond_frac`` of
    its span in dioptres on each side, inside ``depth_envelope_m``."""
    z0, z1 = config.depth_envelope_m
    q_near, q_far = 1 / focus[0], 1 / focus[-1]
    span = q_near - q_far
    q_near = min(q_near + rng.uniform(0, config.beyond_frac) * span, 1 / z0)
    q_far = max(q_far - rng.uniform(0, config.beyond_frac) * span, 1 / z1)
    return 1 / q_near, 1 / q_far


class DiverseFocalStackDataset(Dataset):
    """Diverse focal stacks (module docstring), rendered on the fly.

    Args:
        length: number of samples.
        size: ``(H, W)`` pixels of every sample.
        config: :class:`DiverseConfig` (the split and its ranges).
        seed: base seed; sample ``i`` derives from ``SeedSequence([seed, split, i])``.
        render_options: extra keyword arguments for :func:`~dflib.render.render_focal_stack`.

    A sample is a dict: ``stack [N,3,H,W]`` float32 in [0,1], ``focus [N]``
    float32 metres (near to far), ``depth [1,H,W]`` float32 metres, ``mask
    [1,H,W]`` bool, ``aif [3,H,W]`` float32; N varies between samples.
    """

    def __init__(self, length: int, size: tuple[int, int] = (128, 128), config: DiverseConfig | None = None,
                 seed: int = 0, render_options: dict[str, Any] | None = None) -> None:
        if isinstance(length, bool) or not isinstance(length, int) or length < 0:
            raise ValueError(f"length must be a non-negative int, got {length!r}")
        if len(size) != 2 or min(size) < 16:
            raise ValueError(f"size must be (H, W) with H, W >= 16, got {size!r}")
        config = DiverseConfig() if config is None else config
        if not isinstance(config, DiverseConfig):
            raise TypeError(f"config must be a DiverseConfig, got {type(config).__name__}")
        self.length, self.size, self.config, self.seed = length, (int(size[0]), int(size[1])), config, int(seed)
        self.render_options = dict(render_options or {})
        self._middlebury: RGBDScene | None = None

    def __len__(self) -> int:
        return self.length

    def _rng(self, index: int) -> np.random.Generator:
        if not 0 <= index < self.length:
            raise IndexError(f"index {index} out of range for a dataset of length {self.length}")
        return np.random.default_rng(np.random.SeedSequence([self.seed, _SPLIT_CODE[self.config.split], index]))

    def spec(self, index: int) -> StackSpec:
        """The recipe of sample ``index`` (cheap: nothing is rendered)."""
        cfg = self.config
        rng = self._rng(index)
        heldout = cfg.split == "heldout"
        if heldout:
            family = str(rng.choice(HELD_OUT_FAMILIES))
            textures = HELD_OUT_TEXTURES
        else:
            family = "classic" if rng.uniform() < cfg.classic_prob else str(rng.choice(TRAIN_FAMILIES[1:]))
            textures = TEXTURES if family == "classic" else TRAIN_TEXTURES
        scene_seed = int(rng.integers(0, 2**31 - 1))
        while True:  # rejection: a camera that can give a largest CoC in coc_px
            if heldout:
                name = str(rng.choice(sorted(HELD_OUT_CAMERAS)))
                camera = HELD_OUT_CAMERAS[name]
            else:
                name = "random"
                camera = ThinLens(**{k: _log_uniform(rng, *v) for k, v in CAMERA_BOX.items()})
            lo, hi = coc_range_px(camera, cfg)
            if lo <= hi:
                break
            if heldout:
                raise ValueError(f"DiverseConfig: held-out camera {name!r} cannot give a largest CoC in {cfg.coc_px} px")
        c = _log_uniform(rng, lo, hi)
        n = int(rng.integers(cfg.n_planes[0], cfg.n_planes[1] + 1))
        focus = _focus_set(camera, c, n, bool(rng.uniform() < cfg.irregular_prob), cfg, rng)
        noise = None
        if rng.uniform() < cfg.noise_prob:
            noise = NoiseConfig(poisson_scale=_log_uniform(rng, 1e-4, 3e-3),
                                gaussian_std=float(rng.uniform(0.5e-3, 5e-3)), bits=8)
        noise_seed = int(rng.integers(0, 2**62))
        # The options below draw only when on, after every earlier draw: with them off, samples are unchanged.
        depth = None
        if not heldout and cfg.fod500_prob > 0 and rng.uniform() < cfg.fod500_prob:
            family, textures, name = "classic", TEXTURES, "fod500"
            camera, focus = FOD500_CAMERA, np.asarray(FOD500_FOCUS_M, float)
            depth = (FOD500_FOCUS_M[0], FOD500_DEPTH_MAX_M)
            if cfg.fod500_middlebury > 0 and rng.uniform() < cfg.fod500_middlebury:
                family, textures, depth = "middlebury", (), MIDDLEBURY_DEPTH_M
        elif not heldout and cfg.beyond_prob > 0 and rng.uniform() < cfg.beyond_prob:
            depth = _beyond(focus, cfg, rng)
        scale = 1.0 if cfg.span_m is None else cfg.span_m / (focus[-1] - focus[0])
        if scale != 1.0:
            camera = ThinLens(camera.focal_length_m * scale, camera.f_number, camera.pixel_pitch_m * scale)
            focus = focus * scale
        if depth is not None:
            depth = (float(depth[0] * scale), float(depth[1] * scale))
        return StackSpec(family, scene_seed, tuple(textures), camera, name, tuple(float(x) for x in focus),
                         float(camera.coc_px(focus[-1], focus[0])), noise, noise_seed, scale, depth)

    def plane_counts(self) -> list[int]:
        """N of every sample, in index order (for batching equal N together)."""
        return [len(self.spec(i).focus_m) for i in range(self.length)]

    def scene(self, spec: StackSpec) -> RGBDScene:
        """The RGB-D scene of a spec (depth inside ``spec.depth_range_m``)."""
        if spec.family == "classic":
            return random_scene(spec.scene_seed, self.size, spec.depth_range_m)
        if spec.family == "middlebury":
            if self._middlebury is None:
                self._middlebury = middlebury_motorcycle()
            crop = middlebury_crop(self._middlebury, self.size, np.random.default_rng(spec.scene_seed))
            return RGBDScene(crop.rgb, crop.depth * np.float32(spec.scale), crop.name)
        return family_scene(spec.family, spec.scene_seed, self.size, spec.depth_range_m, spec.textures)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        if -self.length <= index < 0:
            index += self.length
        spec = self.spec(index)
        scene = self.scene(spec)
        st = render_focal_stack(scene.rgb, scene.depth, spec.camera, spec.focus_m,
                                noise=spec.noise if spec.noise is not None else False,
                                seed=spec.noise_seed, device="cpu", **self.render_options)
        depth = torch.where(st.mask, st.depth, torch.zeros_like(st.depth))[None]
        sample = {"stack": st.images, "focus": st.focus_m, "depth": depth, "mask": st.mask[None], "aif": st.aif}
        return {k: v.contiguous() for k, v in sample.items()}


# -- training pools (dflib.train) ------------------------------------------------
def diverse_config(data: str, options: dict[str, Any]) -> DiverseConfig:
    """The :class:`DiverseConfig` of a training run's ``data_options``; ``ValueError`` naming the field on bad ones."""
    if data != "diverse":
        raise ValueError(f"TrainConfig.data_options: only data='diverse' takes options, got data={data!r} "
                         f"with data_options={options!r}")
    try:
        return DiverseConfig(**options)
    except (TypeError, ValueError) as e:
        raise ValueError(f"TrainConfig.data_options: got {options!r}: {e}") from None


def diverse_pools(cfg: Any, val_seed: int) -> tuple[Dataset, Dataset | None]:
    """(train, val) pools of a :class:`~dflib.train.TrainConfig` with ``data="diverse"``, each rendered once.

    The training pool has ``cfg.train_scenes`` stacks of seed ``cfg.seed``, the
    validation pool ``cfg.val_scenes`` of ``val_seed`` (same split, so both
    in-distribution). With ``cfg.cache_dir`` they are kept on disk, named
    after their parameters and the renderer's source.
    """
    from dflib.data.cached import CachedDataset

    config = diverse_config(cfg.data, cfg.data_options)

    def pool(n: int, seed: int) -> CachedDataset:
        ds = DiverseFocalStackDataset(n, tuple(cfg.size), config, seed=seed)
        return CachedDataset(ds, desc="rendering diverse stacks",
                             cache_file=_cache_file(cfg.cache_dir, ds) if cfg.cache_dir else None)

    return pool(cfg.train_scenes, cfg.seed), (pool(cfg.val_scenes, val_seed) if cfg.val_scenes else None)


def _cache_file(cache_dir: str, ds: DiverseFocalStackDataset) -> Any:
    """Where a rendered pool is kept: named after its length, size, seed, config and the sources that render it."""
    import json
    from pathlib import Path

    from dflib.data.cached import source_digest

    tag = source_digest("scene_families.py", "data/diverse.py", data=json.dumps(ds.config.to_dict(), sort_keys=True).encode())
    H, W = ds.size
    return Path(cache_dir) / f"diverse_s{ds.seed}_n{ds.length}_{H}x{W}_{tag}.pt"
