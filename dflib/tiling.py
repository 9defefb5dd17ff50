"""Running the network on large images with bounded memory: a working
resolution (:func:`working_shape`), overlapping tiles blended with linear ramps
(:func:`tiled_probabilities`), and guided upsampling back to full resolution
(:func:`guided_upsample`, He & Sun's fast guided filter). :func:`dflib.predict.predict`
puts them together.

>>> tile_starts(1000, 400, 100)  # three tiles of 400 px cover 1000 px, sharing >= 100 px
[0, 300, 600]
>>> working_shape((3000, 4000), 1024)
(768, 1024)
"""

from __future__ import annotations

import math

import numpy as np
import torch

__all__ = ["DEFAULT_TILE", "guided_coefficients", "guided_upsample", "tile_starts", "tiled_probabilities",
           "working_shape"]

#: Default tile size (pixels) at working resolution: the default working size
#: fits one tile (tiles see less context and can leave seams; they only bound
#: memory when a larger working size is asked for).
DEFAULT_TILE = 1024


def tile_starts(size: int, tile: int, overlap: int) -> list[int]:
    """Start offsets of the fewest tiles of ``tile`` pixels that cover ``size``
    pixels with at least ``overlap`` pixels shared between neighbours, spread
    evenly (the first flush with the start, the last with the end)."""
    if size <= tile:
        return [0]
    n = math.ceil((size - overlap) / (tile - overlap))
    return [int(round(v)) for v in np.linspace(0, size - tile, n)]


def _ramp(n: int, rise: int, fall: int) -> torch.Tensor:
    """``[n]`` blending weights: rising linearly over the first ``rise`` pixels,
    falling over the last ``fall``, 1 between; never 0. Two neighbours' ramps
    over the same shared pixels sum to 1."""
    i = torch.arange(n, dtype=torch.float32)
    w = torch.ones(n)
    if rise > 0:
        w = torch.minimum(w, (i + 1) / (rise + 1))
    if fall > 0:
        w = torch.minimum(w, (n - i) / (fall + 1))
    return w


def tiled_probabilities(model: torch.nn.Module, stack: torch.Tensor, focus: torch.Tensor, tile: int = DEFAULT_TILE,
                        overlap: int | None = None, progress: bool | None = None) -> torch.Tensor:
    """Focus probabilities ``[N, h, w]`` of a stack ``[N, 3, h, w]`` (focus ``[N]``),
    computed in overlapping tiles of ``tile`` pixels (``overlap`` default
    ``tile // 4``, evenly spread) blended with linear ramps across each shared
    band; one forward when it fits a tile. Memory is that of one tile's
    forward plus ``[N, h, w]``. Tiles see less context than the whole image
    (the network's normalisation and its integrable surfaces are per image),
    so a tiled map can show faint seams: use tiles only to bound memory."""
    from tqdm.auto import tqdm

    overlap = tile // 4 if overlap is None else int(overlap)
    if tile < 32 or not 0 <= overlap < tile // 2:
        raise ValueError(f"tile: expected tile >= 32 px and 0 <= overlap < tile / 2, got tile={tile}, overlap={overlap}")
    dev = next(model.parameters()).device
    n, _, h, w = stack.shape
    f = focus.to(dev, torch.float32)[None]
    if h <= tile and w <= tile:
        return model(stack[None].to(dev), f)["prob"][0].float().cpu()
    def spans(size: int) -> list[tuple[int, int, int, int]]:  # (start, stop, rise, fall) per tile
        st = tile_starts(size, tile, overlap)
        stop = [min(a + tile, size) for a in st]
        return [(a, b, stop[k - 1] - a if k > 0 else 0, b - st[k + 1] if k + 1 < len(st) else 0)
                for k, (a, b) in enumerate(zip(st, stop))]

    acc = torch.zeros(n, h, w)
    wsum = torch.zeros(h, w)
    boxes = [(ys, xs) for ys in spans(h) for xs in spans(w)]
    for (y0, y1, ry, fy), (x0, x1, rx, fx) in tqdm(boxes, desc="depth: tiles", unit="tile", disable=progress is False,
                                                   delay=0 if progress else 1.0, leave=False):
        p = model(stack[None, :, :, y0:y1, x0:x1].to(dev), f)["prob"][0].float().cpu()
        wt = _ramp(y1 - y0, ry, fy)[:, None] * _ramp(x1 - x0, rx, fx)[None, :]
        acc[:, y0:y1, x0:x1] += p * wt
        wsum[y0:y1, x0:x1] += wt
    return acc / wsum


