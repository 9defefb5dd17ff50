"""Plots and interactive explorers used by the notebooks.

Every explorer (:class:`Explorer`) wraps a *pure* plotting function, tested
directly (ipywidgets' ``interact`` swallows exceptions raised in its callback),
and calls it once on construction. Displayed, an explorer is one figure that
answers its controls: live ipywidgets in a Jupyter front end; self-contained,
pre-rendered HTML in the static report (``$DFLIB_STATIC_EXPLORERS``, see
:func:`static_explorers`); and the figure for its default setting anywhere
without a front end (nbval, papermill, a console).
"""

from __future__ import annotations

import base64
import html
import io
import itertools
import json
import math
import numbers
import os
import textwrap
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Mapping, Sequence, Union

import matplotlib
import matplotlib.figure

import numpy as np

from dflib.utils import to_numpy


def _plt():
    import matplotlib.pyplot as plt

    return plt


def _img(x: Any) -> np.ndarray:
    """``[3, H, W]`` or ``[H, W, 3]`` → ``[H, W, 3]`` numpy in [0, 1]."""
    a = to_numpy(x)
    if a.ndim == 3 and a.shape[0] == 3 and a.shape[-1] != 3:
        a = np.moveaxis(a, 0, -1)
    return np.clip(a, 0, 1)


