"""Fetching data: where it lives, the registry of public files, checksums,
download (pooch) and unpacking (pooch's processors).

Data directory: ``--dest`` / ``root`` argument, else the environment variable
``DFLIB_DATA_DIR``, else ``pooch.os_cache("dflib")`` (:func:`data_dir`). The
registry of public files is package data, ``dflib/data/registry.json``
(:func:`load_registry`); a file with no published sha256 is trusted on first
use (:func:`fetch_file`). What each dataset needs on top (unpacking, rendering
NYU's stacks) is in :mod:`dflib.data.sources`.
"""

from __future__ import annotations

import json
import os
import warnings
from importlib import resources
from pathlib import Path
from typing import Any, Callable, Mapping

import pooch

__all__ = ["ChecksumMismatchError", "DatasetNotFoundError", "data_dir", "fetch_file", "file_sha256", "load_registry",
           "run_fetch", "unpack", "verify_sha256"]

ENV_VAR = "DFLIB_DATA_DIR"
LOCAL_REGISTRY_NAME = "registry_local.json"
#: the registry of public files: package data, ``dflib/data/registry.json``
REGISTRY_RESOURCE = ("dflib.data", "registry.json")


def data_dir(name: str | os.PathLike[str] | None = None, root: str | os.PathLike[str] | None = None) -> Path:
    """Where data lives. The folder is not created here (readers must not create folders).

    - ``data_dir()``: the data root: ``$DFLIB_DATA_DIR``, else the user cache (``pooch.os_cache("dflib")``).
    - ``data_dir(root=DIR)``: the data root ``DIR`` (what ``--dest`` names).
    - ``data_dir(name)``: a dataset's folder, ``<data root>/<name>`` (``fod500``, ``ddff12``, ``nyu``,
      ``mobile_depth``, ``arkitscenes``: the names :func:`~dflib.data.fetch` takes).
    - ``data_dir(name, root)``: ``root`` itself, the dataset's own folder (the loaders' ``root`` argument).

    A path as the first argument is the data root (the older form ``data_dir(dest)``).

    >>> data_dir("fod500", "/data/my_fod500").as_posix()
    '/data/my_fod500'
    >>> data_dir(root="/data").as_posix(), data_dir("nyu").name
    ('/data', 'nyu')
    """
    if name is not None and not isinstance(name, str):  # data_dir(dest)
        name, root = None, name
    if root is not None:
        return Path(root).expanduser()
    env = os.environ.get(ENV_VAR)
    base = Path(env).expanduser() if env else Path(pooch.os_cache("dflib"))
    return base / name if name else base


class DatasetNotFoundError(FileNotFoundError):
    """A dataset is not on disk; the message names the script that fetches it."""

    def __init__(self, dataset: str, path: str | os.PathLike[str], script: str, detail: str = "") -> None:
        self.dataset = dataset
        self.path = Path(path)
        self.script = script
        name = script.removeprefix("fetch_").removesuffix(".py")
        msg = (
            f"{dataset} not found at {self.path}"
            + (f" ({detail})" if detail else "")
            + f". Fetch it with: dflib fetch {name} --dest DIR (in a checkout, the same: python data_scripts/{script} "
            f"--dest DIR), then pass root=DIR/{name} (on the command line: --data-dir DIR/{name}), or set {ENV_VAR}=DIR."
        )
        super().__init__(msg)


# ----------------------------------------------------------------------- checksums
class ChecksumMismatchError(ValueError):
    """A file's sha256 differs from the recorded one."""

    def __init__(self, path: str | os.PathLike[str], expected: str, actual: str, source: str) -> None:
        self.path, self.expected, self.actual, self.source = Path(path), expected, actual, source
        super().__init__(
            f"checksum mismatch for {self.path}: sha256 {actual} but the {source} records "
            f"{expected}. The file is corrupt or incomplete: delete it and fetch it again."
        )


def file_sha256(path: str | os.PathLike[str]) -> str:
    """Hex sha256 of a file (``pooch.file_hash``)."""
    return pooch.file_hash(str(path), alg="sha256")


def verify_sha256(path: str | os.PathLike[str], expected: str, source: str = "registry") -> str:
    """Check ``path`` against ``expected`` (hex, optionally ``"sha256:"``-prefixed).

    Returns the hash; raises :class:`ChecksumMismatchError` on mismatch and
    ``FileNotFoundError`` when the file is missing.
    """
    if not isinstance(expected, str) or not expected:
        raise ValueError(f"expected must be a non-empty hex string, got {expected!r}")
    expected = expected.split(":", 1)[-1].lower()
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no file at {path} to verify")
    actual = file_sha256(path)
    if actual != expected:
        raise ChecksumMismatchError(path, expected, actual, source)
    return actual


