"""NYU Depth v2 synthetic focal stacks, rendered by dflib from the labeled release.

Source: ``nyu_depth_v2_labeled.mat`` (MATLAB v7.3 = HDF5; ``images``
``[1449, 3, 640, 480]`` uint8 and ``depths`` ``[1449, 640, 480]`` float32
metres, both stored transposed: read ``images[i].T`` -> ``[480, 640, 3]``) and
the standard split ``splits.mat`` (MATLAB v5; ``testNdxs`` 654 and
``trainNdxs`` 795 one-based indices).

Rendering (:func:`convert_labeled_mat`): thin lens ``dflib.optics.NYU_CAMERA``
(f = 50 mm, f/8, 12 um pixels) with ``dflib.render.render_focal_stack`` on the
full 480x640 image, then a centre crop 384x512; valid depth 1e-3-10 m.
Two focus protocols:

- ``gt_range``: planes evenly spaced (in metres) between each image's own
  valid GT min and max: the protocol of the published NYU numbers
  (HybridDepth, very likely DualFocus). It leaks the answer's range into the
  input.
- ``fixed``: the same planes for every image, [1, 1.5, 2.5, 4, 6] m.

On-disk format (one HDF5 file per split, protocol and plane count,
``<root>/nyu_{split}_{protocol}_n{N}.h5``): datasets ``stack`` uint8
``[M, N, H, W, 3]`` (chunked one stack per chunk), ``focus`` float32
``[M, N]`` metres, ``depth`` float32 ``[M, H, W]`` metres (0 = invalid),
``index`` int64 ``[M]`` (0-based row in the labeled .mat); attributes
``protocol``, ``camera`` (JSON), ``crop``, ``valid_range``, ``seed``,
``source``. ARKitScenes stacks (:mod:`dflib.data.arkitscenes`) use the same format.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

import h5py
import numpy as np
import torch

from .base import AugmentConfig, FocalStackDataset, LazyH5, make_sample
from .download import DatasetNotFoundError, data_dir

NYU_FIXED_FOCUS_M: tuple[float, ...] = (1.0, 1.5, 2.5, 4.0, 6.0)
NYU_CROP: tuple[int, int] = (384, 512)
NYU_VALID_RANGE_M: tuple[float, float] = (1e-3, 10.0)
NYU_N_TEST = 654
NYU_N_TRAIN = 795
PROTOCOLS = ("gt_range", "fixed")


def stacks_filename(split: str, protocol: str, n_planes: int, prefix: str = "nyu") -> str:
    """``{prefix}_{split}_{protocol}_n{N}.h5``."""
    return f"{prefix}_{split}_{protocol}_n{n_planes}.h5"


def read_split_indices(splits_path: str | os.PathLike[str], split: str = "test") -> np.ndarray:
    """0-based indices of the standard split from ``splits.mat`` (654 test, 795 train)."""
    from scipy.io import loadmat

    key = {"test": "testNdxs", "train": "trainNdxs"}.get(split)
    if key is None:
        raise ValueError(f"split must be 'test' or 'train', got {split!r}")
    idx = np.asarray(loadmat(str(splits_path))[key]).reshape(-1).astype(np.int64) - 1
    if idx.min(initial=0) < 0:
        raise ValueError(f"{splits_path}:{key} must hold one-based indices, found {idx.min() + 1}")
    return idx


def centre_crop(x: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Centre crop of the first two axes.

    ``x``: ``[H, W]`` or ``[H, W, C]``; returns ``[size[0], size[1](, C)]``.
    """
    h, w = x.shape[:2]
    ch, cw = size
    if ch > h or cw > w:
        raise ValueError(f"crop {size} larger than image ({h}, {w})")
    top, left = (h - ch) // 2, (w - cw) // 2
    return x[top : top + ch, left : left + cw]


def focus_planes(depth: np.ndarray, protocol: str, n_planes: int, valid_range: tuple[float, float] = NYU_VALID_RANGE_M,
                 fixed: Sequence[float] = NYU_FIXED_FOCUS_M) -> np.ndarray:
    """Focus distances ``[N]`` (m, increasing) for one image under ``protocol``.

    ``gt_range``: ``linspace(min, max, N)`` of the image's valid depth;
    ``fixed``: ``fixed`` (must have N values).
    """
    if protocol == "fixed":
        f = np.asarray(fixed, dtype=np.float64)
        if f.size != n_planes:
            raise ValueError(f"fixed protocol has {f.size} planes {tuple(fixed)}, n_planes={n_planes}")
        return f
    if protocol != "gt_range":
        raise ValueError(f"protocol must be one of {PROTOCOLS}, got {protocol!r}")
    lo, hi = valid_range
    v = depth[np.isfinite(depth) & (depth > lo) & (depth < hi)]
    if v.size == 0:
        raise ValueError("gt_range protocol needs valid depth, the image has none")
    return np.linspace(float(v.min()), float(v.max()), n_planes)


