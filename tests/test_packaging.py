"""The wheel is self-contained: weights and the dataset registry travel inside it,
and an installed dflib predicts with its shipped weights from anywhere."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from dflib import io
from dflib.optics import FOD500_CAMERA, FOD500_FOCUS_M
from dflib.predict import DEFAULT_CHECKPOINT, predict
from dflib.render import render_focal_stack
from dflib.scenes import random_scene

ROOT = Path(__file__).resolve().parents[1]
#: package data the code reads at run time
PACKAGE_DATA = ["dflib/weights/dualfocus_tiny.pt", "dflib/weights/dfv_tiny.pt", "dflib/data/registry.json"]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """dflib's wheel, built offline from a copy of the sources (the checkout stays clean)."""
    src = tmp_path_factory.mktemp("src")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(ROOT / "dflib", src / "dflib", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-build-isolation", "--no-deps", "--no-index",
                    "--disable-pip-version-check", "-q", "-w", str(out), str(src)], check=True, capture_output=True)
    (whl,) = out.glob("dflib-*.whl")
    return whl


def test_package_data_is_in_the_wheel(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    missing = [p for p in PACKAGE_DATA if p not in names]
    assert not missing, f"not in {wheel.name}: {missing}"
    shipped = {p.relative_to(ROOT).as_posix() for p in (ROOT / "dflib" / "weights").glob("*.pt")}
    assert shipped and shipped <= names  # every shipped checkpoint, not only the two named above
    assert "dflib/__main__.py" in names


@pytest.mark.slow
def test_installed_wheel_predicts_with_shipped_weights_outside_the_checkout(wheel, tmp_path):
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "--disable-pip-version-check",
                    "-q", "--target", str(site), str(wheel)], check=True, capture_output=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    scene = random_scene(5, size=(48, 64))
    stack = render_focal_stack(scene.rgb, scene.depth, FOD500_CAMERA, FOD500_FOCUS_M, seed=0)
    images = []
    for i, img in enumerate(stack.images):
        io.write_image(elsewhere / f"{i}.png", img.numpy())
        images.append(str(elsewhere / f"{i}.png"))
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env.update(PYTHONPATH=str(site), PYTHONNOUSERSITE="1")

    def run(*argv):
        return subprocess.run([sys.executable, *argv], cwd=elsewhere, env=env, capture_output=True, text=True)

    where = run("-c", "import dflib, json; from dflib.data.common import load_registry; "
                      "print(json.dumps([dflib.__file__, len(load_registry())]))")
    assert where.returncode == 0, where.stderr
    module, n_entries = json.loads(where.stdout)
    assert Path(module).is_relative_to(site) and n_entries > 0  # the installed copy, not the checkout
    focus = [f"{f:g}" for f in FOD500_FOCUS_M]
    res = run("-m", "dflib", "predict", "--images", *images, "--focus", *focus, "--out", "depth.png", "--device", "cpu")
    assert res.returncode == 0, res.stderr
    expected = predict([io.read_image(p) for p in images], FOD500_FOCUS_M, checkpoint=DEFAULT_CHECKPOINT, device="cpu")
    np.testing.assert_allclose(np.load(elsewhere / "depth.npy"), expected.depth, atol=1e-4)  # another process, other float summation order
