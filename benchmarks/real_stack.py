"""The shipped models on a real focal stack, without ground truth: what the README's "Tried on a real stack" says.

No depth is known for a real stack, so depth is compared with a pseudo-truth where one exists: the sharpest
frame of each 64 x 64 px patch (mean squared Laplacian of Gaussian, σ = 1.5 px, at full resolution) among the
patches whose sharpest frame is at least twice as sharp as the next (a clear peak). Per model and working size:

- ``patch_mean_abs_planes``: mean |median depth in the patch - sharpest frame| (frames numbered 1..N near to far);
- ``patch_within_1``: the share of those patches within one plane;
- ``pixels_off_by_1_5``: the share of their pixels more than 1.5 planes from the patch's sharpest frame (streaks,
  such as bright edges read falsely near, show here and not in the patch medians).
- ``masked_at_1_plane`` (``_in_clear_patches``): the share of all pixels (of those patches' pixels) that
  ``dflib predict --max-sigma 1`` leaves without depth.

It also records what ``dflib predict`` would say: the alignment (``dflib.align.align_if_needed``), the order
note for index-ordered frames (``dflib.predict.breathing_order_note``), the blur measured at each working size
and ``--working-size auto``'s choice (``dflib.predict.blur_range_note``, ``auto_working_size``), and how much the
alignment's maps move with RANSAC's seed and with the frames given in reverse order.

The stacks are not shipped (third-party data). The README's first two come from
https://github.com/PetteriAimonen/focus-stack (``examples/depthmap``, 10 frames; ``examples/pcb``, 7 frames)::

    git clone --depth 1 https://github.com/PetteriAimonen/focus-stack
    python benchmarks/real_stack.py --images focus-stack/examples/depthmap --focus 10 9 8 7 6 5 4 3 2 1 \\
        --sizes 1024 512 288 --out benchmarks/results/real_stack_depthmap.json
    python benchmarks/real_stack.py --images focus-stack/examples/pcb --focus 1 2 3 4 5 6 7 \\
        --sizes 1024 576 --out benchmarks/results/real_stack_pcb.json

and the ring stack of https://github.com/cmcguinness/focusstack (``Input``, 6 frames, named near to far)::

    git clone --depth 1 https://github.com/cmcguinness/focusstack
    python benchmarks/real_stack.py --images focusstack/Input --focus 1 2 3 4 5 6 --sizes 1024 512 \\
        --out benchmarks/results/real_stack_ring.json

(the depthmap stack's files are named far to near, hence its reversed focus).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from dflib.align import align_if_needed, estimate_breathing
from dflib.io import load_stack
from dflib.models.pretrained import train_config_of
from dflib.predict import auto_working_size, blur_range_note, breathing_order_note, predict
from dflib.utils import cpu_model
from dflib.warp import displacement_px

MODELS = ("dfv_mid", "dualfocus_mid")


def sharpest_frames(images: np.ndarray, patch: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """``[h, w]`` sharpest frame (1..N) of each patch and whether its peak is clear (at least twice the next)."""
    from scipy import ndimage

    grey = images.mean(axis=1)
    grey = grey[:, : grey.shape[1] // patch * patch, : grey.shape[2] // patch * patch]  # whole patches only
    fm = np.stack([ndimage.uniform_filter(ndimage.gaussian_laplace(f, 1.5) ** 2, patch)[patch // 2::patch, patch // 2::patch]
                   for f in grey])
    top = np.sort(fm, axis=0)
    return fm.argmax(axis=0) + 1.0, (top[-1] > 2.0 * top[-2]) & (top[-1] > 1e-4)


def agreement(depth: np.ndarray, ref: np.ndarray, clear: np.ndarray, patch: int = 64) -> dict[str, float]:
    """Depth ``[H, W]`` (planes) against the patches' sharpest frames (None where no patch has a clear one)."""
    if not clear.any():
        return {"patch_mean_abs_planes": None, "patch_within_1": None, "pixels_off_by_1_5": None}
    h, w = ref.shape
    blocks = depth[: h * patch, : w * patch].reshape(h, patch, w, patch)
    med = np.median(blocks, axis=(1, 3))
    err = np.abs(med - ref)[clear]
    off = np.abs(blocks - ref[:, None, :, None]) > 1.5  # [h, patch, w, patch]
    return {"patch_mean_abs_planes": round(float(err.mean()), 3), "patch_within_1": round(float((err <= 1).mean()), 3),
            "pixels_off_by_1_5": round(float(off.transpose(0, 2, 1, 3)[clear].mean()), 4)}