def iter_labeled_mat(mat_path: str | os.PathLike[str], indices: Iterable[int]) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """Yield ``(index, rgb [H,W,3] uint8, depth [H,W] float32 m)`` from the labeled .mat."""
    with h5py.File(str(mat_path), "r") as f:
        for key in ("images", "depths"):
            if key not in f:
                raise KeyError(f"{mat_path} has no {key!r}; is it nyu_depth_v2_labeled.mat? keys: {sorted(f)[:10]}")
        images, depths = f["images"], f["depths"]
        for i in indices:
            rgb = np.asarray(images[int(i)]).transpose(2, 1, 0)  # [3,W,H] -> [H,W,3]
            depth = np.asarray(depths[int(i)], dtype=np.float32).T  # [W,H] -> [H,W]
            yield int(i), np.ascontiguousarray(rgb), np.ascontiguousarray(depth)


def _camera_json(camera: Any) -> str:
    if is_dataclass(camera):
        return json.dumps(asdict(camera))
    return json.dumps({k: getattr(camera, k) for k in ("focal_length_m", "f_number", "pixel_pitch_m") if hasattr(camera, k)})


def _default_render() -> Callable[..., Any]:
    from dflib.render import render_focal_stack

    return render_focal_stack


def render_stacks_to_h5(
    items: Iterable[tuple[int, np.ndarray, np.ndarray]],
    out_path: str | os.PathLike[str],
    n_items: int,
    camera: Any,
    protocol: str,
    n_planes: int = 5,
    crop: tuple[int, int] | None = NYU_CROP,
    valid_range: tuple[float, float] = NYU_VALID_RANGE_M,
    seed: int = 0,
    render_fn: Callable[..., Any] | None = None,
    source: str = "",
    progress: bool = True,
) -> Path:
    """Render ``(index, rgb [H,W,3] uint8, depth [H,W] m)`` items to the stacks h5 format.

    Depth outside ``valid_range`` (and non-finite) is set to 0 (invalid)
    before rendering; each item's noise uses ``seed + position``. Writes to a
    temporary file and renames it, so an interrupted run leaves no half file.
    """
    from tqdm.auto import tqdm

    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol must be one of {PROTOCOLS}, got {protocol!r}")
    render = render_fn or _default_render()
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_suffix(".h5.tmp")
    lo, hi = valid_range
    with h5py.File(tmp, "w") as f:
        ds_stack = ds_focus = ds_depth = ds_index = None
        k = -1
        for k, (idx, rgb, depth) in enumerate(tqdm(items, total=n_items, desc=f"rendering {out_path.name}", disable=not progress)):
            depth = np.where(np.isfinite(depth) & (depth > lo) & (depth < hi), depth, 0.0).astype(np.float32)
            crop_depth = depth if crop is None else centre_crop(depth, crop)
            focus = focus_planes(crop_depth, protocol, n_planes, valid_range)
            rgb_t = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1).float() / 255.0
            out = render(rgb_t, torch.from_numpy(depth), camera, torch.as_tensor(focus, dtype=torch.float32), noise=True, seed=seed + k)
            imgs = out.images.detach().cpu().numpy() if isinstance(out.images, torch.Tensor) else np.asarray(out.images)
            imgs = np.clip(np.round(imgs.transpose(0, 2, 3, 1) * 255.0), 0, 255).astype(np.uint8)  # [N,H,W,3]
            if crop is not None:
                imgs = np.stack([centre_crop(im, crop) for im in imgs])
            if ds_stack is None:
                n, h, w = imgs.shape[:3]
                ds_stack = f.create_dataset("stack", (n_items, n, h, w, 3), np.uint8, chunks=(1, n, h, w, 3), compression="gzip", compression_opts=1)
                ds_focus = f.create_dataset("focus", (n_items, n), np.float32)
                ds_depth = f.create_dataset("depth", (n_items, h, w), np.float32, chunks=(1, h, w), compression="gzip", compression_opts=1)
                ds_index = f.create_dataset("index", (n_items,), np.int64)
            ds_stack[k] = imgs
            ds_focus[k] = focus
            ds_depth[k] = crop_depth
            ds_index[k] = idx
        if k + 1 != n_items:
            raise ValueError(f"expected {n_items} items, got {k + 1}")
        f.attrs.update(protocol=protocol, camera=_camera_json(camera), crop=list(crop or ()), valid_range=list(valid_range),
                       seed=seed, source=source, n_planes=n_planes)
    os.replace(tmp, out_path)
    return out_path


