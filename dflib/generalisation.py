"""The generalisation benchmark: how models hold up outside the scenes they were trained on.

Splits (each a dataset and its metric protocol, see :func:`generalisation_splits`):

- ``embedded``: the embedded test split (:func:`dflib.evaluate.embedded_benchmark`:
  FoD500's camera and five planes; what the ``tiny`` weights were trained for);
- ``diverse``: the diverse training distribution (:mod:`dflib.data.diverse`,
  ``split="train"``) at a seed no training run uses: in-distribution for
  models trained on diverse stacks;
- ``heldout``: :mod:`dflib.data.diverse`'s held-out split: scene families,
  photographs and cameras that neither the diverse nor the embedded training
  data ever uses;
- ``middlebury/<camera>``: the real Middlebury "motorcycle" scene (2.1-5 m,
  shrunk 2x to 250x370 px) rendered with the cameras of
  :data:`MIDDLEBURY_CAMERAS`, planes uniform in dioptres over its depth
  range. Diverse stacks never contain it; the embedded training data does
  (every 8th training stack is a crop of it).

:func:`summarise` puts each method's in-distribution and held-out RMSE side
by side; ``benchmarks/bench_generalisation.py`` runs it all.
"""

from __future__ import annotations

import math
import statistics
import time
from typing import Iterable, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from dflib.evaluate import EMBEDDED_LENGTH, Method, ResultsTable, embedded_benchmark, evaluate
from dflib.optics import ThinLens, focus_uniform_diopters

__all__ = ["MIDDLEBURY_CAMERAS", "band_errors", "generalisation_splits", "middlebury_cameras", "score", "span_rmse", "stack_span_rmse", "summarise",
           "summary_markdown", "time_predict"]

#: name → (camera at the full 500x741 image, focus planes); the pixel pitch doubles at the 2x-shrunk image
MIDDLEBURY_CAMERAS: dict[str, tuple[ThinLens, int]] = {
    "APS-C 35 mm f/2, 10 planes": (ThinLens(35e-3, 2.0, 4e-6), 10),
    "full frame 50 mm f/5.6, 7 planes": (ThinLens(50e-3, 5.6, 6e-6), 7),
    "micro 4/3 25 mm f/4, 5 planes": (ThinLens(25e-3, 4.0, 3.3e-6), 5),
    "compact 10 mm f/2, 3 planes": (ThinLens(10e-3, 2.0, 2e-6), 3),
}


class _Samples(Dataset):
    """A list of rendered samples as a dataset."""

    def __init__(self, samples: list[dict]) -> None:
        self.samples = samples

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> dict:
        return self.samples[i]


def middlebury_cameras(shrink: int = 2, seed: int = 0) -> dict[str, Dataset]:
    """The Middlebury scene rendered with each camera of :data:`MIDDLEBURY_CAMERAS` (one stack per camera).

    The scene is shrunk ``shrink`` times by area averaging (the camera's pixel
    pitch grows as much); focus planes are uniform in dioptres from its
    nearest to its farthest valid depth; sensor noise as
    :class:`~dflib.render.NoiseConfig`'s defaults.

    Returns:
        name → a dataset of one sample dict (``stack [N,3,H,W]``, ``focus [N]`` m, ``depth``, ``mask``).
    """
    import skimage.transform

    from dflib.render import render_focal_stack
    from dflib.scenes import middlebury_motorcycle

    scene = middlebury_motorcycle()
    H, W = (s - s % shrink for s in scene.depth.shape)  # whole blocks only
    factors = (shrink, shrink)
    rgb = skimage.transform.downscale_local_mean(scene.rgb[:H, :W], factors + (1,)).astype(np.float32)
    valid = skimage.transform.downscale_local_mean((scene.depth[:H, :W] > 0).astype(np.float32), factors)
    depth_sum = skimage.transform.downscale_local_mean(scene.depth[:H, :W], factors)
    depth = np.where(valid > 0.999, depth_sum / np.maximum(valid, 1e-6), 0.0).astype(np.float32)  # holes stay holes
    near, far = float(depth[depth > 0].min()), float(depth.max())
    out = {}
    for name, (cam, n) in MIDDLEBURY_CAMERAS.items():
        cam = ThinLens(cam.focal_length_m, cam.f_number, cam.pixel_pitch_m * shrink)
        st = render_focal_stack(rgb, depth, cam, focus_uniform_diopters(near, far, n), seed=seed, device="cpu")
        gt = torch.where(st.mask, st.depth, torch.zeros_like(st.depth))[None]
        out[name] = _Samples([{"stack": st.images, "focus": st.focus_m, "depth": gt, "mask": st.mask[None]}])
    return out