def plot_coc_curves(camera, focus_m: Sequence[float], depth_range=(0.1, 3.0), f_numbers: Sequence[float] | None = None,
                    title: str | None = None):
    """CoC diameter (px) against depth for several focus distances, and against
    inverse depth (where it is linear). ``f_numbers`` adds dashed curves for other
    apertures at the first focus distance; ``title`` goes above both panels."""
    from dflib.optics import ThinLens

    plt = _plt()
    depth = np.linspace(depth_range[0], depth_range[1], 400)
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    for f in focus_m:
        c = camera.coc_px(depth, f)
        axes[0].plot(depth, c, label=f"focus {f:g} m")
        axes[1].plot(1 / depth, c)
    for n in f_numbers or []:
        cam = ThinLens(camera.focal_length_m, n, camera.pixel_pitch_m)
        axes[0].plot(depth, cam.coc_px(depth, focus_m[0]), "--", label=f"f/{n:g} at {focus_m[0]:g} m")
    axes[0].set(xlabel="depth (m)", ylabel="CoC diameter (px)", title="circle of confusion")
    axes[1].set(xlabel="inverse depth (dioptres, 1/m)", ylabel="CoC diameter (px)", title="linear in inverse depth")
    axes[0].legend(fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def plot_focal_stack(images: Any, focus: Sequence[float], depth: Any | None = None, unit: str = "m", max_cols: int = 6):
    """The N images of a stack ``[N, 3, H, W]`` with their focus distances, and the depth map if given."""
    plt = _plt()
    images = to_numpy(images)
    n = images.shape[0] + (depth is not None)
    cols = min(n, max_cols)
    rows = int(np.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(2.6 * cols, 2.6 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for i, img in enumerate(images):
        ax = axes.ravel()[i]
        ax.imshow(_img(img))
        ax.set_title(f"focus {float(focus[i]):.3g} {unit}", fontsize=9)
    if depth is not None:
        ax = axes.ravel()[images.shape[0]]
        im = ax.imshow(to_numpy(depth).squeeze(), cmap="turbo_r")
        ax.set_title(f"depth ({unit})", fontsize=9)
        fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    return fig


def plot_depth_maps(maps: Mapping[str, Any], gt: Any | None = None, vmin: float | None = None, vmax: float | None = None,
                    cmap: str = "turbo_r", error: bool = True):
    """Depth maps side by side on one colour scale; with ``gt``, a second row of |error| maps."""
    plt = _plt()
    arrays = {k: to_numpy(v).squeeze() for k, v in maps.items()}
    if gt is not None:
        g = to_numpy(gt).squeeze()
        arrays = {"ground truth": g, **arrays}
    stack = np.stack([a for a in arrays.values()])
    lo = np.nanpercentile(stack, 1) if vmin is None else vmin
    hi = np.nanpercentile(stack, 99) if vmax is None else vmax
    rows = 2 if (gt is not None and error) else 1
    cols = len(arrays)
    fig, axes = plt.subplots(rows, cols, figsize=(3 * cols, 2.9 * rows), squeeze=False)
    for j, (name, a) in enumerate(arrays.items()):
        im = axes[0, j].imshow(a, cmap=cmap, vmin=lo, vmax=hi)
        axes[0, j].set_title(name, fontsize=9)
        axes[0, j].axis("off")
    fig.colorbar(im, ax=axes[0].tolist(), fraction=0.02)
    if rows == 2:
        valid = g > 0
        errs = {k: np.where(valid, np.abs(a - g), np.nan) for k, a in arrays.items() if k != "ground truth"}
        emax = np.nanpercentile(np.stack(list(errs.values())), 99) if errs else 1.0
        axes[1, 0].axis("off")
        for j, (name, e) in enumerate(errs.items(), start=1):
            im = axes[1, j].imshow(e, cmap="magma", vmin=0, vmax=emax)
            axes[1, j].set_title(f"|error| {name}", fontsize=9)
            axes[1, j].axis("off")
        fig.colorbar(im, ax=axes[1].tolist(), fraction=0.02)
    return fig


def plot_focus_curves(volume: Any, focus: Sequence[float], pixels: Sequence[tuple[int, int]],
                      prob: Any | None = None, depth_gt: Any | None = None, unit: str = "m",
                      prob_label: str = "model p_n"):
    """Focus curves at chosen pixels: a focus measure ``volume [N, H, W]`` (normalised
    per pixel to a maximum of 1), optionally probabilities ``prob [N, H, W]`` (the model's
    p_n, or any focus distribution, named by ``prob_label``) and the true depth ``[H, W]``."""
    plt = _plt()
    volume = to_numpy(volume)
    focus = np.asarray(to_numpy(focus), dtype=float)
    fig, axes = plt.subplots(1, len(pixels), figsize=(3.4 * len(pixels), 2.8), squeeze=False)
    for ax, (y, x) in zip(axes[0], pixels):
        curve = volume[:, y, x]
        ax.plot(focus, curve / (curve.max() + 1e-12), "o-", label="focus measure")
        if prob is not None:
            ax.plot(focus, to_numpy(prob)[:, y, x], "s--", label=prob_label)
        if depth_gt is not None:
            ax.axvline(float(to_numpy(depth_gt).squeeze()[y, x]), color="k", lw=1, label="true depth")
        ax.set(title=f"pixel (y={y}, x={x})", xlabel=f"focus ({unit})", ylim=(0, 1.05))
    axes[0, 0].legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_training_curves(history: Sequence[Mapping[str, float]], keys: Sequence[str] | None = None):
    """Loss terms (and validation RMSE if logged) against step, log scale."""
    plt = _plt()
    steps = [r["step"] for r in history]
    keys = keys or [k for k in ("total", "depth", "sv", "fv") if any(k in r for r in history)]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.4))
    for k in keys:
        axes[0].plot(steps, [r.get(k, np.nan) for r in history], label=k)
    axes[0].set(yscale="log", xlabel="step", title="training loss terms")
    axes[0].legend(fontsize=8)
    val = [(r["step"], r["val_rmse"]) for r in history if "val_rmse" in r]
    if val:
        axes[1].plot(*zip(*val), "o-")
    axes[1].set(xlabel="step", ylabel="RMSE", title="validation RMSE")
    fig.tight_layout()
    return fig


def plot_surface_training(history: Sequence[Mapping[str, float]]):
    """The surface diagnostics logged at validation steps (``diag_*`` columns of a run's log) against step."""
    plt = _plt()
    rows = [r for r in history if "diag_err_zero" in r]
    steps = [r["step"] for r in rows]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.2))
    for k, label in (("diag_err_in_focus", "in focus"), ("diag_err_out_of_focus", "out of focus"),
                     ("diag_err_zero", "zero prediction"), ("diag_err_depth_ref", "own depth's gradient")):
        axes[0].plot(steps, [r.get(k, np.nan) for r in rows], "o-", label=label)
    axes[0].set(xlabel="step", ylabel="surface-gradient error", title="surface gradients vs the target")
    axes[0].legend(fontsize=8)
    for k, label in (("diag_corr_in_focus", "in-focus correlation"), ("diag_encoder_grad_share", "encoder gradient share of L_sv")):
        axes[1].plot(steps, [r.get(k, np.nan) for r in rows], "o-", label=label)
    axes[1].set(xlabel="step", ylim=(-1, 1), title="do the surfaces carry geometry?")
    axes[1].axhline(0, color="k", lw=0.6)
    axes[1].legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_metric_bars(rows: Sequence[Mapping[str, Any]], metric: str = "rmse", label: str = "method", err: str | None = None):
    """A bar per row of a results table for one metric (lower is better unless δ)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(max(4, 0.9 * len(rows)), 3.2))
    names = [str(r[label]) for r in rows]
    vals = [float(r[metric]) for r in rows]
    yerr = [float(r[err]) for r in rows] if err else None
    ax.bar(names, vals, yerr=yerr, capsize=3, color=matplotlib.colormaps["tab10"](np.arange(len(rows)) % 10))
    ax.set(ylabel=metric, title=metric)
    ax.tick_params(axis="x", rotation=30)
    fig.tight_layout()
    return fig


def plot_surface_diagnostics(per_plane: Mapping[str, Any], diag: Mapping[str, float] | None = None,
                             focus: Sequence[float] | None = None, title: str = "what the surfaces learned"):
    """Per-plane surface-gradient errors (:func:`dflib.diagnostics.plane_errors`), in focus vs out of focus.

    A horizontal line marks ``err_zero`` (a zero prediction) and, when given,
    ``err_depth_ref`` (the gradient of the model's own depth); the title
    carries ``corr_in_focus``. Bars below the zero line mean the surfaces
    carry geometry there.
    """
    plt = _plt()
    inf, out = np.asarray(per_plane["in_focus"], float), np.asarray(per_plane["out_of_focus"], float)
    n = len(inf)
    x = np.arange(n)
    fig, ax = plt.subplots(figsize=(max(4.5, 0.9 * n + 2), 3.2))
    ax.bar(x - 0.2, inf, 0.4, label="plane in focus")
    ax.bar(x + 0.2, out, 0.4, label="plane out of focus")
    if diag:
        for key, style in (("err_zero", "k--"), ("err_depth_ref", "r:")):
            if key in diag and np.isfinite(diag[key]):
                ax.axhline(diag[key], color=style[0], linestyle=style[1:], label=key.replace("_", " "))
        if np.isfinite(diag.get("corr_in_focus", np.nan)):
            title += f" (in-focus correlation with the target: {diag['corr_in_focus']:.2f})"
    labels = [f"{i}\n{float(f):.3g}" for i, f in enumerate(focus)] if focus is not None else [str(i) for i in x]
    ax.set_xticks(x, labels)
    ax.set(xlabel="focal plane (focus)", ylabel="mean |∇T − θ_grad(z*_n)|", title=title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_paired_differences(paired: Mapping[str, Mapping[str, Any]], keys: Sequence[str] | None = None,
                            title: str = "paired differences (a − b), 95 % CI over seeds"):
    """A forest plot of seed-paired differences (``{"a-b": {"mean", "ci95": [lo, hi]}}``): left of 0, a is better."""
    plt = _plt()
    keys = list(keys or paired)
    fig, ax = plt.subplots(figsize=(7, 0.4 * len(keys) + 1.2))
    for i, k in enumerate(keys):
        d = paired[k]
        lo, hi = d["ci95"]
        color = "tab:green" if hi < 0 else ("tab:red" if lo > 0 else "tab:gray")
        ax.errorbar(d["mean"], i, xerr=[[d["mean"] - lo], [hi - d["mean"]]], fmt="o", color=color, capsize=3)
    ax.axvline(0, color="k", lw=0.8)
    ax.set_yticks(range(len(keys)), keys)
    ax.invert_yaxis()
    ax.set(xlabel="difference", title=title)
    fig.tight_layout()
    return fig


def plot_image_grid(images: Mapping[str, Any], crop: tuple[int, int, int, int] | None = None,
                    cmap: str = "viridis", ncols: int | None = None, symmetric: bool = False,
                    colorbar: bool = True, size: float = 3.0):
    """Named images side by side: RGB (``[3, H, W]`` or ``[H, W, 3]``) or scalar maps ``[H, W]``.

    Args:
        images: ``{title: image}``; scalar maps get their own colour scale and a colour bar.
        crop: optional ``(y0, y1, x0, x1)`` pixel window shown instead of the whole image
            (e.g. to zoom on a depth edge).
        cmap: colour map of the scalar maps.
        ncols: columns (default: all in one row).
        symmetric: scalar maps on a scale symmetric about 0 (for signed fields).
        colorbar: add a colour bar to each scalar map.
        size: inches per panel.
    """
    plt = _plt()
    if not isinstance(images, Mapping) or len(images) == 0:
        raise ValueError(f"images must be a non-empty mapping title -> image, got {type(images).__name__}")
    n = len(images)
    cols = min(n, ncols or n)
    rows = int(np.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(size * cols, size * rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, (name, im) in zip(axes.ravel(), images.items()):
        a = to_numpy(im)
        rgb = (a.ndim == 3 and 3 in (a.shape[0], a.shape[-1]))
        a = _img(a) if rgb else np.squeeze(a).astype(float)
        if a.ndim not in (2, 3):
            raise ValueError(f"image {name!r} must be [H, W], [3, H, W] or [H, W, 3], got shape {to_numpy(im).shape}")
        if crop is not None:
            y0, y1, x0, x1 = crop
            a = a[y0:y1, x0:x1]
        if rgb:
            ax.imshow(a, interpolation="nearest")
        else:
            kw = {}
            if symmetric:
                m = float(np.nanmax(np.abs(a))) or 1.0
                kw = dict(vmin=-m, vmax=m)
            h = ax.imshow(a, cmap=cmap, interpolation="nearest", **kw)
            if colorbar:
                fig.colorbar(h, ax=ax, fraction=0.046)
        ax.set_title(name, fontsize=9)
    fig.tight_layout()
    return fig


def plot_peak_fit(curve: Any, focus: Sequence[float] | None = None, true_value: float | None = None,
                  unit: str = "plane index"):
    """One focus curve ``[N]``, its argmax and the Gaussian (log-parabola) fit through the
    three samples around the peak, drawn as the fitted Gaussian.

    Args:
        curve: ``[N]`` focus-measure values (> 0).
        focus: optional ``[N]`` focus positions (default: plane indices 0..N-1).
        true_value: optional true depth/index, drawn as a vertical line.
        unit: axis label.
    """
    from dflib.classical import interpolate_peak

    plt = _plt()
    c = np.asarray(to_numpy(curve), dtype=float).reshape(-1)
    n = c.shape[0]
    idx = np.arange(n, dtype=float)
    x = idx if focus is None else np.asarray(to_numpy(focus), dtype=float).reshape(-1)
    k = int(np.argmax(c))
    frac = float(interpolate_peak(c, "gaussian"))
    fig, ax = plt.subplots(figsize=(5, 3.2))
    ax.plot(x, c, "o", color="C0", label="focus measure")
    if 1 <= k <= n - 2:
        l = np.log(np.maximum(c[k - 1:k + 2], 1e-300))
        a2 = 0.5 * (l[0] - 2 * l[1] + l[2])
        t = np.linspace(k - 1, k + 1, 101)
        fit = np.exp(l[1] + a2 * (t - frac) ** 2 - a2 * (k - frac) ** 2)
        ax.plot(np.interp(t, idx, x), fit, "-", color="C1", label="Gaussian fit")
    ax.axvline(x[k], color="C2", ls=":", label="argmax")
    ax.axvline(float(np.interp(frac, idx, x)), color="C1", ls="--", label="Gaussian peak")
    if true_value is not None:
        ax.axvline(float(true_value), color="k", lw=1, label="true")
    ax.set(xlabel=unit, ylabel="focus measure")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_focal_plane(images: Any, focus: Sequence[float], plane: int = 0, depth: Any | None = None,
                     sigma: Any | None = None, prob: Any | None = None, unit: str = "m"):
    """One focal image of a stack ``[N, 3, H, W]`` beside the depth map, the σ map and
    the model's focus probability p_n ``[N, H, W]`` of that plane (each only if given)."""
    plt = _plt()
    images = to_numpy(images)
    focus = [float(f) for f in np.asarray(to_numpy(focus)).reshape(-1)]
    if not 0 <= plane < len(focus):
        raise ValueError(f"plane must be in [0, {len(focus) - 1}], got {plane}")
    extra = [(n, m) for n, m in ((f"depth ({unit})", depth), (f"σ ({unit})", sigma)) if m is not None]
    if prob is not None:
        extra.append((f"p_n, plane {plane}", to_numpy(prob)[plane]))
    fig, axes = plt.subplots(1, 1 + len(extra), figsize=(3.4 * (1 + len(extra)), 3.2), squeeze=False)
    axes[0, 0].imshow(_img(images[plane]))
    axes[0, 0].set_title(f"plane {plane}: focus {focus[plane]:.3g} {unit}", fontsize=9)
    for ax, (name, m) in zip(axes[0, 1:], extra):
        kw = dict(vmin=0, vmax=1) if name.startswith("p_n") else {}
        cmap = "turbo_r" if name.startswith("depth") else ("magma" if name.startswith("σ") else "viridis")
        im = ax.imshow(to_numpy(m).squeeze(), cmap=cmap, **kw)
        ax.set_title(name, fontsize=9)
        fig.colorbar(im, ax=ax, fraction=0.046)
    for ax in axes[0]:
        ax.axis("off")
    fig.tight_layout()
    return fig


# -- explorers -------------------------------------------------------------------
#: Environment variable that turns explorers into self-contained, pre-rendered HTML
#: (set by :func:`static_explorers`; the report runner sets it while it executes notebooks,
#: and the notebook kernels it starts inherit it).
STATIC_ENV = "DFLIB_STATIC_EXPLORERS"

_WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def static_mode() -> bool:
    """True when ``$DFLIB_STATIC_EXPLORERS`` is set to ``1``, ``true``, ``yes`` or ``on``."""
    return os.environ.get(STATIC_ENV, "").strip().lower() in ("1", "true", "yes", "on")


@contextmanager
def static_explorers(enabled: bool = True) -> Iterator[None]:
    """Set (or, with ``enabled=False``, unset) ``$DFLIB_STATIC_EXPLORERS`` for the block,
    then restore its previous value.

    Explorers displayed in this process, and in notebook kernels started inside the
    block (they inherit the environment), render static HTML instead of live widgets.
    """
    old = os.environ.get(STATIC_ENV)
    if enabled:
        os.environ[STATIC_ENV] = "1"
    else:
        os.environ.pop(STATIC_ENV, None)
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(STATIC_ENV, None)
        else:
            os.environ[STATIC_ENV] = old


def _decimals(step: float) -> int:
    """Decimal places needed to write multiples of ``step`` (1 → 0, 0.1 → 1, 0.05 → 2)."""
    for d in range(12):
        if abs(round(step, d) - step) <= 1e-12 * max(1.0, abs(step)):
            return d
    return 12


def _check_real(owner: str, attr: str, v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, numbers.Real):
        raise TypeError(f"{owner}: {attr} must be a real number, got {type(v).__name__} ({v!r})")
    if not math.isfinite(float(v)):
        raise ValueError(f"{owner}: {attr} must be finite, got {v!r}")
    return float(v)


@dataclass(frozen=True)
class FloatControl:
    """A float slider whose default ``value`` is exactly on its grid ``min + k * step``.

    A Jupyter front end snaps a slider to that grid as soon as it draws it (the
    FoD500 lens, 2.9 mm, on a 1 mm grid became 3.0 mm), so the figure would show
    another value than the one asked for. On construction the range is therefore
    widened by whole steps to include ``value`` and ``step`` is divided by 10 (at
    most six times) until ``value`` lies on the grid; ``max`` is moved onto the grid.

    Attributes:
        name: keyword argument of the plot function.
        description: label shown beside the slider, with its unit ("focus (m)").
        value, min, max, step: as in ``ipywidgets.FloatSlider``.
        scale: spacing of the values pre-rendered for the static copy: ``"log"``
            (factors of √2 around the default, e.g. one stop of f-number) or
            ``"linear"`` (evenly over the range, the default among them).
    """

    name: str
    description: str
    value: float
    min: float
    max: float
    step: float
    scale: str = "linear"

    def __post_init__(self) -> None:
        owner = f"control {self.name!r}"
        value, lo, hi, step = (_check_real(owner, a, getattr(self, a)) for a in ("value", "min", "max", "step"))
        if step <= 0 or not lo < hi:
            raise ValueError(f"{owner}: need min < max and step > 0, got min={lo}, max={hi}, step={step}")
        if self.scale not in ("linear", "log"):
            raise ValueError(f"{owner}: scale must be 'linear' or 'log', got {self.scale!r}")
        if self.scale == "log" and value <= 0:
            raise ValueError(f"{owner}: a log-scaled control needs a positive value, got {value}")
        if value < lo:  # widen by whole steps, keeping the grid
            lo -= math.ceil((lo - value) / step - 1e-9) * step
        for _ in range(7):
            if abs(lo + round((value - lo) / step) * step - value) <= 1e-9 * max(1.0, abs(value)):
                break
            step /= 10
        else:
            raise ValueError(f"{owner}: value {self.value!r} is not on any grid {lo:g} + k * step "
                             f"with step down to {step * 10:g}; pass a rounder value")
        d = _decimals(step)
        step, lo = round(step, d), round(lo, d)
        hi = round(lo + math.ceil((max(hi, value) - lo) / step - 1e-9) * step, d)
        object.__setattr__(self, "step", step)
        object.__setattr__(self, "min", lo)
        object.__setattr__(self, "max", hi)
        object.__setattr__(self, "value", self.snap(value))

    @property
    def decimals(self) -> int:
        """Decimal places of the grid (and of the slider's readout)."""
        return _decimals(self.step)

    def snap(self, v: float) -> float:
        """The grid value nearest to ``v`` within ``[min, max]``."""
        v = min(max(float(v), self.min), self.max)
        return round(self.min + round((v - self.min) / self.step) * self.step, self.decimals)

    def format(self, v: float) -> str:
        """``v`` as the readout shows it."""
        return f"{v:.{self.decimals}f}"

    def static_values(self, n: int) -> list[float]:
        """About ``n`` grid values for the static copy, always including ``value``."""
        if self.scale == "log":
            cand = [self.value * 2 ** ((j - n // 2) / 2) for j in range(n)]
        else:
            cand = list(np.linspace(self.min, self.max, n))
            cand[int(np.argmin(np.abs(np.asarray(cand) - self.value)))] = self.value
        return sorted({self.snap(c) for c in cand} | {self.value})

    def widget(self, widgets: Any, style: dict, layout: Any) -> Any:
        """The ``ipywidgets.FloatSlider`` (redraws on release, not while dragging)."""
        return widgets.FloatSlider(value=self.value, min=self.min, max=self.max, step=self.step,
                                   description=self.description, readout_format=f".{self.decimals}f",
                                   continuous_update=False, style=style, layout=layout)


@dataclass(frozen=True)
class IntControl:
    """An integer slider ``min..max`` (step 1), e.g. a plane index or a pixel coordinate.

    Attributes:
        name: keyword argument of the plot function.
        description: label shown beside the slider.
        value, min, max: as in ``ipywidgets.IntSlider``; ``value`` must lie in ``[min, max]``.
    """

    name: str
    description: str
    value: int
    min: int
    max: int

    def __post_init__(self) -> None:
        for a in ("value", "min", "max"):
            v = getattr(self, a)
            if isinstance(v, bool) or not isinstance(v, numbers.Integral):
                raise TypeError(f"control {self.name!r}: {a} must be an integer, got {type(v).__name__} ({v!r})")
            object.__setattr__(self, a, int(v))
        if not self.min <= self.value <= self.max:
            raise ValueError(f"control {self.name!r}: value must be in [{self.min}, {self.max}], got {self.value}")

    def format(self, v: int) -> str:
        """``v`` as the readout shows it."""
        return str(v)

    def static_values(self, n: int) -> list[int]:
        """Every integer when there are at most ``2 n + 2`` of them, else the centres of
        ``n`` equal bins of the range (the default replacing the nearest)."""
        count = self.max - self.min + 1
        if count <= 2 * n + 2:
            return list(range(self.min, self.max + 1))
        cand = [self.min + int((k + 0.5) * count / n) for k in range(n)]
        cand[int(np.argmin([abs(c - self.value) for c in cand]))] = self.value
        return sorted(set(cand))

    def widget(self, widgets: Any, style: dict, layout: Any) -> Any:
        """The ``ipywidgets.IntSlider`` (redraws on release, not while dragging)."""
        return widgets.IntSlider(value=self.value, min=self.min, max=self.max, step=1, description=self.description,
                                 continuous_update=False, style=style, layout=layout)


@dataclass(frozen=True)
class ChoiceControl:
    """A drop-down over ``options`` (strings); ``value`` must be one of them."""

    name: str
    description: str
    value: str
    options: tuple[str, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "options", tuple(self.options))
        if self.value not in self.options:
            raise ValueError(f"control {self.name!r}: value must be one of {list(self.options)}, got {self.value!r}")

    def format(self, v: str) -> str:
        """``v`` as the drop-down shows it."""
        return str(v)

    def static_values(self, n: int) -> list[str]:
        """Every option."""
        return list(self.options)

    def widget(self, widgets: Any, style: dict, layout: Any) -> Any:
        """The ``ipywidgets.Dropdown``."""
        return widgets.Dropdown(options=list(self.options), value=self.value, description=self.description,
                                style=style, layout=layout)


Control = Union[FloatControl, IntControl, ChoiceControl]


def _pixels(fig: Any, dpi: float) -> np.ndarray:
    """``fig`` drawn once by Agg at ``dpi``: ``[H, W, 3]`` uint8 on white."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    fig.set_dpi(dpi)
    fig.patch.set_facecolor("white")
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


def _encode(rgb: np.ndarray, fmt: str) -> bytes:
    """``[H, W, 3]`` uint8 as PNG or JPEG (quality 85) bytes."""
    import matplotlib.image

    if fmt not in ("png", "jpeg"):
        raise ValueError(f"fmt must be 'png' or 'jpeg', got {fmt!r}")
    buf = io.BytesIO()
    kw = {"pil_kwargs": {"quality": 85}} if fmt == "jpeg" else {"metadata": {"Software": None}}
    matplotlib.image.imsave(buf, rgb, format=fmt, **kw)
    return buf.getvalue()


def _error_figure(message: str) -> Any:
    fig = _plt().figure(figsize=(6, 1.2))
    fig.text(0.02, 0.5, textwrap.fill(message, 90), va="center", fontsize=9, color="#b00020")
    return fig


def _in_kernel() -> bool:
    """True inside a Jupyter kernel (where a front end may display widgets)."""
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


@dataclass
class _Live:
    box: Any
    controls: dict
    image: Any
    status: Any


_PLAYER_JS = """
(function () {
  var root = document.currentScript.parentNode;
  var data = JSON.parse(root.querySelector("script.dflib-explorer-data").textContent);
  var img = root.querySelector("img.dflib-explorer-figure");
  var state = data.defaults.slice();
  function show() {
    for (var i = 0; i < state.length; i++) {
      root.querySelector('[data-control="' + i + '"]').value = String(state[i]);
      var out = root.querySelector('[data-readout="' + i + '"]');
      if (out) { out.textContent = data.labels[i][state[i]]; }
    }
    var f = data.index[state.join(",")];
    img.src = data.frames[f];
    img.alt = data.alts[f];
    img.setAttribute("data-frame", String(f));
  }
  root.querySelectorAll("[data-control]").forEach(function (el) {
    function moved() {
      var i = Number(el.getAttribute("data-control"));
      if (data.oneAtATime) { state = data.defaults.slice(); }
      state[i] = Number(el.value);
      show();
    }
    el.addEventListener("input", moved);
    el.addEventListener("change", moved);
  });
})();
"""


class Explorer:
    """A pure plot function ``plot(**values) -> Figure`` and the controls that choose its values.

    Shown as a notebook cell's result, an explorer is **one** figure that answers its controls:

    * in a Jupyter front end with ipywidgets: the controls, then the figure (an
      ``ipywidgets.Image``); releasing a control redraws that same image. A setting
      the plot cannot draw hides the figure and shows the error instead;
    * in static mode (``$DFLIB_STATIC_EXPLORERS``, set by the report runner; or
      ``static=True``): self-contained HTML, the figure pre-rendered over a small grid
      of control values and plain HTML controls that swap the frames: no kernel, no
      widget state, nothing loaded from the network (:meth:`to_html`);
    * anywhere else (nbval, papermill, nbconvert, a console): the figure for the
      default values, as one PNG (it rides in the same output as the widget view,
      which a front end prefers where it can render it).

    The plot is called once, directly, on construction, so an error in it is raised in
    the cell (``ipywidgets.interact`` would swallow an exception raised in its callback).

    Args:
        plot: pure function of the controls' values (keywords named by ``Control.name``)
            returning a new matplotlib figure.
        controls: the controls, in display order; their ``value`` is the default setting.
        title: name shown in the text form (``repr``).
        static: force static (True) or live (False) display; None reads the environment.
        max_frames: the static copy pre-renders every combination of the controls' values
            when there are at most this many, else each control's values with the others
            at their defaults (its controls then move one at a time).
        values_per_control: about how many values of each slider the static copy renders.
        dpi: resolution of the live figure; ``frame_dpi``: of the static frames.
    """

    def __init__(self, plot: Callable[..., Any], controls: Sequence[Control], *, title: str = "explorer",
                 static: bool | None = None, max_frames: int = 40, values_per_control: int = 5,
                 dpi: float = 100, frame_dpi: float = 80):
        if not controls:
            raise ValueError("controls must name at least one control")
        names = [c.name for c in controls]
        if len(set(names)) != len(names):
            raise ValueError(f"control names must be unique, got {names}")
        if max_frames < 1 or values_per_control < 2:
            raise ValueError(f"need max_frames >= 1 and values_per_control >= 2, got {max_frames}, {values_per_control}")
        self.plot = plot
        self.controls = tuple(controls)
        self.title = title
        self.static = static
        self.max_frames = int(max_frames)
        self.values_per_control = int(values_per_control)
        self.dpi = dpi
        self.frame_dpi = frame_dpi
        self.defaults = {c.name: c.value for c in self.controls}
        self.png = self.render(**self.defaults)  # the one direct call: errors surface here
        self._live: _Live | None = None
        self._html: str | None = None

    def __repr__(self) -> str:
        setting = ", ".join(f"{c.description} = {c.format(c.value)}" for c in self.controls)
        return f"<{self.title}: {setting}>"

    # -- drawing --
    def figure(self, **values: Any) -> Any:
        """A new figure for ``values`` (the defaults where not given); the caller closes it."""
        unknown = sorted(set(values) - set(self.defaults))
        if unknown:
            raise ValueError(f"unknown control(s) {unknown}; this explorer has {sorted(self.defaults)}")
        fig = self.plot(**{**self.defaults, **values})
        if not isinstance(fig, matplotlib.figure.Figure):
            raise TypeError(f"the plot function must return a matplotlib Figure, got {type(fig).__name__}")
        return fig

    def pixels(self, dpi: float | None = None, **values: Any) -> np.ndarray:
        """The figure for ``values`` drawn at ``dpi`` (default ``self.dpi``): ``[H, W, 3]`` uint8.
        The figure is closed."""
        fig = self.figure(**values)
        try:
            return _pixels(fig, self.dpi if dpi is None else dpi)
        finally:
            _plt().close(fig)

    def render(self, fmt: str = "png", dpi: float | None = None, **values: Any) -> bytes:
        """The figure for ``values`` encoded as ``fmt`` (``png`` or ``jpeg``)."""
        return _encode(self.pixels(dpi, **values), fmt)

    # -- live --
    @property
    def widget(self) -> Any:
        """The live widget (built on first use): the controls, a status line and the figure.

        Raises ImportError without ipywidgets."""
        if self._live is None:
            self._live = self._build_widget()
        return self._live.box

    @property
    def control_widgets(self) -> dict[str, Any]:
        """The live control widgets by control name (building the widget if needed)."""
        self.widget
        return dict(self._live.controls)

    @property
    def values(self) -> dict[str, Any]:
        """The current setting: the live controls' values, or the defaults before any widget exists."""
        if self._live is None:
            return dict(self.defaults)
        return {name: w.value for name, w in self._live.controls.items()}

    def _build_widget(self) -> _Live:
        import ipywidgets as widgets

        label = f"{max(len(c.description) for c in self.controls) * 0.6 + 1:.1f}em"
        style = {"description_width": label}
        layout = widgets.Layout(width=f"calc({label} + 26em)")
        controls = {c.name: c.widget(widgets, style, layout) for c in self.controls}
        # at its own size (a VBox would stretch it to the output's width), shrunk to fit
        image = widgets.Image(value=self.png, format="png", layout=widgets.Layout(align_self="flex-start", max_width="100%"))
        status = widgets.HTML(value="")
        live = _Live(widgets.VBox([*controls.values(), status, image]), controls, image, status)
        for w in controls.values():
            w.observe(self._redraw, names="value")
        return live

    def _redraw(self, change: Any = None) -> None:
        """Redraw the live figure for the controls' current values (a control's observer)."""
        live = self._live
        values = self.values
        live.status.value = "<i>drawing…</i>"
        try:
            png = self.render(**values)
        except Exception as exc:  # show it: a stale figure beside moved controls would mislead
            live.image.layout.display = "none"
            setting = ", ".join(f"{c.description} = {c.format(values[c.name])}" for c in self.controls)
            live.status.value = (f'<span style="color:#b00020">No figure for {html.escape(setting)}: '
                                 f"{html.escape(type(exc).__name__)}: {html.escape(str(exc))}</span>")
            return
        live.image.value = png
        live.image.layout.display = None
        live.status.value = ""

    # -- static --
    def frame_grid(self) -> tuple[list[list[Any]], list[tuple[int, ...]], bool]:
        """The static copy's settings: ``(values per control, frame keys, one_at_a_time)``.

        A key holds one index into each control's values; the default setting's key comes
        first. Every combination is rendered when there are at most ``max_frames``;
        otherwise each control's other values with the rest at their defaults
        (``one_at_a_time``)."""
        grids = [c.static_values(self.values_per_control) for c in self.controls]
        default = tuple(g.index(c.value) for g, c in zip(grids, self.controls))
        if math.prod(len(g) for g in grids) <= self.max_frames:
            every = itertools.product(*(range(len(g)) for g in grids))
            return grids, [default] + [k for k in every if k != default], False
        keys = [default] + [default[:i] + (j,) + default[i + 1:]
                            for i, g in enumerate(grids) for j in range(len(g)) if j != default[i]]
        return grids, keys, True

    def to_html(self) -> str:
        """Self-contained HTML: the pre-rendered frames (data URIs), HTML controls and a
        few lines of inline JavaScript that show the frame of the controls' setting."""
        if self._html is not None:
            return self._html
        grids, keys, one_at_a_time = self.frame_grid()
        default = tuple(g.index(c.value) for g, c in zip(grids, self.controls))
        frames, alts, fmt = [], [], None
        for key in keys:  # the default setting comes first
            values = {c.name: g[k] for c, g, k in zip(self.controls, grids, key)}
            setting = ", ".join(f"{c.description} = {c.format(values[c.name])}" for c in self.controls)
            try:
                rgb, kind = self.pixels(self.frame_dpi, **values), fmt
            except Exception as exc:  # an honest frame for a setting the plot cannot draw
                fig = _error_figure(f"No figure for {setting}: {type(exc).__name__}: {exc}")
                try:
                    rgb, kind = _pixels(fig, self.frame_dpi), "png"
                finally:
                    _plt().close(fig)
            if kind is None:  # JPEG for photographs (much smaller), else PNG (crisp line art)
                fmt = kind = "jpeg" if len(_encode(rgb, "jpeg")) < 0.6 * len(_encode(rgb, "png")) else "png"
            frames.append(f"data:image/{kind};base64," + base64.b64encode(_encode(rgb, kind)).decode("ascii"))
            alts.append(f"{self.title}: {setting}")
        payload = {
            "frames": frames,
            "alts": alts,
            "index": {",".join(map(str, k)): i for i, k in enumerate(keys)},
            "defaults": list(default),
            "labels": [[c.format(v) for v in g] for c, g in zip(self.controls, grids)],
            "oneAtATime": one_at_a_time,
        }
        label_w = f"{max(len(c.description) for c in self.controls) * 0.6 + 1:.1f}em"
        rows = []
        for i, (c, g) in enumerate(zip(self.controls, grids)):
            desc = f'<span style="display:inline-block;width:{label_w}">{html.escape(c.description)}</span>'
            if isinstance(c, ChoiceControl):
                opts = "".join(f'<option value="{j}"{" selected" if j == default[i] else ""}>{html.escape(c.format(v))}'
                               f"</option>" for j, v in enumerate(g))
                field = f'<select data-control="{i}" aria-label="{html.escape(c.description)}">{opts}</select>'
            else:
                field = (f'<input type="range" data-control="{i}" min="0" max="{len(g) - 1}" step="1" '
                         f'value="{default[i]}" style="width:16em" aria-label="{html.escape(c.description)}"> '
                         f'<output data-readout="{i}">{html.escape(c.format(g[default[i]]))}</output>')
            rows.append(f'<div style="margin:0.15em 0">{desc}{field}</div>')
        n = len(keys)
        note = f"Pre-rendered copy: {n} settings, no kernel needed."
        if one_at_a_time:
            note += " Its controls move one at a time: moving one puts the others back to their defaults."
        elif len(self.controls) > 1:
            note += " Every combination of its controls' values is drawn."
        d0 = keys.index(default)
        self._html = (
            '<div class="dflib-explorer">\n'
            + "\n".join(rows)
            + f'\n<div style="font-size:85%;color:#555;margin:0.2em 0">{html.escape(note)}</div>\n'
            + f'<img class="dflib-explorer-figure" data-frame="{d0}" src="{frames[d0]}" '
            + f'alt="{html.escape(alts[d0])}" style="max-width:100%;height:auto">\n'
            + '<script type="application/json" class="dflib-explorer-data">'
            + json.dumps(payload).replace("</", "<\\/")
            + "</script>\n<script>" + _PLAYER_JS + "</script>\n</div>"
        )
        return self._html

    # -- display --
    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        """What a notebook shows: static HTML in static mode; else the default figure as PNG
        together with the live widget's view when running in a kernel."""
        static = static_mode() if self.static is None else self.static
        if static:
            return {"text/html": self.to_html(), "text/plain": repr(self)}
        bundle = {"image/png": base64.b64encode(self.png).decode("ascii"), "text/plain": repr(self)}
        if self.static is None and not _in_kernel():
            return bundle
        try:
            view = self.widget._repr_mimebundle_()
        except ImportError:
            return bundle
        if _WIDGET_VIEW in view:
            bundle[_WIDGET_VIEW] = view[_WIDGET_VIEW]
        return bundle


def focal_plane_explorer(images: Any, focus: Sequence[float], depth: Any | None = None, sigma: Any | None = None,
                         prob: Any | None = None, plane: int = 0) -> Explorer:
    """Slide through the focal planes of ``images [N, 3, H, W]``, beside the depth, σ and
    p_n maps (see :func:`plot_focal_plane`)."""
    images = to_numpy(images)
    n = images.shape[0]

    def plot(plane: int):
        return plot_focal_plane(images, focus, plane, depth=depth, sigma=sigma, prob=prob)

    return Explorer(plot, [IntControl("plane", "focal plane", plane, 0, n - 1)], title="focal plane explorer")


def pixel_focus_explorer(volume: Any, focus: Sequence[float], prob: Any | None = None, depth_gt: Any | None = None,
                         y: int | None = None, x: int | None = None) -> Explorer:
    """Pick a pixel (row and column sliders; the centre by default) to see its focus
    curve in ``volume [N, H, W]`` and the model's p_n (see :func:`plot_focus_curves`)."""
    H, W = to_numpy(volume).shape[-2:]

    def plot(y: int, x: int):
        return plot_focus_curves(volume, focus, [(y, x)], prob=prob, depth_gt=depth_gt)

    controls = [IntControl("y", "pixel row y", H // 2 if y is None else y, 0, H - 1),
                IntControl("x", "pixel column x", W // 2 if x is None else x, 0, W - 1)]
    return Explorer(plot, controls, title="pixel focus explorer")


def coc_calculator(focal_length_mm: float = 50.0, f_number: float = 8.0, pixel_pitch_um: float = 12.0,
                   focus_m: float = 2.0) -> Explorer:
    """CoC curves of a thin lens whose parameters are sliders (see :func:`plot_coc_curves`).

    The sliders hold every preset of :mod:`dflib.optics` exactly: focal length 1-200 mm
    in 0.1 mm steps, f-number 0.5-32 in steps of 0.1, pixel pitch 0.5-30 µm in 0.1 µm
    steps, focus 0.05-10 m in 1 cm steps (finer steps, or a wider range, where a default
    needs them). The figure's title names the lens it draws.
    """
    from dflib.optics import ThinLens

    def plot(focal_length_mm: float, f_number: float, pixel_pitch_um: float, focus_m: float):
        cam = ThinLens(focal_length_mm * 1e-3, f_number, pixel_pitch_um * 1e-6)
        title = f"{focal_length_mm:g} mm f/{f_number:g} lens, {pixel_pitch_um:g} µm pixels, focused at {focus_m:g} m"
        return plot_coc_curves(cam, [focus_m], depth_range=(max(0.05, 2 * cam.focal_length_m), 10.0), title=title)

    controls = [
        FloatControl("focal_length_mm", "focal length (mm)", focal_length_mm, 1.0, 200.0, 0.1, scale="log"),
        FloatControl("f_number", "f-number", f_number, 0.5, 32.0, 0.1, scale="log"),
        FloatControl("pixel_pitch_um", "pixel pitch (µm)", pixel_pitch_um, 0.5, 30.0, 0.1, scale="log"),
        FloatControl("focus_m", "focus distance (m)", focus_m, 0.05, 10.0, 0.01, scale="log"),
    ]
    return Explorer(plot, controls, title="CoC calculator")


def ablation_browser(rows: Sequence[Mapping[str, Any]], metrics: Sequence[str] = ("rmse", "abs_rel", "bump", "delta1"),
                     metric: str | None = None) -> Explorer:
    """Pick a metric to compare the runs of an ablation table (see :func:`plot_metric_bars`);
    metrics missing from some row are left out."""
    metrics = [m for m in metrics if all(m in r for r in rows)]
    if not metrics:
        raise ValueError("rows share none of the metrics asked for")

    def plot(metric: str):
        return plot_metric_bars(rows, metric, label="variant")

    return Explorer(plot, [ChoiceControl("metric", "metric", metric or metrics[0], tuple(metrics))],
                    title="ablation browser")
