"""Torch datasets of focal stacks: one module per source.

Every dataset yields the same sample dict: ``stack [N,3,H,W]`` float32 in
[0, 1], ``focus [N]`` float32 (metres; disparity for DDFF-12), ``depth
[1,H,W]`` float32 (0 where invalid) and ``mask [1,H,W]`` bool.

``open_dataset(name, split)`` opens a benchmark by name with its training
augmentation (random crop, plane subsampling, flips) on the train split and
none otherwise; ``protocol_for(name)`` names its metric protocol
(:mod:`dflib.metrics`). ``fetch(name)`` (the ``dflib fetch NAME`` command)
fetches, verifies and prepares a dataset into ``data_dir(name)``.

Layout: :mod:`~dflib.data.download` (where data lives, registry, checksums,
download and unpacking), :mod:`~dflib.data.sources` (what each dataset needs),
:mod:`~dflib.data.base` (sample dict, augmentation, base class, lazy HDF5),
then one module per source.
"""

from __future__ import annotations

from torch.utils.data import Dataset, Subset

from dflib.data.arkitscenes import ARKitScenesStacksDataset, convert_upsampling
from dflib.data.cached import CachedDataset
from dflib.data.base import AugmentConfig, augment_sample, choose_planes, make_sample, sample_generator
from dflib.data.ddff12 import DDFF12Dataset
from dflib.data.download import ChecksumMismatchError, DatasetNotFoundError, data_dir
from dflib.data.fod500 import FoD500Dataset
from dflib.data.mobile_depth import MobileDepthDataset
from dflib.data.nyu import NYUStacksDataset, convert_labeled_mat
from dflib.data.sources import SOURCES, fetch
from dflib.data.synthetic import SyntheticFocalStackDataset

__all__ = [
    "ARKitScenesStacksDataset",
    "AugmentConfig",
    "CachedDataset",
    "ChecksumMismatchError",
    "DDFF12Dataset",
    "DatasetNotFoundError",
    "FoD500Dataset",
    "MobileDepthDataset",
    "NYUStacksDataset",
    "SyntheticFocalStackDataset",
    "augment_sample",
    "choose_planes",
    "convert_labeled_mat",
    "convert_upsampling",
    "data_dir",
    "fetch",
    "make_sample",
    "open_dataset",
    "protocol_for",
    "sample_generator",
    "DATASETS",
    "SOURCES",
]

#: benchmark name → (metric protocol, how to open a split)
DATASETS = {
    "fod500": ("fod500", lambda split, root, **kw: FoD500Dataset(root, split="train" if split == "train" else "test", **kw)),
    "ddff12": ("ddff12", lambda split, root, **kw: DDFF12Dataset(root, split=split, **kw)),
    "nyu-gt_range": ("nyu", lambda split, root, **kw: NYUStacksDataset(root, split=split if split == "train" else "test", protocol="gt_range", **kw)),
    "nyu-fixed": ("nyu", lambda split, root, **kw: NYUStacksDataset(root, split=split if split == "train" else "test", protocol="fixed", **kw)),
    "arkitscenes": ("nyu", lambda split, root, **kw: ARKitScenesStacksDataset(root, **kw)),
}
DATASETS["nyu"] = DATASETS["nyu-fixed"]


def protocol_for(name: str) -> str:
    """The metric protocol of a named benchmark (see :data:`dflib.metrics.PROTOCOLS`)."""
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; known: {sorted(DATASETS)}")
    return DATASETS[name][0]


def open_dataset(
    name: str,
    split: str = "test",
    root: str | None = None,
    crop: tuple[int, int] | None = None,
    n_planes: int | None = None,
    seed: int = 0,
    limit: int | None = None,
) -> Dataset:
    """A benchmark's split by name; the train split gets random crops of ``crop``,
    ``n_planes`` sampled planes and flips, other splits come unaugmented.

    Raises :class:`DatasetNotFoundError` (naming the fetch script) when the data
    is not there.
    """
    protocol_for(name)
    kw = {"seed": seed}
    if split == "train":
        kw["augment"] = AugmentConfig(crop=tuple(crop)) if crop else AugmentConfig()
        kw["n_planes"] = n_planes
    ds = DATASETS[name][1](split, root, **kw)
    return Subset(ds, range(min(limit, len(ds)))) if limit else ds
