"""FoD500 (DefocusNet, Maximov et al. CVPR 2020): 500 Blender focal stacks.

On disk (one flat folder, the release's own layout, no conversion):
``{idx:06d}_{k:02d}All.tif`` (k = 0..4, 256x256 RGB) and ``{idx:06d}Dpt.exr``
(depth in metres, float16, R channel). Stacks 0-399 train, 400-499 test
(DFV's split). Focus distances and camera: :data:`dflib.optics.FOD500_FOCUS_M`,
:data:`dflib.optics.FOD500_CAMERA` ([0.1, 0.15, 0.3, 0.7, 1.5] m, f = 2.9 mm, f/1).
DFV's evaluation clips prediction and target to [0, 1.5] m: that is the
metric's job (``dflib.metrics``), the loader returns the raw depth.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import OpenEXR
import tifffile
import torch

from dflib.optics import FOD500_CAMERA, FOD500_FOCUS_M

from .base import AugmentConfig, FocalStackDataset, make_sample
from .download import DatasetNotFoundError, data_dir

FOD500_FOCAL_LENGTH_M = FOD500_CAMERA.focal_length_m
FOD500_F_NUMBER = FOD500_CAMERA.f_number
FOD500_TRAIN = range(0, 400)
FOD500_TEST = range(400, 500)
_TIF = re.compile(r"^(\d{6})_(\d{2})All\.tif$")


def read_exr_depth(path: str | os.PathLike[str]) -> np.ndarray:
    """Depth ``[H, W]`` float32 from an EXR file's R channel (OpenEXR 3.x API)."""
    chans = OpenEXR.File(str(path), separate_channels=True).channels()
    if "R" in chans:
        arr = chans["R"].pixels
    elif "RGB" in chans or "RGBA" in chans:
        arr = chans.get("RGB", chans.get("RGBA")).pixels[..., 0]
    elif len(chans) == 1:
        arr = next(iter(chans.values())).pixels
    else:
        raise ValueError(f"{path}: no R channel, channels are {sorted(chans)}")
    return np.asarray(arr, dtype=np.float32)


def read_rgb_tiff(path: str | os.PathLike[str]) -> np.ndarray:
    """RGB image ``[H, W, 3]`` uint8 from a TIFF (alpha dropped)."""
    img = tifffile.imread(str(path))
    if img.ndim != 3 or img.shape[-1] < 3:
        raise ValueError(f"{path}: expected an RGB image [H,W,3], got shape {img.shape}")
    img = img[..., :3]
    if img.dtype != np.uint8:
        if img.dtype == np.uint16:
            img = (img.astype(np.float32) / 257.0).round().astype(np.uint8)
        else:
            img = np.clip(np.asarray(img, np.float32) * 255.0, 0, 255).round().astype(np.uint8)
    return img


class FoD500Dataset(FocalStackDataset):
    """FoD500 focal stacks with metric depth.

    Args:
        root: folder with the ``*All.tif`` / ``*Dpt.exr`` files (default
            ``<data dir>/fod500``; the release zip unpacks to a subfolder,
            which is searched too).
        split: ``"train"`` (0-399), ``"test"`` (400-499) or ``"all"``.
        n_planes: keep this many of the 5 planes (None: all).
        augment: training augmentation, or None for evaluation.
        seed: augmentation seed.
        max_depth: also mark depth above this (metres) invalid; None keeps all
            positive finite depth.

    Sample: stack ``[N,3,256,256]``, focus ``[N]`` metres, depth/mask ``[1,256,256]``.
    """

    def __init__(
        self,
        root: str | os.PathLike[str] | None = None,
        split: str = "train",
        n_planes: int | None = None,
        augment: AugmentConfig | None = None,
        seed: int = 0,
        max_depth: float | None = None,
    ) -> None:
        super().__init__(n_planes, augment, seed)
        if split not in ("train", "test", "all"):
            raise ValueError(f"split must be 'train', 'test' or 'all', got {split!r}")
        folder = data_dir("fod500", root)
        if not folder.is_dir():
            raise DatasetNotFoundError("FoD500", folder, "fetch_fod500.py")
        found = self._index(folder)
        if not found:
            subs = [p for p in sorted(folder.iterdir()) if p.is_dir()]
            for sub in subs:
                found = self._index(sub)
                if found:
                    folder = sub
                    break
        if not found:
            raise DatasetNotFoundError("FoD500", folder, "fetch_fod500.py", detail="no *All.tif / *Dpt.exr files")
        keep = {"train": FOD500_TRAIN, "test": FOD500_TEST, "all": range(0, 10**6)}[split]
        self.root = folder
        self.ids = [i for i in sorted(found) if i in keep]
        self.max_depth = max_depth
        self.focus = torch.tensor(FOD500_FOCUS_M, dtype=torch.float32)

    @staticmethod
    def _index(folder: Path) -> dict[int, int]:
        """Stack id -> number of planes, for complete stacks only."""
        counts: dict[int, int] = {}
        for name in os.listdir(folder):
            m = _TIF.match(name)
            if m:
                counts[int(m.group(1))] = counts.get(int(m.group(1)), 0) + 1
        n = len(FOD500_FOCUS_M)
        return {i: c for i, c in counts.items() if c == n and (folder / f"{i:06d}Dpt.exr").is_file()}

    def __len__(self) -> int:
        return len(self.ids)

    def _load(self, index: int) -> dict[str, torch.Tensor]:
        idx = self.ids[index]
        stack = np.stack([read_rgb_tiff(self.root / f"{idx:06d}_{k:02d}All.tif") for k in range(len(FOD500_FOCUS_M))])
        depth = read_exr_depth(self.root / f"{idx:06d}Dpt.exr")
        mask = None if self.max_depth is None else depth <= self.max_depth
        return make_sample(stack, self.focus, depth, mask)
