"""Ship a finished training run as package weights: ``dflib/weights/<name>.pt`` (weights and configs, no
optimiser state; ``torch.load(..., weights_only=True)`` reads it) and its whole training curve
``benchmarks/results/train_log_<name>.csv`` (a fine-tuned run's first stage included, :func:`dflib.train.run_history`).

    python benchmarks/ship_weights.py RUN_DIR NAME     # e.g. runs/finetune_mid_dualfocus dualfocus_mid

``bench_ablation.py --export`` does the same for the ladder's seed-0 runs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dflib.checkpoint import export_weights, read_checkpoint  # noqa: E402
from dflib.train import TrainConfig, run_history, write_log  # noqa: E402


def ship(run: Path, name: str, weights: Path = ROOT / "dflib" / "weights", results: Path = ROOT / "benchmarks" / "results") -> Path:
    """Export ``run/last.pt`` as ``weights/<name>.pt`` and its curve as ``results/train_log_<name>.csv``.

    Raises:
        ValueError: the run has not reached its configured steps.
    """
    cfg = TrainConfig.load(run / "config.json")
    step = read_checkpoint(run / "last.pt").get("step", 0)
    if step < cfg.steps:
        raise ValueError(f"{run} stopped at step {step} of {cfg.steps}: finish it (dflib train --resume) first")
    path = export_weights(run / "last.pt", weights / f"{name}.pt")
    results.mkdir(parents=True, exist_ok=True)
    write_log(results / f"train_log_{name}.csv", run_history(run))
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path, help="a finished run folder (config.json, last.pt, log.csv)")
    ap.add_argument("name", help="the shipped name, e.g. dualfocus_mid")
    args = ap.parse_args()
    print(f"wrote {ship(args.run, args.name)} and benchmarks/results/train_log_{args.name}.csv")


if __name__ == "__main__":
    main()
