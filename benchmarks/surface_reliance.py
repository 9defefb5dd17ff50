"""Does DualFocus-mid's decoder rely on its surfaces? A test-time intervention on the mid ladder's runs.

Each DualFocus run of ``bench_ablation.py --size mid`` predicts validation stacks three times: with its own
surfaces, with them rotated by 180° (same values, geometry in the wrong place) and with zeros in their place
(:func:`dflib.diagnostics.surface_reliance`). Validation stacks only (``VAL_SEED + 12``), never the test split.

    python benchmarks/surface_reliance.py --runs runs/ablation_mid --seeds 0 1 2

writes ``benchmarks/results/surface_reliance.{json,md}``: per run and split the mean RMSE per focus span of each
swap, and the differences rotated − own and zero − own with a 95 % t-interval over stacks; then the same
differences paired over seeds; then both per scene family (``"by_family"``; the held-out split's families are
never trained on), to show where the branch helps or costs.

``--recorded FILE`` takes the reference rungs' runs that are not in ``--runs`` from an earlier result of this
script scored on the same stacks, so that a new rung can be compared with references whose runs are gone:

    python benchmarks/surface_reliance.py --variant dualfocus_sdrop --recorded benchmarks/results/surface_reliance.json \
        --stem surface_reliance_sdrop
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dflib.ladders import paired_ci  # noqa: E402
from dflib.utils import cpu_model  # noqa: E402

SPLITS = ("held_out", "diverse")
DIFFS = ("rotated", "zero")


def t_interval(d: np.ndarray) -> dict:
    """Mean of ``d`` and its 95 % Student-t interval (over stacks)."""
    from scipy import stats

    half = float(stats.t.ppf(0.975, len(d) - 1) * d.std(ddof=1) / np.sqrt(len(d)))
    return {"mean": float(d.mean()), "ci95": [float(d.mean() - half), float(d.mean() + half)]}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", default="runs/ablation_mid", help="bench_ablation.py's --runs folder")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--variant", default="dualfocus", help="the ladder rung (a model with a surface branch)")
    p.add_argument("--references", nargs="*", default=["dfv", "dfv+fv"],
                   help="rungs without the branch, scored on the same stacks for comparison")
    p.add_argument("--stacks", type=int, default=32, help="validation stacks per split")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    p.add_argument("--stem", default="surface_reliance")
    p.add_argument("--recorded", help="an earlier surface_reliance JSON on the same stacks: the reference rungs' "
                   "runs that are not in --runs are read from it")
    args = p.parse_args()

    import torch

    from dflib.data import CachedDataset
    from dflib.data.diverse import DiverseConfig, DiverseFocalStackDataset
    from dflib.diagnostics import surface_reliance
    from dflib.train import VAL_SEED, load_model

    torch.set_num_threads(1)
    seed = VAL_SEED + 12
    data = {"held_out": DiverseFocalStackDataset(args.stacks, (256, 256), DiverseConfig(split="heldout"), seed=seed),
            "diverse": DiverseFocalStackDataset(args.stacks, (256, 256), DiverseConfig(span_m=1.4), seed=seed)}
    families = {k: [v.spec(i).family for i in range(len(v))] for k, v in data.items()}
    data = {k: CachedDataset(v, desc=f"rendering {k} validation stacks") for k, v in data.items()}
    result = {"benchmark": "surface_reliance", "cpu": cpu_model(),
              "command": " ".join(["python", *map(shlex.quote, sys.argv)]),
              "split": f"validation (VAL_SEED + 12 = {seed}), {args.stacks} stacks per split at 256x256",
              "variant": args.variant, "families": families, "runs": {}, "paired_over_seeds": {}, "by_family": {}}
    for stage, folder in (("stage1", "ladder"), ("stage2", "stage2")):
        for name in (args.variant, *args.references):
            for s in args.seeds:
                path = Path(args.runs) / folder / f"{name}_s{s}" / "last.pt"
                if not path.is_file():
                    print(f"skipping {path}: not there", flush=True)
                    continue
                model = load_model(path, "cpu")
                swaps = ("own", *DIFFS) if name == args.variant else ("own",)
                row = {}
                for split, ds in data.items():
                    errs = {k: np.asarray(v) for k, v in surface_reliance(model, ds, swaps=swaps).items()}
                    row[split] = {"rmse_span": {k: float(v.mean()) for k, v in errs.items()},
                                  **{f"{k}-own": t_interval(errs[k] - errs["own"]) for k in swaps[1:]},
                                  "per_stack": {k: v.tolist() for k, v in errs.items()}}
                    print(f"{stage} {name} seed {s} {split:8s} " + " ".join(
                        f"{k} {v:.4f}" for k, v in row[split]["rmse_span"].items()), flush=True)
                result["runs"].setdefault(stage, {}).setdefault(name, {})[str(s)] = row
        if args.recorded and args.variant in result["runs"].get(stage, {}):
            add_recorded(result, json.loads(Path(args.recorded).read_text()), stage, args.references, args.recorded)
        runs = result["runs"].get(stage, {})
        if args.variant not in runs:
            continue
        for split in SPLITS:
            def per_seed(name: str, swap: str) -> dict[int, float]:
                return {int(s): r[split]["rmse_span"][swap] for s, r in runs.get(name, {}).items()}

            for k in DIFFS:
                result["paired_over_seeds"][f"{stage} {split}: {k} - own"] = paired_ci(
                    per_seed(args.variant, k), per_seed(args.variant, "own"))
            for ref in args.references:
                for k in ("own", "zero"):
                    if ref in runs:
                        result["paired_over_seeds"][f"{stage} {split}: {args.variant} ({k}) - {ref}"] = paired_ci(
                            per_seed(args.variant, k), per_seed(ref, "own"))
        result["by_family"][stage] = by_family(runs, args.variant, args.references, families)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{args.stem}.json").write_text(json.dumps(result, indent=1))
    (out / f"{args.stem}.md").write_text(markdown(result))
    print(f"wrote {out / args.stem}.json and .md")
    return 0


def add_recorded(result: dict, recorded: dict, stage: str, references: list[str], source: str) -> None:
    """Copy into ``result["runs"][stage]`` the reference rungs that it lacks and ``recorded`` has, and list them
    under ``result["recorded"][stage]``. Raises ``SystemExit`` when the two were not scored on the same stacks."""
    if recorded["split"] != result["split"]:
        raise SystemExit(f"--recorded {source}: scored on {recorded['split']!r}, not {result['split']!r}")
    for name in references:
        runs = recorded["runs"].get(stage, {}).get(name)
        if runs and name not in result["runs"].get(stage, {}):
            result["runs"].setdefault(stage, {})[name] = runs
            result.setdefault("recorded", {}).setdefault(stage, []).append(name)


def by_family(runs: dict, variant: str, references: list[str], families: dict[str, list[str]]) -> dict:
    """Per split and scene family: each swap's mean RMSE per span (mean over seeds) and, paired over seeds,
    zero − own, rotated − own and the variant (own) against each reference rung."""
    table: dict = {}
    for split, fams in families.items():
        for fam in sorted(set(fams)):
            ix = [i for i, f in enumerate(fams) if f == fam]

            def per_seed(name: str, swap: str) -> dict[int, float]:
                return {int(s): float(np.mean(np.asarray(r[split]["per_stack"][swap])[ix]))
                        for s, r in runs.get(name, {}).items() if swap in r[split]["per_stack"]}

            own = per_seed(variant, "own")
            row = {"stacks": len(ix), "rmse_span": {k: float(np.mean(list(per_seed(variant, k).values())))
                                                    for k in ("own", *DIFFS) if per_seed(variant, k)}}
            row.update({f"{k} - own": paired_ci(per_seed(variant, k), own) for k in DIFFS if per_seed(variant, k)})
            row.update({f"{variant} - {ref}": paired_ci(own, per_seed(ref, "own")) for ref in references if ref in runs})
            table.setdefault(split, {})[fam] = row
    return table


def markdown(result: dict) -> str:
    """One row per run and split: the three swaps' RMSE per span and the two differences with their intervals."""
    lines = ["| run | split | own | rotated | zero | rotated − own [95 % CI over stacks] | zero − own [95 % CI] |",
             "|---|---|---|---|---|---|---|"]
    for stage, seeds in result["runs"].items():
        for s, row in seeds.get(result["variant"], {}).items():
            for split, r in row.items():
                e = r["rmse_span"]
                cis = [f"{r[k + '-own']['mean']:+.4f} [{r[k + '-own']['ci95'][0]:+.4f}, {r[k + '-own']['ci95'][1]:+.4f}]"
                       for k in DIFFS]
                lines.append(f"| {stage} seed {s} | {split} | {e['own']:.4f} | {e['rotated']:.4f} | {e['zero']:.4f} | "
                             + " | ".join(cis) + " |")
    lines += ["", "| paired over seeds (RMSE per span) | mean | 95 % CI | seeds |", "|---|---|---|---|"]
    for k, d in result["paired_over_seeds"].items():
        lines.append(f"| {k} | {d['mean']:+.4f} | [{d['ci95'][0]:+.4f}, {d['ci95'][1]:+.4f}] | {len(d['seeds'])} |")
    for stage, table in result.get("by_family", {}).items():
        keys = sorted({k for fams in table.values() for row in fams.values() for k in row if " - " in k})
        lines += ["", f"By scene family, {stage} (mean over seeds; paired differences over seeds, mean [95 % CI]):", "",
                  "| split | family | stacks | own | " + " | ".join(keys) + " |", "|---" * (4 + len(keys)) + "|"]
        for split, fams in table.items():
            for fam, row in fams.items():
                cells = [f"{row[k]['mean']:+.4f} [{row[k]['ci95'][0]:+.4f}, {row[k]['ci95'][1]:+.4f}]" if k in row else "–"
                         for k in keys]
                lines.append(f"| {split} | {fam} | {row['stacks']} | {row['rmse_span']['own']:.4f} | " + " | ".join(cells) + " |")
    recorded = "; ".join(f"{stage}: {', '.join(names)}" for stage, names in result.get("recorded", {}).items())
    lines += ["", f"RMSE per focus span; {result['split']}; {result['cpu']}; `{result['command']}`"
              + (f"; recorded reference runs ({recorded}) from `--recorded`" if recorded else "")]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
