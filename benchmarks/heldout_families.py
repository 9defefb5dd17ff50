"""Where on the held-out split two ladder variants differ: seed-paired RMSE per focus span by scene family.

Reads a ladder's JSON written by ``bench_ablation.py`` (runs trained on the diverse data, so it has a
``"held_out"`` part with each stack's RMSE), re-derives each held-out stack's scene family from the split's
seed (:meth:`dflib.data.diverse.DiverseFocalStackDataset.spec`, nothing is rendered) and prints, per family,
the mean over stacks of a − b (RMSE / focus span), per seed and with a 95 % Student-t interval over seeds.
Then how much of the spread over seeds of the whole split's mean is the training path and how much the
stacks (:func:`dflib.ladders.seed_stack_noise`), and how many seed pairs would give an interval of
``--halfwidth`` at that spread (:func:`dflib.ladders.seeds_for_halfwidth`).

    python benchmarks/heldout_families.py benchmarks/results/ablation_mid_stage2.json
    python benchmarks/heldout_families.py benchmarks/results/ablation_mid_stage2_fresh.json --seed 900012

A breakdown chosen after looking is a hypothesis, not a finding: check it on fresh stacks (``--split-seed``).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dflib.data.diverse import DiverseConfig, DiverseFocalStackDataset  # noqa: E402
from dflib.data.synthetic import TEST_SEED  # noqa: E402
from dflib.ladders import paired_ci, seed_stack_noise, seeds_for_halfwidth  # noqa: E402


def _per_span(ladder: dict, seed: int, a: str, b: str) -> tuple[list, dict[str, dict[int, np.ndarray]]]:
    """The held-out stacks' specs and ``{variant: {seed: RMSE / span per stack [N]}}`` of variants a and b."""
    part = ladder["held_out"]
    data = DiverseFocalStackDataset(part["test_stacks"], (256, 256), DiverseConfig(split="heldout"), seed=seed)
    specs = [data.spec(i) for i in range(len(data))]
    span = np.array([max(s.focus_m) - min(s.focus_m) for s in specs])
    return specs, {name: {seed: np.asarray(errs) / span for seed, errs in zip(v["seeds"], v["rmse_per_stack"])}
                   for name, v in ((a, part["variants"][a]), (b, part["variants"][b]))}


def noise_split(ladder: dict, seed: int, a: str = "dualfocus", b: str = "dfv") -> dict:
    """:func:`dflib.ladders.seed_stack_noise` of a − b, RMSE per span, over the held-out stacks and the seeds both have."""
    _, per_span = _per_span(ladder, seed, a, b)
    seeds = sorted(set(per_span[a]) & set(per_span[b]))
    return seed_stack_noise(np.stack([per_span[a][s] - per_span[b][s] for s in seeds]))


def family_differences(ladder: dict, seed: int, a: str = "dualfocus", b: str = "dfv") -> dict[str, dict]:
    """``{family: {"stacks": n, "per_seed": [...], "mean": m, "ci95": [lo, hi]}}`` of a − b, RMSE per span,
    on the ladder's held-out stacks (drawn with ``seed``), plus ``"all"``."""
    specs, per_span = _per_span(ladder, seed, a, b)
    groups: dict[str, list[int]] = defaultdict(list)
    for i, s in enumerate(specs):
        groups[s.family].append(i)
    groups["all"] = list(range(len(specs)))
    out = {}
    for family, idx in sorted(groups.items()):
        d = paired_ci(*({seed: float(e[idx].mean()) for seed, e in per_span[x].items()} for x in (a, b)))
        out[family] = {"stacks": len(idx), "per_seed": [float(per_span[a][s][idx].mean() - per_span[b][s][idx].mean())
                                                       for s in d["seeds"]], **d}
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("ladder", type=Path, help="a ladder JSON with a held_out part")
    p.add_argument("--seed", type=int, default=TEST_SEED, help="the held-out split's seed (bench_ablation --split-seed)")
    p.add_argument("--a", default="dualfocus")
    p.add_argument("--b", default="dfv")
    p.add_argument("--halfwidth", type=float, default=0.004,
                   help="report how many seed pairs give a 95 %% interval this narrow (of the span) at this spread")
    args = p.parse_args()
    ladder = json.loads(args.ladder.read_text())
    if "held_out" not in ladder:
        p.error(f"{args.ladder} has no held_out part (a ladder of runs trained on the diverse data has one)")
    if f"seed {args.seed}" not in ladder["held_out"]["split"] and not (
            args.seed == TEST_SEED and "TEST_SEED" in ladder["held_out"]["split"]):
        p.error(f"--seed {args.seed} is not the seed of {args.ladder}'s held-out split: {ladder['held_out']['split'][:60]}")
    print(f"{args.a} − {args.b}, RMSE / focus span, held-out stacks of {args.ladder.name} (seed {args.seed}):")
    print("| family | stacks | per seed | mean [95 % CI] |\n|---|---|---|---|")
    for family, d in family_differences(ladder, args.seed, args.a, args.b).items():
        print(f"| {family} | {d['stacks']} | {' '.join(f'{x:+.4f}' for x in d['per_seed'])} | "
              f"{d['mean']:+.4f} [{d['ci95'][0]:+.4f}, {d['ci95'][1]:+.4f}] |")
    n = noise_split(ladder, args.seed, args.a, args.b)
    print(f"\nSpread of the per-seed means ('all'): SD {n['between_seed_sd']:.4f} over {n['seeds']} seeds. Two-way "
          f"split: the training path {n['seed_sd']:.4f}, the seed x stack noise on a mean over {n['stacks']} "
          f"stacks {n['stack_noise_sd']:.4f} (4x the stacks halves it). At this spread a 95 % interval of "
          f"±{args.halfwidth} takes {seeds_for_halfwidth(n['between_seed_sd'], args.halfwidth)} seed pairs.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