def convert_labeled_mat(
    mat_path: str | os.PathLike[str],
    splits_path: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    camera: Any = None,
    protocols: Sequence[str] = PROTOCOLS,
    n_planes: int = 5,
    split: str = "test",
    limit: int | None = None,
    seed: int = 0,
    render_fn: Callable[..., Any] | None = None,
    progress: bool = True,
) -> list[Path]:
    """Render NYU-v2 focal stacks for ``split`` under each protocol; returns the h5 paths.

    camera: a thin-lens camera (default ``dflib.optics.NYU_CAMERA``).
    limit: only the first ``limit`` images of the split (quick runs).
    """
    if camera is None:
        from dflib.optics import NYU_CAMERA

        camera = NYU_CAMERA
    idx = read_split_indices(splits_path, split)
    if limit is not None:
        idx = idx[: int(limit)]
    paths = []
    for protocol in protocols:
        out = Path(out_dir) / stacks_filename(split, protocol, n_planes)
        paths.append(render_stacks_to_h5(iter_labeled_mat(mat_path, idx), out, len(idx), camera, protocol, n_planes,
                                         NYU_CROP, NYU_VALID_RANGE_M, seed, render_fn, source=Path(mat_path).name, progress=progress))
    return paths


class StacksH5Dataset(LazyH5, FocalStackDataset):
    """Reader of the stacks h5 format above (lazy, one handle per process)."""

    dataset_name = "stacks"
    script = "fetch_nyu.py"
    prefix = "nyu"

    def __init__(self, path: Path, valid_range: tuple[float, float], n_planes: int | None, augment: AugmentConfig | None, seed: int) -> None:
        super().__init__(n_planes, augment, seed)
        if not path.is_file():
            raise DatasetNotFoundError(self.dataset_name, path, self.script)
        self.path = path
        self.valid_range = valid_range
        with h5py.File(path, "r") as f:
            for key in ("stack", "focus", "depth"):
                if key not in f:
                    raise KeyError(f"{path} has no {key!r}; keys: {sorted(f)}")
            self._len = int(f["stack"].shape[0])
            self.attrs = dict(f.attrs)

    def __len__(self) -> int:
        return self._len

    def _load(self, index: int) -> dict[str, torch.Tensor]:
        f = self._file()
        depth = np.asarray(f["depth"][index], np.float32)
        lo, hi = self.valid_range
        return make_sample(f["stack"][index], f["focus"][index], depth, (depth > lo) & (depth < hi))


class NYUStacksDataset(StacksH5Dataset):
    """NYU-v2 focal stacks rendered by ``dflib fetch nyu``.

    Args:
        root: folder with ``nyu_{split}_{protocol}_n{N}.h5`` (default ``<data dir>/nyu``).
        split: ``"test"`` (654 images) or ``"train"`` (795).
        protocol: ``"gt_range"`` (published protocol, leaks the range) or ``"fixed"``.
        rendered_planes: the file's plane count (5 by default).
        n_planes, augment, seed: see :class:`~dflib.data.base.FocalStackDataset`.

    Sample: stack ``[N,3,384,512]``, focus ``[N]`` m, depth/mask ``[1,384,512]`` (valid 1e-3-10 m).
    """

    dataset_name = "NYU-v2 focal stacks"

    def __init__(self, root: str | os.PathLike[str] | None = None, split: str = "test", protocol: str = "gt_range",
                 rendered_planes: int = 5, n_planes: int | None = None, augment: AugmentConfig | None = None, seed: int = 0) -> None:
        if protocol not in PROTOCOLS:
            raise ValueError(f"protocol must be one of {PROTOCOLS}, got {protocol!r}")
        if split not in ("test", "train"):
            raise ValueError(f"split must be 'test' or 'train', got {split!r}")
        self.protocol = protocol
        super().__init__(data_dir("nyu", root) / stacks_filename(split, protocol, rendered_planes, self.prefix),
                         NYU_VALID_RANGE_M, n_planes, augment, seed)
