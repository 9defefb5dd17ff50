"""Reading and writing images, depth maps and focal stacks.

Depth files: ``.npy`` (float, metres), ``.pfm`` (float, metres) or 16-bit
``.png`` (integer, divided by ``png_scale``: 1000 reads millimetres as metres).

Focal stacks from a camera: :func:`load_stack` reads the frames in focus
order with their focus positions in one of :data:`FOCUS_UNITS` and the EXIF
exposure data of each frame; :func:`check_focus_values` validates focus
positions and :func:`focus_to_diopters` converts them.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np


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
    if img.ndim != 3 or img.shape[-1] not in (3, 4):
        raise ValueError(f"image {str(path)!r}: expected [H, W, 3] (or grey/RGBA), got shape {img.shape}")
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
    if depth.ndim != 2:
        raise ValueError(f"depth {str(path)!r}: expected one channel [H, W], got shape {depth.shape}")
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


def write_colormap(path: str | Path, values: np.ndarray, cmap: str = "turbo", vmin: float | None = None, vmax: float | None = None) -> None:
    """A colour-mapped 8-bit preview of a scalar map ``[H, W]`` (the range of its
    finite values unless ``vmin``/``vmax`` are given; ``inf`` shows as the top
    colour, NaN as the bottom one). Memory: one byte-sized copy per channel."""
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
    _imwrite(path, lut[idx])


# --- focal stacks from a camera -------------------------------------------------

#: Units of focus positions. ``m``: focus distance in metres (``inf`` = focused
#: at infinity). ``diopter``: 1 / distance in 1/m, as Android's
#: ``LENS_FOCUS_DISTANCE`` and Raspberry Pi ``LensPosition`` report it (0 =
#: infinity). ``disparity``: a dataset's calibrated disparity-like unit that
#: grows toward the camera (DDFF-12). ``index``: plane numbers or raw motor
#: positions that grow away from the camera; depth then comes out as a
#: fractional position on the same scale.
FOCUS_UNITS: tuple[str, ...] = ("m", "diopter", "disparity", "index")

#: Image files :func:`load_stack` picks up from a folder.
IMAGE_SUFFIXES: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp")


def parse_focus_value(text: str | float) -> float:
    """One focus value: a number (Python, numpy or a 0-d tensor), or a string
    such as ``"0.5"``, ``"inf"`` / ``"∞"``."""
    if not isinstance(text, str):
        try:
            return float(text)
        except (TypeError, ValueError):
            raise ValueError(f"--focus: {text!r} is not a number") from None
    t = str(text).strip().lower()
    if t in ("inf", "+inf", "infinity", "∞"):
        return math.inf
    try:
        return float(t)
    except ValueError:
        raise ValueError(f"--focus: {text!r} is not a number (use inf for focus at infinity)") from None


def _fmt(values: Sequence[float]) -> str:
    return "[" + ", ".join(f"{v:g}" for v in values) + "]"


def check_focus_values(focus: Sequence[float | str], focus_unit: str = "m", monotonic: bool = True,
                       arg: str = "focus") -> np.ndarray:
    """Validate focus positions in ``focus_unit`` and return them as float64 ``[N]``.

    Rules: no NaN; metres ``> 0`` (``inf`` allowed, the far end); dioptres
    ``>= 0`` and finite (0 = infinity); disparities ``>= 0`` and finite;
    indices finite. With ``monotonic``, the values must be strictly
    increasing or strictly decreasing in the order given (one per frame);
    without it, only distinct. Errors are ``ValueError`` naming ``arg``,
    the offending value and what was expected, on one line.
    """
    if focus_unit not in FOCUS_UNITS:
        raise ValueError(f"--focus-unit: expected one of {', '.join(FOCUS_UNITS)}, got {focus_unit!r}")
    f = np.array([parse_focus_value(v) for v in focus], dtype=np.float64)
    if f.ndim != 1 or f.size == 0:
        raise ValueError(f"{arg}: expected one focus value per image, got {list(focus)!r}")
    for i, v in enumerate(f):
        where = f"{arg}: value {i + 1} of {f.size}"
        if math.isnan(v):
            raise ValueError(f"{where} is NaN; every frame needs a focus position (got {_fmt(f)})")
        if focus_unit == "m":
            if v <= 0:
                raise ValueError(f"{where} is {v:g} m; distances must be > 0 m (inf for focus at infinity)")
        elif focus_unit == "diopter":
            if math.isinf(v) or v < 0:
                raise ValueError(f"{where} is {v:g} dioptres; dioptres must be finite and >= 0 (0 = infinity)")
        elif focus_unit == "disparity":
            if math.isinf(v) or v < 0:
                raise ValueError(f"{where} is {v:g}; disparities must be finite and >= 0")
        elif math.isinf(v):
            raise ValueError(f"{where} is {v:g}; indices must be finite")
    with np.errstate(invalid="ignore"):
        d = np.diff(f)
        if np.any(d == 0) or np.any(np.isnan(d)):  # inf - inf: two frames at infinity
            dup = f[1:][(d == 0) | np.isnan(d)][0]
            raise ValueError(f"{arg}: {dup:g} {focus_unit} appears twice in {_fmt(f)}; each frame needs its own focus")
    if monotonic and f.size > 2 and not (np.all(d > 0) or np.all(d < 0)):
        raise ValueError(f"{arg}: {_fmt(f)} {focus_unit} is not monotonic; list the images and their focus "
                         "in focus order (near to far or far to near)")
    if not monotonic and np.unique(f).size != f.size:
        vals, counts = np.unique(f, return_counts=True)
        raise ValueError(f"{arg}: {vals[counts > 1][0]:g} {focus_unit} appears twice in {_fmt(f)}; "
                         "each frame needs its own focus")
    return f


def near_to_far(focus: np.ndarray, focus_unit: str) -> np.ndarray:
    """The permutation ``[N]`` that puts frames near to far: metres and indices
    increasing, dioptres and disparities decreasing."""
    f = np.asarray(focus, dtype=np.float64)
    if focus_unit not in FOCUS_UNITS:
        raise ValueError(f"focus_unit: expected one of {', '.join(FOCUS_UNITS)}, got {focus_unit!r}")
    key = -f if focus_unit in ("diopter", "disparity") else f
    return np.argsort(key, kind="stable")


def focus_to_diopters(focus: Sequence[float], focus_unit: str) -> np.ndarray:
    """Focus positions in dioptres (1/m) from metres (``inf`` -> 0) or dioptres."""
    f = np.asarray(focus, dtype=np.float64)
    if focus_unit == "diopter":
        return f.copy()
    if focus_unit == "m":
        with np.errstate(divide="ignore"):
            return 1.0 / f
    raise ValueError(f"focus_unit: {focus_unit!r} positions have no dioptre equivalent (only m and diopter do)")


def diopters_to_metres(q: Any) -> Any:
    """Distance in metres from dioptres; 0 dioptres -> ``inf``."""
    with np.errstate(divide="ignore"):
        return 1.0 / np.asarray(q, dtype=np.float64)


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


@dataclass
class LoadedStack:
    """A focal stack read from files, near to far.

    Attributes:
        images: ``[N, 3, H, W]`` float32 in [0, 1], near focus first.
        focus: ``[N]`` float64 focus positions in ``focus_unit``, same order.
        focus_unit: one of :data:`FOCUS_UNITS`.
        paths: the N files, same order.
        exif: N dicts of camera settings (see :func:`read_exif`; empty without EXIF).
        focus_source: where ``focus`` came from: ``"given"``, ``"focus.json"`` or ``"exif"``.
    """

    images: np.ndarray
    focus: np.ndarray
    focus_unit: str
    paths: list[Path]
    exif: list[dict[str, Any]] = field(default_factory=list)
    focus_source: str = "given"

    @property
    def focus_diopters(self) -> np.ndarray:
        """``[N]`` focus in dioptres (metres and dioptres only)."""
        return focus_to_diopters(self.focus, self.focus_unit)

    @property
    def size(self) -> tuple[int, int]:
        """``(H, W)`` in pixels."""
        return int(self.images.shape[-2]), int(self.images.shape[-1])


def _natural_key(p: Path) -> list:
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", p.name)]


def _stack_files(source: str | Path | Sequence[str | Path]) -> tuple[list[Path], dict | None]:
    """The image files of a folder (natural name order) or of a list; and the
    folder's ``focus.json`` (as ``dflib render`` writes it) when present."""
    if isinstance(source, (str, Path)) and Path(source).is_dir():
        folder = Path(source)
        meta_path = folder / "focus.json"
        if meta_path.is_file():
            meta = json.loads(meta_path.read_text())
            if "images" in meta:
                return [folder / n for n in meta["images"]], meta
        files = sorted((p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES), key=_natural_key)
        if not files:
            raise ValueError(f"images: folder {str(folder)!r} has no image files ({', '.join(IMAGE_SUFFIXES)})")
        return files, None
    if isinstance(source, (str, Path)):
        source = [source]
    files = [Path(p) for p in source]
    for p in files:
        if p.is_dir():
            raise ValueError(f"images: {str(p)!r} is a folder; give either one folder or image files")
        if not p.is_file():
            raise FileNotFoundError(f"image {str(p)!r} does not exist")
    return files, None