def generalisation_splits(length: int = 32, size: tuple[int, int] = (256, 256),
                          embedded_length: int = EMBEDDED_LENGTH, middlebury: bool = True) -> dict[str, tuple[Dataset, str]]:
    """The benchmark's splits (module docstring): name → ``(dataset, protocol)``, rendered on the fly.

    Args:
        length: stacks in each diverse split.
        size: ``(H, W)`` of the diverse stacks.
        embedded_length: stacks of the embedded split (at its own 256x256 size).
        middlebury: include the Middlebury camera splits.
    """
    from dflib.data.diverse import DiverseConfig, DiverseFocalStackDataset
    from dflib.data.synthetic import TEST_SEED

    splits: dict[str, tuple[Dataset, str]] = {
        "embedded": (embedded_benchmark(length=embedded_length), "fod500"),
        "diverse": (DiverseFocalStackDataset(length, size, DiverseConfig(split="train"), seed=TEST_SEED), "default"),
        "heldout": (DiverseFocalStackDataset(length, size, DiverseConfig(split="heldout"), seed=TEST_SEED), "default"),
    }
    if middlebury:
        splits.update({f"middlebury/{k}": (v, "default") for k, v in middlebury_cameras().items()})
    return splits


def span_rmse(preds: list[np.ndarray], dataset: Dataset, protocol: str = "default") -> float:
    """Mean over stacks of the RMSE divided by the stack's focus span ``f_N - f_1`` (a fraction of the span).

    Metres mean little across cameras (a telephoto's stack may span 0.4 m, a
    phone's 3 m); this measure is comparable between them. Valid pixels and
    clipping follow ``protocol`` (:mod:`dflib.metrics`).

    Args:
        preds: one ``[H, W]`` depth map per stack of ``dataset``, in order.
    """
    return statistics.fmean(stack_span_rmse(pred, dataset[i], protocol) for pred, i in zip(preds, range(len(dataset))))


def stack_span_rmse(pred: np.ndarray, sample: dict, protocol: str = "default") -> float:
    """One stack's RMSE divided by its focus span (:func:`span_rmse`), ``pred [H, W]`` against ``sample``'s depth."""
    from dflib.metrics import get_protocol
    from dflib.utils import to_numpy

    proto = get_protocol(protocol)
    gt = to_numpy(sample["depth"][0]).astype(np.float64) * to_numpy(sample["mask"][0])
    focus = to_numpy(sample["focus"]).astype(np.float64)
    valid = proto.valid_mask(gt)
    p, g = np.asarray(pred, np.float64), gt
    if proto.clip is not None:
        p, g = np.clip(p, *proto.clip), np.clip(g, *proto.clip)
    span = (min(focus.max(), proto.clip[1]) if proto.clip else focus.max()) - focus.min()
    return math.sqrt(float(np.mean((p[valid] - g[valid]) ** 2))) / span


