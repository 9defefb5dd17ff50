"""An in-memory cache of a dataset whose items are costly to make (rendered stacks)."""

from __future__ import annotations

from torch.utils.data import Dataset


class CachedDataset(Dataset):
    """Materialises every item of ``dataset`` once (with a progress bar), then serves copies-free views.

    Rendering a synthetic focal stack costs far more than a training step of
    the tiny model; a training run renders its pool once and reuses it.
    Memory: ``len(dataset)`` samples, e.g. 512 stacks of ``[5, 3, 128, 128]``
    float32 take about 500 MB.
    """

    def __init__(self, dataset: Dataset, progress: bool = True, desc: str = "rendering stacks") -> None:
        from tqdm.auto import tqdm

        self.items = [dataset[i] for i in tqdm(range(len(dataset)), desc=desc, disable=not progress, leave=False)]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict:
        return self.items[index]
