"""ARKitScenes (Apple, CC BY-NC-SA 4.0): a small zero-shot subset, rendered like NYU.

Source: the depth-upsampling release,
``https://docs-assets.developer.apple.com/ml-research/datasets/arkitscenes/v1/upsampling/{split}/{video_id}.zip``,
which unpacks to ``{video_id}/`` with ``wide/`` (called ``color/`` in the
upsampling README; RGB PNG 1920x1440), ``highres_depth/`` (uint16 PNG,
millimetres, 0 = invalid, laser-scanner ground truth at 1920x1440),
``lowres_depth/`` and ``confidence/``, frames named ``{video_id}_{timestamp}.png``.

Conversion (:func:`convert_upsampling`): ``frames_per_video`` frames evenly
spaced through each video; RGB area-downsampled by 3 to 640x480 and depth
nearest-sampled (no mixing across edges), then rendered with the NYU camera
and protocols and written in the NYU stacks h5 format
(``arkitscenes_{split}_{protocol}_n{N}.h5``, centre crop 384x512, valid
1e-3-10 m).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import imageio.v3 as iio
import numpy as np
from skimage.transform import resize

from .base import AugmentConfig
from .download import data_dir, load_registry
from .nyu import NYU_CROP, NYU_VALID_RANGE_M, PROTOCOLS, StacksH5Dataset, render_stacks_to_h5, stacks_filename

#: Three Validation videos from three different visits (apple/ARKitScenes
#: depth_upsampling/upsampling_train_val_splits.csv), as the registry lists them.
ARKIT_DEFAULT_VIDEOS: tuple[str, ...] = tuple(load_registry()["arkitscenes_upsampling"]["video_ids"])
ARKIT_SIZE: tuple[int, int] = (480, 640)


def list_frames(video_dir: str | os.PathLike[str]) -> list[tuple[Path, Path]]:
    """``(rgb_png, highres_depth_png)`` pairs of a video folder, sorted by name."""
    video_dir = Path(video_dir)
    rgb_dir = next((video_dir / d for d in ("wide", "color") if (video_dir / d).is_dir()), None)
    depth_dir = video_dir / "highres_depth"
    if rgb_dir is None or not depth_dir.is_dir():
        raise FileNotFoundError(f"{video_dir} needs wide/ (or color/) and highres_depth/ folders")
    pairs = [(p, depth_dir / p.name) for p in sorted(rgb_dir.glob("*.png")) if (depth_dir / p.name).is_file()]
    return pairs


def load_frame(rgb_path: Path, depth_path: Path, size: tuple[int, int] = ARKIT_SIZE) -> tuple[np.ndarray, np.ndarray]:
    """RGB ``[H,W,3]`` uint8 and depth ``[H,W]`` float32 metres (0 invalid), resized to ``size``."""
    rgb = np.asarray(iio.imread(rgb_path))[..., :3]
    depth_mm = np.asarray(iio.imread(depth_path))
    if depth_mm.dtype != np.uint16:
        raise ValueError(f"{depth_path}: highres_depth must be uint16 millimetres, got {depth_mm.dtype}")
    if rgb.shape[:2] != size:
        rgb = (resize(rgb, size, order=1, anti_aliasing=True, preserve_range=True)).round().clip(0, 255).astype(np.uint8)
    if depth_mm.shape != size:
        rows = np.minimum((np.arange(size[0]) + 0.5) * depth_mm.shape[0] / size[0], depth_mm.shape[0] - 1).astype(int)
        cols = np.minimum((np.arange(size[1]) + 0.5) * depth_mm.shape[1] / size[1], depth_mm.shape[1] - 1).astype(int)
        depth_mm = depth_mm[np.ix_(rows, cols)]
    return rgb, depth_mm.astype(np.float32) / 1000.0


def convert_upsampling(
    src_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    video_ids: Sequence[str] = ARKIT_DEFAULT_VIDEOS,
    frames_per_video: int = 10,
    camera: Any = None,
    protocols: Sequence[str] = PROTOCOLS,
    n_planes: int = 5,
    split: str = "test",
    seed: int = 0,
    render_fn: Callable[..., Any] | None = None,
    size: tuple[int, int] = ARKIT_SIZE,
    progress: bool = True,
) -> list[Path]:
    """Render the subset's focal stacks; returns the h5 paths (one per protocol).

    ``src_dir`` holds the unpacked ``{video_id}/`` folders; ``index`` in the
    output is ``video_position * 100000 + frame_position``.
    """
    if camera is None:
        from dflib.optics import NYU_CAMERA

        camera = NYU_CAMERA
    chosen: list[tuple[int, Path, Path]] = []
    for v, vid in enumerate(video_ids):
        pairs = list_frames(Path(src_dir) / str(vid))
        if not pairs:
            raise FileNotFoundError(f"no frames with ground truth in {Path(src_dir) / str(vid)}")
        take = np.unique(np.round(np.linspace(0, len(pairs) - 1, min(frames_per_video, len(pairs)))).astype(int))
        chosen += [(v * 100000 + int(t), *pairs[t]) for t in take]

    def items() -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
        for idx, rp, dp in chosen:
            rgb, depth = load_frame(rp, dp, size)
            yield idx, rgb, depth

    return [
        render_stacks_to_h5(items(), Path(out_dir) / stacks_filename(split, p, n_planes, "arkitscenes"), len(chosen), camera, p,
                            n_planes, NYU_CROP, NYU_VALID_RANGE_M, seed, render_fn, source="ARKitScenes upsampling " + ",".join(map(str, video_ids)),
                            progress=progress)
        for p in protocols
    ]


class ARKitScenesStacksDataset(StacksH5Dataset):
    """ARKitScenes zero-shot focal stacks rendered by ``dflib fetch arkitscenes``.

    Same arguments and sample as :class:`~dflib.data.nyu.NYUStacksDataset`
    (default root ``<data dir>/arkitscenes``, split ``"test"``).
    """

    dataset_name = "ARKitScenes focal stacks"
    script = "fetch_arkitscenes.py"
    prefix = "arkitscenes"

    def __init__(self, root: str | os.PathLike[str] | None = None, split: str = "test", protocol: str = "gt_range",
                 rendered_planes: int = 5, n_planes: int | None = None, augment: AugmentConfig | None = None, seed: int = 0) -> None:
        if protocol not in PROTOCOLS:
            raise ValueError(f"protocol must be one of {PROTOCOLS}, got {protocol!r}")
        self.protocol = protocol
        super().__init__(data_dir("arkitscenes", root) / stacks_filename(split, protocol, rendered_planes, self.prefix),
                         NYU_VALID_RANGE_M, n_planes, augment, seed)
