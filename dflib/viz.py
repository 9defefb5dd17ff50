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

from typing import Any, Mapping, Sequence

import matplotlib
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


def plot_sparsification(curves: Mapping[str, Sequence[Any]], title: str = "does σ know where depth is wrong?"):
    """Mean sparsification curves per method (:func:`dflib.uncertainty.sparsification`, one per stack).

    Solid: the RMSE left after removing the largest σ first; dashed, the same colour: the oracle (largest
    error first); grey: a random order (1). The legend carries each method's mean AUSE and AURG."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    colours = matplotlib.colormaps["tab10"](np.arange(len(curves)) % 10)
    for (name, rows), colour in zip(curves.items(), colours):
        f = rows[0].fractions
        ause, aurg = np.mean([r.ause for r in rows]), np.mean([r.aurg for r in rows])
        ax.plot(f, np.mean([r.by_sigma for r in rows], 0), color=colour,
                label=f"{name} (AUSE {ause:.2f}, AURG {aurg:.2f})")
        ax.plot(f, np.mean([r.oracle for r in rows], 0), "--", color=colour, alpha=0.5)
    ax.axhline(1.0, color="grey", lw=0.8, label="random order")
    ax.plot([], [], "--", color="grey", alpha=0.5, label="oracle (largest error first)")
    ax.set(xlabel="fraction of pixels removed (largest σ first)", ylabel="RMSE left / RMSE of all",
           ylim=(0, 1.1), title=title)
    ax.legend(fontsize=7, loc="upper right")
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


# the explorers, and their controls, are importable from here too (the notebooks call viz.coc_calculator, ...)
from dflib.controls import STATIC_ENV, ChoiceControl, FloatControl, IntControl, static_explorers, static_mode  # noqa: E402,F401
from dflib.explorers import (  # noqa: E402,F401
    Explorer,
    ablation_browser,
    coc_calculator,
    focal_plane_explorer,
    pixel_focus_explorer,
)
