"""Reading and writing images and depth maps for the command line.

Depth files: ``.npy`` (float, metres), ``.pfm`` (float, metres) or 16-bit
``.png`` (integer, divided by ``png_scale``: 1000 reads millimetres as metres).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np


def read_image(path: str | Path) -> np.ndarray:
    """An RGB image as float32 ``[H, W, 3]`` in [0, 1] (grey is repeated, alpha dropped)."""
    import imageio.v3 as iio

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"image {str(path)!r} does not exist" + (" (it is a folder)" if path.is_dir() else ""))
    img = _decode(path, "image", iio.imread)
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=-1)
    if img.ndim != 3 or img.shape[-1] not in (3, 4):
        raise ValueError(f"image {str(path)!r}: expected [H, W, 3] (or grey/RGBA), got shape {img.shape}")
    img = img[..., :3]
    if np.issubdtype(img.dtype, np.integer):
        return (img / np.iinfo(img.dtype).max).astype(np.float32)
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
    if depth.ndim != 2:
        raise ValueError(f"depth {str(path)!r}: expected one channel [H, W], got shape {depth.shape}")
    return depth


def write_image(path: str | Path, img: np.ndarray) -> None:
    """Write float ``[H, W, 3]`` or ``[3, H, W]`` in [0, 1] as 8-bit PNG."""
    import imageio.v3 as iio

    img = np.asarray(img)
    if img.ndim == 3 and img.shape[0] == 3 and img.shape[-1] != 3:
        img = np.moveaxis(img, 0, -1)
    iio.imwrite(path, (np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8))


def write_depth(stem: str | Path, depth: np.ndarray, png_scale: float = 1000.0, unit: str = "m") -> dict[str, Path]:
    """Write ``stem.npy`` (float32), ``stem.png`` (16-bit, value = depth·png_scale) and
    ``stem.json`` (the scale and unit). Returns the paths written."""
    import imageio.v3 as iio

    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    depth = np.asarray(depth, dtype=np.float32)
    paths = {"npy": stem.with_suffix(".npy"), "png": stem.with_suffix(".png"), "json": stem.with_suffix(".json")}
    np.save(paths["npy"], depth)
    iio.imwrite(paths["png"], np.clip(np.round(depth * png_scale), 0, 65535).astype(np.uint16))
    paths["json"].write_text(json.dumps({"png_scale": png_scale, "unit": unit, "png_value": f"depth_{unit} * {png_scale}"}))
    return paths


def write_colormap(path: str | Path, values: np.ndarray, cmap: str = "turbo", vmin: float | None = None, vmax: float | None = None) -> None:
    """A colour-mapped 8-bit preview of a scalar map."""
    import matplotlib

    values = np.asarray(values, dtype=np.float64)
    lo = np.nanmin(values) if vmin is None else vmin
    hi = np.nanmax(values) if vmax is None else vmax
    norm = (values - lo) / (hi - lo) if hi > lo else np.zeros_like(values)
    write_image(path, matplotlib.colormaps[cmap](np.clip(norm, 0, 1))[..., :3])
