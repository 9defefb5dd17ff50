"""Focal stacks from a camera: the frames in focus order, their focus positions and EXIF data.

:func:`load_stack` reads the frames in focus order with their focus positions
in one of :data:`FOCUS_UNITS` and the EXIF exposure data of each frame;
:func:`check_focus_values` validates focus positions and
:func:`focus_to_diopters` converts them.

>>> check_focus_values(["inf", "2", "0.5"], "m").tolist()
[inf, 2.0, 0.5]
>>> focus_to_diopters([0.5, 2.0, float("inf")], "m").tolist()
[2.0, 0.5, 0.0]
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np


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
    from dflib.io import read_exif, read_image

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
        order_only = " ".join(str(i) for i in range(1, len(files) + 1))
        raise ValueError(f"focus: not given, and the {len(files)} images carry no focus distance (no focus.json, "
                         "no EXIF SubjectDistance); give one focus position per image (--focus ...), or, if only "
                         f"their order is known, their plane numbers near to far (--focus {order_only} "
                         "--focus-unit index)")
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
