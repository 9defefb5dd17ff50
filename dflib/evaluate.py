"""Methods × datasets → one results table (CSV, JSON and Markdown).

A *method* maps one focal stack ``[N, 3, H, W]`` with its focus distances
``[N]`` to a depth map ``[H, W]`` (and optionally σ). A *dataset* yields the
sample dicts of :mod:`dflib.data` and names its metric protocol. The
``embedded`` dataset needs no download: a fixed, seeded test split of stacks
rendered from the procedural scenes and the Middlebury scene, with noise, at
256×256 with FoD500's camera and its five planes (0.1, 0.15, 0.3, 0.7, 1.5 m).

Example::

    from dflib.evaluate import evaluate, learned_method, sff_method, embedded_benchmark
    table = evaluate([learned_method("dualfocus"), sff_method("lapv")],   # a shipped model by name
                     {"embedded": embedded_benchmark()})
    table.write("results/")          # results.csv, results.json, results.md
"""

from __future__ import annotations

import csv
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from dflib.metrics import METRIC_NAMES, SIGMA_METRIC_NAMES
from dflib.utils import default_device, to_numpy

#: every metric a results row may hold: those of :func:`dflib.metrics.depth_metrics`, with σ its σ metrics too
METRIC_KEYS = METRIC_NAMES + SIGMA_METRIC_NAMES
EMBEDDED_SIZE = (256, 256)
EMBEDDED_LENGTH = 24


@dataclass
class Method:
    """A depth-from-focus method: ``predict(stack [N,3,H,W], focus [N]) -> (depth [H,W], sigma [H,W] | None)``."""

    name: str
    predict: Callable[[torch.Tensor, torch.Tensor], tuple[np.ndarray, np.ndarray | None]]
    params: int = 0  #: trainable parameters (0 for classical methods)


def learned_method(checkpoint: str | Path, name: str | None = None, device: str | None = None) -> Method:
    """A trained DualFocus / DFV / plain-volume checkpoint (a file, or a shipped name such as ``"dfv"``) as a :class:`Method`."""
    from dflib.models.pretrained import load_checkpoint_or_name

    dev = default_device(device)
    model = load_checkpoint_or_name(checkpoint, dev)

    @torch.no_grad()
    def predict(stack: torch.Tensor, focus: torch.Tensor):
        out = model(stack[None].to(dev), focus[None].to(dev))
        return to_numpy(out["depth"][0, 0]), to_numpy(out["sigma"][0, 0])

    label = name or Path(checkpoint).stem
    return Method(label, predict, sum(p.numel() for p in model.parameters()))


def sff_method(measure: str = "lapv", window: int = 9, interpolation: str = "gaussian") -> Method:
    """Classical shape from focus (:func:`dflib.classical.sff_depth`) as a :class:`Method`."""
    from dflib.classical import sff_depth

    def predict(stack: torch.Tensor, focus: torch.Tensor):
        return sff_depth(to_numpy(stack), to_numpy(focus), measure=measure, window=window, interpolation=interpolation), None

    return Method(f"sff-{measure}", predict, 0)


def embedded_benchmark(length: int = EMBEDDED_LENGTH, size: tuple[int, int] = EMBEDDED_SIZE) -> Dataset:
    """The embedded test split (no download): seeded, noisy, FoD500 camera and planes."""
    from dflib.data import SyntheticFocalStackDataset
    from dflib.data.synthetic import TEST_SEED

    return SyntheticFocalStackDataset(length, size=size, n_planes=5, noise=True, seed=TEST_SEED)


