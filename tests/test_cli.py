"""The dflib command line as a user meets it: render → predict, errors, help."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
import torch

from dflib import io
from dflib.cli import main
from dflib.models import DualFocus, DualFocusConfig
from dflib.predict import predict
from dflib.scenes import random_scene
from dflib.train import TrainConfig, save_checkpoint


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pt"
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = DualFocus(DualFocusConfig.tiny())
    save_checkpoint(path, model, TrainConfig())
    return path


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    d = tmp_path_factory.mktemp("stack")
    scene = random_scene(3, size=(64, 80))
    io.write_image(d / "rgb.png", scene.rgb)
    np.save(d / "depth.npy", scene.depth)
    assert main(["render", "--rgb", str(d / "rgb.png"), "--depth", str(d / "depth.npy"), "--camera", "fod500",
                 "--focus", "0.1", "0.15", "0.3", "0.7", "1.5", "--out", str(d / "out")]) == 0
    return d / "out"


def test_render_writes_stack_and_focus(rendered):
    meta = json.loads((rendered / "focus.json").read_text())
    assert meta["focus_m"] == pytest.approx([0.1, 0.15, 0.3, 0.7, 1.5])
    imgs = [iio.imread(rendered / n) for n in meta["images"]]
    assert all(im.shape == (64, 80, 3) and im.dtype == np.uint8 for im in imgs)
    assert (rendered / "aif.png").is_file()


def test_render_prints_a_predict_command_that_runs(rendered, checkpoint, tmp_path, capsys):
    np.save(tmp_path / "depth.npy", np.full((64, 80), 0.5, np.float32))
    assert main(["render", "--rgb", str(rendered / "aif.png"), "--depth", str(tmp_path / "depth.npy"),
                 "--camera", "fod500", "--focus", "0.3", "0.7", "--out", str(tmp_path / "s")]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("depth from it"))
    argv = line.split(":  dflib ")[1].split()
    assert argv[:3] == ["predict", "--images", str(tmp_path / "s" / "00.png")] and "--no-align" in argv
    assert main([*argv, "--checkpoint", str(checkpoint), "--device", "cpu", "--no-progress"]) == 0
    assert "alignment: off" in capsys.readouterr().out  # the frames are aligned by construction
    assert np.load(tmp_path / "s" / "depth.npy").shape == (64, 80)  # not cropped


def test_render_says_how_much_blur_its_focus_set_gives(rendered, tmp_path, capsys):
    # FoD500's camera (2.9 mm f/1, 5.6 µm) at 0.1-1.5 m: the embedded data, inside 3-25 px; at 2.2-4.8 m almost none
    depth = tmp_path / "depth.npy"
    for focus, blur, note in ((["0.1", "1.5"], "6.7 px", None), (["2.2", "4.8"], "0.17 px", "little focus information")):
        np.save(depth, np.full((64, 80), float(focus[1]) - 0.5, np.float32))  # a scene within the focus distances
        assert main(["render", "--rgb", str(rendered / "aif.png"), "--depth", str(depth), "--camera", "fod500",
                     "--focus", *focus, "--out", str(tmp_path / focus[0])]) == 0
        out = capsys.readouterr().out
        assert f"is {blur} wide" in out
        assert (note in out) if note else ("note:" not in out)


def test_render_says_when_most_of_the_scene_lies_outside_the_focus_distances(rendered, tmp_path, capsys):
    # depth from the stack stays within [nearest, farthest focus distance]: a scene at 2-4 m focused at 0.1-1.5 m
    # cannot show its depth, and the note says where to focus instead; 17 % outside is no note
    depth = tmp_path / "depth.npy"
    ramp = np.broadcast_to(np.linspace(2.0, 4.0, 80, dtype=np.float32), (64, 80)).copy()
    ramp[:, :8] = 0.0  # holes (no depth) are left out
    np.save(depth, ramp)
    for focus, note in ((["0.1", "1.5"], "100 % farther than 1.5 m"), (["2.5", "4"], None),
                        (["3.2", "4"], "56 % nearer than 3.2 m")):
        assert main(["render", "--rgb", str(rendered / "aif.png"), "--depth", str(depth), "--camera", "fod500",
                     "--focus", *focus, "--out", str(tmp_path / focus[0])]) == 0
        lines = [line for line in capsys.readouterr().out.splitlines() if "the scene spans" in line]
        if note is None:
            assert not lines
        else:
            assert len(lines) == 1 and note in lines[0]
    assert "spans 2.2-4 m" in lines[0] and "stays within 3.2-4 m" in lines[0] and "(--near 2.2 --far 4)" in lines[0]


def test_predict_cli_matches_api(rendered, checkpoint, tmp_path):
    meta = json.loads((rendered / "focus.json").read_text())
    images = [str(rendered / n) for n in meta["images"]]
    focus = [str(f) for f in meta["focus_m"]]
    out = tmp_path / "depth.png"
    assert main(["predict", "--images", *images, "--focus", *focus, "--checkpoint", str(checkpoint),
                 "--out", str(out), "--device", "cpu"]) == 0
    api = predict([io.read_image(p) for p in images], meta["focus_m"], checkpoint=checkpoint, device="cpu")
    cli_depth = np.load(tmp_path / "depth.npy")
    np.testing.assert_allclose(cli_depth, api.depth, rtol=0, atol=1e-5)  # float32 rounding (~2e-6 relative seen)
    png = iio.imread(out)
    assert png.dtype == np.uint16
    np.testing.assert_allclose(png / 1000.0, api.depth, atol=0.5e-3 + 1e-6)
    assert np.load(tmp_path / "depth_sigma.npy").shape == (64, 80)
    for name in ("depth_preview.png", "depth_sigma.png", "depth_aif.png", "depth.json"):
        assert (tmp_path / name).is_file()
    assert 0.1 - 1e-6 <= api.depth.min() and api.depth.max() <= 1.5 + 1e-6


def test_predict_rejects_mismatched_counts_and_sizes(rendered, checkpoint, tmp_path, capsys):
    meta = json.loads((rendered / "focus.json").read_text())
    images = [str(rendered / n) for n in meta["images"]]
    assert main(["predict", "--images", *images, "--focus", "0.1", "0.2", "--checkpoint", str(checkpoint),
                 "--out", str(tmp_path / "d.png")]) == 2
    assert "5 images but 2 focus distances" in capsys.readouterr().err
    iio.imwrite(tmp_path / "small.png", np.zeros((10, 10, 3), np.uint8))
    assert main(["predict", "--images", *images[:4], str(tmp_path / "small.png"), "--focus", *map(str, meta["focus_m"]),
                 "--checkpoint", str(checkpoint), "--out", str(tmp_path / "d.png")]) == 2
    assert "same size" in capsys.readouterr().err


def test_missing_checkpoint_is_a_clear_error(rendered, tmp_path, capsys):
    meta = json.loads((rendered / "focus.json").read_text())
    images = [str(rendered / n) for n in meta["images"]]
    code = main(["predict", "--images", *images, "--focus", *map(str, meta["focus_m"]),
                 "--checkpoint", str(tmp_path / "nope.pt"), "--out", str(tmp_path / "d.png")])
    assert code == 2 and "does not exist" in capsys.readouterr().err


def test_pfm_and_png_depth_readers(tmp_path):
    depth = np.arange(12, dtype=np.float32).reshape(3, 4) / 4 + 0.5
    with open(tmp_path / "d.pfm", "wb") as f:
        f.write(b"Pf\n4 3\n-1.0\n")
        f.write(np.flipud(depth).astype("<f4").tobytes())
    np.testing.assert_array_equal(io.read_depth(tmp_path / "d.pfm"), depth)
    io.write_depth(tmp_path / "d", depth)
    np.testing.assert_allclose(io.read_depth(tmp_path / "d.png"), depth, atol=5e-4)
    with pytest.raises(ValueError, match="npy, .pfm"):
        io.read_depth(tmp_path / "d.json")


# -- bad input: exit status 2, one line naming the argument and the value, no traceback -----------------
def _bad_files(d):
    """Files for the table below, made once per test in ``d``."""
    (d / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)  # PNG magic, garbage after
    (d / "notes.png").write_text("these are notes, not pixels")
    (d / "folder.png").mkdir()
    (d / "corrupt.npy").write_bytes(b"\x93NUMPY garbage")
    (d / "random.pt").write_bytes(bytes(range(256)) * 64)
    torch.save({"weights": torch.zeros(3)}, d / "foreign.pt")  # a torch file, not dflib's
    torch.save(torch.nn.Linear(2, 2), d / "module.pt")  # a pickled module: needs code to load
    (d / "a_file").write_text("not a folder")
    (d / "unknown.json").write_text(json.dumps({"model": "tiny", "learning_rate": 1e-3}))
    (d / "broken.json").write_text("{'model': tiny")
    (d / "bad_value.yaml").write_text("steps: -5\n")


def _truncated(checkpoint, d):
    data = checkpoint.read_bytes()
    (d / "truncated.pt").write_bytes(data[: len(data) // 2])
    return d / "truncated.pt"


#: (id, argv with {stack} = five stack images, {focus} = their distances, {ckpt} = a checkpoint,
#:  {d} = the folder of _bad_files), the argument the message must name, a value it must show
BAD_INPUTS = [
    ("image-missing", "predict --images {d}/nope.png {stack4} --focus {focus} --checkpoint {ckpt} --out {d}/o.png",
     "--images", "nope.png"),
    ("image-corrupt", "predict --images {d}/corrupt.png {stack4} --focus {focus} --checkpoint {ckpt} --out {d}/o.png",
     "--images", "corrupt.png"),
    ("image-not-an-image", "predict --images {stack4} {d}/notes.png --focus {focus} --checkpoint {ckpt} --out {d}/o.png",
     "--images", "notes.png"),
    ("image-a-folder", "predict --images {d}/folder.png {stack4} --focus {focus} --checkpoint {ckpt} --out {d}/o.png",
     "--images", "folder.png"),
    ("checkpoint-missing", "predict --images {stack} --focus {focus} --checkpoint {d}/none.pt --out {d}/o.png",
     "--checkpoint", "none.pt"),
    ("checkpoint-corrupt", "predict --images {stack} --focus {focus} --checkpoint {d}/random.pt --out {d}/o.png",
     "--checkpoint", "random.pt"),
    ("checkpoint-truncated", "predict --images {stack} --focus {focus} --checkpoint {truncated} --out {d}/o.png",
     "--checkpoint", "truncated.pt"),
    ("checkpoint-foreign", "predict --images {stack} --focus {focus} --checkpoint {d}/foreign.pt --out {d}/o.png",
     "--checkpoint", "foreign.pt"),
    ("checkpoint-pickled-code", "predict --images {stack} --focus {focus} --checkpoint {d}/module.pt --out {d}/o.png",
     "--checkpoint", "module.pt"),
    ("focus-zero", "predict --images {stack} --focus 0 0.15 0.3 0.7 1.5 --checkpoint {ckpt} --out {d}/o.png", "--focus", "0 m"),
    ("focus-negative", "predict --images {stack} --focus -0.1 0.15 0.3 0.7 1.5 --checkpoint {ckpt} --out {d}/o.png",
     "--focus", "-0.1"),
    ("focus-nan", "predict --images {stack} --focus 0.1 nan 0.3 0.7 1.5 --checkpoint {ckpt} --out {d}/o.png", "--focus", "nan"),
    # inf is a valid far focus (issue 14): tests/test_stack_io.py covers it
    ("focus-not-a-number", "predict --images {stack} --focus 0.1 0.15 far 0.7 1.5 --checkpoint {ckpt} --out {d}/o.png",
     "--focus", "far"),
    ("render-focus-negative", "render --rgb {d}/rgb.png --depth {d}/depth.npy --focus 0.5 -2 --out {d}/r", "--focus", "-2"),
    ("out-unwritable", "predict --images {stack} --focus {focus} --checkpoint {ckpt} --out {d}/a_file/depth.png",
     "--out", "a_file"),
    ("render-out-unwritable", "render --rgb {d}/rgb.png --depth {d}/depth.npy --out {d}/a_file/stack", "--out", "a_file"),
    ("depth-corrupt", "render --rgb {d}/rgb.png --depth {d}/corrupt.npy --out {d}/r", "--depth", "corrupt.npy"),
    ("config-unknown-field", "train --config {d}/unknown.json --out-dir {d}/run", "--config", "learning_rate"),
    ("config-not-json", "train --config {d}/broken.json --out-dir {d}/run", "--config", "broken.json"),
    ("config-bad-value", "train --config {d}/bad_value.yaml --out-dir {d}/run", "--config", "-5"),
    ("config-missing", "train --config {d}/none.yaml --out-dir {d}/run", "--config", "none.yaml"),
    ("device-unknown", "predict --images {stack} --focus {focus} --device gpu7 --out {d}/o.png", "--device", "gpu7"),
    ("working-size-negative", "predict --images {stack} --focus {focus} --working-size -3 --out {d}/o.png",
     "--working-size", "-3"),
    ("working-size-word", "predict --images {stack} --focus {focus} --working-size big --out {d}/o.png",
     "--working-size", "big"),
    ("max-sigma-zero", "predict --images {stack} --focus {focus} --max-sigma 0 --out {d}/o.png", "--max-sigma", "0"),
    ("eval-checkpoint-foreign", "eval --checkpoint {d}/foreign.pt --limit 1 --out {d}/e", "--checkpoint", "foreign.pt"),
]


@pytest.mark.parametrize("argv,argument,value", [c[1:] for c in BAD_INPUTS], ids=[c[0] for c in BAD_INPUTS])
def test_bad_input_exits_2_with_one_line_naming_argument_and_value(argv, argument, value, rendered, checkpoint,
                                                                   tmp_path, capsys):
    _bad_files(tmp_path)
    scene = random_scene(1, size=(16, 16))
    io.write_image(tmp_path / "rgb.png", scene.rgb)
    np.save(tmp_path / "depth.npy", scene.depth)
    meta = json.loads((rendered / "focus.json").read_text())
    stack = [str(rendered / n) for n in meta["images"]]
    fields = dict(stack=" ".join(stack), stack4=" ".join(stack[:4]), focus=" ".join(map(str, meta["focus_m"])),
                  ckpt=checkpoint, d=tmp_path, truncated=_truncated(checkpoint, tmp_path))
    try:
        code = main(argv.format(**fields).split())
    except SystemExit as exc:  # argparse's own checks
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert f"argument {argument}" in lines[0] and value in lines[0], lines[0]
    assert "Traceback" not in err and "weights_only" not in err
    if argument == "--checkpoint" and "missing" not in argv and "none.pt" not in argv:
        assert "not a dflib checkpoint" in lines[0] or "not a usable dflib checkpoint" in lines[0]
    assert not (tmp_path / "o.npy").exists()  # nothing written on bad input


def test_python_dash_m_dflib_is_the_dflib_command(tmp_path):
    """`python -m dflib` runs the same command line as the `dflib` script (help, errors, exit status)."""
    def run(*argv):
        return subprocess.run([sys.executable, "-m", "dflib", *argv], capture_output=True, text=True)

    assert run("--help").stdout == subprocess.run([sys.executable, "-c", "from dflib.cli import main; main()", "--help"],
                                                  capture_output=True, text=True).stdout
    torch.save({"weights": torch.zeros(1)}, tmp_path / "foreign.pt")
    iio.imwrite(tmp_path / "a.png", np.zeros((8, 8, 3), np.uint8))
    bad = run("predict", "--images", str(tmp_path / "a.png"), str(tmp_path / "a.png"), "--focus", "0.1", "0.2",
              "--checkpoint", str(tmp_path / "foreign.pt"), "--out", str(tmp_path / "d.png"))
    assert bad.returncode == 2 and bad.stderr.startswith("dflib predict: error: argument --checkpoint")
    assert "Traceback" not in bad.stderr and len(bad.stderr.strip().splitlines()) == 1


def test_help_lists_the_commands():
    out = subprocess.run([sys.executable, "-m", "dflib.cli", "--help"], capture_output=True, text=True, check=True).stdout
    for cmd in ("render", "train", "eval", "predict", "bench"):
        assert cmd in out


def test_predict_from_a_rendered_folder_reads_focus_json(rendered, checkpoint, tmp_path, capsys):
    out = tmp_path / "d.png"
    assert main(["predict", "--images", str(rendered), "--checkpoint", str(checkpoint), "--out", str(out),
                 "--device", "cpu", "--no-progress"]) == 0
    said = capsys.readouterr().out
    assert "read 5 frames of 80x64 px, focus 0.1, 0.15, 0.3, 0.7, 1.5 m (near to far, from focus.json)" in said
    assert "alignment:" in said  # says what it did about breathing, whatever it was
    meta = json.loads((tmp_path / "d.json").read_text())
    assert meta["focus"] == pytest.approx([0.1, 0.15, 0.3, 0.7, 1.5]) and meta["focus_source"] == "focus.json"
    assert meta["frames"] == ["00.png", "01.png", "02.png", "03.png", "04.png"]


def test_predict_max_sigma_masks_as_plane_sigma_says(rendered, checkpoint, tmp_path, capsys):
    from dflib.predict import predict_files

    pred, _ = predict_files(rendered, checkpoint=checkpoint, device="cpu", progress=False)
    t = float(np.round(np.median(pred.plane_sigma()), 4))  # the test checkpoint is untrained: about half above
    assert main(["predict", "--images", str(rendered), "--checkpoint", str(checkpoint), "--out", str(tmp_path / "d.png"),
                 "--device", "cpu", "--no-progress", "--max-sigma", str(t)]) == 0
    masked = pred.plane_sigma() > t
    assert 0.3 < masked.mean() < 0.7
    np.testing.assert_array_equal(np.isnan(np.load(tmp_path / "d.npy")), masked)
    assert json.loads((tmp_path / "d.json").read_text())["mask"]["masked_share"] == pytest.approx(masked.mean(), abs=1e-4)
    assert f"mask: {masked.mean():.1%} of the pixels have σ above {t:g} focus plane(s)" in capsys.readouterr().out


def test_predict_focus_units_and_infinity(rendered, checkpoint, tmp_path):
    meta = json.loads((rendered / "focus.json").read_text())
    images = [str(rendered / n) for n in meta["images"]]
    base = ["predict", "--images", *images, "--checkpoint", str(checkpoint), "--device", "cpu", "--no-align"]
    # far to near in dioptres (0 = infinity) and near to far in metres with inf: the same stack
    assert main(base + ["--focus", "10", "5", "2", "1", "0", "--focus-unit", "diopter", "--out", str(tmp_path / "a.png")]) == 0
    assert main(base + ["--focus", "0.1", "0.2", "0.5", "1", "inf", "--out", str(tmp_path / "b.png")]) == 0
    a, b = np.load(tmp_path / "a.npy"), np.load(tmp_path / "b.npy")
    np.testing.assert_allclose(a, b, rtol=1e-5)
    info = json.loads((tmp_path / "b.json").read_text())
    assert info["unit"] == "m" and info["sigma_unit"] == "diopter" and info["focus"][-1] == "inf"
    assert (0.1 - 1e-5 <= a).all()


@pytest.mark.parametrize("focus, message", [
    (["0.1", "0", "0.3", "0.7", "1.5"], "focus: value 2 of 5 is 0 m"),
    (["0.1", "-0.15", "0.3", "0.7", "1.5"], "focus: value 2 of 5 is -0.15 m"),
    (["0.1", "nan", "0.3", "0.7", "1.5"], "focus: value 2 of 5 is NaN"),
    (["0.1", "0.3", "0.15", "0.7", "1.5"], "is not monotonic"),
])
def test_predict_bad_focus_is_a_one_line_error(rendered, checkpoint, tmp_path, capsys, focus, message):
    meta = json.loads((rendered / "focus.json").read_text())
    images = [str(rendered / n) for n in meta["images"]]
    code = main(["predict", "--images", *images, "--focus", *focus, "--checkpoint", str(checkpoint),
                 "--out", str(tmp_path / "d.png")])
    err = capsys.readouterr().err
    assert code == 2 and message in err and err.count("\n") == 1
    assert not (tmp_path / "d.png").exists()


BENCH_SCRIPTS = sorted((Path(__file__).parents[1] / "benchmarks").glob("bench_*.py"))


@pytest.mark.parametrize("script", BENCH_SCRIPTS, ids=lambda p: p.stem)
def test_every_benchmark_takes_the_quick_flag_dflib_bench_passes(script):
    # `dflib bench --quick` hands --quick to each bench_*.py; one that does not know it stops with status 2
    out = subprocess.run([sys.executable, str(script), "--help"], capture_output=True, text=True, check=True).stdout
    assert "--quick" in out


def test_a_quick_bench_run_writes_beside_the_recorded_results(tmp_path):
    # `dflib bench --quick` from a checkout's root: the smoke run writes render_quick.json, never render.json
    bench = tmp_path / "benchmarks"
    (bench / "results").mkdir(parents=True)
    (bench / "bench_render.py").write_text((Path(__file__).parents[1] / "benchmarks" / "bench_render.py").read_text())
    run = subprocess.run([sys.executable, "-m", "dflib", "bench", "--quick", "--only", "render"], cwd=tmp_path,
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert sorted(p.name for p in (bench / "results").iterdir()) == ["render_quick.json"]
    assert json.loads((bench / "results" / "render_quick.json").read_text())["repeats"] == 1
