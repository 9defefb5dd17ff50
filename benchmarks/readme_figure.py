"""The README's pictures: one embedded test stack, its ground truth and every shipped model's depth;
the training curves of the shipped models whose curves ``bench_ablation.py --export`` or
``ship_weights.py`` recorded (a fine-tuned model's stages one after the other).

    python benchmarks/readme_figure.py            # writes docs/figure.png and docs/training_curves.png
"""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dflib.classical import sff_depth  # noqa: E402
from dflib.evaluate import embedded_benchmark  # noqa: E402
from dflib.predict import predict  # noqa: E402
from dflib.models.pretrained import ALIASES, pretrained_names  # noqa: E402
from dflib.train import read_log  # noqa: E402
from dflib.utils import to_numpy  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"


def label(name: str) -> str:
    """``dualfocus_mid`` -> ``DualFocus-mid``."""
    return name.replace("dualfocus", "DualFocus").replace("dfv", "DFV").replace("_", "-")


def main(index: int = 2, out: Path = ROOT / "docs" / "figure.png") -> None:
    sample = embedded_benchmark()[index]
    stack, focus = sample["stack"], sample["focus"]
    images = [to_numpy(im).transpose(1, 2, 0) for im in stack]
    gt = to_numpy(sample["depth"][0]).clip(max=1.5)
    maps = {"ground truth (clipped 1.5 m)": gt}
    for ckpt in (n for n in pretrained_names() if n not in ALIASES):  # every shipped model (dflib.models.load_pretrained)
        maps[label(ckpt)] = predict(images, focus.tolist(), checkpoint=ckpt, device="cpu").depth
    maps["classical SFF (lapv)"] = sff_depth(to_numpy(stack), to_numpy(focus), measure="lapv")
    n = len(images)
    fig, axes = plt.subplots(2, max(n, len(maps)), figsize=(2.6 * max(n, len(maps)), 5.4))
    for ax in axes.ravel():
        ax.axis("off")
    for i, im in enumerate(images):
        axes[0, i].imshow(im)
        axes[0, i].set_title(f"focus {float(focus[i]):.2g} m", fontsize=9)
    for j, (name, d) in enumerate(maps.items()):
        im = axes[1, j].imshow(d, cmap="turbo_r", vmin=0.1, vmax=1.5)
        axes[1, j].set_title(name, fontsize=9)
    fig.colorbar(im, ax=axes[1].tolist(), fraction=0.02, label="depth (m)")
    fig.suptitle("An embedded test stack (FoD500 camera, 5 planes, noise) and the depth each method reads from it")
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=90, bbox_inches="tight")
    print(f"wrote {out}")


def training_curves(out: Path = ROOT / "docs" / "training_curves.png") -> None:
    """Training loss and validation RMSE of every recorded curve (``benchmarks/results/train_log_*.csv``)."""
    logs = {p.stem.removeprefix("train_log_"): read_log(p) for p in sorted(RESULTS.glob("train_log_*.csv"))}
    if not logs:
        print("no benchmarks/results/train_log_*.csv yet (bench_ablation.py --export writes them)")
        return
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
    for name, rows in logs.items():
        k = 20  # running mean over 20 logged batches
        loss = np.convolve([r["depth"] for r in rows], np.ones(k) / k, mode="valid")
        axes[0].plot([r["step"] for r in rows][k - 1:], loss, label=label(name))
        color = axes[0].lines[-1].get_color()
        for stage in sorted({r.get("stage", 0) for r in rows}):  # a fine-tuned run: its stages apart
            val = [(r["step"], r["val_rmse"]) for r in rows if "val_rmse" in r and r.get("stage", 0) == stage]
            axes[1].plot(*zip(*val), "o-" if stage == 0 else "s--", color=color,
                         label=label(name) + (f" (stage {stage + 1})" if stage else ""))
    starts = sorted({r["step"] for rows in logs.values() for prev, r in zip(rows, rows[1:])
                     if r.get("stage", 0) != prev.get("stage", 0)})  # where a fine-tuning stage begins
    for ax in axes:
        for x in starts:
            ax.axvline(x, color="gray", ls=":", lw=1)
            ax.annotate("fine-tuning", (x, 1), xycoords=("data", "axes fraction"), fontsize=8, color="gray",
                        ha="right", va="top", rotation=90)
    axes[0].set(yscale="log", xlabel="step", ylabel="depth loss", title="training (running mean of 20 logged batches)")
    axes[1].set(xlabel="step", ylabel="RMSE (m)", title="validation RMSE (each stage's own validation split)")
    for ax in axes:
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=90, bbox_inches="tight")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
    training_curves()