def sigma_mask(plane_sigma: np.ndarray, clear: np.ndarray, patch: int = 64, max_sigma: float = 1.0) -> dict[str, float]:
    """What ``--max-sigma 1`` masks: the share of all pixels, and of those in clearly peaked patches."""
    h, w = clear.shape
    masked = plane_sigma > max_sigma
    blocks = masked[: h * patch, : w * patch].reshape(h, patch, w, patch).transpose(0, 2, 1, 3)
    return {"masked_at_1_plane": round(float(masked.mean()), 4),
            "masked_at_1_plane_in_clear_patches": round(float(blocks[clear].mean()), 4) if clear.any() else None}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", required=True, help="a folder of the stack's frames (or the files)", nargs="+")
    ap.add_argument("--focus", required=True, nargs="+", type=float, help="frame order, 1 = nearest (index units)")
    ap.add_argument("--sizes", nargs="+", type=int, default=[1024, 512], help="working sizes to compare")
    ap.add_argument("--out", required=True, help="JSON to write")
    args = ap.parse_args(argv)
    t0 = time.time()
    images = args.images[0] if len(args.images) == 1 else args.images
    stack = load_stack(images, args.focus, "index")
    raw = stack.images.copy()
    al = align_if_needed(stack.images, inplace=True, progress=False)
    est = al.estimate
    if est is None:
        raise SystemExit(f"{args.images}: {al.message}")
    # how much the maps move with RANSAC's seed and with the frame order (corners and centre, full resolution)
    size = raw.shape[-2:]
    other_seed = estimate_breathing(raw, seed=1, progress=False).matrices
    rev = estimate_breathing(raw[::-1], progress=False).matrices[::-1]
    rev = rev @ np.linalg.inv(rev[est.reference])
    consistency = {"seed_0_vs_1_px": round(float(displacement_px(np.linalg.inv(est.matrices) @ other_seed, size).max()), 3),
                   "forward_vs_reverse_px": round(float(displacement_px(np.linalg.inv(est.matrices) @ rev, size).max()), 3)}
    del raw
    train_config = train_config_of(None)
    ref, clear = sharpest_frames(al.images)
    rows = []
    for ws in args.sizes:
        note, blur = blur_range_note(al.images, ws, train_config)
        for name in MODELS:
            pred = predict(al.images, stack.focus, checkpoint=name, focus_unit="index", working_size=ws, device="cpu",
                           progress=False)
            row = {"model": name, "working_size": ws, "blur": blur, "blur_note": note,
                   **agreement(pred.depth, ref, clear), **sigma_mask(pred.plane_sigma(), clear)}
            rows.append(row)
            print(json.dumps({k: v for k, v in row.items() if k != "blur_note"}), flush=True)
    result = {
        "benchmark": "the shipped models on a real stack against the sharpest frame of clearly peaked 64 px patches",
        "command": "python benchmarks/real_stack.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "cpu": cpu_model(),
        "frames": [p.name for p in stack.paths], "focus": list(stack.focus), "size_wxh": [int(size[1]), int(size[0])],
        "alignment": al.message, "scales": [round(float(s), 5) for s in est.scales], "map_consistency": consistency,
        "order_note": breathing_order_note(est.scales, "index"),
        "auto_working_size": auto_working_size(al.images, train_config)[1],
        "clear_patches": [int(clear.sum()), int(clear.size)],
        "results": rows, "seconds": round(time.time() - t0, 1),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.out}")
    return result


if __name__ == "__main__":
    main()
