"""The ``dflib`` command line: render | predict | train | eval | fetch | bench.

Run ``dflib COMMAND --help`` for each command's options; ``python -m dflib`` is
the same command.

Bad input (a missing, unreadable or corrupt file, a checkpoint that is not a
dflib checkpoint, a non-positive or non-finite distance, an output path that
cannot be written, a config file with unknown fields, ...) ends the command
with exit status 2 and one line on stderr naming the argument and the value,
never a traceback. ``dflib train`` stopped by Ctrl-C or SIGTERM saves
``last.pt`` at the step reached and exits with 128 + the signal number.
"""

from __future__ import annotations

import argparse
import json
import math
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from dflib.models.config import PRESETS as MODEL_PRESETS


class CLIError(Exception):
    """Bad input to a command: reported as one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line (no usage block)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _positive_float(text: str) -> float:
    """argparse type: a positive, finite number."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be positive and finite, got {text!r}")
    return value


def _device(text: str) -> str:
    """argparse type: ``auto``, or a torch device string that exists here."""
    if text == "auto":
        return text
    import torch

    try:
        dev = torch.device(text)
    except (RuntimeError, ValueError):
        raise argparse.ArgumentTypeError(f"unknown device {text!r} (expected auto, cpu, cuda, cuda:1, ...)") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise argparse.ArgumentTypeError(f"device {text!r}: CUDA is not available on this machine")
    return text


def _arg(name: str, fn, *args, **kwargs):
    """``fn(*args, **kwargs)``; a bad-input error becomes a :class:`CLIError` naming argument ``name``."""
    try:
        return fn(*args, **kwargs)
    except (ValueError, OSError) as exc:
        raise CLIError(f"argument {name}: {_one_line(exc)}") from None


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) if str(exc).strip() else type(exc).__name__
    if isinstance(exc, OSError) and exc.filename is not None and str(exc.filename) not in text:
        text += f": {str(exc.filename)!r}"
    return text


