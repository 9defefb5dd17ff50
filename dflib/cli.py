"""The ``dflib`` command line: render | train | eval | predict | bench.

Run ``dflib COMMAND --help`` for each command's options.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from dflib.models.config import PRESETS as MODEL_PRESETS

ROOT = Path(__file__).resolve().parents[1]


def _camera(args):
    from dflib import optics

    if args.camera == "fod500":
        return optics.FOD500_CAMERA
    if args.camera == "nyu":
        return optics.NYU_CAMERA
    if None in (args.focal_length_mm, args.f_number, args.pixel_pitch_um):
        raise SystemExit("--camera custom needs --focal-length-mm, --f-number and --pixel-pitch-um")
    return optics.ThinLens(args.focal_length_mm * 1e-3, args.f_number, args.pixel_pitch_um * 1e-6)


def cmd_render(args) -> int:
    from dflib import io, optics
    from dflib.render import render_focal_stack

    rgb = io.read_image(args.rgb)
    depth = io.read_depth(args.depth, png_scale=args.depth_scale)
    if rgb.shape[:2] != depth.shape:
        raise SystemExit(f"--rgb is {rgb.shape[1]}x{rgb.shape[0]} but --depth is {depth.shape[1]}x{depth.shape[0]}; they must match")
    if args.focus:
        focus = args.focus
    else:
        focus = optics.focus_uniform_diopters(args.near, args.far, args.planes).tolist()
    stack = render_focal_stack(rgb, depth, _camera(args), focus, noise=not args.no_noise, seed=args.seed)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    names = []
    for i, img in enumerate(stack.images):
        name = f"{i:02d}.png"
        io.write_image(out / name, img.numpy())
        names.append(name)
    io.write_image(out / "aif.png", stack.aif.numpy())
    (out / "focus.json").write_text(json.dumps({"images": names, "focus_m": [float(f) for f in stack.focus_m]}, indent=2))
    print(f"wrote {len(names)} images, aif.png and focus.json to {out}")
    print("depth from it:  dflib predict --images " + " ".join(str(out / n) for n in names)
          + " --focus " + " ".join(f"{float(f):.4g}" for f in stack.focus_m) + f" --out {out / 'depth.png'}")
    return 0


def cmd_predict(args) -> int:
    from dflib.predict import predict_files, write_prediction

    pred, info = predict_files(
        args.images, focus=args.focus, focus_unit=args.focus_unit, align=args.align, align_model=args.align_model,
        working_size=args.working_size, tile=args.tile, checkpoint=args.checkpoint, device=args.device,
        progress=False if args.no_progress else None, log=print,
    )
    write_prediction(args.out, pred, info, png_scale=args.png_scale, log=print)
    return 0


def cmd_train(args) -> int:
    from dflib.train import TrainConfig, train

    cfg = TrainConfig.load(args.config) if args.config else TrainConfig()
    overrides = {k: v for k, v in vars(args).items() if k in TrainConfig.__dataclass_fields__ and v is not None}
    cfg = TrainConfig.from_dict({**cfg.to_dict(), **overrides})
    result = train(cfg, resume=args.resume)
    print(f"trained {result.step} steps; checkpoint {result.out_dir / 'last.pt'}")
    if result.val_metrics:
        print("validation: " + ", ".join(f"{k}={v:.4g}" for k, v in result.val_metrics.items()))
    return 0


def cmd_eval(args) -> int:
    from dflib.evaluate import EMBEDDED_LENGTH, embedded_benchmark, evaluate, learned_method, sff_method

    methods = [learned_method(c, device=args.device) for c in args.checkpoint]
    methods += [sff_method(m) for m in args.sff]
    if not methods:
        raise SystemExit("nothing to evaluate: give --checkpoint CKPT... and/or --sff MEASURE...")
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


def cmd_bench(args) -> int:
    bench_dir = ROOT / "benchmarks"
    scripts = sorted(bench_dir.glob("bench_*.py"))
    if not scripts:
        raise SystemExit(f"no benchmark scripts in {bench_dir} (run from a source checkout)")
    if args.only:
        scripts = [s for s in scripts if any(o in s.stem for o in args.only)]
    status = 0
    for script in scripts:
        print(f"== {script.name}", flush=True)
        cmd = [sys.executable, str(script)] + (["--quick"] if args.quick else [])
        status |= subprocess.call(cmd, cwd=ROOT)
    return status


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="dflib", description="Learned depth from focus: DualFocus and its baselines.")
    sub = p.add_subparsers(dest="command", required=True)

    r = sub.add_parser("render", help="a focal stack from your own RGB-D (thin lens, occlusion-aware)")
    r.add_argument("--rgb", required=True, help="RGB image (png/jpg/tif)")
    r.add_argument("--depth", required=True, help="depth map: .npy or .pfm in metres, or 16-bit .png (see --depth-scale)")
    r.add_argument("--depth-scale", type=float, default=1000.0, help="PNG depth units per metre (default 1000: millimetres)")
    r.add_argument("--focus", type=float, nargs="+", help="focus distances in metres (default: --planes uniform in dioptres)")
    r.add_argument("--near", type=float, default=0.5, help="nearest focus distance, m (without --focus)")
    r.add_argument("--far", type=float, default=5.0, help="farthest focus distance, m (without --focus)")
    r.add_argument("--planes", type=int, default=5, help="number of focus planes (without --focus)")
    r.add_argument("--camera", choices=("fod500", "nyu", "custom"), default="nyu")
    r.add_argument("--focal-length-mm", type=float)
    r.add_argument("--f-number", type=float)
    r.add_argument("--pixel-pitch-um", type=float)
    r.add_argument("--no-noise", action="store_true", help="skip sensor noise and 8-bit quantisation")
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--out", required=True, help="output folder")
    r.set_defaults(func=cmd_render)

    from dflib.io import FOCUS_UNITS, parse_focus_value
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
    q.add_argument("--working-size", type=int, default=DEFAULT_WORKING_SIZE,
                   help=f"long side in pixels of the stack the network sees (default {DEFAULT_WORKING_SIZE}; "
                        "0 = full resolution, still tiled); outputs are upsampled to full resolution guided by "
                        "the all-in-focus image. Smaller values shrink large defocus blurs toward what the "
                        "weights were trained on")
    q.add_argument("--tile", type=int, default=DEFAULT_TILE,
                   help=f"largest piece in pixels the network sees at once (default {DEFAULT_TILE}); larger working "
                        "sizes run in overlapping tiles, which bounds memory but can leave faint seams")
    q.add_argument("--checkpoint", help="dflib checkpoint (default: the shipped weights/dualfocus_tiny.pt)")
    q.add_argument("--out", required=True, help="depth output, e.g. depth.png (.npy, .json, _preview.png, _sigma, _aif beside it)")
    q.add_argument("--png-scale", type=float, default=1000.0, help="16-bit PNG value per unit of depth (default 1000: mm)")
    q.add_argument("--device", default=None, help="cpu, cuda, … (default: CUDA when present)")
    q.add_argument("--no-progress", action="store_true", help="no progress bars")
    q.set_defaults(func=cmd_predict)

    t = sub.add_parser("train", help="train a model (config file and/or flags)")
    t.add_argument("--config", help="TrainConfig as .json or .yaml; flags override it")
    t.add_argument("--model", help=f"preset: {', '.join(MODEL_PRESETS)}")
    t.add_argument("--data", help="synthetic (default), fod500, ddff12, nyu")
    t.add_argument("--data-dir", dest="data_dir")
    t.add_argument("--steps", type=int)
    t.add_argument("--batch-size", dest="batch_size", type=int)
    t.add_argument("--lr", type=float)
    t.add_argument("--lambda-sv", dest="lambda_sv", type=float)
    t.add_argument("--lambda-fv", dest="lambda_fv", type=float)
    t.add_argument("--seed", type=int)
    t.add_argument("--device")
    t.add_argument("--out-dir", dest="out_dir")
    t.add_argument("--resume", action="store_true", help="continue from OUT_DIR/last.pt")
    t.set_defaults(func=cmd_train)

    e = sub.add_parser("eval", help="methods × datasets → results table (CSV/JSON/Markdown)")
    e.add_argument("--checkpoint", nargs="*", default=[], help="trained checkpoints to evaluate")
    e.add_argument("--sff", nargs="*", default=[], help="classical SFF focus measures (sml, tenengrad, lapv, lapd, glvar)")
    e.add_argument("--dataset", nargs="+", default=["embedded"], help="embedded (default; no download), fod500, ddff12, nyu-gt_range, nyu-fixed")
    e.add_argument("--data-dir", dest="data_dir")
    e.add_argument("--limit", type=int, help="evaluate only the first N stacks")
    e.add_argument("--device", default=None)
    e.add_argument("--out", default="results", help="output folder")
    e.set_defaults(func=cmd_eval)

    b = sub.add_parser("bench", help="run the speed/accuracy benchmarks in benchmarks/ (bench_ablation trains 25 models: hours)")
    b.add_argument("--quick", action="store_true")
    b.add_argument("--only", nargs="*", help="run only benchmarks whose name contains one of these")
    b.set_defaults(func=cmd_bench)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError) as exc:
        print(f"dflib {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