def band_errors(method: Method, dataset: Dataset, edges: Sequence[float],
                protocol: str = "default") -> list[dict[str, float]]:
    """A method's signed error (bias) and RMSE per band of true depth, over the valid pixels of a dataset.

    Where an RMSE hides *how* a model is wrong, the bias per band shows it:
    e.g. a model that never saw scene parts behind its last focus plane puts
    them too near.

    Args:
        edges: band edges in metres, increasing (the last may be ``inf``): band
            i holds the pixels whose true depth lies in ``[edges[i], edges[i+1])``.
        protocol: :mod:`dflib.metrics` protocol; its valid pixels and its
            clipping (prediction and truth alike) apply. The band is chosen by
            the unclipped truth.

    Returns:
        One dict per band: ``lo``, ``hi`` (metres), ``bias`` (mean of
        prediction − truth, metres), ``rmse`` (metres), ``pixels``.
    """
    from dflib.metrics import get_protocol
    from dflib.utils import to_numpy

    proto = get_protocol(protocol)
    edges = np.asarray(edges, np.float64)
    sums = np.zeros((len(edges) - 1, 3))  # per band: sum of errors, of squared errors, pixel count
    for i in range(len(dataset)):
        sample = dataset[i]
        depth, _ = method.predict(sample["stack"], sample["focus"])
        gt = to_numpy(sample["depth"][0]).astype(np.float64) * to_numpy(sample["mask"][0])
        valid = proto.valid_mask(gt)
        p, g = np.asarray(depth, np.float64)[valid], gt[valid]
        band = np.digitize(g, edges) - 1
        if proto.clip is not None:
            p, g = np.clip(p, *proto.clip), np.clip(g, *proto.clip)
        inside = (band >= 0) & (band < len(edges) - 1)
        err = (p - g)[inside]
        for k, col in enumerate((err, err ** 2, np.ones_like(err))):
            sums[:, k] += np.bincount(band[inside], col, minlength=len(edges) - 1)
    return [{"lo": float(edges[b]), "hi": float(edges[b + 1]), "bias": s / n if n else math.nan,
             "rmse": math.sqrt(q / n) if n else math.nan, "pixels": int(n)} for b, (s, q, n) in enumerate(sums)]


def _recording(method: Method, store: list) -> Method:
    """``method`` that also appends every depth map it predicts to ``store``."""
    def predict(stack: torch.Tensor, focus: torch.Tensor):
        depth, sigma = method.predict(stack, focus)
        store.append(np.asarray(depth))
        return depth, sigma

    return Method(method.name, predict, method.params)


def score(methods: Iterable[Method], splits: dict[str, tuple[Dataset, str]], progress: bool = False) -> ResultsTable:
    """Every method on every split (each split rendered once, then shared by the methods).

    Rows as :func:`dflib.evaluate.evaluate`'s, plus ``rmse_span`` (:func:`span_rmse`).
    """
    from dflib.data import CachedDataset

    table = ResultsTable()
    methods = list(methods)
    for name, (ds, protocol) in splits.items():
        ds = CachedDataset(ds, progress=progress, desc=f"rendering {name}")
        for m in methods:
            preds: list[np.ndarray] = []
            row = evaluate([_recording(m, preds)], {name: (ds, protocol)}, progress=progress).rows[0]
            row["rmse_span"] = span_rmse(preds, ds, protocol)
            table.rows.append(row)
    return table