@dataclass
class ResultsTable:
    """Rows of ``{method, dataset, protocol, n_planes, n_images, params, sec_per_stack, <metrics>}``."""

    rows: list[dict] = field(default_factory=list)

    def columns(self) -> list[str]:
        cols: list[str] = []
        for r in self.rows:
            cols += [k for k in r if k not in cols]
        return cols

    def to_markdown(self, percent_delta: bool = True, columns: Sequence[str] | None = None, digits: int = 4) -> str:
        """A Markdown table of the rows: every table dflib prints (CLI, notebooks, benchmarks) is made here.

        Args:
            percent_delta: show the δ columns in percent (their header says so).
            columns: the columns, in order (default: every key of every row, in order of appearance).
            digits: significant digits of the floats; other values are printed as they are, a missing one as blank.

        >>> print(ResultsTable([{"method": "sff", "rmse": 0.123456, "delta1": 0.5}]).to_markdown(), end="")
        | method | rmse | delta1 (%) |
        |---|---|---|
        | sff | 0.1235 | 50 |
        """
        cols = list(columns) if columns is not None else self.columns()
        head = [c + (" (%)" if percent_delta and c.startswith("delta") else "") for c in cols]
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(cols)]
        for r in self.rows:
            cells = []
            for c in cols:
                v = r.get(c, "")
                if isinstance(v, float):
                    v = 100 * v if percent_delta and c.startswith("delta") else v
                    v = f"{v:.{digits}g}"
                cells.append(str(v))
            lines.append("| " + " | ".join(cells) + " |")
        return "\n".join(lines) + "\n"

    def write(self, out_dir: str | Path, stem: str = "results") -> dict[str, Path]:
        """Write ``stem.csv``, ``stem.json`` and ``stem.md`` into ``out_dir``."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        paths = {ext: out / f"{stem}.{ext}" for ext in ("csv", "json", "md")}
        with paths["csv"].open("w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=self.columns())
            w.writeheader()
            w.writerows(self.rows)
        paths["json"].write_text(json.dumps(self.rows, indent=2))
        paths["md"].write_text(self.to_markdown())
        return paths


def evaluate_method(method: Method, dataset: Dataset, protocol: str = "default", progress: bool = True) -> dict:
    """Run one method over a dataset; returns one results row (metrics averaged over images)."""
    from tqdm.auto import tqdm

    from dflib.metrics import depth_metrics

    preds, gts, sigmas, seconds = [], [], [], 0.0
    n_planes = None
    for i in tqdm(range(len(dataset)), desc=method.name, disable=not progress, leave=False):
        sample = dataset[i]
        n_planes = int(sample["focus"].shape[0])
        t0 = time.perf_counter()
        depth, sigma = method.predict(sample["stack"], sample["focus"])
        seconds += time.perf_counter() - t0
        gt = to_numpy(sample["depth"][0]) * to_numpy(sample["mask"][0])
        preds.append(np.asarray(depth, dtype=np.float64))
        gts.append(gt.astype(np.float64))
        if sigma is not None:
            sigmas.append(np.asarray(sigma, dtype=np.float64))
    metrics = depth_metrics(
        np.stack(preds), np.stack(gts), protocol=protocol, sigma=np.stack(sigmas) if len(sigmas) == len(preds) else None
    )
    return {
        "method": method.name,
        "protocol": protocol,
        "n_planes": n_planes,
        "n_images": len(dataset),
        "params": method.params,
        "sec_per_stack": seconds / max(1, len(dataset)),
        **{k: float(metrics[k]) for k in METRIC_KEYS if k in metrics},
    }


def evaluate(
    methods: Iterable[Method],
    datasets: dict[str, tuple[Dataset, str] | Dataset],
    progress: bool = True,
) -> ResultsTable:
    """Every method on every dataset. ``datasets`` maps a name to ``(dataset, protocol)``
    (or a bare dataset, scored with the ``default`` protocol)."""
    table = ResultsTable()
    methods = list(methods)
    for dname, entry in datasets.items():
        dataset, protocol = entry if isinstance(entry, tuple) else (entry, "default")
        for m in methods:
            table.rows.append({"dataset": dname, **evaluate_method(m, dataset, protocol, progress)})
    return table


def summarise_seeds(rows: list[dict], keys: Iterable[str] = METRIC_KEYS) -> dict[str, str]:
    """``mean ± std`` (sample std) of each metric over rows from runs that differ only in seed."""
    out = {}
    for k in keys:
        vals = [r[k] for r in rows if k in r and r[k] is not None and not math.isnan(r[k])]
        if vals:
            mean = float(np.mean(vals))
            std = float(np.std(vals, ddof=1)) if len(vals) > 1 else 0.0
            out[k] = f"{mean:.4g} ± {std:.2g}"
    return out
