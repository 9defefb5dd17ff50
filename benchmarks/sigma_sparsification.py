"""Does σ rank the depth errors? Sparsification of the shipped mid models' σ on rendered stacks with known depth.

For each stack (:mod:`dflib.uncertainty`): the sparsification curve of the depth error (metres) by the readout's
σ (metres, what ``depth_sigma.npy`` holds for a stack in metres), by σ counted in focus planes
(:func:`dflib.uncertainty.plane_sigma`, what ``dflib predict --max-sigma`` thresholds) and by two other measures
of the focus distribution (:data:`MEASURES`: its entropy, one minus its peak), with AUSE and AURG; means over
stacks with 95 % Student-t intervals, and each measure's AURG paired per stack with σ in metres'. Then, pooled over the stacks,
the share of pixels above σ thresholds in planes and the error of the pixels kept and masked, and how often the
error in planes is within one and two σ (0.68 and 0.95 if σ were a Gaussian error bar).

Splits: the diverse training distribution at the validation seed (``VAL_SEED``; where a threshold may be
chosen) and the held-out split at the test seed (scene families, photographs and cameras no training run
used; reported, not tuned on). 256x256, as ``bench_generalisation.py``::

    python benchmarks/sigma_sparsification.py [--stacks 48] [--out benchmarks/results/sigma_sparsification.json]

It also draws the mean curves into ``docs/sigma_sparsification.png``.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from dflib.data.diverse import DiverseConfig, DiverseFocalStackDataset
from dflib.data.synthetic import TEST_SEED, VAL_SEED
from dflib.ladders import paired_ci
from dflib.models.dualfocus import focus_readout
from dflib.models.pretrained import load_pretrained
from dflib.uncertainty import DEFAULT_FRACTIONS, plane_sigma, sparsification
from dflib.utils import cpu_model

ROOT = Path(__file__).resolve().parents[1]
MODELS = ("dfv_mid", "dualfocus_mid")
THRESHOLDS = (0.25, 0.5, 0.75, 1.0, 1.5)
SHOWN = (0.1, 0.25, 0.5, 0.75)  # removed fractions listed in the JSON's mean curves
#: the uncertainty measures compared, from the model's output and its ``prob [N, H, W]``: σ in metres (what
#: ``depth_sigma.npy`` holds for a stack in metres), σ in planes, the entropy of the focus distribution (nats),
#: and one minus its largest probability
MEASURES = {
    "sigma_metres": lambda out, prob: out["sigma"][0, 0],
    "sigma_planes": lambda out, prob: plane_sigma(prob),
    "entropy": lambda out, prob: -(prob * prob.clamp_min(1e-12).log()).sum(0),
    "one_minus_max_p": lambda out, prob: 1 - prob.amax(0),
}


def splits(stacks: int, size: tuple[int, int]) -> dict[str, DiverseFocalStackDataset]:
    return {
        "diverse (validation seed)": DiverseFocalStackDataset(stacks, size, DiverseConfig(split="train"), seed=VAL_SEED),
        "held-out (test seed)": DiverseFocalStackDataset(stacks, size, DiverseConfig(split="heldout"), seed=TEST_SEED),
    }


def _rmse(e: np.ndarray) -> float:
    return float(np.sqrt(np.mean(e ** 2))) if e.size else float("nan")


def _off_by_1(e: np.ndarray) -> float:
    return float(np.mean(np.abs(e) > 1)) if e.size else float("nan")


def summarise(rows: dict[str, list], err_planes: np.ndarray, ps: np.ndarray) -> dict:
    """Intervals over stacks for each measure's sparsification; the threshold table from the pooled pixels."""
    table = [{"max_sigma_planes": t, "masked_share": float(np.mean(ps > t)),
              "rmse_planes_kept": _rmse(err_planes[ps <= t]), "rmse_planes_masked": _rmse(err_planes[ps > t]),
              "off_by_1_kept": _off_by_1(err_planes[ps <= t]), "off_by_1_masked": _off_by_1(err_planes[ps > t]),
              "off_by_1_caught": float(np.mean(ps[np.abs(err_planes) > 1] > t))}
             for t in THRESHOLDS]
    result: dict = {"rmse_planes_all": _rmse(err_planes), "off_by_1_all": _off_by_1(err_planes),
                    "within_1_sigma": float(np.mean(np.abs(err_planes) <= ps)),
                    "within_2_sigma": float(np.mean(np.abs(err_planes) <= 2 * ps)), "thresholds": table}
    k = [int(np.argmin(np.abs(DEFAULT_FRACTIONS - f))) for f in SHOWN]
    for kind, sp in rows.items():
        ause, aurg = ({i: getattr(r, a) for i, r in enumerate(sp)} for a in ("ause", "aurg"))
        zero = dict.fromkeys(ause, 0.0)
        by_sigma, oracle = np.mean([r.by_sigma for r in sp], 0), np.mean([r.oracle for r in sp], 0)
        result[kind] = {
            "ause": {x: v for x, v in paired_ci(ause, zero).items() if x != "seeds"},
            "aurg": {x: v for x, v in paired_ci(aurg, zero).items() if x != "seeds"},
            "curve_by_sigma": dict(zip(map(str, SHOWN), by_sigma[k].round(4).tolist())),
            "curve_oracle": dict(zip(map(str, SHOWN), oracle[k].round(4).tolist())),
            "_curves": (by_sigma, oracle), "_aurg": aurg,
        }
    result["aurg_minus_sigma_metres"] = {
        kind: {x: v for x, v in paired_ci(result[kind]["_aurg"], result["sigma_metres"]["_aurg"]).items() if x != "seeds"}
        for kind in rows if kind != "sigma_metres"}
    return result


