"""What a reader needs to reproduce a report: revision, processor, versions, device, profile."""

from __future__ import annotations

import datetime as _dt
import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from dflib.utils import cpu_model

#: the packages whose versions the report records
PACKAGES = ("dflib", "torch", "numpy", "scipy", "scikit-image", "matplotlib", "papermill", "nbclient", "nbconvert",
            "ipykernel", "ipywidgets", "pyzmq")


def _git_revision(directory: Path) -> str:
    """Short revision of the git checkout holding ``directory`` (``+dirty`` if modified)."""
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=directory, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=directory, capture_output=True, text=True).stdout
        return rev + ("+dirty" if dirty.strip() else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def environment_record(profile: str, notebook_dir: Path | None = None) -> dict:
    """What a reader needs to reproduce the report: revision, versions, device, profile."""
    import torch

    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {
        "date_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "git_revision": _git_revision(Path(notebook_dir) if notebook_dir is not None else Path.cwd()),
        "profile": profile,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "processor": cpu_model(),
        "logical_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else f"CPU ({cpu_model()})",
        "torch_threads": torch.get_num_threads(),
        "packages": versions,
    }
