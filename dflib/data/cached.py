"""An in-memory cache of a dataset whose items are costly to make (rendered stacks)."""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch.utils.data import Dataset

#: the renderer's sources: a rendered pool's cache file is named after their hash (:func:`source_digest`),
#: so an edit to any of them renders the pool again
RENDER_SOURCES = ("optics.py", "sensor.py", "render.py", "render_options.py", "scenes.py")


def source_digest(*extra: str, data: bytes = b"") -> str:
    """12 hex digits of the SHA-256 of ``data`` and of the dflib sources :data:`RENDER_SOURCES` + ``extra``
    (paths relative to the package), the tag of a rendered pool's cache file."""
    import hashlib
    from importlib.resources import files

    root = files("dflib")
    h = hashlib.sha256(data)
    for name in RENDER_SOURCES + extra:
        h.update((root / name).read_bytes())
    return h.hexdigest()[:12]


class CachedDataset(Dataset):
    """Materialises every item of ``dataset`` once (with a progress bar), then serves copies-free views.

    Rendering a synthetic focal stack costs far more than a training step of
    the tiny model; a training run renders its pool once and reuses it.
    Memory: ``len(dataset)`` samples, e.g. 512 stacks of ``[5, 3, 128, 128]``
    float32 take about 500 MB.

    With ``cache_file``, the items are also kept on disk: loaded from there
    when the file exists (``torch.load(weights_only=True)``), else rendered
    and written atomically. The caller names the file after everything the
    items depend on (see :func:`dflib.train.build_datasets`).
    """

    def __init__(self, dataset: Dataset, progress: bool = True, desc: str = "rendering stacks",
                 cache_file: str | Path | None = None) -> None:
        from tqdm.auto import tqdm

        path = Path(cache_file) if cache_file is not None else None
        if path is not None and path.is_file():
            self.items = torch.load(path, map_location="cpu", weights_only=True)
            if len(self.items) != len(dataset):
                raise ValueError(f"cache_file {str(path)!r} holds {len(self.items)} items, the dataset has {len(dataset)}")
            return
        self.items = [dataset[i] for i in tqdm(range(len(dataset)), desc=desc, disable=not progress, leave=False)]
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
            torch.save(self.items, tmp)
            os.replace(tmp, path)  # two runs rendering the same pool at once both end with a whole file

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict:
        return self.items[index]

    def plane_counts(self) -> list[int]:
        """N of every item (:mod:`dflib.data.batching`)."""
        return [int(item["focus"].shape[0]) for item in self.items]
