"""Does the surface branch shrink the rest of the network's training step through gradient clipping?

Training clips the gradient of all parameters to one global norm (``TrainConfig.max_grad_norm`` = 1), so even with
the gradient head isolated (no gradient of L_sv reaches the encoder) a large gradient on the branch scales down
the step of every other layer. :func:`dflib.diagnostics.clip_coupling` measures it on one batch; this script
averages it over training batches of a recipe's own pool, for the model at initialisation and for trained runs:

    python benchmarks/clip_coupling.py --recipe tiny_dualfocus --runs runs/ablation/ladder --seeds 0 1 2
    python benchmarks/clip_coupling.py --recipe mid_dualfocus_sdrop --runs runs/ablation_mid/ladder --seeds 0 1 2 \\
        --rung dualfocus_sdrop --cache-dir runs/ablation_mid/cache

writes ``benchmarks/results/clip_coupling_<recipe>.json``: per seed and state (``init``, ``trained``) the mean over
batches of each quantity, and the share of batches where clipping was active. The batches are the first
``--batches`` groups of ``--batch-size`` stacks with equal N of the seed's training pool (no test stacks).
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dflib.utils import cpu_model  # noqa: E402


def batches(dataset, count: int, size: int) -> list[dict]:
    """``count`` training batches of ``size`` items with equal N, in pool order."""
    groups: dict[int, list] = {}
    out = []
    for i in range(len(dataset)):
        item = dataset[i]
        group = groups.setdefault(int(item["focus"].shape[0]), [])
        group.append(item)
        if len(group) == size:
            out.append({k: torch.stack([g[k] for g in group]) for k in ("stack", "focus", "depth", "mask")})
            group.clear()
            if len(out) == count:
                break
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--recipe", default="tiny_dualfocus")
    p.add_argument("--runs", help="a ladder's run folder (RUNG_s<seed>/last.pt); without it only init is measured")
    p.add_argument("--rung", default="dualfocus", help="the rung's folder name in --runs")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--batches", type=int, default=16)
    p.add_argument("--batch-size", type=int, default=None, help="default: the recipe's")
    p.add_argument("--cache-dir", help="the rendered training pools (as in training)")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    args = p.parse_args()

    from dflib.diagnostics import clip_coupling
    from dflib.train import TrainConfig, build_loss, build_model, load_model
    from dflib.train_data import build_datasets

    torch.set_num_threads(1)
    result = {"benchmark": "clip_coupling", "recipe": args.recipe, "cpu": cpu_model(),
              "command": " ".join(["python", *map(shlex.quote, sys.argv)]), "seeds": {}}
    for seed in args.seeds:
        cfg = TrainConfig.recipe(args.recipe, seed=seed, cache_dir=args.cache_dir, val_scenes=0)
        data = batches(build_datasets(cfg)[0], args.batches, args.batch_size or cfg.batch_size)
        models = {"init": build_model(cfg.model, seed, cfg.model_overrides)}
        ckpt = Path(args.runs or "") / f"{args.rung}_s{seed}" / "last.pt"
        if args.runs and ckpt.is_file():
            models["trained"] = load_model(ckpt, "cpu")
        for state, model in models.items():
            loss = build_loss(cfg, model)
            rows = [clip_coupling(model, b["stack"], b["focus"], b["depth"], b["mask"], loss, cfg.max_grad_norm)
                    for b in data]
            summary = {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}
            summary["clipped_share"] = float(np.mean([r["clip_global"] < 1 for r in rows]))
            summary["batches"] = len(rows)
            result["seeds"].setdefault(str(seed), {})[state] = summary
            print(f"seed {seed} {state:7s} " + " ".join(f"{k} {v:.3g}" for k, v in summary.items()), flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"clip_coupling_{args.recipe}.json"
    path.write_text(json.dumps(result, indent=1))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
