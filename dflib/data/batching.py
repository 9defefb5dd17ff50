"""Batches of items with equal N (number of focus planes), for datasets whose N varies.

A batch is a tensor ``[B, N, 3, H, W]``, so its items must share N. Datasets
whose N varies (:class:`~dflib.data.diverse.DiverseFocalStackDataset`, and a
:class:`~dflib.data.CachedDataset` of one) say so with a ``plane_counts()``
method; :func:`plane_counts` reads it. When every item has the same N these
functions give exactly the batches the unbucketed code gives, so runs on such
data do not change.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch.utils.data import Dataset, Subset

__all__ = ["bucketed_batches", "ordered_batches", "plane_counts"]


def plane_counts(dataset: Dataset) -> list[int] | None:
    """N of every item of ``dataset`` (through :class:`~torch.utils.data.Subset`), or None when it does not say."""
    if isinstance(dataset, Subset):
        inner = plane_counts(dataset.dataset)
        return None if inner is None else [inner[i] for i in dataset.indices]
    counts = getattr(dataset, "plane_counts", None)
    return None if counts is None else [int(n) for n in counts()]


def ordered_batches(n_items: int, batch_size: int, counts: Sequence[int] | None = None) -> list[list[int]]:
    """Item indices in order, cut into batches of at most ``batch_size`` and wherever N changes.

    With ``counts`` None or all equal this is ``DataLoader(batch_size=...)``'s batching (the last batch may be short).
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size!r}")
    if counts is not None and len(counts) != n_items:
        raise ValueError(f"counts has {len(counts)} entries for {n_items} items")
    batches: list[list[int]] = []
    for i in range(n_items):
        if batches and len(batches[-1]) < batch_size and (counts is None or counts[batches[-1][0]] == counts[i]):
            batches[-1].append(i)
        else:
            batches.append([i])
    return batches


def bucketed_batches(counts: Sequence[int], batch_size: int, seed: int, epoch: int, rank: int = 0,
                     world: int = 1) -> list[list[int]]:
    """One epoch of shuffled, full batches whose items share N; this process's share of them.

    The items are permuted (seeded by ``seed + epoch``), grouped by N in that
    order and cut into full batches (each N's remainder is dropped); the
    batches are shuffled, cut to a multiple of ``world``, and process
    ``rank`` takes every ``world``-th. The number of batches is the same every
    epoch, so a resumed run lines up with an uninterrupted one.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size!r}")
    if not 0 <= rank < world:
        raise ValueError(f"rank must be in [0, world={world}), got {rank!r}")
    g = torch.Generator().manual_seed(int(seed) + int(epoch))
    order = torch.randperm(len(counts), generator=g).tolist()
    buckets: dict[int, list[int]] = {}
    for i in order:
        buckets.setdefault(int(counts[i]), []).append(i)
    batches = [b[j:j + batch_size] for n in sorted(buckets) for b in [buckets[n]]
               for j in range(0, len(b) - len(b) % batch_size, batch_size)]
    batches = [batches[j] for j in torch.randperm(len(batches), generator=g).tolist()]
    usable = len(batches) - len(batches) % world
    return batches[rank:usable:world]
