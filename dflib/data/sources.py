"""Fetch, verify and prepare a public dataset by name: :func:`fetch`, the
``dflib fetch NAME --dest DIR`` command.

Each dataset lives in ``<data root>/<name>/`` (:func:`~dflib.data.download.data_dir`),
which is exactly what its loader in :mod:`dflib.data` reads. Downloads go through
pooch and are verified (:func:`~dflib.data.download.fetch_file`: a published sha256,
else trust on first use); a file with no stable public URL must be put in place
by hand, and :class:`~dflib.data.download.DatasetNotFoundError` says where.

=============  ==========================================================================
name           what :func:`fetch` does
=============  ==========================================================================
fod500         verifies the hand-downloaded ``fs_6.zip`` and unpacks it (manual download)
ddff12         downloads the trainval (12.6 GB) and test (761 MB) h5 files, checks their keys
nyu            downloads the labeled .mat (2.8 GB) and splits.mat, renders the stacks
mobile_depth   downloads and unpacks two zips (no ground truth)
arkitscenes    downloads a few Validation videos, unpacks them, renders NYU-style stacks
=============  ==========================================================================
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Callable, Sequence

from dflib.data.download import data_dir, fetch_file, load_registry, unpack

__all__ = ["SOURCES", "fetch"]

Log = Callable[[str], None]


def fetch_fod500(root: Path, log: Log) -> None:
    """FoD500 (DefocusNet): a Google Drive file with no stable URL. Verifies ``fod500/fs_6.zip`` and unpacks it."""
    from dflib.data.fod500 import FoD500Dataset

    out = root / "fod500"
    unpack(fetch_file(load_registry()["fod500"], out, log=log), out, log)
    train, test = FoD500Dataset(out, "train"), FoD500Dataset(out, "test")
    log(f"FoD500 ready in {train.root}: {len(train)} train / {len(test)} test stacks")


def fetch_ddff12(root: Path, log: Log, trainval: bool = True, test: bool = True) -> None:
    """DDFF 12-Scene: the h5 files, read lazily by the loader (no conversion); DFV's optional
    scene-disjoint re-split (no stable URL) is verified when present."""
    import h5py

    reg, out = load_registry(), root / "ddff12"
    for name in ["ddff12_trainval"] * trainval + ["ddff12_test"] * test:
        path = fetch_file(reg[name], out, log=log)
        with h5py.File(path, "r") as f:
            log(f"{path.name}: " + ", ".join(f"{k} {f[k].shape} {f[k].dtype}" for k in sorted(f)))
    dfv = reg["ddff12_dfv_trainval"]
    if (out / dfv["fname"]).is_file():
        fetch_file(dfv, out, log=log)
        log("DFV re-split present: DDFF12Dataset(variant='auto') will use it")
    else:
        log("optional: " + dfv["instructions"].replace("DEST", str(root)))


def fetch_nyu(root: Path, log: Log, split: str = "test", planes: int = 5, protocols: Sequence[str] | None = None,
              limit: int | None = None, seed: int = 0) -> None:
    """NYU Depth v2: the labeled .mat and splits.mat, then focal stacks of ``split`` rendered with
    :data:`dflib.optics.NYU_CAMERA` under both protocols (``limit``: the first K images only)."""
    from dflib.data.nyu import PROTOCOLS, convert_labeled_mat

    reg, out = load_registry(), root / "nyu"
    mat, splits = fetch_file(reg["nyu_labeled"], out, log=log), fetch_file(reg["nyu_splits"], out, log=log)
    for p in convert_labeled_mat(mat, splits, out, protocols=protocols or PROTOCOLS, n_planes=planes, split=split,
                                 limit=limit, seed=seed):
        log(f"wrote {p}")


def fetch_mobile_depth(root: Path, log: Log) -> None:
    """Mobile Depth: two zips, unpacked; every folder with >= 2 images is a stack (focus = plane index)."""
    from dflib.data.mobile_depth import find_stacks

    reg, out, raw = load_registry(), root / "mobile_depth", root / "downloads" / "mobile_depth"
    for name in ("mobile_depth_data2", "mobile_depth_data3"):
        unpack(fetch_file(reg[name], raw, log=log), out, log)
    for scene, files in find_stacks(out).items():
        log(f"{scene}: {len(files)} frames")


def fetch_arkitscenes(root: Path, log: Log, video_ids: Sequence[str] | None = None, frames: int = 10, planes: int = 5,
                      protocols: Sequence[str] | None = None, seed: int = 0) -> None:
    """ARKitScenes (CC BY-NC-SA 4.0): ``frames`` frames of each Validation video (default: the registry's three),
    rendered like NYU into ``arkitscenes/``."""
    from dflib.data.arkitscenes import ARKIT_DEFAULT_VIDEOS, convert_upsampling
    from dflib.data.nyu import PROTOCOLS

    reg = load_registry()["arkitscenes_upsampling"]
    raw = root / "downloads" / "arkitscenes"
    video_ids = list(video_ids or ARKIT_DEFAULT_VIDEOS)
    for vid in video_ids:
        entry = dict(reg, fname=reg["fname"].format(video_id=vid), url=reg["url"].format(video_id=vid))
        unpack(fetch_file(entry, raw, log=log), raw / "unpacked", log)
    for p in convert_upsampling(raw / "unpacked", root / "arkitscenes", video_ids, frames, protocols=protocols or PROTOCOLS,
                                n_planes=planes, seed=seed):
        log(f"wrote {p}")


#: every dataset :func:`fetch` knows: name (also its folder under the data root) -> what fetches it
SOURCES: dict[str, Callable[..., None]] = {
    "fod500": fetch_fod500,
    "ddff12": fetch_ddff12,
    "nyu": fetch_nyu,
    "mobile_depth": fetch_mobile_depth,
    "arkitscenes": fetch_arkitscenes,
}


def fetch(name: str, dest: str | Path | None = None, log: Log = print, **options) -> Path:
    """Fetch, verify and prepare dataset ``name`` under the data root ``dest``; returns its folder.

    ``options`` are the keyword arguments of its step in :data:`SOURCES` (e.g. ``limit=10`` for ``nyu``).
    Raises ``ValueError`` for an unknown name or option, and
    :class:`~dflib.data.download.DatasetNotFoundError` (with instructions) when a file
    must be downloaded by hand and is not there.

    >>> fetch("imagenet")
    Traceback (most recent call last):
    ...
    ValueError: fetch: name must be one of ['arkitscenes', 'ddff12', 'fod500', 'mobile_depth', 'nyu'], got 'imagenet'
    """
    if name not in SOURCES:
        raise ValueError(f"fetch: name must be one of {sorted(SOURCES)}, got {name!r}")
    step = SOURCES[name]
    known = [p for p in inspect.signature(step).parameters if p not in ("root", "log")]
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise ValueError(f"fetch {name}: option(s) {unknown} do not apply; it takes {known or 'none'}")
    root = data_dir(root=dest)
    step(root, log, **options)
    return root / name

