"""Depth from a user's own focal stack with a trained checkpoint, at any resolution.

Memory stays bounded whatever the frame size, by a *working resolution* and
*tiles*:

1. The network runs on the stack shrunk (area averaging) so that its long
   side is at most ``working_size`` pixels (default 1024): in one piece when
   that fits a ``tile`` (default 1024 pixels), else in overlapping tiles
   whose focus probabilities are blended with linear ramps (a larger working
   size then costs time, not memory).
2. Back at full resolution, the probabilities are upsampled bilinearly and
   the all-in-focus image is formed from them and the full-resolution frames;
   depth and σ are upsampled *guided by that all-in-focus image* (a fast
   guided filter, He & Sun 2015: local linear models in the grey level fitted
   at working resolution), so depth edges follow the image's edges. All
   full-resolution work runs in bands of rows.

Depth is read out in the focus unit (``Σ p_n f_n``): metres when every focus
distance is finite (what the shipped weights were trained on), dioptres when
one is ``inf`` or the focus is given in dioptres (then converted back to
metres, ``inf`` where the far plane wins).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from dflib.checks import as_torch
from dflib.models.pretrained import ALIASES, DEFAULT_MODEL, WEIGHTS_DIR
from dflib.tiling import (  # noqa: F401  (importable from here as before)
    DEFAULT_TILE,
    _grey,
    _lerp_axis,
    guided_coefficients,
    guided_upsample,
    tile_starts,
    tiled_probabilities,
    working_shape,
)
from dflib.utils import default_device

#: The checkpoint :func:`predict` and ``dflib predict`` use without ``--checkpoint``: the shipped default
#: (:data:`dflib.models.pretrained.DEFAULT_MODEL`; ``WEIGHTS_DIR`` is the folder of every shipped checkpoint).
DEFAULT_CHECKPOINT = WEIGHTS_DIR / f"{ALIASES[DEFAULT_MODEL]}.pt"


#: Default long side (pixels) of the stack the network sees.
DEFAULT_WORKING_SIZE = 1024
#: share of the frame with σ above one focus plane beyond which ``dflib predict`` suggests ``--max-sigma 1``
UNCERTAIN_NOTE_SHARE = 0.25


@dataclass
class Prediction:
    """Outputs for one stack (frames near to far).

    Attributes:
        depth: ``[H, W]`` float32 in ``unit`` (metres, ``inf`` possible, for
            focus given in metres or dioptres; else the focus unit).
        sigma: ``[H, W]`` float32 spread of the focus distribution in ``sigma_unit``.
        aif: ``[3, H, W]`` float32 all-in-focus image in [0, 1].
        prob: ``[N, h, w]`` float32 focus probabilities at the working resolution.
        unit: unit of ``depth``; sigma_unit: unit of ``sigma`` (the readout's).
        focus: ``[N]`` the focus positions near to far, in the given unit.
        order: ``[N]`` indices of the input frames in that order.
    """

    depth: np.ndarray
    sigma: np.ndarray
    aif: np.ndarray
    prob: np.ndarray
    unit: str = "m"
    sigma_unit: str = "m"
    focus: np.ndarray = field(default_factory=lambda: np.zeros(0))
    order: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    @property
    def working_size(self) -> tuple[int, int]:
        """``(h, w)`` the network ran at."""
        return int(self.prob.shape[-2]), int(self.prob.shape[-1])

    def plane_sigma(self) -> np.ndarray:
        """``[H, W]`` float32 σ counted in focus planes (:func:`dflib.uncertainty.plane_sigma`), the same for
        every focus unit, bilinear from the working resolution. ``depth[plane_sigma() > 1] = nan`` keeps the
        pixels whose focus distribution is narrower than a plane (``dflib predict --max-sigma``)."""
        from dflib.uncertainty import plane_sigma

        ps = plane_sigma(torch.from_numpy(self.prob))[None, None]
        if ps.shape[-2:] != self.depth.shape:
            ps = F.interpolate(ps, size=self.depth.shape, mode="bilinear", align_corners=False)
        return ps[0, 0].numpy()


def readout_focus(focus: np.ndarray, focus_unit: str) -> tuple[np.ndarray, str]:
    """The values ``[N]`` the readout ``Σ p_n f_n`` uses and their unit: the
    focus itself, except metres with an ``inf`` among them, read in dioptres."""
    from dflib.io import focus_to_diopters

    f = np.asarray(focus, dtype=np.float64)
    if focus_unit == "diopter" or (focus_unit == "m" and np.isinf(f).any()):
        return focus_to_diopters(f, focus_unit), "diopter"
    return f, focus_unit


@torch.no_grad()
def predict(
    images: Any,
    focus: Sequence[float | str],
    checkpoint: str | Path | None = None,
    device: str | torch.device | None = None,
    model: torch.nn.Module | None = None,
    focus_unit: str = "m",
    working_size: int | None = DEFAULT_WORKING_SIZE,
    tile: int = DEFAULT_TILE,
    overlap: int | None = None,
    band_pixels: int = 2**18,
    progress: bool | None = None,
) -> Prediction:
    """Depth, σ and the all-in-focus image of one focal stack, at any resolution.

    Args:
        images: N images ``[H, W, 3]`` float in [0, 1] (or one ``[N, 3, H, W]``
            array; not copied), one per focus position, in the order of ``focus``.
        focus: N focus positions in ``focus_unit``, strictly monotonic (either
            way; the frames are put near to far). Metres may include ``inf``.
        checkpoint: a dflib checkpoint file, or the name of a shipped one (:func:`dflib.models.load_pretrained`);
            default: the shipped default model (:data:`DEFAULT_CHECKPOINT`).
        model: an already loaded model (overrides ``checkpoint``).
        focus_unit: ``"m"``, ``"diopter"``, ``"disparity"`` or ``"index"``
            (see :data:`dflib.io.FOCUS_UNITS`).
        working_size: long side (pixels) of the stack the network sees; larger
            frames are shrunk and the outputs upsampled guided by the
            all-in-focus image (module docstring). ``None``/0: full resolution.
        tile, overlap: the network runs in tiles of ``tile`` pixels overlapping
            by ``overlap`` (default ``tile // 4``) at working resolution.
        band_pixels: pixels per band of the full-resolution upsampling (about
            120 bytes each of temporary memory).
        progress: progress bars (None: shown when a step takes over a second).

    Returns:
        :class:`Prediction` at the frames' full resolution (``prob`` at working resolution).
    """
    from dflib.align import as_stack_array
    from dflib.io import check_focus_values, near_to_far
    from dflib.models.dualfocus import focus_readout
    from dflib.models.pretrained import load_checkpoint_or_name

    stack = as_stack_array(images)
    n, _, H, W = stack.shape
    if len(focus) != n:
        raise ValueError(f"got {n} images but {len(focus)} focus distances; give one distance per image")
    if n < 2:
        raise ValueError(f"a focal stack needs at least 2 images, got {n}")
    if working_size is not None and (isinstance(working_size, bool) or int(working_size) < 0):
        raise ValueError(f"working_size: expected a positive number of pixels (or 0 for full size), got {working_size!r}")
    f = check_focus_values(focus, focus_unit)
    order = near_to_far(f, focus_unit)  # the identity, or reversed when given far to near
    f = f[order]
    idx = torch.from_numpy(order)
    q, readout_unit = readout_focus(f, focus_unit)

    dev = default_device(device)
    if model is None:
        model = load_checkpoint_or_name(checkpoint, dev)

    h, w = working_shape((H, W), working_size)
    full = as_torch(stack, "images")  # a view: frames are put in order band by band, never copied whole
    if (h, w) == (H, W):
        small = full[idx]
    else:
        small = torch.cat([F.interpolate(full[i:i + 1], size=(h, w), mode="area") for i in order])
    q_t = torch.as_tensor(q, dtype=torch.float32)
    prob = tiled_probabilities(model, small, q_t, tile, overlap, progress)  # [N, h, w]
    depth_lo, sigma_lo, aif_lo = focus_readout(prob[None], q_t[None], small[None])
    lo, hi = float(q.min()), float(q.max())
    if (h, w) == (H, W):
        depth, sigma, aif = depth_lo[0, 0].numpy(), sigma_lo[0, 0].numpy(), aif_lo[0].numpy()
    else:
        guide_lo = _grey(aif_lo[0]).numpy()
        coef = [guided_coefficients(m[0, 0].numpy(), guide_lo) for m in (depth_lo, sigma_lo)]
        coef = [[_lerp_axis(torch.from_numpy(c), W, 1) for c in ab] for ab in coef]  # [h, W] each
        prob_w = _lerp_axis(prob, W, 2)  # [N, h, W]
        depth, sigma = np.empty((H, W), np.float32), np.empty((H, W), np.float32)
        aif = np.empty((3, H, W), np.float32)
        band_rows = max(1, band_pixels // W)
        for r0 in range(0, H, band_rows):
            r1 = min(r0 + band_rows, H)
            p = _lerp_axis(prob_w, H, 1, r0, r1)  # [N, rows, W]
            band = torch.zeros(3, r1 - r0, W)
            for k, i in enumerate(order):  # Σ_n p_n I_n, one frame at a time
                band.addcmul_(p[k][None], full[i, :, r0:r1])
            aif[:, r0:r1] = band.numpy()
            g = _grey(band)
            for out, (a, b) in zip((depth, sigma), coef):
                out[r0:r1] = (_lerp_axis(a, H, 0, r0, r1) * g + _lerp_axis(b, H, 0, r0, r1)).numpy()
        np.clip(depth, lo, hi, out=depth)
        np.maximum(sigma, 0, out=sigma)
    unit = readout_unit
    if readout_unit == "diopter":
        from dflib.io import diopters_to_metres

        depth = diopters_to_metres(np.clip(depth, lo, hi)).astype(np.float32)
        unit = "m"
    return Prediction(
        depth=np.asarray(depth, np.float32), sigma=np.asarray(sigma, np.float32), aif=np.asarray(aif, np.float32),
        prob=prob.numpy(), unit=unit, sigma_unit=readout_unit, focus=f, order=order,
    )


def _json_number(v: float) -> float | str:
    return v if np.isfinite(v) else str(v)


def training_range_note(focus: np.ndarray, focus_unit: str, n_frames: int,
                        train_config: dict[str, Any] | None = None) -> str | None:
    """A warning when a stack is far from what a model's training data covered, or None.

    Args:
        focus: ``[N]`` focus positions in ``focus_unit``.
        n_frames: frames in the stack.
        train_config: the model's training config (a checkpoint's
            ``"train_config"``, e.g. :func:`dflib.models.pretrained.pretrained_train_config`).
            None or ``data: synthetic``: the embedded data (FoD500's camera, five
            planes 0.1–1.5 m), where the focus range and the frame count both
            matter. ``data: diverse``: many cameras and focus sets, so only a
            frame count outside the trained range is worth a note.
    """
    from dflib.optics import FOD500_FOCUS_M

    if (train_config or {}).get("data", "synthetic") == "diverse":
        from dflib.data.diverse import DiverseConfig

        lo_n, hi_n = DiverseConfig(**(train_config.get("data_options") or {})).n_planes
        if lo_n <= n_frames <= hi_n:
            return None
        return (f"note: the model was trained on synthetic stacks of {lo_n} to {hi_n} frames (many cameras, scenes "
                f"and focus sets); this stack has {n_frames} frames, so expect coarser depth "
                "(README: what the shipped weights were trained for)")
    lo, hi = min(FOD500_FOCUS_M), max(FOD500_FOCUS_M)
    issues = []
    if focus_unit in ("m", "diopter"):
        from dflib.io import focus_to_diopters

        q = focus_to_diopters(focus, focus_unit)
        near, far = 1 / q.max(), (np.inf if q.min() == 0 else 1 / q.min())
        if near < 0.8 * lo or far > 1.25 * hi:
            issues.append(f"this stack is focused at {near:.3g} to {far:.3g} m")
    else:
        issues.append(f"this stack's focus is in {focus_unit} units")
    if n_frames != len(FOD500_FOCUS_M):
        issues.append(f"it has {n_frames} frames")
    if not issues:
        return None
    return (f"note: the shipped weights were trained on synthetic stacks of {len(FOD500_FOCUS_M)} frames focused at "
            f"{lo:g} to {hi:g} m (FoD500's camera, f = 2.9 mm, f/1); {' and '.join(issues)}, so expect coarser "
            "depth (README: what the shipped weights were trained for)")


def breathing_order_note(scales: np.ndarray, focus_unit: str, min_spread: float = 0.005) -> str | None:
    """A warning when frames given by their order (``focus_unit="index"``) magnify toward far focus, or None.

    A lens that focuses by moving away from the sensor (phones, most cameras) images the scene larger the
    nearer it focuses (:func:`dflib.warp.breathing_scales`). Frames whose magnification grows steadily from
    the first (nearest) to the last are therefore likely given far to near, which inverts the depth map,
    unless they come from a focusing rail, which moves the camera: then the frames focused farther are
    taken closer and larger. Metres, dioptres and disparities carry their own order, so only ``index`` is
    checked.

    Args:
        scales: ``[N]`` magnification of each frame, near to far as read
            (:attr:`dflib.registration.BreathingEstimate.scales`).
        focus_unit: the stack's focus unit.
        min_spread: smallest relative change of magnification over the stack worth a note.
    """
    s = np.asarray(scales, dtype=np.float64)
    if focus_unit != "index" or len(s) < 3 or s.max() / s.min() - 1 < min_spread:
        return None
    ranks = np.argsort(np.argsort(s))
    rho = np.corrcoef(np.arange(len(s)), ranks)[0, 1]  # Spearman: +1 for magnification growing toward far
    if rho < 0.8:
        return None
    n = len(s)
    reverse = " ".join(map(str, range(n, 0, -1))) if n <= 6 else f"{n} {n - 1} ... 1"
    return (f"note: the frames magnify from the first to the last ({s[0]:.4f} to {s[-1]:.4f} of the reference). A "
            "lens that focuses by moving (phones, most cameras) magnifies toward near focus, so these frames may be "
            f"ordered far to near, and the depth map inverted: then give the focus the other way (--focus {reverse}). "
            "Frames from a focusing rail, which moves the camera, magnify toward far focus: for them this order is "
            "right.")


def _size_for_blur(long_side: int, blur_px: float, target_px: float) -> int:
    """The working size (a multiple of 32, at least 128) at which ``blur_px`` measured at ``long_side`` becomes
    about ``target_px``."""
    return max(128, 32 * round(long_side * target_px / blur_px / 32))


def auto_working_size(images: np.ndarray, train_config: dict[str, Any] | None) -> tuple[int, str]:
    """``--working-size auto``: the default working size, or a smaller one when the stack's blur needs it.

    The blur is measured at the default size (:func:`blur_range_note`); when it is beyond what the model
    learned (``DiverseConfig.coc_px``), the size shrinks so that it becomes the top of that range. Without a
    blur range (a model trained on the embedded data) or an estimate (a texture-less scene) the default stays.

    Returns:
        ``(working size, one line saying why)``.
    """
    _, info = blur_range_note(images, DEFAULT_WORKING_SIZE, train_config)
    if info is None:
        return DEFAULT_WORKING_SIZE, (f"working size: auto: {DEFAULT_WORKING_SIZE} px (no blur measured: the model "
                                      "records no blur range, or the frames have too little texture)")
    blur, (lo, hi), probe = info["largest_px_at_working_size"], info["learned_px"], max(info["working_size"])
    size = probe if blur <= hi else _size_for_blur(probe, blur, hi)
    return size, (f"working size: auto: {size} px (the frames' blur is about {blur:.0f} px at {probe} px; the "
                  f"weights learned {lo:g}-{hi:g} px)")


def blur_range_note(images: np.ndarray, working_size: int | None, train_config: dict[str, Any] | None
                    ) -> tuple[str | None, dict[str, Any] | None]:
    """A warning when a stack shows far more blur at the working size than a model learned, and the estimate.

    Args:
        images: ``[N, 3, H, W]`` the (aligned) stack at full resolution.
        working_size: as for :func:`predict`.
        train_config: the model's training config; only ``data: diverse`` records a blur range
            (``DiverseConfig.coc_px``, the stack's largest circle of confusion, 3-25 px for the shipped
            mid models). Others give ``(None, None)``.

    Returns:
        ``(note or None, estimate)``: the note suggests a working size that brings the blur to the top of
        the learned range; ``estimate`` (JSON-ready, or None when the scene gave too few textured patches)
        holds the blur measured by :func:`dflib.blur_estimate.largest_blur_px` on the stack shrunk to the
        working size (to half of it, then doubled, above 512 px), in pixels at the working size.
    """
    if (train_config or {}).get("data") != "diverse":
        return None, None
    from dflib.blur_estimate import largest_blur_px
    from dflib.data.diverse import DiverseConfig

    lo, hi = DiverseConfig(**(train_config.get("data_options") or {})).coc_px
    H, W = images.shape[-2:]
    h, w = working_shape((H, W), working_size)
    k = 2 if max(h, w) > 512 else 1  # measured at half the working size above 512 px (time), then doubled
    size = (max(1, h // k), max(1, w // k))
    small = np.stack([F.interpolate(torch.from_numpy(np.ascontiguousarray(f)).float().mean(dim=0)[None, None], size=size,
                                    mode="area")[0, 0].numpy() for f in images])  # [N, h / k, w / k], a frame at a time
    est = largest_blur_px(small)
    if est is None:
        return None, None
    blur = k * est.largest_px
    info = {"largest_px_at_working_size": round(blur, 1), "at_least": est.saturated, "patches": len(est.per_patch_px),
            "working_size": [w, h], "learned_px": [lo, hi]}
    if blur <= 1.25 * hi:
        return None, info
    suggest = _size_for_blur(max(h, w), blur, hi)
    more = " or more" if est.saturated else ""
    return (f"note: the frames' blur reaches about {blur:.0f} px{more} at the working size {w}x{h} (90th percentile "
            f"over {len(est.per_patch_px)} textured patches), beyond the {lo:g}-{hi:g} px the weights learned, where "
            f"bright edges can read falsely near: try --working-size {suggest} (about {hi:g} px of blur, coarser "
            "detail)"), info


def predict_files(
    images: Sequence[str | Path] | str | Path,
    focus: Sequence[float | str] | None = None,
    focus_unit: str = "m",
    align: bool | None = None,
    align_model: str = "similarity",
    working_size: int | str | None = DEFAULT_WORKING_SIZE,
    tile: int = DEFAULT_TILE,
    checkpoint: str | Path | None = None,
    device: str | torch.device | None = None,
    progress: bool | None = None,
    log: Any = None,
) -> tuple[Prediction, dict[str, Any]]:
    """``dflib predict`` without the writing: read a stack from files
    (:func:`dflib.io.load_stack`), align it when needed
    (:func:`dflib.align.align_if_needed`), predict (:func:`predict`).

    Args:
        images: image files in the order of ``focus``, or one folder.
        focus, focus_unit: see :func:`dflib.io.load_stack`.
        align: True / False / None (auto: more than 2 frames and more than half a pixel off).
        working_size: as for :func:`predict`, or ``"auto"`` (:func:`auto_working_size`).
        log: called with one line per step (e.g. ``print``); None: silent.

    Returns:
        The :class:`Prediction` (in the geometry of the aligned, cropped
        reference frame when aligned) and a JSON-ready dict of what was done.
    """
    from dflib.align import align_if_needed
    from dflib.io import describe_camera, load_stack
    from dflib.models.pretrained import train_config_of

    say = log or (lambda *_: None)
    if isinstance(images, (str, Path)):
        images = [images]
    images = list(images)
    stack = load_stack(images[0] if len(images) == 1 else images, focus, focus_unit)
    n, (H, W) = len(stack.paths), stack.size
    shown = ", ".join(f"{v:g}" for v in stack.focus)
    src = {"given": "", "focus.json": ", from focus.json", "exif": ", from EXIF SubjectDistance"}[stack.focus_source]
    say(f"read {n} frames of {W}x{H} px, focus {shown} {stack.focus_unit} (near to far{src})")
    camera = describe_camera(stack.exif[0]) if stack.exif else ""
    if camera:
        say(f"camera: {camera}")
    al = align_if_needed(stack.images, align=align, model=align_model, inplace=True, progress=progress)
    say(al.message)
    if al.estimate is not None and (note := breathing_order_note(al.estimate.scales, stack.focus_unit)):
        say(note)
    train_config = train_config_of(checkpoint)
    if checkpoint is None:
        note = training_range_note(stack.focus, stack.focus_unit, n, train_config)
        if note:
            say(note)
    if working_size == "auto":
        working_size, why = auto_working_size(al.images, train_config)
        say(why)
    blur_note, blur = blur_range_note(al.images, working_size, train_config)
    if blur_note:
        say(blur_note)
    pred = predict(al.images, stack.focus, checkpoint=checkpoint, device=device, focus_unit=stack.focus_unit,
                   working_size=working_size, tile=tile, progress=progress)
    h, w = pred.working_size
    Hc, Wc = pred.depth.shape
    tiles = len(tile_starts(h, tile, tile // 4)) * len(tile_starts(w, tile, tile // 4))
    if (h, w) == (Hc, Wc):
        say(f"depth: network at full resolution, {Wc}x{Hc} px" + (f", in {tiles} tiles of {tile} px" if tiles > 1 else ""))
    else:
        say(f"depth: network at the working size {w}x{h} px" + (f" in {tiles} tiles of {tile} px" if tiles > 1 else "")
            + f", depth and σ upsampled to {Wc}x{Hc} guided by the all-in-focus image")
    est = al.estimate
    info: dict[str, Any] = {
        "frames": [p.name for p in stack.paths],
        "focus": [_json_number(float(v)) for v in stack.focus],
        "focus_unit": stack.focus_unit,
        "focus_source": stack.focus_source,
        "sigma_unit": pred.sigma_unit,
        "working_size": [w, h],
        "exif": stack.exif[0] if stack.exif else {},
        "alignment": {
            "applied": al.applied,
            "message": al.message,
            "reference_frame": None if est is None else stack.paths[est.reference].name,
            "breathing_px": None if est is None else round(est.breathing_px, 3),
            "scales": None if est is None else [round(float(s), 6) for s in est.scales],
            "crop_yyxx": None if al.crop is None else list(al.crop),
            "matrices": None if est is None else np.round(est.matrices, 6).tolist(),
        },
        "blur": blur,
    }
    return pred, info


def uncertain_note(prob: np.ndarray, share: float = UNCERTAIN_NOTE_SHARE) -> tuple[str | None, float]:
    """A note when σ exceeds one focus plane over more than ``share`` of the frame, and that share.

    Args:
        prob: ``[N, h, w]`` focus probabilities (:attr:`Prediction.prob`; the share is taken at this resolution).
    """
    from dflib.uncertainty import plane_sigma

    above = round(float((plane_sigma(torch.as_tensor(prob)) > 1).float().mean()), 4)
    if above <= share:
        return None, above
    return (f"note: σ is above one focus plane over {above:.0%} of the frame, where depth is a guess (texture-less "
            "regions, or scene parts outside the focus range; depth_sigma.png shows where): --max-sigma 1 leaves "
            "those pixels without depth"), above


def write_prediction(out: str | Path, pred: Prediction, info: dict[str, Any] | None = None,
                     png_scale: float = 1000.0, max_sigma: float | None = None, log: Any = None) -> dict[str, Path]:
    """Write ``out`` (16-bit PNG, value = depth × ``png_scale``), ``.npy``,
    ``.json`` (units and ``info``), ``_preview.png``, ``_sigma.npy/.png`` and
    ``_aif.png`` beside it. Returns the paths.

    ``max_sigma``: pixels whose σ exceeds this many focus planes (:meth:`Prediction.plane_sigma`) get no depth:
    0 in the PNG, NaN in the ``.npy``, grey in the preview; the ``.json`` records the threshold and the share
    masked. ``_sigma`` keeps every pixel. Without it, :func:`uncertain_note` may suggest it; the ``.json``
    always records the share of the frame above one plane."""
    from dflib import io

    say = log or (lambda *_: None)
    stem = Path(out).with_suffix("")
    depth, meta = pred.depth, {"sigma_unit": pred.sigma_unit, **(info or {})}
    note, meta["sigma_above_1_plane"] = uncertain_note(pred.prob)
    if note and max_sigma is None:
        say(note)
    if max_sigma is not None:
        masked = pred.plane_sigma() > max_sigma
        depth = np.where(masked, np.float32(np.nan), depth)
        meta["mask"] = {"max_sigma_planes": max_sigma, "masked_share": round(float(masked.mean()), 4)}
        say(f"mask: {masked.mean():.1%} of the pixels have σ above {max_sigma:g} focus plane(s): no depth there "
            "(0 in the PNG, NaN in the .npy, grey in the preview)")
    paths = io.write_depth(stem, depth, png_scale=png_scale, unit=pred.unit, meta=meta)
    paths["preview"] = Path(f"{stem}_preview.png")
    io.write_colormap(paths["preview"], depth, cmap="turbo_r", nan_rgb=(128, 128, 128))
    paths["sigma"] = Path(f"{stem}_sigma.npy")
    np.save(paths["sigma"], pred.sigma)
    io.write_colormap(f"{stem}_sigma.png", pred.sigma, cmap="magma")
    paths["aif"] = Path(f"{stem}_aif.png")
    io.write_image(paths["aif"], pred.aif)
    say(f"depth: {paths['png']} (16-bit, value = depth in {pred.unit} × {png_scale:g}), {paths['npy']}, {paths['json']}")
    say(f"preview: {stem}_preview.png  sigma ({pred.sigma_unit}): {stem}_sigma.npy/.png  all-in-focus: {stem}_aif.png")
    return paths
