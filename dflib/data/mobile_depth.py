"""Mobile Depth (Suwajanakorn, Hernandez & Seitz, CVPR 2015): real phone focal
stacks, no ground truth; for qualitative results only.

Source: https://www.supasorn.com/dffdownload.html
(``depth_from_focus_data2.zip`` and ``depth_from_focus_data3.zip`` under
``https://www.supasorn.com/data/``). After unpacking, every folder that holds
two or more images (``.png``/``.jpg``, sorted by file name) is one focal
stack, named by its path relative to the root (``/`` -> ``__``).

The focus distances are not known in metric units, so ``focus`` is the plane
index ``0..N-1`` (monotone in the lens position, the order of the frames);
a file ``focus.txt`` in the stack folder with one number per frame overrides
it. ``depth`` is zeros and ``mask`` all False.
"""

from __future__ import annotations

import os
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import torch

from .base import AugmentConfig, FocalStackDataset, make_sample
from .download import DatasetNotFoundError, data_dir

_EXT = (".png", ".jpg", ".jpeg")


def find_stacks(root: str | os.PathLike[str]) -> dict[str, list[Path]]:
    """Scene name -> sorted image paths, for every folder with >= 2 images."""
    root = Path(root)
    out: dict[str, list[Path]] = {}
    for dirpath, _dirs, files in os.walk(root):
        imgs = sorted(f for f in files if f.lower().endswith(_EXT))
        if len(imgs) >= 2:
            rel = Path(dirpath).relative_to(root)
            name = "__".join(rel.parts) if rel.parts else root.name
            out[name] = [Path(dirpath) / f for f in imgs]
    return dict(sorted(out.items()))


class MobileDepthDataset(FocalStackDataset):
    """Mobile Depth stacks (no ground truth).

    Args:
        root: unpacked release (default ``<data dir>/mobile_depth``).
        scenes: keep only these scene names (see :func:`find_stacks`); None: all.
        n_planes, augment, seed: see :class:`~dflib.data.base.FocalStackDataset`.

    Sample: stack ``[N,3,H,W]``, focus ``[N]`` plane indices (or ``focus.txt``),
    depth zeros and mask False ``[1,H,W]``; ``scene`` (str) is added.
    """

    def __init__(self, root: str | os.PathLike[str] | None = None, scenes: list[str] | None = None,
                 n_planes: int | None = None, augment: AugmentConfig | None = None, seed: int = 0) -> None:
        super().__init__(n_planes, augment, seed)
        folder = data_dir("mobile_depth", root)
        if not folder.is_dir():
            raise DatasetNotFoundError("Mobile Depth", folder, "fetch_mobile_depth.py")
        stacks = find_stacks(folder)
        if scenes is not None:
            missing = sorted(set(scenes) - set(stacks))
            if missing:
                raise ValueError(f"scenes {missing} not found; available: {sorted(stacks)}")
            stacks = {k: v for k, v in stacks.items() if k in scenes}
        if not stacks:
            raise DatasetNotFoundError("Mobile Depth", folder, "fetch_mobile_depth.py", detail="no folder with >= 2 images")
        self.root = folder
        self.scenes = list(stacks)
        self.files = list(stacks.values())

    def __len__(self) -> int:
        return len(self.files)

    def _load(self, index: int) -> dict[str, torch.Tensor]:
        paths = self.files[index]
        imgs = [np.asarray(iio.imread(p))[..., :3] for p in paths]
        shapes = {im.shape for im in imgs}
        if len(shapes) != 1:
            raise ValueError(f"scene {self.scenes[index]!r}: frames differ in size {sorted(shapes)}")
        focus_file = paths[0].parent / "focus.txt"
        focus = np.loadtxt(focus_file, dtype=np.float32).reshape(-1) if focus_file.is_file() else np.arange(len(imgs), dtype=np.float32)
        sample = make_sample(np.stack(imgs), focus, None)
        sample["scene"] = self.scenes[index]  # type: ignore[assignment]
        return sample
