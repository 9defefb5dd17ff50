"""What the renderers take and give: :class:`RenderOptions` (how to render, shared by
:func:`~dflib.render.render_focal_stack` and :func:`~dflib.render_naive.render_focal_stack_naive`)
and :class:`FocalStack` (the rendered stack). Both are importable from :mod:`dflib.render` as before.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch

from dflib.sensor import NoiseConfig

__all__ = ["PSF", "FocalStack", "RenderOptions"]

PSF = Literal["disc", "gaussian"]


# --- options ------------------------------------------------------------------

@dataclass(frozen=True)
class RenderOptions:
    """How :func:`render_focal_stack` (and :func:`~dflib.render_naive.render_focal_stack_naive`) render.

    Attributes:
        layers: number K of inverse-depth layers; ``None`` picks the smallest K
            with <= 1 px CoC between neighbouring layers at every focus plane.
        psf: ``"disc"`` (antialiased, physical) or ``"gaussian"`` (same second moment).
        noise: ``True`` (default :class:`~dflib.sensor.NoiseConfig`), ``False``, or a ``NoiseConfig``.
        seed: int or ``torch.Generator`` (on ``device``) for the noise.
        device: torch device; default CUDA when present, else CPU.
        max_layers: cap on the automatic K (a warning is issued when it applies).
        downsample_min_coc_px: layers are blurred at scale 1/s only while their
            CoC is >= 2x this at full resolution (>= this at the reduced scale).
        max_downsample: largest s (power of two); 1 (default) blurs everything at full resolution.
        chunk_elems: bound on the elements of one batched FFT (memory; layered renderer only).

    >>> RenderOptions.of(None, psf="gaussian").psf
    'gaussian'
    >>> RenderOptions(psf="box")
    Traceback (most recent call last):
    ...
    ValueError: psf must be 'disc' or 'gaussian', got 'box'
    """

    layers: int | None = None
    psf: PSF = "disc"
    noise: bool | NoiseConfig = True
    seed: int | torch.Generator = 0
    device: str | torch.device | None = None
    max_layers: int = 256
    downsample_min_coc_px: float = 8.0
    max_downsample: int = 1
    chunk_elems: int = 2**25

    def __post_init__(self) -> None:
        if self.psf not in ("disc", "gaussian"):
            raise ValueError(f"psf must be 'disc' or 'gaussian', got {self.psf!r}")
        if not isinstance(self.noise, (bool, NoiseConfig)):
            raise TypeError(f"noise must be a bool or NoiseConfig, got {type(self.noise).__name__}")
        if self.layers is not None and (isinstance(self.layers, bool) or not isinstance(self.layers, (int, np.integer))
                                        or self.layers < 1):
            raise ValueError(f"layers must be a positive int or None, got {self.layers!r}")

    @classmethod
    def of(cls, options: "RenderOptions | None" = None, **changes: Any) -> "RenderOptions":
        """``options`` (default: the defaults) with some fields changed; an unknown field is a ``TypeError``."""
        if options is not None and not isinstance(options, cls):
            raise TypeError(f"options must be a RenderOptions or None, got {type(options).__name__}")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(changes) - names)
        if unknown:
            raise TypeError(f"unknown render option(s) {unknown}; the options are {sorted(names)}")
        return dataclasses.replace(options or cls(), **changes)

    @property
    def noise_config(self) -> NoiseConfig | None:
        """The noise to add, or None."""
        if isinstance(self.noise, NoiseConfig):
            return self.noise
        return NoiseConfig() if self.noise else None


# --- output -------------------------------------------------------------------

@dataclass
class FocalStack:
    """A rendered focal stack.

    Attributes:
        images: ``[N, 3, H, W]`` float32 sRGB in [0, 1].
        focus_m: ``[N]`` float32 focus distances in metres.
        depth: ``[H, W]`` float32 metres, holes filled from valid neighbours.
        aif: ``[3, H, W]`` float32 sRGB in [0, 1], the all-in-focus input (no noise).
        mask: ``[H, W]`` bool, True where the input depth was valid.
        n_layers: number of depth layers K used.
        layer_depth_m: ``[K]`` float32 depth of each layer (far to near).
    """

    images: torch.Tensor
    focus_m: torch.Tensor
    depth: torch.Tensor
    aif: torch.Tensor
    mask: torch.Tensor
    n_layers: int = 0
    layer_depth_m: torch.Tensor = field(default_factory=lambda: torch.zeros(0))

    def to(self, device: str | torch.device) -> "FocalStack":
        """A copy with every tensor on ``device``."""
        return FocalStack(
            self.images.to(device), self.focus_m.to(device), self.depth.to(device), self.aif.to(device),
            self.mask.to(device), self.n_layers, self.layer_depth_m.to(device),
        )
