"""Checkpoints: build a model, save it with its configs, read it back.

``predict``, ``evaluate`` and the notebooks import this module, not the
trainer. A checkpoint is a ``torch.save`` dict that ``torch.load(...,
weights_only=True)`` reads::

    format         "dflib-checkpoint-1"
    model          the model's state dict
    model_config   DualFocusConfig.to_dict()
    train_config   TrainConfig.to_dict() of the run that made it
    step           optimiser steps done
    metrics        the last validation metrics
    optimizer, scheduler   (training checkpoints only: what ``resume`` needs)

>>> import tempfile, pathlib
>>> from dflib.train_config import TrainConfig
>>> model = build_model("tiny", seed=0)
>>> with tempfile.TemporaryDirectory() as d:
...     save_checkpoint(pathlib.Path(d) / "m.pt", model, TrainConfig(), step=3)
...     loaded = load_model(pathlib.Path(d) / "m.pt", device="cpu")
>>> loaded.config == model.config
True
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from dflib.utils import default_device

if TYPE_CHECKING:
    from dflib.train_config import TrainConfig

__all__ = ["CHECKPOINT_FORMAT", "build_model", "export_weights", "load_model", "read_checkpoint", "save_checkpoint"]

#: the ``format`` entry of every checkpoint :func:`save_checkpoint` writes
CHECKPOINT_FORMAT = "dflib-checkpoint-1"


def build_model(preset: str, seed: int, overrides: dict | None = None) -> torch.nn.Module:
    """A freshly initialised model of a named preset (with some fields changed), its weights drawn from ``seed``.

    The global torch RNG is left as it was.

    >>> build_model("tiny", 0, {"surface_branch": False}).config.surface_branch
    False
    """
    from dflib.models import DualFocus, DualFocusConfig

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return DualFocus(DualFocusConfig.preset(preset).replace(**(overrides or {})))


def save_checkpoint(path: str | Path, model: torch.nn.Module, cfg: "TrainConfig", optimizer=None, scheduler=None,
                    step: int = 0, metrics: dict[str, float] | None = None) -> None:
    """Save a checkpoint that ``torch.load(path, weights_only=True)`` can read (atomically: never half-written).

    ``model`` may be wrapped in DistributedDataParallel; ``optimizer`` and ``scheduler`` are stored when given.
    """
    model = getattr(model, "module", model)
    state = {
        "format": CHECKPOINT_FORMAT,
        "model": model.state_dict(),
        "model_config": model.config.to_dict(),
        "train_config": cfg.to_dict(),
        "step": int(step),
        "metrics": dict(metrics or {}),
    }
    if optimizer is not None:
        state["optimizer"] = optimizer.state_dict()
    if scheduler is not None:
        state["scheduler"] = scheduler.state_dict()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)  # never leave a half-written checkpoint behind


def export_weights(checkpoint: str | Path, path: str | Path, metrics: dict[str, float] | None = None) -> Path:
    """Write a training checkpoint as a shippable one: the weights, both configs and the step, no optimiser state.

    Args:
        checkpoint: e.g. a run's ``last.pt``.
        path: where to write (e.g. ``dflib/weights/<name>.pt``).
        metrics: stored instead of the checkpoint's own (default: keep them).
    """
    from dflib.train_config import TrainConfig

    state = read_checkpoint(checkpoint)
    save_checkpoint(path, load_model(checkpoint, "cpu"), TrainConfig.from_dict(state["train_config"]),
                    step=state.get("step", 0), metrics=state.get("metrics") if metrics is None else metrics)
    return Path(path)


def read_checkpoint(checkpoint: str | Path) -> dict[str, Any]:
    """The contents of a dflib checkpoint (loaded on the CPU with ``weights_only=True``).

    Raises ``FileNotFoundError`` if there is no such file and ``ValueError``
    (saying the file is not a dflib checkpoint, and what is wrong with it) for a
    corrupt file, a foreign one (any other torch or pickle file) or one of
    another format.
    """
    path = Path(checkpoint)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {str(path)!r} does not exist")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # corrupt, truncated, or a pickle of arbitrary objects
        # torch's own message would advise weights_only=False, i.e. running the file's code: never
        # (torch.save writes zip archives; anything else is not a torch file)
        reason = ("not a torch file, or a corrupt one" if not zipfile.is_zipfile(path)
                  else "it holds objects other than tensors and plain data")
        raise ValueError(f"checkpoint {str(path)!r} is not a dflib checkpoint ({reason}; {type(exc).__name__})") from None
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        found = state.get("format") if isinstance(state, dict) else type(state).__name__
        raise ValueError(f"checkpoint {str(path)!r} is not a dflib checkpoint (format {found!r}, expected {CHECKPOINT_FORMAT!r})")
    missing = sorted({"model", "model_config"} - set(state))
    if missing:
        raise ValueError(f"checkpoint {str(path)!r} is not a dflib checkpoint (no {', '.join(missing)})")
    return state


def load_model(checkpoint: str | Path, device: str | torch.device | None = None) -> torch.nn.Module:
    """The model stored in a checkpoint, in eval mode, on ``device`` (default: CUDA when present).

    Raises ``FileNotFoundError`` or ``ValueError`` as :func:`read_checkpoint` does,
    and ``ValueError`` when the stored weights do not fit the stored model config.
    """
    from dflib.models import DualFocus, DualFocusConfig

    state = read_checkpoint(checkpoint)
    try:
        model = DualFocus(DualFocusConfig.from_dict(state["model_config"]))
        model.load_state_dict(state["model"])
    except (TypeError, ValueError, KeyError, RuntimeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(f"checkpoint {str(checkpoint)!r} is not a usable dflib checkpoint ({first})") from None
    return model.to(default_device(device)).eval()
