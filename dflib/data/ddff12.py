"""DDFF 12-Scene (Hazirbas et al. 2018): Lytro light-field focal stacks with
Kinect disparity, read lazily from HDF5.

Files (TUM benchmark, https://vision.in.tum.de/webarchive/hazirbas/ddff12scene/):
``ddff-dataset-trainval.h5`` (keys ``stack_train``, ``disp_train``,
``stack_val``, ``disp_val``) and ``ddff-dataset-test.h5`` (``stack_test``; its
ground truth is held by the benchmark server). Stacks ``[S, 10, 383, 552, 3]``
uint8, disparity ``[S, 383, 552]`` float, 0 = invalid, valid 0.0202-0.2825.

Focus values. The 10 planes are uniform in disparity for depths 0.5-7 m. With
the published calibration (focal length 521.4052 px, baseline K2/flens =
1982.0250823695178 / 7317.020641763665 mm) disparity = b f / Z gives
0.28246 at 0.5 m and 0.02018 at 7 m (:data:`DDFF12_DISPARITIES_EXACT`). DFV's
loader uses the rounded ``linspace(0.28, 0.02, 10)`` with file plane 0 at 0.28
(:data:`DDFF12_DISPARITIES_DFV`, the default, for comparability with published
numbers). The file stores planes near-to-far (disparity decreasing); by
default this loader reverses them so that ``focus`` increases, as everything
in dflib expects.

Train/val split. The official val stacks come from scenes that also appear in
train. DFV re-splits by scene (val = glassroom, office41; train =
socialcorner, studentlab, seminaroom, kitchen; 100 stacks per scene) by
re-rendering the stacks from the raw light fields, and shares the result as
``my_ddff_trainVal.h5`` with the same keys (float-valued 0..255 stacks). The
official h5 carries no scene labels, so that split cannot be rebuilt from it.
``variant="auto"`` uses DFV's file when present, else the official one, and
records which in ``self.variant``.
"""

from __future__ import annotations

import os
from typing import Any

import h5py
import numpy as np
import torch

from dflib import optics

from .base import AugmentConfig, FocalStackDataset, LazyH5, make_sample
from .download import DatasetNotFoundError, data_dir

_FOCAL_PX = 521.4052
_BASELINE_M = 1982.0250823695178 / 7317.020641763665 * 1e-3
DDFF12_DEPTH_RANGE_M = (0.5, 7.0)
DDFF12_VALID_DISPARITY = (0.0202, 0.2825)
#: File plane order (near to far): uniform in disparity from 0.5 m to 7 m.
DDFF12_DISPARITIES_EXACT: tuple[float, ...] = tuple(
    float(x) for x in np.linspace(_BASELINE_M * _FOCAL_PX / 0.5, _BASELINE_M * _FOCAL_PX / 7.0, 10)
)
#: File plane order, DFV's rounded values.
DDFF12_DISPARITIES_DFV: tuple[float, ...] = tuple(float(x) for x in np.linspace(0.28, 0.02, 10))
DDFF12_FILES = {
    "official": ("ddff-dataset-trainval.h5", "ddff-dataset-test.h5"),
    "dfv": ("my_ddff_trainVal.h5", "ddff-dataset-test.h5"),
}
_KEYS = {"train": ("stack_train", "disp_train"), "val": ("stack_val", "disp_val"), "test": ("stack_test", None)}


def disparity_to_depth(disp: Any) -> torch.Tensor:
    """Metric depth (m) from DDFF-12 disparity: :func:`dflib.optics.disparity_to_depth` with DDFF-12's
    calibration (b f / d); invalid disparity (<= 0, NaN, inf) maps to 0. Returns float32.

    >>> round(float(disparity_to_depth(DDFF12_DISPARITIES_EXACT[-1])), 6)
    7.0
    """
    return optics.disparity_to_depth(torch.as_tensor(disp, dtype=torch.float32), _BASELINE_M * _FOCAL_PX)


class DDFF12Dataset(LazyH5, FocalStackDataset):
    """DDFF-12 focal stacks, disparity ground truth (focus and depth in disparity units).

    Args:
        root: folder holding the h5 files (default ``<data dir>/ddff12``).
        split: ``"train"``, ``"val"`` or ``"test"`` (test: no ground truth,
            depth zeros and mask all False).
        variant: ``"auto"``, ``"dfv"`` (scene-disjoint re-split) or ``"official"``.
        focus_values: ``"dfv"`` (0.28..0.02) or ``"exact"`` (from calibration).
        ascending: reverse the file's plane order so focus increases.
        n_planes, augment, seed: see :class:`~dflib.data.base.FocalStackDataset`.

    The h5 file is opened lazily, once per process (DataLoader worker).
    Sample: stack ``[N,3,383,552]``, focus ``[N]`` disparity, depth/mask ``[1,383,552]``.
    """

    def __init__(
        self,
        root: str | os.PathLike[str] | None = None,
        split: str = "train",
        variant: str = "auto",
        focus_values: str = "dfv",
        ascending: bool = True,
        n_planes: int | None = None,
        augment: AugmentConfig | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__(n_planes, augment, seed)
        if split not in _KEYS:
            raise ValueError(f"split must be one of {sorted(_KEYS)}, got {split!r}")
        if variant not in ("auto", "dfv", "official"):
            raise ValueError(f"variant must be 'auto', 'dfv' or 'official', got {variant!r}")
        if focus_values not in ("dfv", "exact"):
            raise ValueError(f"focus_values must be 'dfv' or 'exact', got {focus_values!r}")
        folder = data_dir("ddff12", root)
        if variant == "auto":
            variant = "dfv" if (folder / DDFF12_FILES["dfv"][0]).is_file() else "official"
        fname = DDFF12_FILES[variant][1 if split == "test" else 0]
        self.path = folder / fname
        if not self.path.is_file():
            raise DatasetNotFoundError("DDFF-12", self.path, "fetch_ddff12.py")
        self.variant = variant
        self.split = split
        self.stack_key, self.disp_key = _KEYS[split]
        with h5py.File(self.path, "r") as f:
            if self.stack_key not in f:
                raise KeyError(f"{self.path} has no {self.stack_key!r}; keys: {sorted(f)}")
            shape = f[self.stack_key].shape
        if len(shape) != 5 or shape[-1] != 3:
            raise ValueError(f"{self.path}:{self.stack_key} must be [S,N,H,W,3], got {shape}")
        self._len, self.n_total = int(shape[0]), int(shape[1])
        disp = DDFF12_DISPARITIES_DFV if focus_values == "dfv" else DDFF12_DISPARITIES_EXACT
        if self.n_total != len(disp):
            raise ValueError(f"{self.path}: expected {len(disp)} planes per stack, got {self.n_total}")
        self.ascending = ascending
        focus = torch.tensor(disp, dtype=torch.float32)
        self.focus = focus.flip(0) if ascending else focus

    def __len__(self) -> int:
        return self._len

    def _load(self, index: int) -> dict[str, torch.Tensor]:
        f = self._file()
        stack = np.asarray(f[self.stack_key][index])
        if stack.dtype != np.uint8:  # DFV's h5 stores 0..255 as float
            stack = np.clip(np.asarray(stack, np.float32), 0, 255) / 255.0
        disp = None if self.disp_key is None else np.asarray(f[self.disp_key][index], np.float32)
        if self.ascending:
            stack = stack[::-1].copy()
        return make_sample(stack, self.focus, disp)
