"""Do the same seeds render the same stacks on another CPU? Both shot-noise samplers, two MKL code paths.

The renderer blurs with torch's FFT, which on a CPU is MKL's, and MKL picks its code path by the CPU it runs on,
so the clean images differ in the last bits from one machine to another. This script stands in for another
machine by rendering the same stacks twice on this one: in a child process with MKL held to its AVX2 code path
(``MKL_ENABLE_INSTRUCTIONS=AVX2``) and in one without that limit, each with both shot-noise samplers of
:class:`dflib.sensor.NoiseConfig` (``"gaussian"``, the default, one normal draw per pixel; ``"poisson"``, the exact
draw, by rejection). The stacks are the first ``--stacks`` of the embedded benchmark
(:func:`dflib.evaluate.embedded_benchmark`) and of the diverse test split (``DiverseConfig()``, ``TEST_SEED``).
For each sampler and split it reports:

- the share of the stacks' values that differ by one 8-bit level or more between the two renderings, and the
  largest difference in levels (the diverse data's noise-free stacks are not quantised: their values differ by
  rounding only);
- how far apart the default model's (``dfv_mid``) depth maps of the two renderings are: the mean absolute
  difference, in units of each stack's focus span.

On a CPU where the limit changes nothing (without AVX-512) every figure is 0.

``--draws N`` also asks whether the approximation changes what a model scores: it scores the default model on
``--scored`` stacks of the embedded benchmark (RMSE, m) and of the diverse and held-out test splits (RMSE per
focus span; the diverse split as the model's last training stage drew it), rendered with each sampler and N noise
draws of the same scenes (the noise seeds offset by 0 .. N-1), and gives the difference of the two samplers' means
with a Welch 95 % interval over the draws.

Usage::

    python benchmarks/render_reproducibility.py [--stacks 24] [--draws 5] [--out benchmarks/results/render_reproducibility.json]
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

SAMPLERS = ("gaussian", "poisson")
MODEL = "dfv_mid"  # the default model, whose depth maps of the two renderings are compared


def _use_noise(shot: str, offset: int = 0) -> None:
    """In this (child) process, make the renderer draw its shot noise with ``shot`` and offset its noise seeds by
    ``offset`` (another noise draw of the same scenes): the datasets build their NoiseConfig without a sampler."""
    import dataclasses

    import dflib.render
    import dflib.sensor

    add = dflib.sensor.add_sensor_noise

    def noise(images, config=dflib.sensor.NoiseConfig(), generator=0):
        generator = (generator + offset) % 2**62 if isinstance(generator, int) else generator
        return add(images, dataclasses.replace(config, shot=shot), generator)

    dflib.render.add_sensor_noise = noise  # the name the renderer calls


def render(out: Path, stacks: int) -> None:
    """Render the stacks with each sampler into ``out``: ``<split>_<sampler>.npz`` and ``<split>_focus.npz``."""
    import torch

    from dflib.data.diverse import DiverseConfig, DiverseFocalStackDataset
    from dflib.data.synthetic import TEST_SEED
    from dflib.evaluate import embedded_benchmark

    torch.set_num_threads(1)
    for shot in SAMPLERS:
        _use_noise(shot)
        splits = {"embedded": embedded_benchmark(length=stacks),
                  "diverse": DiverseFocalStackDataset(stacks, (256, 256), DiverseConfig(), seed=TEST_SEED)}
        for name, data in splits.items():
            items = [data[i] for i in range(stacks)]
            np.savez(out / f"{name}_{shot}.npz", *[it["stack"].numpy() for it in items])
            np.savez(out / f"{name}_focus.npz", *[it["focus"].numpy() for it in items])


def score_draw(out: Path, shot: str, offset: int, stacks: int) -> None:
    """:data:`MODEL`'s scores on ``stacks`` stacks of each test split, rendered with ``shot`` noise whose seeds are
    offset by ``offset`` (another noise draw of the same scenes), written to ``out`` as ``{split: score}``."""
    import torch

    from dflib.data.cached import CachedDataset
    from dflib.data.diverse import DiverseConfig, DiverseFocalStackDataset, diverse_config
    from dflib.data.synthetic import TEST_SEED
    from dflib.evaluate import embedded_benchmark
    from dflib.models.pretrained import pretrained_path, pretrained_train_config

    sys.path.insert(0, str(Path(__file__).parent))
    from bench_ablation import score

    torch.set_num_threads(1)
    _use_noise(shot, offset)
    trained = pretrained_train_config(MODEL)  # the diverse split as the model's last training stage drew it
    diverse = diverse_config(trained["data"], trained["data_options"])
    splits = {"embedded": (embedded_benchmark(length=stacks), "fod500", "rmse"),
              "diverse": (DiverseFocalStackDataset(stacks, (256, 256), diverse, seed=TEST_SEED), "default", "rmse_span"),
              "held_out": (DiverseFocalStackDataset(stacks, (256, 256), DiverseConfig(split="heldout"), seed=TEST_SEED),
                           "default", "rmse_span")}
    checkpoint = Path(str(pretrained_path(MODEL)))
    scores = {name: score(checkpoint, CachedDataset(data, desc=name), protocol, 0)[key]
              for name, (data, protocol, key) in splits.items()}
    out.write_text(json.dumps(scores))


def draws(tmp: Path, n: int, stacks: int) -> dict:
    """Both samplers' scores over ``n`` noise draws (child processes) and their difference, split by split."""
    from scipy import stats

    runs = {shot: [] for shot in SAMPLERS}
    for shot in SAMPLERS:
        for k in range(n):
            f = tmp / f"score_{shot}_{k}.json"
            subprocess.run([sys.executable, __file__, "--scored", str(stacks), "--score-into", str(f),
                            "--shot", shot, "--offset", str(k)], check=True)
            runs[shot].append(json.loads(f.read_text()))
    out = {"model": MODEL, "stacks": stacks, "draws": n}
    for split in runs["gaussian"][0]:
        g, p = ([r[split] for r in runs[shot]] for shot in ("gaussian", "poisson"))
        ci = stats.ttest_ind(g, p, equal_var=False).confidence_interval(0.95) if n > 1 else None
        out[split] = {"gaussian": g, "poisson": p, "gaussian_minus_poisson": float(np.mean(g) - np.mean(p)),
                      "ci95": [float(ci.low), float(ci.high)] if ci else None}
    return out


