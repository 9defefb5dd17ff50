"""Reading and writing images, depth maps and their EXIF camera data.

Depth files: ``.npy`` (float, metres), ``.pfm`` (float, metres) or 16-bit
``.png`` (integer, divided by ``png_scale``: 1000 reads millimetres as metres).

Focal stacks from a camera (:func:`load_stack`, :data:`FOCUS_UNITS`,
:func:`check_focus_values`, :func:`focus_to_diopters`) are in
:mod:`dflib.stack_io`; their names are importable from here too.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import numpy as np

from dflib.checks import check_shape
from dflib.stack_io import (  # noqa: F401  (the focal-stack names, importable from here as before)
    FOCUS_UNITS,
    IMAGE_SUFFIXES,
    LoadedStack,
    check_focus_values,
    diopters_to_metres,
    focus_to_diopters,
    load_stack,
    near_to_far,
    parse_focus_value,
)


def _imwrite(path: str | Path, img: np.ndarray) -> None:
    """imageio's write; PNGs with fast compression (level 1: a 12 MP image in
    about a second instead of several, files ~15 % larger)."""
    import imageio.v3 as iio

    if Path(path).suffix.lower() == ".png":
        iio.imwrite(path, img, compress_level=1)
    else:
        iio.imwrite(path, img)


def read_image(path: str | Path) -> np.ndarray:
    """An RGB image as float32 ``[H, W, 3]`` in [0, 1] (grey is repeated, alpha dropped)."""
    import imageio.v3 as iio

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"image {str(path)!r} does not exist" + (" (it is a folder)" if path.is_dir() else ""))
    img = _decode(path, "image", iio.imread)
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=-1)
    check_shape(img, "H W 3 | H W 4", f"image {str(path)!r} (RGB, RGBA or grey)")
    img = img[..., :3]
    if np.issubdtype(img.dtype, np.integer):  # one float32 copy (a 12 MP frame: 144 MB, not 432)
        return np.multiply(img, np.float32(1.0 / np.iinfo(img.dtype).max), dtype=np.float32)
    return np.clip(img.astype(np.float32), 0.0, 1.0)


def _decode(path: Path, what: str, reader) -> np.ndarray:
    """``reader(path)`` as an array; any failure (unreadable, corrupt, not an image)
    becomes one ``ValueError`` naming the file, without the decoder's traceback."""
    try:
        return np.asarray(reader(path))
    except Exception as exc:  # imageio/PIL/tifffile raise many types for a bad file
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise ValueError(f"{what} {str(path)!r} cannot be read: not a readable, uncorrupted file "
                         f"({type(exc).__name__}{': ' + detail[:120] if detail else ''})") from None


def read_pfm(path: str | Path) -> np.ndarray:
    """A greyscale (``Pf``) or colour (``PF``) PFM file as float32, top row first."""
    with open(path, "rb") as f:
        header = f.readline().strip()
        if header not in (b"Pf", b"PF"):
            raise ValueError(f"{str(path)!r} is not a PFM file (header {header!r})")
        dims = f.readline()
        while dims.startswith(b"#"):
            dims = f.readline()
        w, h = (int(v) for v in re.findall(rb"\d+", dims)[:2])
        scale = float(f.readline().strip())
        data = np.fromfile(f, dtype="<f4" if scale < 0 else ">f4")
    channels = 3 if header == b"PF" else 1
    data = data[: w * h * channels].reshape(h, w, channels) if channels == 3 else data[: w * h].reshape(h, w)
    return np.flipud(data).astype(np.float32)


