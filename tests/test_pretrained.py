"""dflib.models.load_pretrained: names of the shipped checkpoints, aliases, errors, and its users."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dflib.models import load_pretrained, pretrained_names
from dflib.models.pretrained import (ALIASES, DEFAULT_MODEL, DEFAULT_SIZE, WEIGHTS_DIR, load_checkpoint_or_name, pretrained_path,
                                     pretrained_train_config, train_config_of)
from dflib.train import load_model


def test_every_shipped_file_has_a_name_and_the_aliases_point_to_the_default_size():
    files = sorted(p.name[:-3] for p in WEIGHTS_DIR.iterdir() if p.name.endswith(".pt"))
    names = pretrained_names()
    assert {"dualfocus_tiny", "dfv_tiny", "dualfocus", "dfv"} <= set(names)
    assert set(files) <= set(names) and set(names) - set(files) <= set(ALIASES)
    assert ALIASES == {"dualfocus": f"dualfocus_{DEFAULT_SIZE}", "dfv": f"dfv_{DEFAULT_SIZE}"}
    assert pretrained_path("dualfocus").name == f"dualfocus_{DEFAULT_SIZE}.pt"


def test_a_name_loads_the_same_weights_as_its_file():
    for name in ("dualfocus", "dfv_tiny"):
        a = load_pretrained(name, device="cpu")
        b = load_model(pretrained_path(name), device="cpu")
        assert not a.training
        sa, sb = a.state_dict(), b.state_dict()
        assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)
    assert load_pretrained("dualfocus", "cpu").config.surface_branch and not load_pretrained("dfv", "cpu").config.surface_branch


def test_unknown_names_list_the_available_ones():
    with pytest.raises(ValueError, match=r"no shipped checkpoint 'huge'; available: .*dualfocus_tiny.*dfv"):
        load_pretrained("huge")
    with pytest.raises(TypeError, match="name must be a str"):
        load_pretrained(3)


def test_a_checkpoint_argument_is_a_file_or_a_name(tmp_path):
    model = load_checkpoint_or_name("dfv", "cpu")
    assert not model.config.surface_branch
    default = load_checkpoint_or_name(None, "cpu")  # the default: DEFAULT_MODEL
    assert default.config.surface_branch == (DEFAULT_MODEL == "dualfocus")
    named = load_pretrained(DEFAULT_MODEL, "cpu").state_dict()
    assert all(torch.equal(v, named[k]) for k, v in default.state_dict().items())
    with pytest.raises(FileNotFoundError):
        load_checkpoint_or_name(str(tmp_path / "nothing.pt"), "cpu")


def test_train_config_of_a_file_a_name_or_the_default():
    from importlib import resources

    assert train_config_of(None) == pretrained_train_config(DEFAULT_MODEL) and train_config_of(None)["data"] == "diverse"
    assert train_config_of("dfv_tiny") == pretrained_train_config("dfv_tiny") != train_config_of(None)
    with resources.as_file(pretrained_path("dfv_tiny")) as path:  # the same file, given as a path
        assert train_config_of(str(path)) == train_config_of("dfv_tiny")


def test_a_folder_named_like_a_shipped_model_does_not_hide_it(tmp_path, monkeypatch):
    """`dflib predict --checkpoint dfv --out dfv/depth.png` makes a folder `dfv`: the name still means the model."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "dfv").mkdir()
    assert not load_checkpoint_or_name("dfv", "cpu").config.surface_branch


def test_predict_with_a_name_equals_predict_with_its_file():
    from dflib.predict import predict

    rng = np.random.default_rng(0)
    images = [rng.random((24, 32, 3), dtype=np.float32) for _ in range(3)]
    focus = [0.2, 0.5, 1.2]
    a = predict(images, focus, checkpoint="dfv", device="cpu", progress=False)
    b = predict(images, focus, checkpoint=str(pretrained_path("dfv")), device="cpu", progress=False)
    assert np.array_equal(a.depth, b.depth)
