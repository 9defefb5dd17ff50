"""Notebook explorers: a pure plot function and the controls that choose its values.

Every explorer (:class:`Explorer`) wraps a *pure* plotting function of
:mod:`dflib.viz`, tested directly (ipywidgets' ``interact`` swallows exceptions
raised in its callback), and calls it once on construction. Displayed, an
explorer is one figure that answers its controls: live ipywidgets in a Jupyter
front end; self-contained, pre-rendered HTML in the static report
(``$DFLIB_STATIC_EXPLORERS``, see :func:`~dflib.controls.static_explorers`); and
the figure for its default setting anywhere without a front end (nbval,
papermill, a console).
"""

from __future__ import annotations

import base64
import html
import itertools
import math
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import matplotlib
import matplotlib.figure
import numpy as np

from dflib.controls import ChoiceControl, Control, FloatControl, IntControl, static_mode
from dflib.explorer_html import encode_image, error_figure, figure_pixels, pyplot, static_html
from dflib.utils import to_numpy

__all__ = ["Explorer", "ablation_browser", "coc_calculator", "focal_plane_explorer", "pixel_focus_explorer"]

_WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


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
            return figure_pixels(fig, self.dpi if dpi is None else dpi)
        finally:
            pyplot().close(fig)

    def render(self, fmt: str = "png", dpi: float | None = None, **values: Any) -> bytes:
        """The figure for ``values`` encoded as ``fmt`` (``png`` or ``jpeg``)."""
        return encode_image(self.pixels(dpi, **values), fmt)

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
                fig = error_figure(f"No figure for {setting}: {type(exc).__name__}: {exc}")
                try:
                    rgb, kind = figure_pixels(fig, self.frame_dpi), "png"
                finally:
                    pyplot().close(fig)
            if kind is None:  # JPEG for photographs (much smaller), else PNG (crisp line art)
                fmt = kind = "jpeg" if len(encode_image(rgb, "jpeg")) < 0.6 * len(encode_image(rgb, "png")) else "png"
            frames.append(f"data:image/{kind};base64," + base64.b64encode(encode_image(rgb, kind)).decode("ascii"))
            alts.append(f"{self.title}: {setting}")
        self._html = static_html(self.controls, grids, keys, default, frames, alts, one_at_a_time)
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
    from dflib.viz import plot_focal_plane

    images = to_numpy(images)
    n = images.shape[0]

    def plot(plane: int):
        return plot_focal_plane(images, focus, plane, depth=depth, sigma=sigma, prob=prob)

    return Explorer(plot, [IntControl("plane", "focal plane", plane, 0, n - 1)], title="focal plane explorer")


def pixel_focus_explorer(volume: Any, focus: Sequence[float], prob: Any | None = None, depth_gt: Any | None = None,
                         y: int | None = None, x: int | None = None) -> Explorer:
    """Pick a pixel (row and column sliders; the centre by default) to see its focus
    curve in ``volume [N, H, W]`` and the model's p_n (see :func:`plot_focus_curves`)."""
    from dflib.viz import plot_focus_curves

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
    from dflib.viz import plot_coc_curves

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
    from dflib.viz import plot_metric_bars

    metrics = [m for m in metrics if all(m in r for r in rows)]
    if not metrics:
        raise ValueError("rows share none of the metrics asked for")

    def plot(metric: str):
        return plot_metric_bars(rows, metric, label="variant")

    return Explorer(plot, [ChoiceControl("metric", "metric", metric or metrics[0], tuple(metrics))],
                    title="ablation browser")
