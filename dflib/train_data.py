"""What the training loop reads: the (train, val) datasets of a :class:`~dflib.train_config.TrainConfig`
(rendered synthetic pools cached under a name that hashes the renderer's source), each
process's batches of an epoch, and a batch moved to the device. Importable from
:mod:`dflib.train` as before.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch.utils.data import Dataset, DistributedSampler

from dflib.data.cached import RENDER_SOURCES as _RENDERER, source_digest
from dflib.data.synthetic import VAL_SEED
from dflib.train_config import TrainConfig

__all__ = ["RENDER_SOURCES", "batches_for_epoch", "build_datasets", "synthetic_cache_file", "to_device"]

#: the sources a rendered synthetic pool depends on (its cache file is named after their hash)
RENDER_SOURCES = _RENDERER + ("data/synthetic.py",)


def build_datasets(cfg: TrainConfig) -> tuple[Dataset, Dataset | None]:
    """(train, val) datasets for ``cfg.data``; synthetic stacks are rendered once and cached."""
    if cfg.data == "synthetic":
        from dflib.data import CachedDataset, SyntheticFocalStackDataset

        common = dict(size=cfg.size, n_planes=cfg.n_planes)

        def cached(n: int, seed: int) -> CachedDataset:
            return CachedDataset(SyntheticFocalStackDataset(n, seed=seed, **common),
                                 cache_file=synthetic_cache_file(cfg, n, seed) if cfg.cache_dir else None)

        return cached(cfg.train_scenes, cfg.seed), (cached(cfg.val_scenes, VAL_SEED) if cfg.val_scenes else None)
    if cfg.data == "diverse":
        from dflib.data.diverse import diverse_pools

        return diverse_pools(cfg, VAL_SEED)
    from dflib.data import open_dataset

    train = open_dataset(cfg.data, split="train", root=cfg.data_dir, crop=cfg.size, n_planes=cfg.n_planes, seed=cfg.seed)
    # only DDFF-12 has a validation split; the others are never validated on their test split
    val = open_dataset(cfg.data, split="val", root=cfg.data_dir) if cfg.data == "ddff12" else None
    return train, val


def synthetic_cache_file(cfg: TrainConfig, scenes: int, seed: int) -> Path:
    """Where a rendered synthetic pool is kept: named after its parameters and the renderer's source."""
    tag = f"synthetic_s{seed}_n{scenes}_{cfg.size[0]}x{cfg.size[1]}_p{cfg.n_planes}_{source_digest('data/synthetic.py')}.pt"
    return Path(cfg.cache_dir) / tag


def batches_for_epoch(n_items: int, cfg: TrainConfig, epoch: int, rank: int, world: int,
                       counts: list[int] | None = None) -> list[list[int]]:
    """This process's batches of item indices for one epoch (DistributedSampler order); items of
    different N (``counts``, :func:`dflib.data.batching.plane_counts`) are never batched together."""
    if counts is not None and len(set(counts)) > 1:
        from dflib.data.batching import bucketed_batches

        return bucketed_batches(counts, cfg.batch_size, cfg.seed, epoch, rank, world)
    sampler = DistributedSampler(range(n_items), num_replicas=world, rank=rank, shuffle=True, seed=cfg.seed, drop_last=True)
    sampler.set_epoch(epoch)
    order = list(sampler)
    usable = len(order) - len(order) % cfg.batch_size
    return [order[i : i + cfg.batch_size] for i in range(0, usable, cfg.batch_size)]


def to_device(batch: dict, device: torch.device) -> dict:
    """``batch`` with its tensors moved to ``device`` (non-blocking)."""
    return {k: v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}