def summarise(table: ResultsTable) -> dict[str, dict[str, float]]:
    """Per method: RMSE, δ1 and RMSE/span on each split (``<split>_rmse``, ``_delta1``, ``_span``),
    Middlebury averaged over cameras, and held-out / in-distribution ratios.

    ``heldout_over_diverse`` is the held-out RMSE over the diverse (in-distribution
    for diverse-trained models) RMSE; ``heldout_over_embedded`` the same over the
    embedded RMSE (in-distribution for the embedded-trained ``tiny`` models);
    ``_span`` ratios compare :func:`span_rmse` instead; ``heldout_over_sff``
    compares with the classical SFF row.
    """
    out: dict[str, dict[str, float]] = {}
    for row in table.rows:
        m = out.setdefault(row["method"], {"params": row["params"]})
        name = row["dataset"]
        if name.startswith("middlebury/"):
            m.setdefault("_mb_rmse", []).append(row["rmse"])
            m.setdefault("_mb_delta1", []).append(row["delta1"])
            m.setdefault("_mb_span", []).append(row["rmse_span"])
        else:
            m[f"{name}_rmse"], m[f"{name}_delta1"], m[f"{name}_span"] = row["rmse"], row["delta1"], row["rmse_span"]
    for m in out.values():
        if "_mb_rmse" in m:
            for key in ("rmse", "delta1", "span"):
                m[f"middlebury_{key}"] = statistics.fmean(m.pop(f"_mb_{key}"))
        for ref in ("diverse", "embedded"):
            for key in ("rmse", "span"):
                if f"heldout_{key}" in m and m.get(f"{ref}_{key}", 0) > 0:
                    m[f"heldout_over_{ref}" + ("_span" if key == "span" else "")] = m[f"heldout_{key}"] / m[f"{ref}_{key}"]
    sff = [m for name, m in out.items() if name.startswith("sff-") and "heldout_rmse" in m]
    if sff:
        for m in out.values():
            if "heldout_rmse" in m:
                m["heldout_over_sff"] = m["heldout_rmse"] / sff[0]["heldout_rmse"]
                m["heldout_over_sff_span"] = m["heldout_span"] / sff[0]["heldout_span"]
    return out


def summary_markdown(summary: dict[str, dict[str, float]]) -> str:
    """The summary as a Markdown table (RMSE in metres, δ1 in percent)."""
    cols = [("params", "params", "{:,.0f}"), ("embedded_rmse", "embedded RMSE", "{:.3f}"),
            ("diverse_rmse", "diverse (in-dist.) RMSE", "{:.3f}"), ("heldout_rmse", "held-out RMSE", "{:.3f}"),
            ("diverse_span", "diverse RMSE/span", "{:.3f}"), ("heldout_span", "held-out RMSE/span", "{:.3f}"),
            ("heldout_over_diverse", "held-out / diverse (m)", "{:.2f}"),
            ("heldout_over_diverse_span", "held-out / diverse (span)", "{:.2f}"),
            ("heldout_over_sff", "held-out / SFF (m)", "{:.2f}"),
            ("heldout_over_sff_span", "held-out / SFF (span)", "{:.2f}"),
            ("diverse_delta1", "δ1 diverse (%)", "{:.1%}"), ("heldout_delta1", "δ1 held-out (%)", "{:.1%}"),
            ("middlebury_rmse", "Middlebury RMSE (mean of cameras)", "{:.3f}"),
            ("middlebury_delta1", "δ1 Middlebury (%)", "{:.1%}")]
    lines = ["| method | " + " | ".join(c[1] for c in cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for name, m in summary.items():
        cells = [c[2].format(m[c[0]]).rstrip("%") if c[0] in m else "" for c in cols]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def time_predict(name: str | torch.nn.Module, shape: tuple[int, int, int] = (5, 480, 640), threads: int = 2,
                 repeats: int = 3, seed: int = 0) -> dict[str, float]:
    """Seconds :func:`dflib.predict.predict` takes on a random ``[N, 3, H, W]`` stack, CPU, ``threads`` threads.

    ``name`` is a shipped model (:func:`dflib.models.load_pretrained`) or a model
    (e.g. an untrained preset: the time does not depend on the weights). It is
    loaded once (not timed); one warm-up call, then the median and minimum of
    ``repeats`` calls (the whole of :func:`~dflib.predict.predict`: network,
    readout, all-in-focus image).
    """
    from dflib.models import load_pretrained
    from dflib.predict import predict

    n, h, w = shape
    stack = np.random.default_rng(seed).random((n, 3, h, w), dtype=np.float32)
    focus = focus_uniform_diopters(0.1, 1.5, n).tolist()
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        model = load_pretrained(name, device="cpu") if isinstance(name, str) else name.cpu().eval()
        predict(stack, focus, model=model, device="cpu", progress=False)
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            predict(stack, focus, model=model, device="cpu", progress=False)
            times.append(time.perf_counter() - t0)
    finally:
        torch.set_num_threads(before)
    return {"median_s": statistics.median(times), "min_s": min(times), "repeats": repeats, "threads": threads}
