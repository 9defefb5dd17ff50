"""Compare checkpoints on validation stacks only, to choose between them without touching a test split.

Scores each ``NAME=CHECKPOINT`` (a checkpoint file or a shipped name) on fresh stacks of a validation seed
(``VAL_SEED + 7``: neither the test seed nor the validation pools training runs draw from): the embedded
data's setting (FoD500 protocol) and the diverse data's default in-distribution setting, RMSE in metres,
RMSE/span and δ1 (:func:`dflib.generalisation.summarise`).

    python benchmarks/compare_validation.py --tag stage2 \\
        stage1=runs/mid_dualfocus/last.pt stage2=runs/finetune_mid_dualfocus/last.pt

Writes ``benchmarks/results/validation_<tag>.{json,md}``. The shipped mid pair's stage 2 was chosen with it
(README: what the shipped weights were trained for).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dflib.data import SyntheticFocalStackDataset  # noqa: E402
from dflib.data.diverse import DiverseConfig, DiverseFocalStackDataset  # noqa: E402
from dflib.data.synthetic import VAL_SEED  # noqa: E402
from dflib.evaluate import learned_method  # noqa: E402
from dflib.generalisation import score, summarise  # noqa: E402
from dflib.utils import cpu_model  # noqa: E402

SEED = VAL_SEED + 7


def validation_splits(length: int, size: int) -> dict:
    """Embedded-setting and diverse in-distribution stacks of :data:`SEED`: name → ``(dataset, protocol)``."""
    return {
        "embedded": (SyntheticFocalStackDataset(length, size=(size, size), n_planes=5, noise=True, seed=SEED), "fod500"),
        "diverse": (DiverseFocalStackDataset(length, (size, size), DiverseConfig(split="train"), seed=SEED), "default"),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="+", help="NAME=CHECKPOINT (a file or a shipped name)")
    ap.add_argument("--tag", required=True, help="names the output files")
    ap.add_argument("--length", type=int, default=24, help="stacks per split")
    ap.add_argument("--size", type=int, default=256)
    args = ap.parse_args()
    pairs = [m.split("=", 1) for m in args.models]
    if any(len(p) != 2 for p in pairs):
        ap.error("give each model as NAME=CHECKPOINT")
    methods = [learned_method(ckpt, name=name, device="cpu") for name, ckpt in pairs]
    summary = summarise(score(methods, validation_splits(args.length, args.size), progress=True))
    res = {"benchmark": "validation: checkpoints compared on validation stacks", "cpu": cpu_model(), "seed": SEED,
           "stacks_per_split": args.length, "size": args.size, "models": dict(pairs), "summary": summary}
    out = ROOT / "benchmarks" / "results" / f"validation_{args.tag}"
    out.with_suffix(".json").write_text(json.dumps(res, indent=2))
    cols = ("embedded_rmse", "embedded_delta1", "diverse_rmse", "diverse_span", "diverse_delta1")
    md = "\n".join([f"# Validation: {args.tag} (seed {SEED}, {args.length} stacks per split at {args.size}², CPU {res['cpu']})", ""]
                   + [f"- {n}: `{c}`" for n, c in pairs]
                   + ["", "| model | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
                   + [f"| {n} | " + " | ".join(f"{m[c]:.3f}" for c in cols) + " |" for n, m in summary.items()]) + "\n"
    out.with_suffix(".md").write_text(md)
    print(md)


if __name__ == "__main__":
    main()
