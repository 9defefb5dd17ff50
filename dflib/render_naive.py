"""The naive renderer, for teaching only: each pixel is blurred with the PSF of
its *own* depth (a gather), with no occlusion model, so sharp foregrounds bleed
into blurred backgrounds and blurred foregrounds do not spill over sharp
backgrounds. Compare with the layered :func:`dflib.render.render_focal_stack`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.fft
import torch
import torch.nn.functional as F

from dflib.optics import ThinLens, psf_kernels, psf_radius
from dflib.render import FocalStack, RenderOptions, _finish, _level, _prepare

__all__ = ["render_focal_stack_naive"]


class _SpectrumCache:
    """Zero-padded FFTs of a set of images ``[L, C, H, W]`` at several scales."""

    def __init__(self, images: torch.Tensor, pads: dict[int, int]):
        self.images = images
        self.shape = images.shape[-2:]
        self.pads = pads
        self.cache: dict[int, tuple[torch.Tensor, int, tuple[int, int], tuple[int, int]]] = {}

    def get(self, s: int) -> tuple[torch.Tensor, int, tuple[int, int], tuple[int, int]]:
        if s not in self.cache:
            x = self.images
            H, W = self.shape
            if s > 1:
                ph, pw = (-H) % s, (-W) % s
                x = F.avg_pool2d(F.pad(x, (0, pw, 0, ph)), s)
            h, w = x.shape[-2:]
            p = self.pads[s]
            fh = scipy.fft.next_fast_len(h + 2 * p, real=True)
            fw = scipy.fft.next_fast_len(w + 2 * p, real=True)
            spec = torch.fft.rfft2(F.pad(x, (p, fw - w - p, p, fh - h - p)))
            self.cache[s] = (spec, p, (h, w), (fh, fw))
        return self.cache[s]


def _blur_from_cache(
    cache: _SpectrumCache, which: torch.Tensor, diam: torch.Tensor, s: int, psf: str
) -> torch.Tensor:
    """Blur images ``which`` (indices into the cache) by PSFs of ``diam`` px (full-res units).

    Returns ``[len(which), C, H, W]`` at full resolution.
    """
    spec, p, (h, w), (fh, fw) = cache.get(s)
    d = diam / s
    R = psf_radius(psf, float(d.max()))
    k = psf_kernels(psf, d.cpu(), R).to(spec.device)  # [B, 2R+1, 2R+1]
    B = k.shape[0]
    grid = torch.zeros(B, fh, fw, dtype=k.dtype, device=spec.device)
    grid[:, : 2 * R + 1, : 2 * R + 1] = k
    grid = torch.roll(grid, shifts=(-R, -R), dims=(-2, -1))
    kspec = torch.fft.rfft2(grid)
    out = torch.fft.irfft2(spec[which.to(spec.device)] * kspec[:, None], s=(fh, fw))[..., p : p + h, p : p + w]
    if s > 1:
        H, W = cache.shape
        out = F.interpolate(out, scale_factor=s, mode="bilinear", align_corners=False)[..., :H, :W]
    return out


def render_focal_stack_naive(
    rgb: Any, depth: Any, camera: ThinLens, focus_m: Any, options: RenderOptions | None = None, **changes: Any
) -> FocalStack:
    """Naive baseline: each pixel takes the whole image blurred by its *own* CoC (gather).

    Same linear light, layers, PSF and noise as :func:`render_focal_stack`, but
    no occlusion model: a sharp foreground bleeds into a blurred background
    (halo), and a blurred foreground does not spill over a sharp background.
    For comparison only. Arguments and return value as :func:`render_focal_stack`.
    """
    opt = RenderOptions.of(options, **changes)
    psf = opt.psf
    prep = _prepare(rgb, depth, camera, focus_m, opt.layers, opt.device, opt.max_layers)
    dev = prep.device
    H, W = prep.lin.shape[-2:]
    K = len(prep.q_layers)
    present = torch.bincount(prep.layer_idx.reshape(-1), minlength=K) > 0
    ks = torch.nonzero(present).reshape(-1).tolist()
    coc = prep.coc[:, ks]
    levels = np.vectorize(lambda c: _level(c, opt.downsample_min_coc_px, opt.max_downsample), otypes=[int])(coc)
    pads = {int(s): psf_radius(psf, float(coc[levels == s].max()) / s) + 1 for s in np.unique(levels)}
    cache = _SpectrumCache(prep.lin[None], pads)
    zero = torch.zeros(1, dtype=torch.long)
    N = len(prep.focus)
    out = torch.empty(N, 3, H, W, dtype=torch.float32, device=dev)
    for n in range(N):
        img = torch.zeros(3, H, W, device=dev)
        for i, k in enumerate(ks):
            m = prep.layer_idx == k
            diam = torch.tensor([coc[n, i]], dtype=torch.float32)
            b = _blur_from_cache(cache, zero, diam, int(levels[n, i]), psf)[0]
            img = torch.where(m[None], b, img)
        out[n] = img
    return _finish(prep, out, opt)
