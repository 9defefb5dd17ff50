"""The dataset base: the sample dict every loader returns, the training
augmentation, the base class and lazy HDF5 access.

Sample dict (every dataset in :mod:`dflib.data` returns one):

- ``stack``  ``[N, 3, H, W]`` float32 in [0, 1], planes ordered by increasing
  focus value;
- ``focus``  ``[N]`` float32: focus distances in metres (disparity for
  DDFF-12, plane index for Mobile Depth, whose focus distances are unknown);
- ``depth``  ``[1, H, W]`` float32, 0 where invalid (disparity for DDFF-12);
- ``mask``   ``[1, H, W]`` bool, True where the ground truth is valid
  (all False where a dataset has no ground truth).

>>> s = make_sample(np.zeros((2, 4, 6, 3), np.uint8), [0.5, 1.0], np.ones((4, 6)))
>>> tuple(s["stack"].shape), s["focus"].tolist(), bool(s["mask"].all())
((2, 3, 4, 6), [0.5, 1.0], True)
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

__all__ = ["AugmentConfig", "FocalStackDataset", "LazyH5", "augment_sample", "choose_planes", "make_sample",
           "sample_generator"]


# ----------------------------------------------------------------------- samples
def make_sample(stack: Any, focus: Any, depth: Any | None, mask: Any | None = None) -> dict[str, torch.Tensor]:
    """Build the shared sample dict, checking shapes and converting dtypes.

    stack: ``[N, H, W, 3]`` or ``[N, 3, H, W]``; uint8 (0..255) or float in [0, 1].
    focus: ``[N]``. depth: ``[H, W]`` or ``[1, H, W]`` or None (no ground truth).
    mask: same shape as depth, or None for ``depth > 0 & finite``.
    """
    s = torch.as_tensor(np.asarray(stack))
    if s.ndim != 4:
        raise ValueError(f"stack must be [N,H,W,3] or [N,3,H,W], got shape {tuple(s.shape)}")
    if s.shape[1] != 3 and s.shape[-1] == 3:
        s = s.permute(0, 3, 1, 2)
    if s.shape[1] != 3:
        raise ValueError(f"stack must have 3 colour channels, got shape {tuple(s.shape)}")
    s = s.to(torch.float32) / 255.0 if s.dtype == torch.uint8 else s.to(torch.float32)
    n, _, h, w = s.shape
    f = torch.as_tensor(np.asarray(focus, dtype=np.float32)).reshape(-1)
    if f.numel() != n:
        raise ValueError(f"focus must have {n} values (one per plane), got {f.numel()}")
    if depth is None:
        d = torch.zeros(1, h, w)
        m = torch.zeros(1, h, w, dtype=torch.bool)
    else:
        d = torch.as_tensor(np.asarray(depth, dtype=np.float32)).reshape(1, *np.shape(depth)[-2:])
        if tuple(d.shape[-2:]) != (h, w):
            raise ValueError(f"depth must be [H,W]=({h},{w}) like the stack, got {tuple(d.shape)}")
        valid = torch.isfinite(d) & (d > 0)
        m = valid if mask is None else (torch.as_tensor(np.asarray(mask)).reshape(1, h, w).bool() & valid)
        d = torch.where(m, d, torch.zeros((), dtype=d.dtype))
    return {"stack": s.contiguous(), "focus": f, "depth": d.contiguous(), "mask": m.contiguous()}


# ------------------------------------------------------------------ augmentation
def sample_generator(seed: int, epoch: int, index: int) -> torch.Generator:
    """A CPU generator seeded from (seed, epoch, index) via ``numpy.random.SeedSequence``."""
    for name, v in (("seed", seed), ("epoch", epoch), ("index", index)):
        if not isinstance(v, (int, np.integer)) or v < 0:
            raise ValueError(f"{name} must be a non-negative int, got {v!r}")
    state = np.random.SeedSequence([int(seed), int(epoch), int(index)]).generate_state(2, dtype=np.uint32)
    g = torch.Generator()
    g.manual_seed(int(state[0]) << 31 ^ int(state[1]))
    return g


def choose_planes(n_total: int, n: int | None, generator: torch.Generator | None = None) -> torch.Tensor:
    """Indices of the planes to keep, sorted ascending.

    ``generator`` given: ``n`` distinct planes at random (training, as DFV
    samples 5 of DDFF-12's 10). None: ``n`` evenly spaced planes including both
    ends (evaluation). ``n`` None or equal to ``n_total``: all planes.
    """
    if n is None or n == n_total:
        return torch.arange(n_total)
    if not isinstance(n, int) or not 1 <= n <= n_total:
        raise ValueError(f"n_planes must be an int in [1, {n_total}], got {n!r}")
    if generator is None:
        return torch.from_numpy(np.unique(np.round(np.linspace(0, n_total - 1, n)).astype(np.int64)))
    return torch.sort(torch.randperm(n_total, generator=generator)[:n]).values


@dataclass(frozen=True)
class AugmentConfig:
    """Training augmentation shared by all loaders (what the anchors use).

    crop: output ``(H, W)`` of a random crop, or None for no crop.
    min_valid_fraction: retry the crop (up to ``crop_tries`` times) until at
        least this fraction of its pixels has valid ground truth (DDFF-12 code
        uses 0.8); 0 accepts the first crop.
    hflip / vflip: random flips with probability ``p_flip`` each.
    """

    crop: tuple[int, int] | None = (224, 224)
    min_valid_fraction: float = 0.0
    crop_tries: int = 10
    hflip: bool = True
    vflip: bool = True
    p_flip: float = 0.5

    def __post_init__(self) -> None:
        if self.crop is not None and (len(self.crop) != 2 or min(self.crop) < 1):
            raise ValueError(f"crop must be (H, W) with positive sizes or None, got {self.crop!r}")
        if not 0.0 <= self.p_flip <= 1.0:
            raise ValueError(f"p_flip must be in [0, 1], got {self.p_flip}")
        if not 0.0 <= self.min_valid_fraction <= 1.0:
            raise ValueError(f"min_valid_fraction must be in [0, 1], got {self.min_valid_fraction}")


def augment_sample(sample: dict[str, torch.Tensor], config: AugmentConfig, generator: torch.Generator) -> dict[str, torch.Tensor]:
    """Random crop then flips, applied identically to every image of the sample
    (``stack``, ``depth``, ``mask`` and, when present, ``aif``).

    Focus values are unchanged. Pure: the input dict is not modified.
    """
    keys = [k for k in ("stack", "depth", "mask", "aif") if k in sample]
    images = {k: sample[k] for k in keys}
    h, w = images["stack"].shape[-2:]
    if config.crop is not None:
        ch, cw = config.crop
        if ch > h or cw > w:
            raise ValueError(f"crop {config.crop} is larger than the sample ({h}, {w})")
        for _ in range(max(1, config.crop_tries)):
            top = int(torch.randint(0, h - ch + 1, (1,), generator=generator))
            left = int(torch.randint(0, w - cw + 1, (1,), generator=generator))
            frac = images["mask"][..., top : top + ch, left : left + cw].float().mean().item()
            if frac >= config.min_valid_fraction:
                break
        images = {k: v[..., top : top + ch, left : left + cw] for k, v in images.items()}
    flips = torch.rand(2, generator=generator)
    if config.hflip and flips[0] < config.p_flip:
        images = {k: v.flip(-1) for k, v in images.items()}
    if config.vflip and flips[1] < config.p_flip:
        images = {k: v.flip(-2) for k, v in images.items()}
    return {**sample, **{k: v.contiguous() for k, v in images.items()}}


class EpochSeeded:
    """Mixin: the epoch that seeds a dataset's augmentation (with its seed and the item's index)."""

    epoch: int = 0

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch that seeds the augmentation."""
        if not isinstance(epoch, int) or epoch < 0:
            raise ValueError(f"epoch must be a non-negative int, got {epoch!r}")
        self.epoch = epoch