def read_depth(path: str | Path, png_scale: float = 1000.0) -> np.ndarray:
    """A depth map ``[H, W]`` float32 in metres from ``.npy``, ``.pfm`` or 16-bit ``.png``."""
    import imageio.v3 as iio

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"depth {str(path)!r} does not exist" + (" (it is a folder)" if path.is_dir() else ""))
    suffix = path.suffix.lower()
    if suffix == ".npy":
        depth = _decode(path, "depth", lambda p: np.load(p, allow_pickle=False))
    elif suffix == ".pfm":
        depth = _decode(path, "depth", read_pfm)
    elif suffix in (".png", ".tif", ".tiff"):
        depth = _decode(path, "depth", iio.imread).astype(np.float32) / png_scale
    else:
        raise ValueError(f"depth {str(path)!r}: expected a .npy, .pfm, .png or .tif file")
    if depth.dtype.kind not in "uif":
        raise ValueError(f"depth {str(path)!r}: expected numbers, got dtype {depth.dtype}")
    depth = np.squeeze(np.asarray(depth, dtype=np.float32))
    check_shape(depth, "H W", f"depth {str(path)!r} (one channel)")
    return depth


def write_image(path: str | Path, img: np.ndarray, exif: dict[str, Any] | None = None, quality: int = 95) -> None:
    """Write float ``[H, W, 3]`` or ``[3, H, W]`` in [0, 1] as an 8-bit image (format
    from the suffix; JPEG at ``quality``), with ``exif`` (the keys
    :func:`read_exif` returns) when given."""

    img = np.asarray(img)
    if img.ndim == 3 and img.shape[0] == 3 and img.shape[-1] != 3:
        img = np.moveaxis(img, 0, -1)
    img8 = (np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8)
    if not exif and Path(path).suffix.lower() not in (".jpg", ".jpeg"):
        _imwrite(path, img8)
        return
    from PIL import Image

    Image.fromarray(img8).save(path, exif=_make_exif(exif or {}), quality=quality)


def write_depth(stem: str | Path, depth: np.ndarray, png_scale: float = 1000.0, unit: str = "m",
                meta: dict | None = None) -> dict[str, Path]:
    """Write ``stem.npy`` (float32), ``stem.png`` (16-bit, value = depth·png_scale,
    clipped to 0..65535, so ``inf`` reads 65535) and ``stem.json`` (the scale,
    the unit and anything in ``meta``). Returns the paths written."""

    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    depth = np.asarray(depth, dtype=np.float32)
    paths = {"npy": stem.with_suffix(".npy"), "png": stem.with_suffix(".png"), "json": stem.with_suffix(".json")}
    np.save(paths["npy"], depth)
    with np.errstate(invalid="ignore", over="ignore"):
        png = np.clip(np.round(np.nan_to_num(depth, nan=0.0, posinf=np.inf) * png_scale), 0, 65535)
    _imwrite(paths["png"], png.astype(np.uint16))
    info = {"png_scale": png_scale, "unit": unit, "png_value": f"depth_{unit} * {png_scale}", **(meta or {})}
    paths["json"].write_text(json.dumps(info, indent=1))
    return paths


def write_colormap(path: str | Path, values: np.ndarray, cmap: str = "turbo", vmin: float | None = None,
                   vmax: float | None = None, nan_rgb: tuple[int, int, int] | None = None) -> None:
    """A colour-mapped 8-bit preview of a scalar map ``[H, W]`` (the range of its
    finite values unless ``vmin``/``vmax`` are given; ``inf`` shows as the top
    colour, NaN as the bottom one or as ``nan_rgb``). Memory: one byte-sized copy per channel."""
    import matplotlib

    values = np.asarray(values)
    finite = values[np.isfinite(values)]
    lo = (float(finite.min()) if finite.size else 0.0) if vmin is None else float(vmin)
    hi = (float(finite.max()) if finite.size else 1.0) if vmax is None else float(vmax)
    scale = 255.0 / (hi - lo) if hi > lo else 0.0
    with np.errstate(invalid="ignore", over="ignore"):
        idx = (values.astype(np.float32) - np.float32(lo)) * np.float32(scale)
        idx[np.isposinf(values)] = 255.0
        idx = np.clip(np.nan_to_num(idx, nan=0.0) + 0.5, 0, 255).astype(np.uint8)
    lut = (matplotlib.colormaps[cmap](np.linspace(0.0, 1.0, 256))[:, :3] * 255 + 0.5).astype(np.uint8)
    rgb = lut[idx]
    if nan_rgb is not None:
        rgb[np.isnan(values)] = nan_rgb
    _imwrite(path, rgb)


