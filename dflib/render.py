"""Layered, occlusion-aware focal-stack synthesis from RGB-D (thin lens).

The forward model (METHOD.md section 7)::

    sRGB -> linear light
    inverse depth q = 1/z quantised into K layers (adjacent layers differ by
        <= 1 px of CoC at every focus plane unless K is given)
    for each focus plane S1:
        each layer's premultiplied RGBA is blurred by the PSF of its CoC
        (antialiased disc, or a Gaussian with the same second moment)
        layers are composited back to front with "over"
        the colour is normalised by the accumulated alpha
    linear -> sRGB, then Poisson-Gaussian sensor noise and 8-bit quantisation

"Over" compositing is what makes occlusion right: a sharp foreground is never
overwritten by a blurred background, and a blurred foreground spills over the
background as it does in a real lens. Normalisation by the accumulated alpha
repairs the brightness where a background layer was cut out by a foreground
one (and at the image border, where layers are zero-padded). The part of a
background hidden behind a foreground object is unknown, so just inside a
blurred foreground edge the foreground colour is used (a known limitation of
all single-view layered renderers).

Blurs are exact linear FFT convolutions of each non-empty layer's bounding
box (plus the PSF radius), batched over focus planes; empty layers are
skipped and in-focus layers (CoC < 1 px) are not convolved. Optionally
(``max_downsample > 1``) layers with a large CoC are blurred at a reduced
resolution (area downsampling by s so that the CoC stays >=
``downsample_min_coc_px`` px at that scale) and upsampled bilinearly: faster
on big blurs, but it softens bokeh edges (errors of up to ~20/255 near
highlights), so it is off by default.

Where the rest of the image model lives: the camera, CoC and PSFs in
:mod:`dflib.optics`, sRGB and noise in :mod:`dflib.sensor`, and the naive
gather renderer (the common shortcut, for comparison) in
:mod:`dflib.render_naive`; their names are importable from here too.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import scipy.fft
import scipy.ndimage
import torch
import torch.nn.functional as F

from dflib.checks import as_numpy, as_torch, check_shape
from dflib.optics import ThinLens, disc_psf, gaussian_psf, psf_kernels, psf_radius  # noqa: F401
from dflib.render_options import PSF, FocalStack, RenderOptions  # noqa: F401  (importable from here as before)
from dflib.sensor import NoiseConfig, add_sensor_noise, linear_to_srgb, srgb_to_linear  # noqa: F401
from dflib.utils import default_device

__all__ = [
    "FocalStack",
    "NoiseConfig",
    "RenderOptions",
    "render_focal_stack",
    "render_focal_stack_naive",
    "srgb_to_linear",
    "linear_to_srgb",
    "disc_psf",
    "gaussian_psf",
    "fill_depth_holes",
    "add_sensor_noise",
    "auto_num_layers",
]

# --- input handling -----------------------------------------------------------

def _rgb_to_chw(rgb: Any) -> torch.Tensor:
    """``[H,W,3]``/``[3,H,W]`` uint8 or float (numpy/torch) -> float32 ``[3,H,W]`` in [0, 1]."""
    t = as_torch(rgb, "rgb").detach()
    check_shape(t, "H W 3 | 3 H W", "rgb")
    if t.shape[-1] == 3:
        t = t.permute(2, 0, 1)
    if t.dtype == torch.uint8:
        t = t.to(torch.float32) / 255.0
    elif t.is_floating_point():
        t = t.to(torch.float32)
        lo, hi = float(t.min()), float(t.max())
        if not (math.isfinite(lo) and math.isfinite(hi)) or lo < -1e-6 or hi > 1 + 1e-6:
            raise ValueError(f"float rgb must lie in [0, 1], got values in [{lo}, {hi}]")
        t = t.clamp(0.0, 1.0)
    else:
        raise TypeError(f"rgb must be uint8 or floating point, got dtype {t.dtype}")
    return t.contiguous()


def fill_depth_holes(depth: Any) -> tuple[np.ndarray, np.ndarray]:
    """Fill invalid depth (0, NaN, inf) from the nearest valid pixel.

    Args:
        depth: ``[H, W]`` metres (numpy or torch); negative values are an error.

    Returns:
        ``(filled [H, W] float64, mask [H, W] bool)`` where ``mask`` marks the
        pixels that were valid in the input.
    """
    d = as_numpy(depth if isinstance(depth, torch.Tensor) else np.asarray(depth), "depth").astype(np.float64)
    check_shape(d, "H W | 1 H W", "depth")
    d = d.reshape(d.shape[-2:])
    valid = np.isfinite(d) & (d > 0)
    neg = np.isfinite(d) & (d < 0)
    if neg.any():
        raise ValueError(f"depth must be >= 0 metres (0/NaN/inf mark holes), got minimum {d[neg].min()!r}")
    if not valid.any():
        raise ValueError("depth has no valid pixel (all 0, NaN or inf)")
    if valid.all():
        return d, valid
    idx = scipy.ndimage.distance_transform_edt(~valid, return_distances=False, return_indices=True)
    return d[idx[0], idx[1]], valid


def auto_num_layers(
    q_min: float, q_max: float, coc_per_diopter_px: Sequence[float] | np.ndarray, max_step_px: float = 1.0
) -> int:
    """Smallest K such that layers evenly spaced in inverse depth over
    ``[q_min, q_max]`` (1/m) differ by at most ``max_step_px`` of CoC at
    every focus plane (``coc_per_diopter_px`` is each plane's CoC slope)."""
    kmax = float(np.max(np.asarray(coc_per_diopter_px)))
    return max(1, int(math.ceil((q_max - q_min) * kmax / max_step_px - 1e-9)) + 1)


# --- the renderer -------------------------------------------------------------

@dataclass
class _Prepared:
    aif: torch.Tensor  # [3,H,W] sRGB
    lin: torch.Tensor  # [3,H,W] linear
    depth: np.ndarray  # [H,W] filled
    mask: np.ndarray
    focus: np.ndarray  # [N]
    q_layers: np.ndarray  # [K] ascending (far to near)
    layer_idx: torch.Tensor  # [H,W] long
    coc: np.ndarray  # [N,K] px
    device: torch.device


def _prepare(
    rgb: Any, depth: Any, camera: ThinLens, focus_m: Any, layers: int | None, device: Any, max_layers: int
) -> _Prepared:
    if not isinstance(camera, ThinLens):
        raise TypeError(f"camera must be a dflib.optics.ThinLens, got {type(camera).__name__}")
    dev = default_device(device)
    aif = _rgb_to_chw(rgb)
    filled, mask = fill_depth_holes(depth)
    check_shape(filled, "H W", "depth (the size of rgb)", H=aif.shape[1], W=aif.shape[2])
    focus = np.atleast_1d(np.asarray(focus_m.detach().cpu() if isinstance(focus_m, torch.Tensor) else focus_m,
                                     dtype=np.float64))
    if focus.ndim != 1 or focus.size == 0:
        raise ValueError(f"focus_m must be a non-empty 1-D sequence of distances, got shape {focus.shape}")
    slopes = np.asarray(camera.coc_per_diopter_px(focus))  # validates focus > f
    q = 1.0 / filled
    q_min, q_max = float(q.min()), float(q.max())
    if layers is None:
        K = auto_num_layers(q_min, q_max, slopes)
        if K > max_layers:
            warnings.warn(f"auto layer count {K} exceeds max_layers={max_layers}; using {max_layers}", stacklevel=3)
            K = max_layers
    else:
        K = int(layers)
    if K == 1 or q_max - q_min <= 0:
        q_layers = np.array([(q_min + q_max) / 2]) if K == 1 else np.full(1, q_min)
        idx = np.zeros(q.shape, dtype=np.int64)
    else:
        q_layers = np.linspace(q_min, q_max, K)
        step = (q_max - q_min) / (K - 1)
        idx = np.clip(np.rint((q - q_min) / step), 0, K - 1).astype(np.int64)
    coc = slopes[:, None] * np.abs(q_layers[None, :] - 1.0 / focus[:, None])
    aif = aif.to(dev)
    return _Prepared(
        aif=aif, lin=srgb_to_linear(aif), depth=filled, mask=mask, focus=focus, q_layers=q_layers,
        layer_idx=torch.from_numpy(idx).to(dev), coc=coc, device=dev,
    )


def _level(c: float, min_coc: float, max_down: int) -> int:
    """Downsampling factor (power of two) for a CoC of ``c`` px."""
    if max_down <= 1 or c < 2 * min_coc:
        return 1
    s = 2 ** int(math.floor(math.log2(c / min_coc)))
    return int(min(s, 2 ** int(math.floor(math.log2(max_down)))))


def _finish(prep: _Prepared, lin_images: torch.Tensor, options: RenderOptions) -> FocalStack:
    """The :class:`FocalStack` of linear images ``[N, 3, H, W]``: sRGB encoded, with the sensor's noise."""
    images = linear_to_srgb(lin_images)
    if options.noise_config is not None:
        images = add_sensor_noise(images, options.noise_config, options.seed)
    images = torch.nan_to_num(images, nan=0.0).clamp(0.0, 1.0).to(torch.float32)
    dev = prep.device
    return FocalStack(
        images=images,
        focus_m=torch.as_tensor(prep.focus, dtype=torch.float32, device=dev),
        depth=torch.as_tensor(prep.depth, dtype=torch.float32, device=dev),
        aif=prep.aif,
        mask=torch.as_tensor(prep.mask, device=dev),
        n_layers=len(prep.q_layers),
        layer_depth_m=torch.as_tensor(1.0 / prep.q_layers, dtype=torch.float32, device=dev),
    )


def render_focal_stack(
    rgb: Any, depth: Any, camera: ThinLens, focus_m: Any, options: RenderOptions | None = None, **changes: Any
) -> FocalStack:
    """Render a focal stack from an RGB-D image with a thin-lens camera.

    Args:
        rgb: ``[H, W, 3]`` or ``[3, H, W]``, uint8 or float in [0, 1], numpy or torch (sRGB).
        depth: ``[H, W]`` metres; 0, NaN and inf are holes (filled, reported in ``.mask``).
        camera: the :class:`~dflib.optics.ThinLens`.
        focus_m: ``[N]`` focus distances in metres (each > focal length).
        options: a :class:`RenderOptions`; ``changes`` (its field names, e.g. ``psf="gaussian"``,
            ``noise=False``, ``seed=3``, ``device="cpu"``) change some of its fields.

    Returns:
        :class:`FocalStack` with ``images [N,3,H,W]`` on ``device``.
    """
    opt = RenderOptions.of(options, **changes)
    psf = opt.psf
    prep = _prepare(rgb, depth, camera, focus_m, opt.layers, opt.device, opt.max_layers)
    dev = prep.device
    H, W = prep.lin.shape[-2:]
    N, K = prep.coc.shape
    present = torch.bincount(prep.layer_idx.reshape(-1), minlength=K) > 0
    col = torch.zeros(N, 3, H, W, dtype=torch.float32, device=dev)
    acc = torch.zeros(N, 1, H, W, dtype=torch.float32, device=dev)
    all_planes = np.arange(N)
    # back to front: ascending inverse depth = far to near; empty layers skipped
    for k in torch.nonzero(present).reshape(-1).tolist():
        m = prep.layer_idx == k
        rows = torch.nonzero(m.any(dim=1)).reshape(-1)
        cols = torch.nonzero(m.any(dim=0)).reshape(-1)
        y0, y1, x0, x1 = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
        a = m[y0:y1, x0:x1].to(torch.float32)[None]
        rgba = torch.cat([prep.lin[:, y0:y1, x0:x1] * a, a], dim=0)  # [4, h, w] premultiplied
        c = prep.coc[:, k]
        lv = np.array([_level(ci, opt.downsample_min_coc_px, opt.max_downsample) for ci in c])
        sharp = (c < 1.0) if psf == "disc" else (c / 4 < 0.2)
        groups: list[tuple[np.ndarray, int]] = []
        if sharp.any():
            groups.append((all_planes[sharp], 0))
        for s in np.unique(lv[~sharp]):
            groups.append((all_planes[(lv == s) & ~sharp], int(s)))
        for planes, s in groups:
            if s == 0:  # in focus: the layer itself
                blurred, (Y0, X0) = rgba[None].expand(len(planes), -1, -1, -1), (y0, x0)
            else:
                blurred, (Y0, X0) = _blur_crop(rgba, torch.as_tensor(c[planes], dtype=torch.float32), s, psf,
                                               opt.chunk_elems)
                Y0, X0 = Y0 + y0, X0 + x0
            # clip the blurred patch to the image
            by0, bx0 = max(0, -Y0), max(0, -X0)
            Y0c, X0c = Y0 + by0, X0 + bx0
            Y1c, X1c = min(H, Y0 + blurred.shape[-2]), min(W, X0 + blurred.shape[-1])  # never empty: holds the layer
            b = blurred[..., by0 : by0 + (Y1c - Y0c), bx0 : bx0 + (X1c - X0c)]
            al = b[:, 3:4].clamp(0.0, 1.0)
            one_minus = 1.0 - al
            for i, n in enumerate(planes.tolist()):  # in place, on views: "over"
                col[n, :, Y0c:Y1c, X0c:X1c].mul_(one_minus[i]).add_(b[i, :3])
                acc[n, :, Y0c:Y1c, X0c:X1c].mul_(one_minus[i]).add_(al[i])
    out = col.div_(acc.clamp_(min=1e-6))
    return _finish(prep, out, opt)


def _blur_crop(
    rgba: torch.Tensor, diam: torch.Tensor, s: int, psf: str, chunk_elems: int
) -> tuple[torch.Tensor, tuple[int, int]]:
    """Full linear convolution of one layer patch with P PSFs, at scale 1/s.

    Args:
        rgba: ``[C, h, w]`` patch (full resolution).
        diam: ``[P]`` PSF diameters in full-resolution pixels.
        s: downsampling factor (1, 2, 4, ...).

    Returns:
        ``([P, C, h', w'], (dy, dx))``: the blurred patches at full resolution
        and the offset of their top-left pixel relative to the input patch.
    """
    C, h, w = rgba.shape
    x = rgba[None]
    if s > 1:
        x = F.avg_pool2d(F.pad(x, (0, (-w) % s, 0, (-h) % s)), s)
    hl, wl = x.shape[-2:]
    R = psf_radius(psf, float(diam.max()) / s)
    p = R + 1
    fh = scipy.fft.next_fast_len(hl + 2 * p + R, real=True)
    fw = scipy.fft.next_fast_len(wl + 2 * p + R, real=True)
    spec = torch.fft.rfft2(F.pad(x, (p, fw - wl - p, p, fh - hl - p)))  # [1, C, fh, fw//2+1]
    k = psf_kernels(psf, diam / s, R).to(rgba.device)  # [P, 2R+1, 2R+1]
    # kernel at the top-left corner (not centred): output index i holds the
    # blur centred on padded-input index i - R, i.e. on patch coordinate i - R - p
    kspec = torch.fft.rfft2(k, s=(fh, fw))  # zero-pads
    step = max(1, chunk_elems // (C * fh * fw))
    outs = []
    for j in range(0, len(k), step):
        o = torch.fft.irfft2(spec * kspec[j : j + step, None], s=(fh, fw))[..., R : R + hl + 2 * p, R : R + wl + 2 * p]
        if s > 1:
            o = F.interpolate(o, scale_factor=s, mode="bilinear", align_corners=False)
        outs.append(o)
    return (outs[0] if len(outs) == 1 else torch.cat(outs, dim=0)), (-p * s, -p * s)


def __getattr__(name: str) -> Any:
    """``render_focal_stack_naive`` lives in :mod:`dflib.render_naive` (imported on first use)."""
    if name == "render_focal_stack_naive":
        from dflib.render_naive import render_focal_stack_naive

        return render_focal_stack_naive
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
