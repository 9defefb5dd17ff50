"""Focal stacks rendered on the fly from the embedded RGB-D scenes (no download)."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from dflib.data.base import AugmentConfig, EpochSeeded, augment_sample, sample_generator
from dflib.optics import FOD500_CAMERA, FOD500_FOCUS_M, ThinLens, focus_uniform_diopters
from dflib.render import NoiseConfig, render_focal_stack
from dflib.scenes import RGBDScene, middlebury_crop, middlebury_motorcycle, random_scene

__all__ = ["SyntheticFocalStackDataset", "TEST_SEED", "VAL_SEED"]

#: seed of the embedded validation split (training stacks use the run's own seed)
VAL_SEED = 900_001
#: seed of the embedded test split (:mod:`dflib.evaluate`); no run trains or chooses on it
TEST_SEED = 1_000_003


class SyntheticFocalStackDataset(EpochSeeded, Dataset):
    """Procedural scenes (and optionally Middlebury "motorcycle") rendered into focal stacks.

    Sample ``i`` is a deterministic function of ``(seed, i)``: the scene, the
    crop and the sensor noise all derive from ``numpy.random.SeedSequence([seed, i])``.

    Args:
        length: number of samples.
        size: ``(H, W)`` of the procedural scenes (and of the crops).
        n_planes: number of focus planes N (used when ``focus_m`` is None, or to
            check it).
        camera: thin-lens camera.
        focus_m: focus distances (metres); ``None`` places ``n_planes`` planes
            uniformly in dioptres over ``depth_range``.
        depth_range: ``(near, far)`` metres of the procedural scenes.
        include_middlebury: make every 8th sample (index % 8 == 7) a random
            crop of the real Middlebury scene (its depth is 2.1-5 m, whatever
            ``depth_range`` says).
        noise: sensor noise (bool or :class:`~dflib.render.NoiseConfig`).
        seed: base seed.
        crop: optional ``(h, w)`` random crop of the rendered sample.
        render_options: extra keyword arguments for :func:`~dflib.render.render_focal_stack`.
        augment: the training augmentation of the real datasets (:class:`~dflib.data.AugmentConfig`),
            applied after ``crop``, seeded by ``(seed, epoch, index)``; call :meth:`set_epoch` each epoch.

    A sample is a dict: ``stack [N,3,H,W]`` float32 in [0,1], ``focus [N]`` float32
    metres, ``depth [1,H,W]`` float32 metres (0 where invalid), ``mask [1,H,W]``
    bool, ``aif [3,H,W]`` float32, all on the CPU.
    """

    def __init__(
        self,
        length: int,
        size: tuple[int, int] = (256, 256),
        n_planes: int = 5,
        camera: ThinLens = FOD500_CAMERA,
        focus_m: Sequence[float] | None = FOD500_FOCUS_M,
        depth_range: tuple[float, float] = (0.1, 3.0),
        include_middlebury: bool = True,
        noise: bool | NoiseConfig = True,
        seed: int = 0,
        crop: tuple[int, int] | None = None,
        render_options: dict[str, Any] | None = None,
        augment: AugmentConfig | None = None,
    ) -> None:
        if not isinstance(length, int) or length < 0:
            raise ValueError(f"length must be a non-negative int, got {length!r}")
        if len(size) != 2 or min(size) < 8:
            raise ValueError(f"size must be (H, W) with H, W >= 8, got {size!r}")
        if not isinstance(camera, ThinLens):
            raise TypeError(f"camera must be a ThinLens, got {type(camera).__name__}")
        lo, hi = float(depth_range[0]), float(depth_range[1])
        if not 0 < lo < hi:
            raise ValueError(f"depth_range must be (near, far) with 0 < near < far, got {depth_range!r}")
        if focus_m is None:
            if n_planes < 1:
                raise ValueError(f"n_planes must be >= 1, got {n_planes!r}")
            focus = focus_uniform_diopters(lo, hi, n_planes)
        else:
            focus = np.asarray(focus_m, dtype=np.float64).reshape(-1)
            if len(focus) != n_planes:
                raise ValueError(f"focus_m has {len(focus)} distances but n_planes={n_planes}")
        if crop is not None and (len(crop) != 2 or crop[0] > size[0] or crop[1] > size[1] or min(crop) < 1):
            raise ValueError(f"crop must be (h, w) no larger than size={size}, got {crop!r}")
        if augment is not None and not isinstance(augment, AugmentConfig):
            raise TypeError(f"augment must be an AugmentConfig or None, got {type(augment).__name__}")
        camera.coc_px(1.0, focus)  # validates focus > focal length
        self.length = length
        self.size = (int(size[0]), int(size[1]))
        self.n_planes = n_planes
        self.camera = camera
        self.focus = focus
        self.depth_range = (lo, hi)
        self.include_middlebury = include_middlebury
        self.noise = noise
        self.seed = int(seed)
        self.crop = crop
        self.render_options = dict(render_options or {})
        self.augment = augment
        self.epoch = 0
        self._middlebury: RGBDScene | None = None

    def __len__(self) -> int:
        return self.length

    def is_middlebury(self, index: int) -> bool:
        """Whether sample ``index`` is a crop of the Middlebury scene (every 8th with ``include_middlebury``)."""
        return self.include_middlebury and index % 8 == 7

    def _scene(self, index: int, rng: np.random.Generator) -> RGBDScene:
        if self.is_middlebury(index):
            if self._middlebury is None:
                self._middlebury = middlebury_motorcycle()
            return middlebury_crop(self._middlebury, self.size, rng)
        return random_scene(int(rng.integers(0, 2**31 - 1)), self.size, self.depth_range)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        if not -self.length <= index < self.length:
            raise IndexError(f"index {index} out of range for a dataset of length {self.length}")
        index = index % self.length if self.length else index
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, index]))
        scene = self._scene(index, rng)
        noise_seed = int(rng.integers(0, 2**62))
        st = render_focal_stack(
            scene.rgb, scene.depth, self.camera, self.focus, noise=self.noise, seed=noise_seed, device="cpu",
            **self.render_options,
        )
        depth = torch.where(st.mask, st.depth, torch.zeros_like(st.depth))[None]
        sample = {
            "stack": st.images,
            "focus": st.focus_m,
            "depth": depth,
            "mask": st.mask[None],
            "aif": st.aif,
        }
        if self.crop is not None:
            h, w = self.crop
            y0 = int(rng.integers(0, self.size[0] - h + 1))
            x0 = int(rng.integers(0, self.size[1] - w + 1))
            sample = {k: (v[..., y0 : y0 + h, x0 : x0 + w] if v.ndim >= 2 else v) for k, v in sample.items()}
        if self.augment is not None:
            sample = augment_sample(sample, self.augment, sample_generator(self.seed, self.epoch, index))
        return {k: v.contiguous() for k, v in sample.items()}
