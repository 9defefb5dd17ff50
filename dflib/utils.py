"""Small shared helpers: device choice and array conversion."""

from __future__ import annotations

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
    from pathlib import Path

    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