def load_registry(path: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """A registry of public files: ``path``, else the one shipped in the package
    (``dflib/data/registry.json``, read with :mod:`importlib.resources`)."""
    if path is not None:
        where, text = str(path), Path(path).read_text(encoding="utf-8")
    else:
        package, name = REGISTRY_RESOURCE
        where, text = f"{package}:{name}", resources.files(package).joinpath(name).read_text(encoding="utf-8")
    reg = json.loads(text)
    if not isinstance(reg, dict):
        raise ValueError(f"registry {where} must hold a JSON object, got {type(reg).__name__}")
    return reg


def _read_local(dest: Path) -> dict[str, str]:
    p = dest / LOCAL_REGISTRY_NAME
    if p.is_file():
        with open(p, encoding="utf-8") as fh:
            return dict(json.load(fh))
    return {}


def _write_local(dest: Path, entries: Mapping[str, str]) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    tmp = dest / (LOCAL_REGISTRY_NAME + ".tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(dict(sorted(entries.items())), fh, indent=2)
    os.replace(tmp, dest / LOCAL_REGISTRY_NAME)


def fetch_file(
    entry: Mapping[str, Any],
    dest: str | os.PathLike[str],
    *,
    downloader: Callable[..., Any] | None = None,
    progressbar: bool = True,
    log: Callable[[str], None] = print,
) -> Path:
    """Download (or locate) and verify one registry entry; returns its path.

    ``entry`` keys: ``fname`` (file name under ``dest``), ``url`` (or null when
    there is no stable public URL), ``sha256`` (published hash or null),
    ``instructions`` (what to do by hand when ``url`` is null).

    - With a ``url``: ``pooch.retrieve`` downloads it; an existing file whose
      hash does not match is downloaded again (pooch does that), a fresh
      download that does not match raises.
    - Without a ``url``: the file must already be at ``dest/fname``; otherwise
      :class:`DatasetNotFoundError` carries the instructions.
    - With no published hash: trust on first use. The first hash seen is
      written to ``dest/registry_local.json`` with a warning that it was not
      verified against a published value; later runs verify against it and
      raise :class:`ChecksumMismatchError` on a mismatch.
    """
    for key in ("fname",):
        if key not in entry:
            raise ValueError(f"registry entry needs {key!r}, got keys {sorted(entry)}")
    dest = Path(dest)
    fname = str(entry["fname"])
    published = entry.get("sha256")
    local = _read_local(dest)
    known = published or local.get(fname)
    source = "published registry (dflib/data/registry.json)" if published else f"local first-use registry ({dest / LOCAL_REGISTRY_NAME})"
    path = dest / fname
    url = entry.get("url")
    if url:
        dest.mkdir(parents=True, exist_ok=True)
        kwargs: dict[str, Any] = {"progressbar": progressbar}
        if downloader is not None:
            kwargs["downloader"] = downloader
        try:
            got = pooch.retrieve(url, known_hash=f"sha256:{known}" if known else None, fname=fname, path=dest, **kwargs)
        except ValueError as err:  # pooch: downloaded file does not match the hash
            actual = file_sha256(path) if path.is_file() else "<missing>"
            raise ChecksumMismatchError(path, str(known), actual, source) from err
        path = Path(got)
        log(f"fetched {fname} from {url}")
    else:
        if not path.is_file():
            raise DatasetNotFoundError(
                entry.get("dataset", fname), path, entry.get("script", "fetch_*.py"),
                detail="no stable public URL; " + str(entry.get("instructions", "download it by hand")),
            )
        if known:
            verify_sha256(path, known, source)
    if known:
        log(f"verified {fname}: sha256 matches the {source}")
    else:
        digest = file_sha256(path)
        local[fname] = digest
        _write_local(dest, local)
        warnings.warn(
            f"{fname}: no published sha256 exists; recorded {digest} in "
            f"{dest / LOCAL_REGISTRY_NAME} on first use (NOT verified against a published value). "
            "Later runs verify against it.",
            stacklevel=2,
        )
        log(f"first use: recorded sha256 {digest} for {fname} (not verified against a published value)")
    return path


def unpack(path: str | os.PathLike[str], out_dir: str | os.PathLike[str], log: Callable[[str], None] = print) -> Path:
    """Unpack a zip into ``out_dir`` with :class:`pooch.Unzip`, unless every member is there already.

    Several archives may unpack into the same folder.
    """
    path, out_dir = Path(path), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    pooch.Unzip(extract_dir=str(out_dir.resolve()))(str(path.resolve()), "fetch", None)
    log(f"{path.name}: unpacked in {out_dir}")
    return out_dir


#: the older name of :func:`unpack`
extract_zip = unpack


def run_fetch(entry: Mapping[str, Any], dest: Path, log: Callable[[str], None] = print) -> Path | None:
    """:func:`fetch_file`, printing the instructions instead of raising when the file must be
    downloaded by hand. Returns the path, or None when it is missing."""
    try:
        return fetch_file(entry, dest, log=log)
    except DatasetNotFoundError as err:
        log(f"MISSING: {err}")
        return None