def _depths(model, folder: Path, name: str, shot: str) -> list[np.ndarray]:
    """``model``'s depth maps of the stacks rendered into ``folder``, in units of each stack's focus span."""
    import torch

    stacks, focus = np.load(folder / f"{name}_{shot}.npz"), np.load(folder / f"{name}_focus.npz")
    out = []
    with torch.no_grad():
        for k in stacks.files:
            f = torch.from_numpy(focus[k])
            d = model(torch.from_numpy(stacks[k])[None], f[None])["depth"][0, 0].numpy()
            out.append(d / float(f.max() - f.min()))
    return out


def compare(a: Path, b: Path, stacks: int) -> dict:
    import torch

    from dflib.models import load_pretrained

    torch.set_num_threads(1)
    model = load_pretrained(MODEL).eval()
    result = {}
    for shot in SAMPLERS:
        for name in ("embedded", "diverse"):
            x, y = np.load(a / f"{name}_{shot}.npz"), np.load(b / f"{name}_{shot}.npz")
            depth_diff = [np.abs(p - q) for p, q in zip(_depths(model, a, name, shot), _depths(model, b, name, shot))]
            levels = [np.abs(x[k].astype(np.float64) - y[k]) * 255 for k in x.files]
            frac = [float((d >= 0.5).mean()) for d in levels]  # a level or more (the noise-free stacks are not quantised)
            result.setdefault(shot, {})[name] = {
                "stacks": stacks,
                "values_off_by_a_level_or_more": float(np.mean(frac)),
                "stacks_with_such_values": int(sum(f > 0 for f in frac)),
                "worst_stack_values_off": max(frac),
                "max_levels": max(float(d.max()) for d in levels),
                "depth_mean_abs_diff_span": float(np.mean([d.mean() for d in depth_diff])),
                "depth_worst_stack_mean_abs_diff_span": max(float(d.mean()) for d in depth_diff),
            }
    return result


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--stacks", type=int, default=24, help="stacks of each split")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/render_reproducibility.json"))
    ap.add_argument("--draws", type=int, default=0, help="noise draws per sampler to score the default model on")
    ap.add_argument("--scored", type=int, default=96, help="stacks of each split scored with --draws")
    ap.add_argument("--render-into", type=Path, help=argparse.SUPPRESS)  # the child processes' entries
    ap.add_argument("--score-into", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--shot", choices=SAMPLERS, help=argparse.SUPPRESS)
    ap.add_argument("--offset", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.render_into:
        render(args.render_into, args.stacks)
        return {}
    if args.score_into:
        score_draw(args.score_into, args.shot, args.offset, args.scored)
        return {}
    from dflib.utils import cpu_model

    with tempfile.TemporaryDirectory() as tmp:
        dirs = {"default": Path(tmp) / "default", "mkl_avx2": Path(tmp) / "avx2"}
        for label, d in dirs.items():
            d.mkdir()
            env = {k: v for k, v in os.environ.items() if k != "MKL_ENABLE_INSTRUCTIONS"}
            if label == "mkl_avx2":
                env["MKL_ENABLE_INSTRUCTIONS"] = "AVX2"
            subprocess.run([sys.executable, __file__, "--stacks", str(args.stacks), "--render-into", str(d)],
                           env=env, check=True)
        samplers = compare(dirs["default"], dirs["mkl_avx2"], args.stacks)
        scored = draws(Path(tmp), args.draws, args.scored) if args.draws else None
    result = {
        "benchmark": "render_reproducibility", "cpu": cpu_model(),
        "command": " ".join(["python", *map(shlex.quote, sys.argv)]),
        "compared": "MKL's default code path against MKL_ENABLE_INSTRUCTIONS=AVX2, same seeds, one thread each",
        "samplers": samplers,
        "draws": scored,
    }
    for shot, splits in samplers.items():
        for name, r in splits.items():
            print(f"{shot:9s} {name:9s} {r['stacks_with_such_values']}/{r['stacks']} stacks have values a level or more "
                  f"apart: {100 * r['values_off_by_a_level_or_more']:.4f} % of values (worst stack "
                  f"{100 * r['worst_stack_values_off']:.2f} %), by up to {r['max_levels']:.0f} levels; {MODEL}'s depth "
                  f"differs by {r['depth_mean_abs_diff_span']:.1e} of the span on average "
                  f"(worst stack {r['depth_worst_stack_mean_abs_diff_span']:.1e})")
    for split, r in (scored or {}).items():
        if isinstance(r, dict):
            ci = f" [{r['ci95'][0]:+.4f}, {r['ci95'][1]:+.4f}]" if r["ci95"] else ""
            print(f"{MODEL} on {split}: gaussian {np.mean(r['gaussian']):.4f}, poisson {np.mean(r['poisson']):.4f}; "
                  f"difference {r['gaussian_minus_poisson']:+.4f}{ci}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    return result


if __name__ == "__main__":
    main()