# --- EXIF -------------------------------------------------------------------------

def read_exif(path: str | Path) -> dict[str, Any]:
    """Camera settings from a frame's EXIF (JPEG, PNG, WebP, TIFF), those present:
    ``make``, ``model``, ``focal_length_mm``, ``focal_length_35mm``,
    ``f_number``, ``exposure_s``, ``iso``, ``subject_distance_m``,
    ``datetime``. Empty when the file has none."""
    from PIL import ExifTags, Image

    names = {tag: name for name, tag in _exif_tags().items()}
    out: dict[str, Any] = {}
    try:
        with Image.open(path) as im:
            exif = im.getexif()
            tags = dict(exif)
            tags.update(exif.get_ifd(ExifTags.IFD.Exif))
    except Exception:  # unreadable metadata is not an error: the pixels are what matter
        return out
    for tag, name in names.items():
        if tag not in tags:
            continue
        v = tags[tag]
        if isinstance(v, tuple) and v:
            v = v[0]
        if isinstance(v, bytes):
            v = v.decode(errors="replace")
        if isinstance(v, str):
            v = v.strip("\x00 ").strip()
            if v:
                out[name] = v
            continue
        try:
            num = float(v)
        except (TypeError, ValueError, ZeroDivisionError):
            continue
        if math.isfinite(num) and (num > 0 or name == "subject_distance_m"):
            out[name] = int(num) if name in ("iso", "focal_length_35mm") else num
    if out.get("subject_distance_m", 1.0) <= 0 or out.get("subject_distance_m", 0.0) >= 4294967295:
        out.pop("subject_distance_m")  # 0 = unknown; 0xFFFFFFFF = infinity in some writers
    return out


def _exif_tags() -> dict[str, int]:
    from PIL import ExifTags

    return {
        "make": ExifTags.Base.Make, "model": ExifTags.Base.Model,
        "focal_length_mm": ExifTags.Base.FocalLength, "focal_length_35mm": ExifTags.Base.FocalLengthIn35mmFilm,
        "f_number": ExifTags.Base.FNumber, "exposure_s": ExifTags.Base.ExposureTime,
        "iso": ExifTags.Base.ISOSpeedRatings, "subject_distance_m": ExifTags.Base.SubjectDistance,
        "datetime": ExifTags.Base.DateTimeOriginal,
    }


def _make_exif(values: dict[str, Any]):
    """A Pillow ``Exif`` holding ``values`` (keys as :func:`read_exif` returns them)."""
    from PIL import ExifTags, Image

    tags = _exif_tags()
    unknown = sorted(set(values) - set(tags))
    if unknown:
        raise ValueError(f"exif: unknown keys {unknown}; expected some of {sorted(tags)}")
    exif = Image.Exif()
    sub = exif.get_ifd(ExifTags.IFD.Exif)
    for key, v in values.items():
        (exif if key in ("make", "model") else sub)[tags[key]] = v
    return exif


def describe_camera(exif: dict[str, Any]) -> str:
    """One line such as ``Pixel 7, f = 6.8 mm, f/1.9, 1/120 s, ISO 80`` (empty without EXIF)."""
    parts = []
    name = " ".join(str(exif[k]) for k in ("make", "model") if k in exif)
    if name:
        parts.append(name)
    if "focal_length_mm" in exif:
        parts.append(f"f = {exif['focal_length_mm']:g} mm")
    if "f_number" in exif:
        parts.append(f"f/{exif['f_number']:g}")
    if "exposure_s" in exif:
        e = exif["exposure_s"]
        parts.append(f"1/{1 / e:.0f} s" if e < 0.5 else f"{e:g} s")
    if "iso" in exif:
        parts.append(f"ISO {exif['iso']}")
    return ", ".join(parts)
