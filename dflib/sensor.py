"""The sensor: sRGB encoding and decoding, Poisson-Gaussian noise and quantisation.

Rendering works in linear light: :func:`srgb_to_linear` before the blur,
:func:`linear_to_srgb` after it, then :func:`add_sensor_noise`.

>>> x = torch.tensor([0.0, 0.5, 1.0])
>>> torch.allclose(linear_to_srgb(srgb_to_linear(x)), x, atol=1e-6)
True
>>> y = add_sensor_noise(torch.full((2, 3, 4, 4), 0.5), NoiseConfig(), generator=0)
>>> bool(((y * 255).round() == y * 255).all())  # 8-bit levels
True
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = ["NoiseConfig", "add_sensor_noise", "linear_to_srgb", "srgb_to_linear"]


def srgb_to_linear(x: torch.Tensor) -> torch.Tensor:
    """IEC 61966-2-1 sRGB decoding; ``x`` in [0, 1], any shape."""
    return torch.where(x <= 0.04045, x / 12.92, ((x.clamp(min=0.04045) + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(x: torch.Tensor) -> torch.Tensor:
    """IEC 61966-2-1 sRGB encoding; ``x`` linear in [0, 1], any shape."""
    x = x.clamp(0.0, 1.0)
    return torch.where(x <= 0.0031308, 12.92 * x, 1.055 * x.clamp(min=0.0031308) ** (1 / 2.4) - 0.055)


@dataclass(frozen=True)
class NoiseConfig:
    """Poisson-Gaussian sensor noise on an image in [0, 1], then quantisation.

    ``y = a * Poisson(x / a) + N(0, b^2)`` so that ``Var[y] = a x + b^2``.

    Attributes:
        poisson_scale: ``a``, the signal-dependent (shot-noise) scale; 0 turns
            it off. The default 5e-4 gives a std of ~0.016 (4/255) at x = 0.5.
        gaussian_std: ``b``, the signal-independent (read-noise) std.
        bits: quantisation bit depth (8 gives 256 levels); 0 turns it off.
    """

    poisson_scale: float = 5e-4
    gaussian_std: float = 2e-3
    bits: int = 8

    def __post_init__(self) -> None:
        if not self.poisson_scale >= 0:
            raise ValueError(f"poisson_scale must be >= 0, got {self.poisson_scale!r}")
        if not self.gaussian_std >= 0:
            raise ValueError(f"gaussian_std must be >= 0, got {self.gaussian_std!r}")
        if not (isinstance(self.bits, int) and 0 <= self.bits <= 16):
            raise ValueError(f"bits must be an int in [0, 16], got {self.bits!r}")


def add_sensor_noise(
    images: torch.Tensor, config: NoiseConfig = NoiseConfig(), generator: torch.Generator | int = 0
) -> torch.Tensor:
    """Poisson-Gaussian noise and quantisation (see :class:`NoiseConfig`).

    Args:
        images: any shape, values in [0, 1].
        generator: a ``torch.Generator`` on ``images.device`` or an int seed.

    Returns:
        Same shape, clamped to [0, 1] (and quantised to ``2**bits`` levels).
    """
    if isinstance(generator, int):
        g = torch.Generator(device=images.device)
        g.manual_seed(generator)
    else:
        g = generator
    y = images.clamp(0.0, 1.0)
    if config.poisson_scale > 0:
        y = torch.poisson(y / config.poisson_scale, generator=g) * config.poisson_scale
    if config.gaussian_std > 0:
        y = y + config.gaussian_std * torch.randn(y.shape, generator=g, device=y.device, dtype=y.dtype)
    y = y.clamp(0.0, 1.0)
    if config.bits > 0:
        levels = float(2**config.bits - 1)
        y = torch.round(y * levels) / levels
    return y
