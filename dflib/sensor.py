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

    ``Var[y] = a x + b^2`` around the clean value x. By default (``shot="gaussian"``)
    ``y = x + sqrt(a x + b^2) z``, ``z ~ N(0, 1)`` per pixel: the Gaussian approximation
    of the Poisson-Gaussian model, with its mean and variance (Foi et al., 2008). With
    the default ``a`` the Poisson count ``x / a`` is about 100 at x = 0.05 and 1000 at
    x = 0.5, where the two distributions are alike. ``shot="poisson"`` draws the
    exact ``y = a Poisson(x / a) + N(0, b^2)``.

    Why the approximation is the default: ``torch.poisson`` samples by rejection, so
    the number of random numbers a pixel consumes can depend on its value (at small
    counts: dark pixels), and a change in the last bit of one pixel of the clean
    image can re-draw the noise of the pixels after it. The clean image does change
    in the last bits from one CPU to another (MKL's FFT, which the renderer's blur
    uses, picks its code path by CPU), so with the exact draw the same seed gives
    other stacks on other machines (``benchmarks/render_reproducibility.py``). With
    the approximation every pixel consumes one normal draw: the noise field depends
    on the seed and the shape alone, and two renderings that differ in the last bits
    differ in a few pixels by one level.

    Attributes:
        poisson_scale: ``a``, the signal-dependent (shot-noise) scale; 0 turns
            it off. The default 5e-4 gives a std of ~0.016 (4/255) at x = 0.5.
        gaussian_std: ``b``, the signal-independent (read-noise) std.
        bits: quantisation bit depth (8 gives 256 levels); 0 turns it off.
        shot: ``"gaussian"`` (default) or ``"poisson"``, how the shot noise is drawn.
    """

    poisson_scale: float = 5e-4
    gaussian_std: float = 2e-3
    bits: int = 8
    shot: str = "gaussian"

    def __post_init__(self) -> None:
        if not self.poisson_scale >= 0:
            raise ValueError(f"poisson_scale must be >= 0, got {self.poisson_scale!r}")
        if not self.gaussian_std >= 0:
            raise ValueError(f"gaussian_std must be >= 0, got {self.gaussian_std!r}")
        if not (isinstance(self.bits, int) and 0 <= self.bits <= 16):
            raise ValueError(f"bits must be an int in [0, 16], got {self.bits!r}")
        if self.shot not in ("gaussian", "poisson"):
            raise ValueError(f"shot must be 'gaussian' or 'poisson', got {self.shot!r}")


def add_sensor_noise(
    images: torch.Tensor, config: NoiseConfig = NoiseConfig(), generator: torch.Generator | int = 0
) -> torch.Tensor:
    """Poisson-Gaussian noise (by default its Gaussian approximation) and quantisation (see :class:`NoiseConfig`).

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
    a, b = config.poisson_scale, config.gaussian_std
    if config.shot == "poisson":
        if a > 0:
            y = torch.poisson(y / a, generator=g) * a
        if b > 0:
            y = y + b * torch.randn(y.shape, generator=g, device=y.device, dtype=y.dtype)
    elif a > 0 or b > 0:
        y = y + (y * a + b**2).sqrt_() * torch.randn(y.shape, generator=g, device=y.device, dtype=y.dtype)
    y = y.clamp(0.0, 1.0)
    if config.bits > 0:
        levels = float(2**config.bits - 1)
        y = torch.round(y * levels) / levels
    return y
