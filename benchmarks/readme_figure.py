"""The README's picture: one embedded test stack, its ground truth, and every method's depth.

    python benchmarks/readme_figure.py            # writes docs/figure.png
"""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dflib.classical import sff_depth  # noqa: E402
from dflib.evaluate import embedded_benchmark  # noqa: E402
from dflib.predict import predict  # noqa: E402
from dflib.utils import to_numpy  # noqa: E402


def main(index: int = 2, out: Path = ROOT / "docs" / "figure.png") -> None:
    sample = embedded_benchmark()[index]
    stack, focus = sample["stack"], sample["focus"]
    images = [to_numpy(im).transpose(1, 2, 0) for im in stack]
    gt = to_numpy(sample["depth"][0]).clip(max=1.5)
    maps = {"ground truth (clipped 1.5 m)": gt}
    for name, ckpt in (("DualFocus-tiny", "dualfocus_tiny"), ("DFV-tiny", "dfv_tiny")):  # shipped names (dflib.models.load_pretrained)
        maps[name] = predict(images, focus.tolist(), checkpoint=ckpt, device="cpu").depth
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


if __name__ == "__main__":
    main()
