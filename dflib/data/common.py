"""Shared pieces of the real-data loaders: where data lives, checksums, the
sample dict, and the training augmentation.

Sample dict (every dataset in :mod:`dflib.data` returns one):

- ``stack``  ``[N, 3, H, W]`` float32 in [0, 1], planes ordered by increasing
  focus value;
- ``focus``  ``[N]`` float32: focus distances in metres (disparity for
  DDFF-12, plane index for Mobile Depth, whose focus distances are unknown);
- ``depth``  ``[1, H, W]`` float32, 0 where invalid (disparity for DDFF-12);
- ``mask``   ``[1, H, W]`` bool, True where the ground truth is valid
  (all False where a dataset has no ground truth).

Data directory: ``--dest`` / ``root`` argument, else the environment variable
``DFLIB_DATA_DIR``, else ``pooch.os_cache("dflib")``.
"""

from __future__ import annotations

import json
import os
import warnings
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np
import pooch
import torch

ENV_VAR = "DFLIB_DATA_DIR"
LOCAL_REGISTRY_NAME = "registry_local.json"
#: the registry of public files: package data, ``dflib/data/registry.json``
REGISTRY_RESOURCE = ("dflib.data", "registry.json")


# --------------------------------------------------------------------------- paths
def data_dir(dest: str | os.PathLike[str] | None = None) -> Path:
    """The root data directory: ``dest``, else ``$DFLIB_DATA_DIR``, else the user cache.

    The directory is not created here (readers must not create folders).
    """
    if dest is not None:
        return Path(dest).expanduser()
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env).expanduser()
    return Path(pooch.os_cache("dflib"))


