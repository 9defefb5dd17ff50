"""Small shared helpers: device choice, array conversion, and what benchmarks record."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch


def default_device(device: str | torch.device | None = None) -> torch.device:
    """The device to run on: ``device`` if given, else CUDA when present, else CPU."""
    if device is not None and str(device) != "auto":
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def to_numpy(x: Any) -> np.ndarray:
    """A numpy copy of a tensor (any device, detached) or array-like."""
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def cpu_model() -> str:
    """The processor's model name (``/proc/cpuinfo``), else ``platform.processor()``; benchmarks record it."""
    import platform

    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def benchmark_output(path: str | os.PathLike[str], quick: bool) -> Path:
    """The file a benchmark writes: ``path``, or for a ``--quick`` (smoke) run ``<stem>_quick<suffix>`` beside it,
    so that a smoke run never overwrites the recorded results (git ignores ``*_quick.*`` there).

    >>> benchmark_output("results/integrate.json", quick=True).as_posix()
    'results/integrate_quick.json'
    >>> benchmark_output("results/integrate.json", quick=False).as_posix()
    'results/integrate.json'
    """
    path = Path(path)
    return path.with_name(f"{path.stem}_quick{path.suffix}") if quick else path