def working_shape(size: tuple[int, int], working_size: int | None) -> tuple[int, int]:
    """``(h, w)``: ``size`` shrunk so that its long side is at most ``working_size``."""
    H, W = size
    if not working_size or max(H, W) <= working_size:
        return H, W
    s = working_size / max(H, W)
    return max(1, round(H * s)), max(1, round(W * s))


def _lerp_axis(x: torch.Tensor, size: int, dim: int, start: int = 0, stop: int | None = None) -> torch.Tensor:
    """Bilinear (``align_corners=False``) resampling of ``x`` along ``dim`` to
    ``size`` samples, returning only output samples ``start:stop``."""
    n = x.shape[dim]
    stop = size if stop is None else stop
    pos = ((torch.arange(start, stop, dtype=torch.float64) + 0.5) * (n / size) - 0.5).clamp(0, n - 1)
    i0 = pos.floor().long()
    i1 = (i0 + 1).clamp(max=n - 1)
    t = (pos - i0).to(x.dtype)
    shape = [1] * x.dim()
    shape[dim] = -1
    t = t.view(shape)
    return x.index_select(dim, i0) * (1 - t) + x.index_select(dim, i1) * t


def _grey(rgb: torch.Tensor) -> torch.Tensor:
    """Luminance ``[..., H, W]`` of ``[..., 3, H, W]`` (Rec. 709 weights; numpy arrays or tensors)."""
    return 0.2126 * rgb[..., 0, :, :] + 0.7152 * rgb[..., 1, :, :] + 0.0722 * rgb[..., 2, :, :]


def guided_coefficients(src: np.ndarray, guide: np.ndarray, radius: int = 2, eps: float = 1e-3
                        ) -> tuple[np.ndarray, np.ndarray]:
    """Guided-filter coefficients (He et al.): ``src ≈ A · guide + B`` locally.

    Args:
        src: ``[h, w]`` the map to upsample (depth or σ, any unit).
        guide: ``[h, w]`` grey all-in-focus image in [0, 1] at the same size.
        radius: box radius in pixels; eps: regulariser in grey level² (edges
            weaker than about ``sqrt(eps)`` are smoothed over, not copied).

    Returns:
        ``A, B [h, w]`` float32, box-averaged; upsample both and evaluate
        ``A · guide_full + B`` at full resolution (:func:`guided_upsample`).
    """
    from scipy.ndimage import uniform_filter

    k = 2 * radius + 1
    I = np.asarray(guide, dtype=np.float64)
    p = np.asarray(src, dtype=np.float64)
    mi, mp = uniform_filter(I, k, mode="reflect"), uniform_filter(p, k, mode="reflect")
    cov = uniform_filter(I * p, k, mode="reflect") - mi * mp
    var = uniform_filter(I * I, k, mode="reflect") - mi * mi
    a = cov / (var + eps)
    b = mp - a * mi
    return (uniform_filter(a, k, mode="reflect").astype(np.float32),
            uniform_filter(b, k, mode="reflect").astype(np.float32))


def guided_upsample(src: np.ndarray, guide_lo: np.ndarray, guide_hi: np.ndarray, radius: int = 2,
                    eps: float = 1e-3) -> np.ndarray:
    """``src [h, w]`` upsampled to ``guide_hi``'s ``[H, W]`` with edges from the
    guide: ``up(A) · guide_hi + up(B)`` (see :func:`guided_coefficients`;
    ``guide_lo`` is the guide at ``src``'s size)."""
    a, b = guided_coefficients(src, guide_lo, radius, eps)
    H, W = guide_hi.shape
    up = [_lerp_axis(_lerp_axis(torch.from_numpy(c), H, 0), W, 1) for c in (a, b)]
    return (up[0] * torch.as_tensor(guide_hi, dtype=torch.float32) + up[1]).numpy()