def load_stack(
    source: str | Path | Sequence[str | Path],
    focus: Sequence[float | str] | None = None,
    focus_unit: str = "m",
) -> LoadedStack:
    """Read a focal stack from image files, in focus order.

    Args:
        source: the image files in the order of ``focus``, or a folder: its
            ``focus.json`` (written by ``dflib render``) names the images and
            their focus in metres; otherwise all its images are taken in
            natural name order (``img2`` before ``img10``).
        focus: one focus position per image, strictly monotonic in that order
            (``inf``/``"inf"`` allowed in metres). ``None``: from the folder's
            ``focus.json``, else from every frame's EXIF ``SubjectDistance``
            (metres), then sorted.
        focus_unit: one of :data:`FOCUS_UNITS` (``m``, ``diopter``,
            ``disparity``, ``index``); ignored when ``focus`` comes from
            ``focus.json`` or EXIF (both are metres).

    Returns:
        :class:`LoadedStack` with the frames near to far (metres and indices
        increasing, dioptres and disparities decreasing). Frames are read one
        at a time into one ``[N, 3, H, W]`` float32 array.

    Raises:
        ValueError naming the argument (``images``, ``focus``, ``--focus-unit``)
        and the value received, for: a count mismatch, frames of different
        sizes, NaN, zero or negative metres, negative dioptres, repeated or
        non-monotonic focus, no focus found.
    """
    if focus_unit not in FOCUS_UNITS:
        raise ValueError(f"--focus-unit: expected one of {', '.join(FOCUS_UNITS)}, got {focus_unit!r}")
    files, meta = _stack_files(source)
    exif = [read_exif(p) for p in files]
    if focus is not None:
        source_name = "given"
        if len(focus) != len(files):
            raise ValueError(f"focus: got {len(files)} images but {len(focus)} focus distances; "
                             "give one focus position per image")
        f = check_focus_values(focus, focus_unit, monotonic=True)
    elif meta is not None and "focus_m" in meta:
        source_name, focus_unit = "focus.json", "m"
        f = check_focus_values(meta["focus_m"], "m", monotonic=False, arg="focus (from focus.json)")
    elif all("subject_distance_m" in e for e in exif):
        source_name, focus_unit = "exif", "m"
        f = check_focus_values([e["subject_distance_m"] for e in exif], "m", monotonic=False,
                               arg="focus (from EXIF SubjectDistance)")
    else:
        raise ValueError(f"focus: not given, and the {len(files)} images carry no focus distance (no focus.json, "
                         "no EXIF SubjectDistance); give one focus position per image (--focus ...)")
    if f.size != len(files):
        raise ValueError(f"focus: got {len(files)} images but {f.size} focus distances; give one focus position per image")
    if len(files) < 2:
        raise ValueError(f"images: a focal stack needs at least 2 images, got {len(files)}")
    order = near_to_far(f, focus_unit)
    files = [files[i] for i in order]
    exif = [exif[i] for i in order]
    images: np.ndarray | None = None
    for k, p in enumerate(files):
        img = read_image(p)
        if images is None:
            images = np.empty((len(files), 3) + img.shape[:2], dtype=np.float32)
        elif img.shape[:2] != images.shape[-2:]:
            raise ValueError(
                f"images: all frames must have the same size, but {files[0].name!r} is "
                f"{images.shape[-1]}x{images.shape[-2]} and {p.name!r} is {img.shape[1]}x{img.shape[0]}")
        images[k] = np.moveaxis(img, -1, 0)
        del img
    assert images is not None
    return LoadedStack(images, f[order], focus_unit, files, exif, source_name)