class DatasetNotFoundError(FileNotFoundError):
    """A dataset is not on disk; the message names the script that fetches it."""

    def __init__(self, dataset: str, path: str | os.PathLike[str], script: str, detail: str = "") -> None:
        self.dataset = dataset
        self.path = Path(path)
        self.script = script
        msg = (
            f"{dataset} not found at {self.path}"
            + (f" ({detail})" if detail else "")
            + f". Fetch it with: python data_scripts/{script} --dest DIR "
            f"(then pass root=DIR/..., or set {ENV_VAR}=DIR)."
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
    source = "published registry (data_scripts/registry.json)" if published else f"local first-use registry ({dest / LOCAL_REGISTRY_NAME})"
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


# ----------------------------------------------------------------------- samples
def make_sample(stack: Any, focus: Any, depth: Any | None, mask: Any | None = None) -> dict[str, torch.Tensor]:
    """Build the shared sample dict, checking shapes and converting dtypes.

    stack: ``[N, H, W, 3]`` or ``[N, 3, H, W]``; uint8 (0..255) or float in [0, 1].
    focus: ``[N]``. depth: ``[H, W]`` or ``[1, H, W]`` or None (no ground truth).
    mask: same shape as depth, or None for ``depth > 0 & finite``.
    """
    s = torch.as_tensor(np.asarray(stack))
    if s.ndim != 4:
        raise ValueError(f"stack must be [N,H,W,3] or [N,3,H,W], got shape {tuple(s.shape)}")
    if s.shape[1] != 3 and s.shape[-1] == 3:
        s = s.permute(0, 3, 1, 2)
    if s.shape[1] != 3:
        raise ValueError(f"stack must have 3 colour channels, got shape {tuple(s.shape)}")
    s = s.to(torch.float32) / 255.0 if s.dtype == torch.uint8 else s.to(torch.float32)
    n, _, h, w = s.shape
    f = torch.as_tensor(np.asarray(focus, dtype=np.float32)).reshape(-1)
    if f.numel() != n:
        raise ValueError(f"focus must have {n} values (one per plane), got {f.numel()}")
    if depth is None:
        d = torch.zeros(1, h, w)
        m = torch.zeros(1, h, w, dtype=torch.bool)
    else:
        d = torch.as_tensor(np.asarray(depth, dtype=np.float32)).reshape(1, *np.shape(depth)[-2:])
        if tuple(d.shape[-2:]) != (h, w):
            raise ValueError(f"depth must be [H,W]=({h},{w}) like the stack, got {tuple(d.shape)}")
        valid = torch.isfinite(d) & (d > 0)
        m = valid if mask is None else (torch.as_tensor(np.asarray(mask)).reshape(1, h, w).bool() & valid)
        d = torch.where(m, d, torch.zeros((), dtype=d.dtype))
    return {"stack": s.contiguous(), "focus": f, "depth": d.contiguous(), "mask": m.contiguous()}


# ------------------------------------------------------------------ augmentation
def sample_generator(seed: int, epoch: int, index: int) -> torch.Generator:
    """A CPU generator seeded from (seed, epoch, index) via ``numpy.random.SeedSequence``."""
    for name, v in (("seed", seed), ("epoch", epoch), ("index", index)):
        if not isinstance(v, (int, np.integer)) or v < 0:
            raise ValueError(f"{name} must be a non-negative int, got {v!r}")
    state = np.random.SeedSequence([int(seed), int(epoch), int(index)]).generate_state(2, dtype=np.uint32)
    g = torch.Generator()
    g.manual_seed(int(state[0]) << 31 ^ int(state[1]))
    return g


def choose_planes(n_total: int, n: int | None, generator: torch.Generator | None = None) -> torch.Tensor:
    """Indices of the planes to keep, sorted ascending.

    ``generator`` given: ``n`` distinct planes at random (training, as DFV
    samples 5 of DDFF-12's 10). None: ``n`` evenly spaced planes including both
    ends (evaluation). ``n`` None or equal to ``n_total``: all planes.
    """
    if n is None or n == n_total:
        return torch.arange(n_total)
    if not isinstance(n, int) or not 1 <= n <= n_total:
        raise ValueError(f"n_planes must be an int in [1, {n_total}], got {n!r}")
    if generator is None:
        return torch.from_numpy(np.unique(np.round(np.linspace(0, n_total - 1, n)).astype(np.int64)))
    return torch.sort(torch.randperm(n_total, generator=generator)[:n]).values


@dataclass(frozen=True)
class AugmentConfig:
    """Training augmentation shared by all loaders (what the anchors use).

    crop: output ``(H, W)`` of a random crop, or None for no crop.
    min_valid_fraction: retry the crop (up to ``crop_tries`` times) until at
        least this fraction of its pixels has valid ground truth (DDFF-12 code
        uses 0.8); 0 accepts the first crop.
    hflip / vflip: random flips with probability ``p_flip`` each.
    """

    crop: tuple[int, int] | None = (224, 224)
    min_valid_fraction: float = 0.0
    crop_tries: int = 10
    hflip: bool = True
    vflip: bool = True
    p_flip: float = 0.5

    def __post_init__(self) -> None:
        if self.crop is not None and (len(self.crop) != 2 or min(self.crop) < 1):
            raise ValueError(f"crop must be (H, W) with positive sizes or None, got {self.crop!r}")
        if not 0.0 <= self.p_flip <= 1.0:
            raise ValueError(f"p_flip must be in [0, 1], got {self.p_flip}")
        if not 0.0 <= self.min_valid_fraction <= 1.0:
            raise ValueError(f"min_valid_fraction must be in [0, 1], got {self.min_valid_fraction}")


def augment_sample(sample: dict[str, torch.Tensor], config: AugmentConfig, generator: torch.Generator) -> dict[str, torch.Tensor]:
    """Random crop then flips, applied identically to stack, depth and mask.

    Focus values are unchanged. Pure: the input dict is not modified.
    """
    stack, depth, mask = sample["stack"], sample["depth"], sample["mask"]
    h, w = stack.shape[-2:]
    if config.crop is not None:
        ch, cw = config.crop
        if ch > h or cw > w:
            raise ValueError(f"crop {config.crop} is larger than the sample ({h}, {w})")
        for _ in range(max(1, config.crop_tries)):
            top = int(torch.randint(0, h - ch + 1, (1,), generator=generator))
            left = int(torch.randint(0, w - cw + 1, (1,), generator=generator))
            frac = mask[..., top : top + ch, left : left + cw].float().mean().item()
            if frac >= config.min_valid_fraction:
                break
        sl = (..., slice(top, top + ch), slice(left, left + cw))
        stack, depth, mask = stack[sl], depth[sl], mask[sl]
    flips = torch.rand(2, generator=generator)
    if config.hflip and flips[0] < config.p_flip:
        stack, depth, mask = stack.flip(-1), depth.flip(-1), mask.flip(-1)
    if config.vflip and flips[1] < config.p_flip:
        stack, depth, mask = stack.flip(-2), depth.flip(-2), mask.flip(-2)
    out = dict(sample)
    out.update(stack=stack.contiguous(), depth=depth.contiguous(), mask=mask.contiguous())
    return out


class FocalStackDataset(torch.utils.data.Dataset):
    """Base class: subclasses implement ``__len__`` and ``_load(index)`` (full sample).

    ``n_planes`` planes are kept: random sorted subset when training
    (``augment`` given), evenly spaced otherwise. Randomness comes from
    :func:`sample_generator` ``(seed, epoch, index)``; call :meth:`set_epoch`
    each epoch.
    """

    def __init__(self, n_planes: int | None = None, augment: AugmentConfig | None = None, seed: int = 0) -> None:
        if augment is not None and not isinstance(augment, AugmentConfig):
            raise TypeError(f"augment must be an AugmentConfig or None, got {type(augment).__name__}")
        if n_planes is not None and (not isinstance(n_planes, int) or n_planes < 1):
            raise ValueError(f"n_planes must be a positive int or None, got {n_planes!r}")
        self.n_planes = n_planes
        self.augment = augment
        self.seed = int(seed)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch that seeds the augmentation."""
        if not isinstance(epoch, int) or epoch < 0:
            raise ValueError(f"epoch must be a non-negative int, got {epoch!r}")
        self.epoch = epoch

    def _load(self, index: int) -> dict[str, torch.Tensor]:  # pragma: no cover - abstract
        raise NotImplementedError

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {type(self).__name__} of length {len(self)}")
        index = index % len(self)
        sample = self._load(index)
        gen = sample_generator(self.seed, self.epoch, index) if self.augment is not None else None
        keep = choose_planes(sample["stack"].shape[0], self.n_planes, gen)
        sample = dict(sample, stack=sample["stack"][keep], focus=sample["focus"][keep])
        if self.augment is not None and gen is not None:
            sample = augment_sample(sample, self.augment, gen)
        return sample


def extract_zip(path: str | os.PathLike[str], out_dir: str | os.PathLike[str], log: Callable[[str], None] = print) -> Path:
    """Unpack a zip into ``out_dir`` once (a ``.<name>.extracted`` marker records it)."""
    import zipfile

    path, out_dir = Path(path), Path(out_dir)
    marker = out_dir / f".{path.name}.extracted"
    if marker.is_file():
        log(f"{path.name}: already unpacked in {out_dir}")
        return out_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path) as z:
        z.extractall(out_dir)
        n = len(z.namelist())
    marker.write_text(file_sha256(path))
    log(f"unpacked {n} files from {path.name} into {out_dir}")
    return out_dir


def run_fetch(entry: Mapping[str, Any], dest: Path, log: Callable[[str], None] = print) -> Path | None:
    """CLI helper: :func:`fetch_file`, printing the instructions instead of a traceback when the
    file must be downloaded by hand. Returns the path, or None when it is missing."""
    try:
        return fetch_file(entry, dest, log=log)
    except DatasetNotFoundError as err:
        log(f"MISSING: {err}")
        return None


class LazyH5:
    """Mixin for datasets backed by one HDF5 file at ``self.path``: the file is
    opened on first use, once per process (DataLoader workers each open their
    own), and the handle is dropped when the dataset is pickled."""

    _h5 = None
    _pid: int | None = None

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_h5"], state["_pid"] = None, None  # h5py handles do not pickle / fork safely
        return state

    def _file(self):
        import h5py

        if self._h5 is None or self._pid != os.getpid():
            self._h5 = h5py.File(self.path, "r")
            self._pid = os.getpid()
        return self._h5

    def close(self) -> None:
        """Close the h5 handle (reopened on the next access)."""
        if self._h5 is not None:
            self._h5.close()
            self._h5 = None

