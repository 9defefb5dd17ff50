"""The trained checkpoints shipped inside the package, by name.

Every ``dflib/weights/<name>.pt`` is a name (``dualfocus_tiny``, ``dfv_tiny``,
…); the aliases ``"dualfocus"`` and ``"dfv"`` point to the default size
(:data:`DEFAULT_SIZE`), and :data:`DEFAULT_MODEL` is the one of them that
``load_pretrained()`` and ``dflib predict`` use without a name or ``--checkpoint``::

    from dflib.models import load_pretrained
    model = load_pretrained("dualfocus")          # eval mode, CUDA when present
    model = load_pretrained("dfv_tiny", device="cpu")
"""

from __future__ import annotations

from importlib import resources
from importlib.abc import Traversable
from pathlib import Path
from typing import Any

import torch

__all__ = ["ALIASES", "DEFAULT_MODEL", "DEFAULT_SIZE", "WEIGHTS_DIR", "is_pretrained_name", "load_checkpoint_or_name", "load_pretrained",
           "pretrained_names", "pretrained_path", "pretrained_train_config", "train_config_of"]

#: the folder of the shipped checkpoints (package data; a :class:`pathlib.Path` for an installed dflib)
WEIGHTS_DIR: Traversable = resources.files("dflib") / "weights"
#: the size the aliases point to (``"tiny"`` or, once trained and shipped, ``"mid"``)
DEFAULT_SIZE = "mid"
#: alias → shipped checkpoint name
ALIASES: dict[str, str] = {"dualfocus": f"dualfocus_{DEFAULT_SIZE}", "dfv": f"dfv_{DEFAULT_SIZE}"}
#: the alias used when no model is named: whichever of the pair measures better (README, issue 12)
DEFAULT_MODEL = "dfv"


def pretrained_names() -> list[str]:
    """Every name :func:`load_pretrained` takes: the shipped checkpoints and the aliases of those present."""
    files = sorted(p.name[:-3] for p in WEIGHTS_DIR.iterdir() if p.name.endswith(".pt"))
    return files + sorted(a for a, target in ALIASES.items() if target in files)


def pretrained_path(name: str) -> Traversable:
    """The file of a shipped checkpoint (an alias resolves to its target).

    Raises:
        ValueError: ``name`` is not one of :func:`pretrained_names` (the message lists them).
    """
    if not isinstance(name, str):
        raise TypeError(f"name must be a str, got {type(name).__name__}")
    names = pretrained_names()
    if name not in names:
        raise ValueError(f"name: no shipped checkpoint {name!r}; available: {', '.join(names)}")
    return WEIGHTS_DIR / f"{ALIASES.get(name, name)}.pt"


def load_pretrained(name: str = DEFAULT_MODEL, device: str | torch.device | None = None) -> torch.nn.Module:
    """A shipped model by name (see :func:`pretrained_names`), in eval mode on ``device`` (default: CUDA when present).

    Loaded with ``torch.load(weights_only=True)`` (:func:`dflib.checkpoint.load_model`).
    """
    from dflib.checkpoint import load_model

    with resources.as_file(pretrained_path(name)) as path:
        return load_model(path, device)


def is_pretrained_name(checkpoint: Any) -> bool:
    """Whether ``checkpoint`` names a shipped model rather than a file (an existing file always wins;
    a folder of that name, e.g. an output folder called ``dfv``, does not)."""
    return isinstance(checkpoint, str) and not Path(checkpoint).is_file() and checkpoint in pretrained_names()


def load_checkpoint_or_name(checkpoint: str | Path | None, device: str | torch.device | None = None) -> torch.nn.Module:
    """The model of a checkpoint file, of a shipped name (:func:`load_pretrained`), or the default (None)."""
    from dflib.checkpoint import load_model

    if checkpoint is None or is_pretrained_name(checkpoint):
        return load_pretrained(checkpoint or DEFAULT_MODEL, device)
    return load_model(Path(checkpoint), device)


def pretrained_train_config(name: str = DEFAULT_MODEL) -> dict[str, Any]:
    """The training config a shipped checkpoint records (``{}`` when it has none)."""
    from dflib.checkpoint import read_checkpoint

    with resources.as_file(pretrained_path(name)) as path:
        return dict(read_checkpoint(path).get("train_config") or {})


def train_config_of(checkpoint: str | Path | None) -> dict[str, Any]:
    """The training config of a checkpoint file, of a shipped name, or of the default (None); ``{}`` when it
    records none. The file-or-name rule is :func:`load_checkpoint_or_name`'s."""
    from dflib.checkpoint import read_checkpoint

    if checkpoint is None or is_pretrained_name(checkpoint):
        return pretrained_train_config(checkpoint or DEFAULT_MODEL)
    return dict(read_checkpoint(Path(checkpoint)).get("train_config") or {})