@torch.no_grad()
def score_split(models: dict[str, torch.nn.Module], data: DiverseFocalStackDataset, label: str) -> dict:
    """Per model: each stack's sparsification by every measure of :data:`MEASURES` (error in metres); the pooled
    error in planes against σ in planes (the truth's plane index: its depth interpolated on the focus distances,
    in dioptres)."""
    rows = {m: {kind: [] for kind in MEASURES} for m in models}
    pooled = {m: ([], []) for m in models}
    for i in tqdm(range(len(data)), desc=label, leave=False):
        s = data[i]
        valid = s["mask"][0].numpy()
        gt = s["depth"][0].numpy()
        inv_focus = 1.0 / s["focus"].double().numpy()
        gt_index = np.interp(-1.0 / gt[valid], -inv_focus, np.arange(len(inv_focus)))  # -1/z increases near to far
        for m, model in models.items():
            out = model(s["stack"][None], s["focus"][None])
            prob = out["prob"][0]
            err = out["depth"][0, 0].numpy() - gt
            for kind, measure in MEASURES.items():
                rows[m][kind].append(sparsification(err, measure(out, prob).numpy(), valid))
            index = torch.arange(prob.shape[0], dtype=prob.dtype)[None]  # the readout in planes: mean and σ
            mean_index, ps = (t[0, 0].numpy() for t in focus_readout(prob[None], index)[:2])
            pooled[m][0].append(mean_index[valid] - gt_index)
            pooled[m][1].append(ps[valid])
    return {m: summarise(rows[m], *(np.concatenate(x) for x in pooled[m])) for m in models}


def figure(results: dict, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(next(iter(results.values())))
    fig, axes = plt.subplots(1, len(names), figsize=(5 * len(names), 4.2), sharey=True, squeeze=False)
    for ax, split in zip(axes[0], names):
        curves = []
        for model, colour in zip(results, ("tab:blue", "tab:orange")):
            r = results[model][split]
            for kind, style in (("metres", "-"), ("planes", ":")):
                curves += ax.plot(DEFAULT_FRACTIONS, r[f"sigma_{kind}"]["_curves"][0], style, color=colour,
                                  label=f"{model}, by σ in {kind} (AUSE {r[f'sigma_{kind}']['ause']['mean']:.2f})")
            ax.plot(DEFAULT_FRACTIONS, r["sigma_metres"]["_curves"][1], "--", color=colour, alpha=0.5,
                    label=f"{model}: oracle (largest error first)")
        ax.axhline(1.0, color="grey", lw=0.8, label="random order")
        ax.set(title=split, xlabel="fraction of pixels removed (largest σ first)", ylim=(0, 1.1))
        ax.legend(handles=curves, fontsize=7, loc="lower left")
    axes[0, 0].set_ylabel("RMSE of the pixels left / RMSE of all")
    others = [h for h in axes[0, 0].get_lines() if "AUSE" not in h.get_label()]
    fig.legend(handles=others, loc="lower center", ncol=len(others), fontsize=8)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--stacks", type=int, default=48, help="stacks per split")
    ap.add_argument("--size", type=int, default=256, help="stack side in pixels")
    ap.add_argument("--models", nargs="+", default=list(MODELS), help="shipped model names or checkpoint files")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "sigma_sparsification.json")
    ap.add_argument("--figure", type=Path, default=ROOT / "docs" / "sigma_sparsification.png")
    args = ap.parse_args(argv)
    torch.manual_seed(0)
    data = splits(args.stacks, (args.size, args.size))
    models = {m: load_pretrained(m).eval() for m in args.models}
    by_split = {k: score_split(models, d, k) for k, d in data.items()}
    results = {m: {k: by_split[k][m] for k in data} for m in models}
    figure(results, args.figure)
    for m, per in results.items():
        for split, r in per.items():
            for kind in MEASURES:
                r[kind] = {k: v for k, v in r[kind].items() if not k.startswith("_")}
            a, b = r["sigma_metres"], r["sigma_planes"]
            t1 = next(t for t in r["thresholds"] if t["max_sigma_planes"] == 1.0)
            print(f"{m}, {split}: AUSE {a['ause']['mean']:.3f} (σ in m) / {b['ause']['mean']:.3f} (planes), AURG "
                  f"{a['aurg']['mean']:.3f} / {b['aurg']['mean']:.3f}; σ > 1 plane: {t1['masked_share']:.1%} of pixels, "
                  f"{t1['off_by_1_masked']:.1%} of them more than 1 plane off, against {t1['off_by_1_kept']:.1%} "
                  f"of the rest; {t1['off_by_1_caught']:.0%} of those more than 1 plane off are masked; error within 1σ / 2σ: "
                  f"{r['within_1_sigma']:.0%} / {r['within_2_sigma']:.0%}; AURG minus σ in metres's: "
                  + ", ".join(f"{k} {v['mean']:+.3f} [{v['ci95'][0]:+.3f}, {v['ci95'][1]:+.3f}]"
                              for k, v in r["aurg_minus_sigma_metres"].items()))
    result = {
        "benchmark": "sigma_sparsification", "cpu": cpu_model(), "torch": torch.__version__,
        "command": " ".join(["python", *map(shlex.quote, sys.argv)]), "stacks_per_split": args.stacks,
        "size": args.size, "fractions": DEFAULT_FRACTIONS.tolist(), "results": results,
        "note": "AUSE/AURG: areas over the removed fraction 0..0.98 of curves normalised by each stack's RMSE; "
                "intervals: 95 % Student-t over stacks",
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    return result


if __name__ == "__main__":
    main()