def _writable_folder(name: str, folder: Path) -> Path:
    """Create ``folder`` if needed and check that a file can be written in it."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        blocker = next((p for p in (folder, *folder.parents) if p.exists() and not p.is_dir()), None)
        reason = f"{str(blocker)!r} is a file, not a folder" if blocker is not None else (exc.strerror or type(exc).__name__)
        raise CLIError(f"argument {name}: cannot write to {str(folder)!r} ({reason})") from None
    return folder


def _camera(args):
    from dflib import optics

    if args.camera == "fod500":
        return optics.FOD500_CAMERA
    if args.camera == "nyu":
        return optics.NYU_CAMERA
    if None in (args.focal_length_mm, args.f_number, args.pixel_pitch_um):
        raise CLIError("argument --camera: 'custom' needs --focal-length-mm, --f-number and --pixel-pitch-um")
    return optics.ThinLens(args.focal_length_mm * 1e-3, args.f_number, args.pixel_pitch_um * 1e-6)


def _blur_note(camera, focus_m) -> str:
    """One line on how much blur the focus set gives, against the 3–25 px the shipped mid models learned."""
    from dflib.data.diverse import DiverseConfig
    from dflib.optics import stack_blur_px

    blur, (lo, hi) = stack_blur_px(camera, focus_m), DiverseConfig().coc_px
    f = [float(x) for x in focus_m]
    line = (f"blur: a point at {max(f):.3g} m is {blur:.2g} px wide in the frame focused at {min(f):.3g} m "
            f"(the shipped mid models learned {lo:g}-{hi:g} px)")
    if blur < lo:
        line += ("\nnote: little focus information; focus nearer, use a wider aperture or smaller pixels "
                 "(--camera custom), or spread the focus distances")
    elif blur > hi:
        line += "\nnote: more blur than the models learned; predict with a smaller --working-size"
    return line


def _depth_range_note(depth, focus_m) -> str | None:
    """A note when more than half of the scene lies outside the focus distances, else None.

    Depth read from a stack (the expectation over its planes) never leaves [nearest, farthest focus distance],
    so such a stack cannot show most of its scene's depth. Pixels with no depth (non-finite or <= 0) are left out.
    """
    import numpy as np

    d = depth[np.isfinite(depth) & (depth > 0)]
    lo, hi = min(float(f) for f in focus_m), max(float(f) for f in focus_m)
    if d.size == 0 or np.mean((d < lo) | (d > hi)) <= 0.5:
        return None
    near, far = np.percentile(d, [1, 99])
    parts = [f"{100 * frac:.0f} % {side} {f:.3g} m" for frac, side, f in
             ((np.mean(d < lo), "nearer than", lo), (np.mean(d > hi), "farther than", hi)) if frac > 0]
    line = (f"note: the scene spans {near:.3g}-{far:.3g} m (1st-99th percentile), {' and '.join(parts)}: depth read "
            f"from this stack stays within {lo:.3g}-{hi:.3g} m")
    return line + (f"; to cover the scene, focus over it (--near {near:.3g} --far {far:.3g})" if far > near else "")


def cmd_render(args) -> int:
    from dflib import io, optics
    from dflib.render import render_focal_stack

    out = _writable_folder("--out", Path(args.out))
    rgb = _arg("--rgb", io.read_image, args.rgb)
    depth = _arg("--depth", io.read_depth, args.depth, png_scale=args.depth_scale)
    if rgb.shape[:2] != depth.shape:
        raise CLIError(f"argument --depth: {args.depth!r} is {depth.shape[1]}x{depth.shape[0]} but --rgb {args.rgb!r} "
                       f"is {rgb.shape[1]}x{rgb.shape[0]}; they must match")
    if args.focus:
        focus = args.focus
    else:
        if args.planes < 2:
            raise CLIError(f"argument --planes: need at least 2 focus planes, got {args.planes}")
        if args.near >= args.far:
            raise CLIError(f"argument --near: {args.near:g} must be less than --far {args.far:g}")
        focus = optics.focus_uniform_diopters(args.near, args.far, args.planes).tolist()
    camera = _camera(args)
    stack = render_focal_stack(rgb, depth, camera, focus, noise=not args.no_noise, seed=args.seed)
    names = []
    for i, img in enumerate(stack.images):
        name = f"{i:02d}.png"
        io.write_image(out / name, img.numpy())
        names.append(name)
    io.write_image(out / "aif.png", stack.aif.numpy())
    (out / "focus.json").write_text(json.dumps({"images": names, "focus_m": [float(f) for f in stack.focus_m]}, indent=2))
    print(f"wrote {len(names)} images, aif.png and focus.json to {out}")
    print(_blur_note(camera, stack.focus_m))
    if (note := _depth_range_note(depth, stack.focus_m)) is not None:
        print(note)
    # rendered frames are aligned by construction: alignment could only add a false correction (heavy blur
    # moves the features it matches) and crop the frames
    print("depth from it (frames rendered aligned, so --no-align):  dflib predict --images "
          + " ".join(str(out / n) for n in names) + " --focus " + " ".join(f"{float(f):.4g}" for f in stack.focus_m)
          + f" --no-align --out {out / 'depth.png'}")
    return 0


def _working_size(value: str) -> int | str:
    """``--working-size``: a number of pixels (0 = full resolution) or ``auto``."""
    if value == "auto":
        return value
    try:
        size = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of pixels or auto, got {value!r}") from None
    if size < 0:
        raise argparse.ArgumentTypeError(f"expected a number of pixels >= 0 (0 = full resolution) or auto, got {value!r}")
    return size


def cmd_predict(args) -> int:
    from dflib.models.pretrained import load_checkpoint_or_name
    from dflib.predict import predict_files, write_prediction

    out = Path(args.out)
    _writable_folder("--out", out.parent)
    if args.focus is not None:
        from dflib.io import check_focus_values

        _arg("--focus", check_focus_values, args.focus, args.focus_unit)
    if args.checkpoint is not None:
        _arg("--checkpoint", load_checkpoint_or_name, args.checkpoint, "cpu")  # a bad checkpoint is named as such
    pred, info = _arg(
        "--images", predict_files,
        args.images, focus=args.focus, focus_unit=args.focus_unit, align=args.align, align_model=args.align_model,
        working_size=args.working_size, tile=args.tile, checkpoint=args.checkpoint, device=args.device,
        progress=False if args.no_progress else None, log=print,
    )
    _arg("--out", write_prediction, args.out, pred, info, png_scale=args.png_scale, max_sigma=args.max_sigma, log=print)
    return 0


def cmd_train(args) -> int:
    from dflib.train import TrainConfig, TrainingInterrupted, train

    if args.config and args.recipe:
        raise CLIError("argument --recipe: give --config or --recipe, not both")
    if args.recipe:
        cfg = _arg("--recipe", TrainConfig.recipe, args.recipe)
    else:
        cfg = _arg("--config", _load_config, args.config) if args.config else TrainConfig()
    overrides = {k: v for k, v in vars(args).items() if k in TrainConfig.__dataclass_fields__ and v is not None}
    cfg = TrainConfig.from_dict({**cfg.to_dict(), **overrides})
    _writable_folder("--out-dir", Path(cfg.out_dir))
    try:
        result = train(cfg, resume=args.resume)
    except TrainingInterrupted as stop:
        print(f"dflib train: stopped by {signal.Signals(stop.signum).name} at step {stop.step}; "
              f"checkpoint {stop.checkpoint} (continue with --resume)", file=sys.stderr)
        return 128 + stop.signum
    print(f"trained {result.step} steps; checkpoint {result.out_dir / 'last.pt'}")
    if result.val_metrics:
        print("validation: " + ", ".join(f"{k}={v:.4g}" for k, v in result.val_metrics.items()))
    return 0


def _load_config(path: str):
    """A :class:`~dflib.train_config.TrainConfig` from a .json/.yaml file; any problem is a ``ValueError``."""
    from dflib.train_config import TrainConfig

    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"config {path!r} does not exist")
    try:
        return TrainConfig.load(p)
    except (ValueError, TypeError) as exc:  # JSON/YAML syntax, unknown fields, bad values
        raise ValueError(f"config {path!r}: {_one_line(exc)}") from None
    except Exception as exc:  # yaml.YAMLError and friends
        raise ValueError(f"config {path!r} is not valid JSON or YAML ({_one_line(exc)})") from None


def cmd_eval(args) -> int:
    from dflib.evaluate import EMBEDDED_LENGTH, embedded_benchmark, evaluate, learned_method, sff_method

    _writable_folder("--out", Path(args.out))
    methods = [_arg("--checkpoint", learned_method, c, device=args.device) for c in args.checkpoint]
    methods += [sff_method(m) for m in args.sff]
    if not methods:
        raise CLIError("nothing to evaluate: give --checkpoint CKPT... and/or --sff MEASURE...")
    datasets = {}
    for name in args.dataset:
        if name == "embedded":
            datasets[name] = (embedded_benchmark(length=args.limit or EMBEDDED_LENGTH), "fod500")
        else:
            from dflib.data import open_dataset, protocol_for

            datasets[name] = (open_dataset(name, split="test", root=args.data_dir, limit=args.limit), protocol_for(name))
    table = evaluate(methods, datasets)
    paths = table.write(args.out)
    print(table.to_markdown())
    print("wrote " + ", ".join(str(p) for p in paths.values()))
    return 0


def cmd_fetch(args) -> int:
    from dflib.data import DatasetNotFoundError, fetch

    options = {k: getattr(args, k) for k in ("split", "planes", "protocols", "limit", "seed", "trainval", "test",
                                             "video_ids", "frames") if getattr(args, k) is not None}
    try:
        folder = fetch(args.name, args.dest, **options)
    except DatasetNotFoundError as err:
        print(f"MISSING: {err}")
        return 1
    print(f"{args.name}: ready in {folder}")
    return 0


def cmd_bench(args) -> int:
    root = Path.cwd()
    bench_dir = root / "benchmarks"
    scripts = sorted(bench_dir.glob("bench_*.py"))
    if not scripts:
        raise CLIError(f"no benchmark scripts in {str(bench_dir)!r}: run dflib bench from the root of a source checkout")
    if args.only:
        scripts = [s for s in scripts if any(o in s.stem for o in args.only)]
    status = 0
    for script in scripts:
        print(f"== {script.name}", flush=True)
        cmd = [sys.executable, str(script)] + (["--quick"] if args.quick else [])
        status |= subprocess.call(cmd, cwd=root)
    return status


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="dflib", description="Learned depth from focus: DualFocus and its baselines.")
    sub = p.add_subparsers(dest="command", required=True)
    for add in (_add_render, _add_predict, _add_train, _add_eval, _add_fetch, _add_bench):
        add(sub)
    return p


def _add_render(sub) -> None:
    r = sub.add_parser("render", help="a focal stack from your own RGB-D (thin lens, occlusion-aware)")
    r.add_argument("--rgb", required=True, help="RGB image (png/jpg/tif)")
    r.add_argument("--depth", required=True, help="depth map: .npy or .pfm in metres, or 16-bit .png (see --depth-scale)")
    r.add_argument("--depth-scale", type=_positive_float, default=1000.0, help="PNG depth units per metre (default 1000: millimetres)")
    r.add_argument("--focus", type=_positive_float, nargs="+", help="focus distances in metres (default: --planes uniform in dioptres)")
    r.add_argument("--near", type=_positive_float, default=0.5, help="nearest focus distance, m (without --focus)")
    r.add_argument("--far", type=_positive_float, default=5.0, help="farthest focus distance, m (without --focus)")
    r.add_argument("--planes", type=int, default=5, help="number of focus planes (without --focus)")
    r.add_argument("--camera", choices=("fod500", "nyu", "custom"), default="nyu")
    r.add_argument("--focal-length-mm", type=_positive_float)
    r.add_argument("--f-number", type=_positive_float)
    r.add_argument("--pixel-pitch-um", type=_positive_float)
    r.add_argument("--no-noise", action="store_true", help="skip sensor noise and 8-bit quantisation")
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--out", required=True, help="output folder")
    r.set_defaults(func=cmd_render)


def _add_predict(sub) -> None:
    from dflib.io import FOCUS_UNITS, parse_focus_value
    from dflib.models.pretrained import DEFAULT_MODEL, pretrained_names
    from dflib.predict import DEFAULT_TILE, DEFAULT_WORKING_SIZE

    q = sub.add_parser(
        "predict", help="depth, σ and all-in-focus image from your own focal stack",
        description="Depth, σ and the all-in-focus image of a focal stack from your own camera, at any resolution. "
                    "Frames are put near to far; for more than 2 frames, focus breathing and small camera motion "
                    "are measured and, when a frame is more than half a pixel off, the frames are aligned and "
                    "cropped to the part all of them cover (the output says what was done). Memory stays bounded "
                    "(a 12 MP 5-frame stack peaks under 2 GB): the network sees the stack shrunk to a working size "
                    f"(long side {DEFAULT_WORKING_SIZE} px by default), in overlapping tiles when that exceeds "
                    "--tile; depth and σ are upsampled to full resolution guided by the all-in-focus image, which "
                    "is formed at full resolution.")
    q.add_argument("--images", nargs="+", required=True,
                   help="the frames in the order of --focus, or one folder (its focus.json from `dflib render`, "
                        "else all its images in name order)")
    q.add_argument("--focus", type=parse_focus_value, nargs="+",
                   help="focus position of each image, strictly increasing or decreasing (inf allowed in metres); "
                        "default: from the folder's focus.json or the frames' EXIF SubjectDistance")
    q.add_argument("--focus-unit", "--unit", dest="focus_unit", choices=FOCUS_UNITS, default="m",
                   help="unit of --focus: m (distance), diopter (1/m, 0 = infinity; Android, Raspberry Pi), "
                        "disparity (a dataset's calibrated unit, larger = nearer), index (plane number or motor "
                        "position, larger = farther); depth is written in metres for m and diopter, else in "
                        "this unit (default m)")
    q.add_argument("--align", action=argparse.BooleanOptionalAction, default=None,
                   help="align the frames (focus breathing, camera shake); default: for more than 2 frames, "
                        "when some frame is more than half a pixel off")
    q.add_argument("--align-model", choices=("similarity", "affine"), default="similarity",
                   help="map per frame: similarity (scale, rotation, shift; default) or affine")
    q.add_argument("--working-size", type=_working_size, default=DEFAULT_WORKING_SIZE,
                   help=f"long side in pixels of the stack the network sees (default {DEFAULT_WORKING_SIZE}; "
                        "0 = full resolution, still tiled); outputs are upsampled to full resolution guided by "
                        "the all-in-focus image. Smaller values shrink large defocus blurs toward what the "
                        f"weights were trained on; auto = {DEFAULT_WORKING_SIZE}, or smaller when the blur "
                        "measured in the frames needs it")
    q.add_argument("--tile", type=int, default=DEFAULT_TILE,
                   help=f"largest piece in pixels the network sees at once (default {DEFAULT_TILE}); larger working "
                        "sizes run in overlapping tiles, which bounds memory but can leave faint seams")
    q.add_argument("--checkpoint", help="dflib checkpoint file, or the name of a shipped one: "
                                        f"{', '.join(pretrained_names())} (default: {DEFAULT_MODEL})")
    q.add_argument("--out", required=True, help="depth output, e.g. depth.png (.npy, .json, _preview.png, _sigma, _aif beside it)")
    q.add_argument("--png-scale", type=_positive_float, default=1000.0, help="16-bit PNG value per unit of depth (default 1000: mm)")
    q.add_argument("--max-sigma", type=_positive_float, default=None, metavar="PLANES",
                   help="no depth where σ, counted in focus planes, exceeds this (0 in the PNG, NaN in the .npy, "
                        "grey in the preview): texture-less and out-of-range regions, where depth is a guess; "
                        "default: depth everywhere")
    q.add_argument("--device", type=_device, default=None, help="cpu, cuda, … (default: CUDA when present)")
    q.add_argument("--no-progress", action="store_true", help="no progress bars")
    q.set_defaults(func=cmd_predict)


_DATA_DIR_HELP = ("the dataset's own folder: DIR/NAME after `dflib fetch NAME --dest DIR` (default: $DFLIB_DATA_DIR/NAME, "
                  "else the user cache)")


def _add_train(sub) -> None:
    t = sub.add_parser("train", help="train a model (config file and/or flags)")
    t.add_argument("--config", help="TrainConfig as .json or .yaml; flags override it")
    t.add_argument("--recipe", help="a recipe shipped in dflib/recipes/ (e.g. tiny_dualfocus); flags override it")
    t.add_argument("--model", help=f"preset: {', '.join(MODEL_PRESETS)}")
    t.add_argument("--data", help="synthetic (default), diverse, or a dataset of dflib.data.DATASETS (fod500, ddff12, nyu, ...)")
    t.add_argument("--data-dir", dest="data_dir", help=_DATA_DIR_HELP)
    t.add_argument("--steps", type=int)
    t.add_argument("--batch-size", dest="batch_size", type=int)
    t.add_argument("--lr", type=float)
    t.add_argument("--lambda-sv", dest="lambda_sv", type=float)
    t.add_argument("--lambda-fv", dest="lambda_fv", type=float)
    t.add_argument("--seed", type=int)
    t.add_argument("--init", help="start from these weights (fine-tuning): a checkpoint file or a shipped model "
                   "(dualfocus_mid, dfv_mid, ...) whose model the run builds too")
    t.add_argument("--init-graft", dest="init_graft", action="store_true", default=None,
                   help="--init is a model without the surface branch (dfv_mid, ...): graft this run's branch onto it, "
                   "the decoder's surface inputs starting at zero (dflib.models.graft)")
    t.add_argument("--device", type=_device)
    t.add_argument("--out-dir", dest="out_dir")
    t.add_argument("--cache-dir", dest="cache_dir", help="keep rendered synthetic and diverse pools here, reused across runs")
    t.add_argument("--resume", action="store_true", help="continue from OUT_DIR/last.pt")
    t.set_defaults(func=cmd_train)


def _add_eval(sub) -> None:
    e = sub.add_parser("eval", help="methods × datasets → results table (CSV/JSON/Markdown)")
    e.add_argument("--checkpoint", nargs="*", default=[], help="trained checkpoints to evaluate")
    e.add_argument("--sff", nargs="*", default=[], help="classical SFF focus measures (sml, tenengrad, lapv, lapd, glvar)")
    e.add_argument("--dataset", nargs="+", default=["embedded"], help="embedded (default; no download), or datasets of dflib.data.DATASETS: fod500, ddff12, nyu-gt_range, nyu-fixed, ...")
    e.add_argument("--data-dir", dest="data_dir", help=_DATA_DIR_HELP + "; with several datasets, set DFLIB_DATA_DIR=DIR instead")
    e.add_argument("--limit", type=int, help="evaluate only the first N stacks")
    e.add_argument("--device", type=_device, default=None)
    e.add_argument("--out", default="results", help="output folder")
    e.set_defaults(func=cmd_eval)


def _add_fetch(sub) -> None:
    from dflib.data.sources import SOURCES

    f = sub.add_parser("fetch", help="fetch, verify and prepare a public dataset (dflib.data.fetch)",
                       description="Fetch, verify (sha256: published, else trust on first use) and prepare a dataset "
                                   "into DEST/NAME, where its loader in dflib.data reads it. Options apply to the "
                                   "datasets named in their help.")
    f.add_argument("name", choices=list(SOURCES))
    f.add_argument("--dest", help="data directory (default: $DFLIB_DATA_DIR, else the user cache)")
    f.add_argument("--split", choices=("test", "train"), help="nyu: the split to render (default test)")
    f.add_argument("--planes", type=int, help="nyu, arkitscenes: planes per stack (default 5; the fixed protocol needs 5)")
    f.add_argument("--protocols", nargs="+", choices=("gt_range", "fixed"), help="nyu, arkitscenes: default both")
    f.add_argument("--limit", type=int, help="nyu: only the first K images (a quick look)")
    f.add_argument("--seed", type=int, help="nyu, arkitscenes: the sensor-noise seed (default 0)")
    f.add_argument("--no-trainval", dest="trainval", action="store_false", default=None, help="ddff12: skip the 12.6 GB train/val file")
    f.add_argument("--no-test", dest="test", action="store_false", default=None, help="ddff12: skip the test file")
    f.add_argument("--video-ids", nargs="+", help="arkitscenes: the Validation videos (default: the registry's three)")
    f.add_argument("--frames", type=int, help="arkitscenes: frames per video (default 10)")
    f.set_defaults(func=cmd_fetch)


def _add_bench(sub) -> None:
    b = sub.add_parser("bench", help="run the speed/accuracy benchmarks in benchmarks/ (bench_ablation trains 25 models: hours)")
    b.add_argument("--quick", action="store_true")
    b.add_argument("--only", nargs="*", help="run only benchmarks whose name contains one of these")
    b.set_defaults(func=cmd_bench)


def main(argv: list[str] | None = None) -> int:
    """Run the ``dflib`` command with ``argv`` (default: ``sys.argv[1:]``); returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except CLIError as exc:
        message = str(exc)
    except (ValueError, FileNotFoundError) as exc:  # bad input met deeper down: still one line
        message = _one_line(exc)
    print(f"dflib {args.command}: error: {message}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