class FocalStackDataset(EpochSeeded, torch.utils.data.Dataset):
    """Base class: subclasses implement ``__len__`` and ``_load(index)`` (full sample).

    ``n_planes`` planes are kept: random sorted subset when training
    (``augment`` given), evenly spaced otherwise. Randomness comes from
    :func:`sample_generator` ``(seed, epoch, index)``; call :meth:`set_epoch`
    each epoch.
    """

    def __init__(self, n_planes: int | None = None, augment: AugmentConfig | None = None, seed: int = 0) -> None:
        if augment is not None and not isinstance(augment, AugmentConfig):
            raise TypeError(f"augment must be an AugmentConfig or None, got {type(augment).__name__}")
        if n_planes is not None and (not isinstance(n_planes, int) or n_planes < 1):
            raise ValueError(f"n_planes must be a positive int or None, got {n_planes!r}")
        self.n_planes = n_planes
        self.augment = augment
        self.seed = int(seed)
        self.epoch = 0

    def _load(self, index: int) -> dict[str, torch.Tensor]:  # pragma: no cover - abstract
        raise NotImplementedError

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {type(self).__name__} of length {len(self)}")
        index = index % len(self)
        sample = self._load(index)
        gen = sample_generator(self.seed, self.epoch, index) if self.augment is not None else None
        keep = choose_planes(sample["stack"].shape[0], self.n_planes, gen)
        sample = dict(sample, stack=sample["stack"][keep], focus=sample["focus"][keep])
        if self.augment is not None and gen is not None:
            sample = augment_sample(sample, self.augment, gen)
        return sample


class LazyH5:
    """Mixin for datasets backed by one HDF5 file at ``self.path``: the file is
    opened on first use, once per process (DataLoader workers each open their
    own), and the handle is dropped when the dataset is pickled."""

    _h5 = None
    _pid: int | None = None

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_h5"], state["_pid"] = None, None  # h5py handles do not pickle / fork safely
        return state

    def _file(self):
        import h5py

        if self._h5 is None or self._pid != os.getpid():
            self._h5 = h5py.File(self.path, "r")
            self._pid = os.getpid()
        return self._h5

    def close(self) -> None:
        """Close the h5 handle (reopened on the next access)."""
        if self._h5 is not None:
            self._h5.close()
            self._h5 = None

