"""Depth from a user's own focal stack with a trained checkpoint."""

from __future__ import annotations

import math
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from dflib.utils import default_device, to_numpy

#: The checkpoints shipped inside the package (``dflib/weights/``, package data). For an
#: installed dflib (pip never zips packages) this is a :class:`pathlib.Path`.
WEIGHTS_DIR = resources.files("dflib") / "weights"
#: The checkpoint :func:`predict` and ``dflib predict`` use without ``--checkpoint``.
DEFAULT_CHECKPOINT = WEIGHTS_DIR / "dualfocus_tiny.pt"


@dataclass
class Prediction:
    """Outputs for one stack: ``depth [H,W]`` (units of ``focus``), ``sigma [H,W]``,
    ``aif [3,H,W]`` in [0,1], ``prob [N,H,W]``."""

    depth: np.ndarray
    sigma: np.ndarray
    aif: np.ndarray
    prob: np.ndarray


def check_stack(images: Sequence[np.ndarray], focus: Sequence[float]) -> tuple[torch.Tensor, torch.Tensor]:
    """Validate a user's stack: ``images`` N arrays ``[H, W, 3]``, ``focus`` N distances.

    Returns ``stack [N, 3, H, W]`` and ``focus [N]`` as float32 tensors.
    """
    images = list(images)
    focus = [float(f) for f in focus]
    for i, f in enumerate(focus):
        if not (math.isfinite(f) and f > 0):
            raise ValueError(f"focus[{i}] = {f!r}: focus distances must be positive and finite (metres, or disparities)")
    if len(images) != len(focus):
        raise ValueError(f"got {len(images)} images but {len(focus)} focus distances; give one distance per image")
    if len(images) < 2:
        raise ValueError(f"a focal stack needs at least 2 images, got {len(images)}")
    shapes = {np.asarray(im).shape for im in images}
    if len(shapes) != 1:
        raise ValueError(f"all images must have the same size, got shapes {sorted(shapes)}")
    stack = torch.from_numpy(np.stack([np.moveaxis(np.asarray(im, dtype=np.float32), -1, 0) for im in images]))
    return stack, torch.tensor(focus, dtype=torch.float32)


@torch.no_grad()
def predict(
    images: Sequence[np.ndarray],
    focus: Sequence[float],
    checkpoint: str | Path | None = None,
    device: str | torch.device | None = None,
    model: torch.nn.Module | None = None,
) -> Prediction:
    """Depth, σ and the all-in-focus image of one focal stack.

    Args:
        images: N images ``[H, W, 3]`` float in [0, 1], one per focus distance.
        focus: N focus distances (metres, or disparities), positive and finite.
        checkpoint: a dflib checkpoint; default: the shipped ``dflib/weights/dualfocus_tiny.pt``
            (:data:`DEFAULT_CHECKPOINT`).
        model: an already loaded model (overrides ``checkpoint``).
    """
    from dflib.train import load_model

    stack, f = check_stack(images, focus)
    dev = default_device(device)
    if model is None:
        if checkpoint is None:
            with resources.as_file(DEFAULT_CHECKPOINT) as shipped:
                model = load_model(shipped, dev)
        else:
            model = load_model(Path(checkpoint), dev)
    dev = next(model.parameters()).device
    out = model(stack[None].to(dev), f[None].to(dev))
    return Prediction(
        depth=to_numpy(out["depth"][0, 0]),
        sigma=to_numpy(out["sigma"][0, 0]),
        aif=to_numpy(out["aif"][0]),
        prob=to_numpy(out["prob"][0]),
    )
