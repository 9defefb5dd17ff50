"""Generalisation of every shipped model and classical SFF, and the time of one prediction.

Scores (:mod:`dflib.generalisation`): every checkpoint in ``dflib/weights/``
(:func:`dflib.models.pretrained_names`, aliases left out) and classical SFF
(``lapv``) on the embedded benchmark, the diverse in-distribution split, the
held-out split (scene families, photographs and cameras no training data
uses) and the Middlebury scene under four cameras; in-distribution and
held-out RMSE side by side, with δ1.

Bands: the mean signed error of every shipped model per band of true depth
on the embedded split (:func:`dflib.generalisation.band_errors`; the bands
are the embedded data's focus planes and everything behind the last one),
its procedural stacks and its Middlebury crops apart.

Surfaces: :func:`dflib.diagnostics.dataset_diagnostics` of every shipped
model with a surface branch on fresh embedded, diverse and held-out stacks
(does the default model's surface branch carry in-focus geometry?).

Timing: :func:`dflib.generalisation.time_predict` of each shipped model on a
5x480x640 stack, CPU, 2 threads (median of 3 after a warm-up). On a shared
machine run it with other work paused, e.g. ``--part timing`` from a script
that stops and (in a trap) resumes the other processes.

Usage::

    python benchmarks/bench_generalisation.py [--part scores|bands|surfaces|timing|all] [--length 32] [--size 256] [--quick]
    python benchmarks/bench_generalisation.py --part scores --candidate NAME=run/last.pt --out results/candidates.json

Writes ``benchmarks/results/generalisation.json`` and ``.md`` (a part run
alone keeps the other part's results already in the JSON); ``--quick`` (8
stacks per split at 128², one timing repeat) writes ``generalisation_quick.*`` instead.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from dflib.evaluate import learned_method, sff_method  # noqa: E402
from dflib.generalisation import (  # noqa: E402
    MIDDLEBURY_CAMERAS,
    band_errors,
    generalisation_splits,
    score,
    summarise,
    summary_markdown,
    time_predict,
)
from dflib.models.pretrained import ALIASES, DEFAULT_MODEL, pretrained_names  # noqa: E402
from dflib.utils import benchmark_output, cpu_model  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "generalisation.json"


def shipped_models() -> list[str]:
    """Every shipped checkpoint name, aliases left out."""
    return [n for n in pretrained_names() if n not in ALIASES]


def run_scores(length: int, size: int, embedded_length: int, candidates: dict[str, str] | None = None) -> dict:
    """Every shipped model, the ``candidates`` (name → checkpoint file, scored beside them) and SFF on every split."""
    methods = [learned_method(n, name=n, device="cpu") for n in shipped_models()]
    methods += [learned_method(path, name=name, device="cpu") for name, path in (candidates or {}).items()]
    methods.append(sff_method("lapv"))
    splits = generalisation_splits(length=length, size=(size, size), embedded_length=embedded_length)
    t0 = time.perf_counter()
    table = score(methods, splits, progress=True)
    return {
        "splits": {k: {"stacks": len(ds), "protocol": p} for k, (ds, p) in splits.items()},
        "middlebury_cameras": {k: {"focal_length_m": c.focal_length_m, "f_number": c.f_number,
                                   "pixel_pitch_m_full_res": c.pixel_pitch_m, "planes": n}
                               for k, (c, n) in MIDDLEBURY_CAMERAS.items()},
        "rows": table.rows,
        "summary": summarise(table),
        "seconds": round(time.perf_counter() - t0, 1),
    }


#: the embedded data's focus planes as band edges, and everything behind the last plane
BAND_EDGES = (0.1, 0.15, 0.3, 0.7, 1.5, float("inf"))


def run_bands(embedded_length: int) -> dict:
    """Bias and RMSE per band of true depth of every shipped model on the embedded split (``fod500`` protocol),
    its procedural stacks and its Middlebury crops (all past the last plane) apart."""
    from torch.utils.data import Subset

    from dflib.data import CachedDataset
    from dflib.evaluate import embedded_benchmark

    split = embedded_benchmark(length=embedded_length)
    data = CachedDataset(split, desc="rendering embedded")
    parts = {"procedural": [i for i in range(len(split)) if not split.is_middlebury(i)],
             "middlebury": [i for i in range(len(split)) if split.is_middlebury(i)]}
    models = {}
    for n in shipped_models():
        method = learned_method(n, name=n, device="cpu")
        models[n] = {part: band_errors(method, Subset(data, idx), BAND_EDGES, "fod500") for part, idx in parts.items()}
    return {"split": "embedded", "stacks": {part: len(idx) for part, idx in parts.items()}, "protocol": "fod500",
            "models": models}


def run_surfaces(items: int, size: int) -> dict:
    """Surface diagnostics (:func:`dflib.diagnostics.dataset_diagnostics`, in each model's L_sv units) of every
    shipped model with a surface branch, on fresh stacks of the embedded, diverse and held-out test splits."""
    from dflib.diagnostics import dataset_diagnostics
    from dflib.models import load_pretrained
    from dflib.models.pretrained import pretrained_train_config
    from dflib.train import TrainConfig, build_loss

    splits = generalisation_splits(length=items, size=(size, size), embedded_length=items, middlebury=False)
    models = {}
    for n in shipped_models():
        model = load_pretrained(n, "cpu")
        if model.config.surface_branch:
            loss = build_loss(TrainConfig.from_dict(pretrained_train_config(n)), model)
            models[n] = {k: dataset_diagnostics(model, ds, items=items, loss=loss) for k, (ds, _) in splits.items()}
    return {"stacks": items, "models": models}


def run_timing(threads: int, repeats: int = 3) -> dict:
    models = {n: time_predict(n, threads=threads, repeats=repeats) for n in shipped_models()}
    return {"shape": [5, 3, 480, 640], "threads": threads, "load_average_1min": os.getloadavg()[0], "models": models}


def markdown(res: dict) -> str:
    lines = [f"# Generalisation (CPU: {res['cpu']}; default model: {ALIASES[DEFAULT_MODEL]})", ""]
    if "scores" in res:
        s = res["scores"]
        counts = ", ".join(f"{k} {v['stacks']}" for k, v in s["splits"].items() if "/" not in k)
        lines += ["RMSE in metres (FoD500 protocol on `embedded`, all valid pixels elsewhere) and RMSE/span "
                  "(per stack, as a fraction of its focus span f_N - f_1: comparable across cameras, which metres "
                  "are not: a telephoto stack may span 0.4 m, a phone's 3 m); "
                  f"stacks per split: {counts}, "
                  f"Middlebury: one stack per camera ({len(res['scores']['middlebury_cameras'])} cameras).", "",
                  summary_markdown(s["summary"]), "", "Middlebury per camera (RMSE m / δ1 %):", "",
                  "| method | " + " | ".join(k for k in s["middlebury_cameras"]) + " |",
                  "|---" * (len(s["middlebury_cameras"]) + 1) + "|"]
        for m in s["summary"]:
            cells = [next((f"{r['rmse']:.3f} / {100 * r['delta1']:.0f}" for r in s["rows"]
                           if r["method"] == m and r["dataset"] == f"middlebury/{k}"), "") for k in s["middlebury_cameras"]]
            lines.append(f"| {m} | " + " | ".join(cells) + " |")
    if "bands" in res:
        b = res["bands"]
        first = next(iter(b["models"].values()))["procedural"]
        n = b["stacks"]
        lines += ["", f"Mean signed error (prediction − truth, m) per band of true depth on the {b['split']} split "
                  f"({b['protocol']} protocol: both clipped at 1.5 m; the band by the unclipped truth): its "
                  f"{n['procedural']} procedural stacks per band, and its {n['middlebury']} Middlebury crops "
                  "(all at 2.1–5 m, past the last plane):", "",
                  "| model | " + " | ".join(f"{r['lo']:g}–{r['hi']:g} m" for r in first) + " | Middlebury crops |",
                  "|---" * (len(first) + 2) + "|"]
        for name, parts in b["models"].items():
            mb = sum(r["bias"] * r["pixels"] for r in parts["middlebury"] if r["pixels"]) / max(
                1, sum(r["pixels"] for r in parts["middlebury"]))
            lines.append(f"| {name} | " + " | ".join(f"{r['bias']:+.3f}" for r in parts["procedural"]) + f" | {mb:+.3f} |")
    if "surfaces" in res:
        sf = res["surfaces"]
        lines += ["", f"Surface diagnostics on {sf['stacks']} fresh stacks per split (`dflib.diagnostics`, each model's "
                  "L_sv units; errors per feature pixel; `err_zero`: predicting flat surfaces; `err_depth_ref`: the "
                  "gradient of the model's own depth):", "",
                  "| model | split | corr_in_focus | err_in_focus | err_out_of_focus | err_zero | err_depth_ref |",
                  "|---|---|---|---|---|---|---|"]
        for name, per in sf["models"].items():
            lines += [f"| {name} | {k} | {d['corr_in_focus']:.2f} | {d['err_in_focus']:.3f} | {d['err_out_of_focus']:.3f} | "
                      f"{d['err_zero']:.3f} | {d['err_depth_ref']:.3f} |" for k, d in per.items()]
    if "timing" in res:
        t = res["timing"]
        lines += ["", f"Predicting a 5x480x640 stack (`dflib.predict.predict`, CPU, {t['threads']} threads, "
                  f"median of {next(iter(t['models'].values()))['repeats']}; 1-min load average {t['load_average_1min']:.2f}):", ""]
        lines += [f"- {n}: {v['median_s']:.2f} s (min {v['min_s']:.2f} s)" for n, v in t["models"].items()]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--part", choices=("scores", "bands", "surfaces", "timing", "all", "none"), default="all",
                    help="what to measure (bands: bias per depth band on the embedded split; surfaces: the surface "
                         "diagnostics; none: rewrite the .md from the JSON)")
    ap.add_argument("--length", type=int, default=32, help="stacks per diverse split")
    ap.add_argument("--size", type=int, default=256, help="side of the diverse stacks, pixels")
    ap.add_argument("--embedded-length", type=int, default=24)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=None, help=f"default {RESULTS.relative_to(ROOT)}")
    ap.add_argument("--quick", action="store_true", help="small splits, one timing repeat, *_quick.json")
    ap.add_argument("--candidate", action="append", default=[], metavar="NAME=CHECKPOINT",
                    help="also score this checkpoint file beside the shipped models (repeatable; the scores part "
                         "only; needs --out, so that the README's table stays the shipped models')")
    args = ap.parse_args()
    candidates = dict(c.split("=", 1) for c in args.candidate if "=" in c)
    if len(candidates) != len(args.candidate):
        ap.error("--candidate takes NAME=CHECKPOINT")
    if candidates and (args.out is None or args.part != "scores"):
        ap.error("--candidate needs --part scores and an --out of its own")
    if args.quick:
        args.length, args.size, args.embedded_length = 8, 128, 8
    args.out = args.out or benchmark_output(RESULTS, args.quick)
    res = json.loads(args.out.read_text()) if args.out.is_file() else {}
    res.update({"benchmark": "generalisation: shipped models and classical SFF in and out of distribution",
                "cpu": cpu_model(), "cpu_count": os.cpu_count(), "torch": torch.__version__,
                "python": platform.python_version()})
    if args.part in ("scores", "all"):
        res["scores"] = run_scores(args.length, args.size, args.embedded_length, candidates)
        if candidates:
            res["scores"]["candidates"] = candidates
            res["command"] = " ".join(["python", *sys.argv])
    if args.part in ("bands", "all"):
        res["bands"] = run_bands(args.embedded_length)
    if args.part in ("surfaces", "all"):
        res["surfaces"] = run_surfaces(args.length // 2, args.size)
    if args.part in ("timing", "all"):
        res["timing"] = run_timing(args.threads, repeats=1 if args.quick else 3)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(res, indent=2))
    args.out.with_suffix(".md").write_text(markdown(res))
    print(markdown(res))


if __name__ == "__main__":
    main()
