"""dflib.viz: every pure plotting function on small inputs; every explorer live (its
widgets driven from Python), static (its pre-rendered HTML, its player run under node
when node is installed) and inside the report runner."""

from __future__ import annotations

import ast
import base64
import importlib.util
import itertools
import json
import math
import os
import re
import shutil
import subprocess
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from dflib import optics, viz  # noqa: E402
from dflib.classical import interpolate_peak  # noqa: E402
from dflib.optics import FOD500_CAMERA, ThinLens  # noqa: E402


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def _images(fig):
    return [im for ax in fig.axes for im in ax.get_images()]


def test_coc_curves_plot_the_thin_lens_coc():
    cam = ThinLens(0.05, 2.0, 1e-5)
    fig = viz.plot_coc_curves(cam, [0.5, 2.0], depth_range=(0.2, 4.0), f_numbers=[8.0])
    left, right = fig.axes[0], fig.axes[1]
    lines = left.get_lines()
    assert len(lines) == 3  # two focus distances + one extra aperture
    d, c = lines[0].get_data()
    np.testing.assert_allclose(c, cam.coc_px(d, 0.5))
    # the curve touches 0 at the focus distance
    assert c[np.argmin(np.abs(d - 0.5))] < 0.05 * c.max()
    # f/8 has a 4x smaller aperture than f/2: 4x smaller CoC
    d8, c8 = lines[2].get_data()
    np.testing.assert_allclose(c8, cam.coc_px(d8, 0.5) / 4.0, rtol=1e-9)
    # right panel: CoC against inverse depth is piecewise linear (|1/S2 - 1/S1|)
    q, cq = right.get_lines()[0].get_data()
    far = q < 1 / 0.5 - 0.1
    slope = np.diff(cq[far]) / np.diff(q[far])
    np.testing.assert_allclose(slope, slope[0], rtol=1e-6)


def test_focal_stack_and_depth_maps():
    stack = np.random.default_rng(0).random((4, 3, 8, 10))
    fig = viz.plot_focal_stack(stack, [0.1, 0.2, 0.4, 0.8], depth=np.ones((8, 10)), max_cols=3)
    assert len(_images(fig)) == 5
    assert _images(fig)[0].get_array().shape == (8, 10, 3)
    gt = np.linspace(1, 2, 80).reshape(8, 10)
    fig = viz.plot_depth_maps({"a": gt + 0.1, "b": gt}, gt=gt)
    ims = _images(fig)
    assert len(ims) == 3 + 2  # gt, a, b + two error maps
    err_a = np.asarray(ims[3].get_array())
    np.testing.assert_allclose(err_a, 0.1, atol=1e-12)


def test_focus_curves_normalised_and_prob():
    vol = np.stack([np.full((5, 6), v) for v in (1.0, 4.0, 2.0)])
    prob = np.stack([np.full((5, 6), v) for v in (0.2, 0.5, 0.3)])
    fig = viz.plot_focus_curves(vol, [0.1, 0.2, 0.3], [(1, 2), (3, 4)], prob=prob, depth_gt=np.full((5, 6), 0.2))
    assert len(fig.axes) == 2
    y = fig.axes[0].get_lines()[0].get_ydata()
    np.testing.assert_allclose(y, [0.25, 1.0, 0.5], rtol=1e-9)
    np.testing.assert_allclose(fig.axes[0].get_lines()[1].get_ydata(), [0.2, 0.5, 0.3])


def test_image_grid_crop_and_symmetric():
    rgb = torch.rand(3, 20, 30)
    field = np.linspace(-1, 3, 600).reshape(20, 30)
    fig = viz.plot_image_grid({"rgb": rgb, "field": field}, crop=(2, 12, 5, 25), symmetric=True)
    ims = _images(fig)
    assert ims[0].get_array().shape == (10, 20, 3)
    assert ims[1].get_array().shape == (10, 20)
    lo, hi = ims[1].get_clim()
    assert lo == -hi and hi == pytest.approx(np.abs(field[2:12, 5:25]).max())
    with pytest.raises(ValueError, match="images"):
        viz.plot_image_grid({})


def test_peak_fit_marks_the_gaussian_peak():
    idx = np.arange(7.0)
    curve = np.exp(-0.5 * (idx - 3.3) ** 2 / 0.8**2)
    fig = viz.plot_peak_fit(curve, true_value=3.3)
    ax = fig.axes[0]
    vlines = {ln.get_label(): ln.get_xdata()[0] for ln in ax.get_lines() if ln.get_label() in ("argmax", "Gaussian peak")}
    assert vlines["argmax"] == 3
    assert vlines["Gaussian peak"] == pytest.approx(3.3, abs=1e-9)
    assert vlines["Gaussian peak"] == pytest.approx(float(interpolate_peak(curve)), abs=1e-12)
    fit = [ln for ln in ax.get_lines() if ln.get_label() == "Gaussian fit"][0]
    # the fitted curve is exact for a Gaussian focus curve
    t, y = fit.get_data()
    np.testing.assert_allclose(y, np.exp(-0.5 * (t - 3.3) ** 2 / 0.8**2), rtol=1e-9)


def test_training_curves_and_metric_bars():
    hist = [{"step": i, "total": 1.0 / (i + 1), "depth": 0.5 / (i + 1)} for i in range(5)]
    hist[-1]["val_rmse"] = 0.2
    fig = viz.plot_training_curves(hist)
    assert len(fig.axes[0].get_lines()) == 2
    rows = [{"method": "a", "rmse": 0.3}, {"method": "b", "rmse": 0.1}]
    fig = viz.plot_metric_bars(rows, "rmse")
    heights = [p.get_height() for p in fig.axes[0].patches]
    np.testing.assert_allclose(heights, [0.3, 0.1])


def test_sparsification_plot_draws_the_mean_curves():
    from dflib.uncertainty import sparsification

    err = np.array([[4.0, 3.0], [2.0, 1.0]])
    rows = [sparsification(err, err), sparsification(err, -err)]  # a perfect σ and a reversed one
    fig = viz.plot_sparsification({"m": rows})
    by_sigma, oracle = fig.axes[0].get_lines()[:2]
    np.testing.assert_allclose(by_sigma.get_ydata(), (rows[0].by_sigma + rows[1].by_sigma) / 2)
    np.testing.assert_allclose(oracle.get_ydata(), rows[0].oracle)
    assert "AUSE" in fig.axes[0].get_legend().get_texts()[0].get_text()


def test_focal_plane_plot_panels():
    stack = torch.rand(3, 3, 8, 8)
    prob = torch.softmax(torch.randn(3, 8, 8), 0)
    fig = viz.plot_focal_plane(stack, torch.tensor([0.1, 0.3, 0.9]), plane=2, depth=torch.rand(1, 8, 8),
                               sigma=torch.rand(1, 8, 8), prob=prob)
    ims = _images(fig)
    assert len(ims) == 4
    np.testing.assert_allclose(ims[3].get_array(), prob[2].numpy(), rtol=1e-6)
    np.testing.assert_allclose(ims[0].get_array(), stack[2].permute(1, 2, 0).numpy(), rtol=1e-6)
    with pytest.raises(ValueError, match="plane"):
        viz.plot_focal_plane(stack, [0.1, 0.3, 0.9], plane=3)


# -- explorers ---------------------------------------------------------------------
NB_DIR = Path(__file__).resolve().parents[1] / "notebooks"
PRESETS = {name: cam for name, cam in vars(optics).items() if isinstance(cam, ThinLens)}


def _nouislider_snap(value: float, lo: float, hi: float, step: float) -> float:
    """The value an ipywidgets slider shows, and writes back, for ``value``: noUiSlider
    clamps it to the range and snaps it to ``lo + k * step`` in percent of the range
    (JavaScript's Math.round: halves up); the maximum itself is kept."""
    value = min(max(value, lo), hi)
    pct = (value - lo) * 100.0 / (hi - lo)
    if pct == 100.0:
        return hi
    step_pct = step * 100.0 / (hi - lo)
    return lo + math.floor(pct / step_pct + 0.5) * step_pct * (hi - lo) / 100.0


def _front_end_value(w):
    """What a Jupyter front end makes of a control widget's value."""
    import ipywidgets

    if isinstance(w, (ipywidgets.FloatSlider, ipywidgets.IntSlider)):
        return _nouislider_snap(w.value, w.min, w.max, w.step)
    assert isinstance(w, ipywidgets.Dropdown)
    return w.value if w.value in w.options else None


def test_snap_model_reproduces_the_reported_bug():
    # the old CoC calculator slider: FoD500's 2.9 mm lens snapped to 3.0 mm in the browser
    assert _nouislider_snap(2.9, 2, 200, 1) == 3.0
    assert _nouislider_snap(2.9, 1, 200, 0.1) == pytest.approx(2.9, rel=1e-12)
    assert _nouislider_snap(250, 1, 200, 0.1) == 200


def _notebook_calls(func_name: str) -> list[dict]:
    """The arguments of every ``viz.<func_name>(...)`` call in the notebooks, by name
    (literal values; ``...`` for an expression)."""
    import inspect

    import nbformat

    params = list(inspect.signature(getattr(viz, func_name)).parameters)

    def value(node):
        try:
            return ast.literal_eval(node)
        except ValueError:
            return ...

    calls = []
    for path in sorted(NB_DIR.glob("[0-9][0-9]_*.ipynb")):
        for cell in nbformat.read(str(path), as_version=4).cells:
            if cell.cell_type != "code":
                continue
            for node in ast.walk(ast.parse(cell.source)):
                if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == func_name:
                    kw = {params[i]: value(a) for i, a in enumerate(node.args)}
                    calls.append({**kw, **{k.arg: value(k.value) for k in node.keywords}})
    return calls


def _explorers_to_check():
    stack, focus = torch.rand(5, 3, 12, 10), torch.tensor([0.1, 0.15, 0.3, 0.7, 1.5])
    cases = {
        "focal_plane_explorer": (viz.focal_plane_explorer, dict(images=stack, focus=focus, plane=4), {"plane": 4}),
        "pixel_focus_explorer": (viz.pixel_focus_explorer, dict(volume=torch.rand(5, 12, 10), focus=focus),
                                 {"y": 6, "x": 5}),
        "ablation_browser": (viz.ablation_browser, dict(rows=[{"variant": "a", "rmse": 0.1, "bump": 1.0},
                                                              {"variant": "b", "rmse": 0.2, "bump": 0.5}],
                                                        metric="bump"), {"metric": "bump"}),
        "coc_calculator (defaults)": (viz.coc_calculator, {}, {"focal_length_mm": 50.0, "f_number": 8.0,
                                                               "pixel_pitch_um": 12.0, "focus_m": 2.0}),
    }
    for name, cam in PRESETS.items():
        kw = dict(focal_length_mm=cam.focal_length_m * 1e3, f_number=cam.f_number,
                  pixel_pitch_um=cam.pixel_pitch_m * 1e6, focus_m=0.3)
        cases[f"coc_calculator ({name})"] = (viz.coc_calculator, kw, kw)
    calls = _notebook_calls("coc_calculator")
    assert calls, "notebook 01 shows the CoC calculator"
    for i, kw in enumerate(calls):
        assert ... not in kw.values(), "the notebooks pass the calculator literal values"
        full = {**{"focal_length_mm": 50.0, "f_number": 8.0, "pixel_pitch_um": 12.0, "focus_m": 2.0}, **kw}
        cases[f"coc_calculator (notebook call {i})"] = (viz.coc_calculator, kw, full)
    # the other explorers' controls come from their data; the notebooks use their defaults (checked above)
    for kw in _notebook_calls("focal_plane_explorer") + _notebook_calls("pixel_focus_explorer"):
        assert not set(kw) & {"plane", "y", "x"}
    for kw in _notebook_calls("ablation_browser"):
        assert "metric" not in kw
    return cases


CASES = _explorers_to_check()


@pytest.mark.parametrize("case", list(CASES))
def test_explorer_defaults_survive_the_controls(case):
    pytest.importorskip("ipywidgets")
    make, kwargs, wanted = CASES[case]
    explorer = make(**kwargs)
    assert explorer.defaults == (pytest.approx(wanted, rel=1e-12) if case.startswith("coc") else wanted)
    widgets = explorer.control_widgets
    assert set(widgets) == set(wanted)
    for name, w in widgets.items():
        want = wanted[name]
        assert w.value == (pytest.approx(want, rel=1e-12) if isinstance(want, float) else want)
        shown = _front_end_value(w)
        expect = want if isinstance(want, str) else pytest.approx(want, rel=1e-9, abs=1e-12)
        assert shown == expect, f"{name}: the front end would show {shown}, not {want}"
        # readable labels: a description of its own (units in parentheses) and room to show it
        assert w.description and len(w.description) <= 24
        assert float(w.style.description_width.rstrip("em")) >= 0.55 * len(w.description)
        if hasattr(w, "continuous_update"):
            assert w.continuous_update is False  # one redraw when the slider is released


def test_every_preset_camera_is_on_the_calculator_grid():
    assert {"FOD500_CAMERA", "NYU_CAMERA"} <= set(PRESETS)
    for cam in PRESETS.values():
        e = viz.coc_calculator(cam.focal_length_m * 1e3, cam.f_number, cam.pixel_pitch_m * 1e6, 1.0)
        for c in e.controls:
            assert c.step in (0.1, 0.01) and c.min <= c.value <= c.max  # the preset ranges, not widened ones


def test_float_control_puts_any_default_on_its_grid():
    c = viz.FloatControl("f", "focal length (mm)", 2.95, 1.0, 200.0, 0.1)
    assert (c.value, c.step, c.min, c.max) == (2.95, 0.01, 1.0, 200.0)
    assert _nouislider_snap(c.value, c.min, c.max, c.step) == pytest.approx(2.95, rel=1e-12)
    c = viz.FloatControl("n", "f-number", 0.25, 0.5, 32.0, 0.1)  # below the range: widened by whole steps
    assert (c.min, c.step, c.value) == (0.2, 0.01, 0.25)
    c = viz.FloatControl("s", "focus (m)", 12.0, 0.05, 10.0, 0.01)  # above it: max moves to the value
    assert c.max == 12.0 and _nouislider_snap(12.0, c.min, c.max, c.step) == 12.0
    c = viz.FloatControl("x", "x", 0.3, 0.0, 1.0, 0.25)
    assert c.step == 0.025 and c.format(c.value) == "0.300"
    with pytest.raises(ValueError, match="'p'.*rounder"):
        viz.FloatControl("p", "p", math.pi, 0.0, 10.0, 0.1)
    with pytest.raises(TypeError, match="value"):
        viz.FloatControl("b", "b", True, 0.0, 1.0, 0.1)
    with pytest.raises(ValueError, match="min < max"):
        viz.FloatControl("r", "r", 1.0, 2.0, 1.0, 0.1)
    # the static copy's values: on the grid, within the range, the default among them
    c = viz.FloatControl("n", "f-number", 1.0, 0.5, 32.0, 0.1, scale="log")
    assert c.static_values(5) == [0.5, 0.7, 1.0, 1.4, 2.0]  # one stop apart
    lin = viz.FloatControl("l", "l", 0.3, 0.0, 1.0, 0.1).static_values(5)
    assert lin == [0.0, 0.3, 0.5, 0.8, 1.0]
    assert viz.IntControl("p", "plane", 3, 0, 9).static_values(5) == list(range(10))
    assert viz.IntControl("y", "row", 70, 0, 127).static_values(5) == [12, 38, 70, 89, 115]  # bin centres
    with pytest.raises(ValueError, match="plane"):
        viz.IntControl("plane", "plane", 5, 0, 4)
    with pytest.raises(ValueError, match="metric"):
        viz.ChoiceControl("metric", "metric", "mse", ("rmse",))


def _line_explorer(**kw):
    """A tiny explorer: a line of slope ``a`` and a marker at ``k``; ``k == 3`` cannot be drawn."""

    def plot(a: float, k: int, style: str):
        if k == 3:
            raise ValueError("k = 3 is not allowed")
        fig, ax = plt.subplots(figsize=(2, 1.5))
        ax.plot([0, 1], [0, a], style)
        ax.axvline(k / 4)
        return fig

    controls = [viz.FloatControl("a", "slope a", 1.0, 0.0, 2.0, 0.5), viz.IntControl("k", "marker k", 0, 0, 3),
                viz.ChoiceControl("style", "line style", "-", ("-", "--"))]
    return viz.Explorer(plot, controls, title="line", **kw)


@pytest.fixture(scope="module")
def line_every():
    """The tiny explorer's static copy with every combination (5 x 4 x 2 frames), built once."""
    e = _line_explorer(static=True, max_frames=40)
    e.to_html()
    yield e
    plt.close("all")


@pytest.fixture(scope="module")
def line_one_at_a_time():
    """The tiny explorer's static copy with one control moving at a time (1 + 4 + 3 + 1 frames)."""
    e = _line_explorer(static=True, max_frames=10)
    e.to_html()
    yield e
    plt.close("all")


def test_explorer_calls_its_plot_once_and_displays_nothing_itself(monkeypatch, capsys):
    import IPython.display

    monkeypatch.setattr(IPython.display, "display", lambda *a, **k: pytest.fail("an explorer displayed something"))
    calls = []

    def plot(k: int):
        calls.append(k)
        return plt.figure()

    e = viz.Explorer(plot, [viz.IntControl("k", "k", 2, 0, 4)])
    assert calls == [2] and plt.get_fignums() == []  # drawn once, directly, and closed
    assert capsys.readouterr().out == ""
    assert e.png.startswith(b"\x89PNG")
    with pytest.raises(ValueError, match="boom"):  # an error in the plot reaches the cell

        def bad(k: int):
            raise ValueError("boom")

        viz.Explorer(bad, [viz.IntControl("k", "k", 0, 0, 1)])


def test_live_explorer_is_one_figure_that_answers_its_controls():
    ipywidgets = pytest.importorskip("ipywidgets")
    e = _line_explorer()
    box = e.widget
    images = [w for w in box.children if isinstance(w, ipywidgets.Image)]
    assert len(images) == 1 and images[0].value == e.png  # one figure, the default one
    ctrl = e.control_widgets
    ctrl["a"].value = 2.0
    assert e.values == {"a": 2.0, "k": 0, "style": "-"}
    assert images[0].value == e.render(a=2.0) != e.png  # the same image now shows the new setting
    ctrl["style"].value = "--"
    assert images[0].value == e.render(a=2.0, style="--")
    # a setting that cannot be drawn hides the figure and says why; a good one brings it back
    ctrl["k"].value = 3
    assert images[0].layout.display == "none" and "k = 3 is not allowed" in e._live.status.value
    assert "marker k = 3" in e._live.status.value
    ctrl["k"].value = 1
    assert images[0].layout.display is None and e._live.status.value == ""
    assert images[0].value == e.render(a=2.0, k=1, style="--")
    assert plt.get_fignums() == []


def test_display_bundle_per_mode(monkeypatch):
    e = _line_explorer()
    monkeypatch.delenv(viz.STATIC_ENV, raising=False)
    # no kernel (nbval's and papermill's kernels have one, but no front end): the default figure, once
    b = e._repr_mimebundle_()
    assert set(b) == {"image/png", "text/plain"}
    assert base64.b64decode(b["image/png"]) == e.png
    assert b["text/plain"] == "<line: slope a = 1.0, marker k = 0, line style = ->"
    if importlib.util.find_spec("ipywidgets"):
        b = _line_explorer(static=False)._repr_mimebundle_()  # live: the widget view, the PNG for viewers without one
        assert set(b) == {"image/png", "text/plain", "application/vnd.jupyter.widget-view+json"}
    e = _line_explorer(max_frames=1, values_per_control=2)  # a static copy of 6 frames
    with viz.static_explorers():
        assert viz.static_mode() and os.environ[viz.STATIC_ENV] == "1"
        b = e._repr_mimebundle_()
        assert set(b) == {"text/html", "text/plain"}
        with viz.static_explorers(False):
            assert not viz.static_mode()
        assert viz.static_mode()
    assert viz.STATIC_ENV not in os.environ
    monkeypatch.setenv(viz.STATIC_ENV, "0")
    assert not viz.static_mode()


def _payload(page: str) -> list[dict]:
    """The data of every static explorer in an HTML page (nbconvert reorders attributes)."""
    found = re.findall(r'<script[^>]*class="dflib-explorer-data"[^>]*>(.*?)</script>', page, re.S)
    return [json.loads(f) for f in found]


def _frame_bytes(uri: str) -> bytes:
    return base64.b64decode(uri.split(",", 1)[1])


def test_static_copy_draws_every_combination_and_needs_nothing_else(line_every):
    e = line_every
    page = e._repr_mimebundle_()["text/html"]
    assert "http" not in page and "require(" not in page and "widget" not in page  # offline, no widget manager
    (data,) = _payload(page)
    grids, keys, one = e.frame_grid()
    assert grids == [[0.0, 0.5, 1.0, 1.5, 2.0], [0, 1, 2, 3], ["-", "--"]] and not one
    assert len(data["frames"]) == 5 * 4 * 2 and data["oneAtATime"] is False
    assert data["labels"][0] == ["0.0", "0.5", "1.0", "1.5", "2.0"]
    frames = {tuple(map(int, k.split(","))): _frame_bytes(data["frames"][i]) for k, i in data["index"].items()}
    assert set(frames) == set(itertools.product(range(5), range(4), range(2)))
    # moving any one control changes the frame (k = 3 shows its error instead of a figure)
    for key, frame in frames.items():
        for i in range(3):
            for j in range(len(grids[i])):
                if j != key[i]:
                    assert frames[key[:i] + (j,) + key[i + 1:]] != frame
    d = tuple(data["defaults"])
    assert d == (2, 0, 0) and 'data-frame="%d"' % data["index"]["2,0,0"] in page
    assert frames[d] == e.render("png", e.frame_dpi) or frames[d] == e.render("jpeg", e.frame_dpi)
    assert data["alts"][data["index"]["2,3,0"]] == "line: slope a = 1.0, marker k = 3, line style = -"
    assert plt.get_fignums() == []


def test_static_copy_moves_one_control_at_a_time_when_the_grid_is_large(line_one_at_a_time):
    e = line_one_at_a_time
    (data,) = _payload(e.to_html())
    assert data["oneAtATime"] is True and len(data["frames"]) == 1 + 4 + 3 + 1
    assert "one at a time" in e.to_html()


def _run_player(page: str, moves: list[tuple[int, int]]) -> list[dict]:
    """Run the static explorer's inline JavaScript under node against a minimal DOM, move
    its controls (control index, value index) and report what it shows after each move."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    (data,) = _payload(page)
    js = re.findall(r"<script>(.*?)</script>", page, re.S)[-1]
    harness = """
function El(attrs) { this.attrs = attrs; this.listeners = {}; this.value = attrs.value; this.textContent = ""; }
El.prototype.getAttribute = function (k) { return this.attrs[k]; };
El.prototype.setAttribute = function (k, v) { this.attrs[k] = v; };
El.prototype.addEventListener = function (t, f) { (this.listeners[t] = this.listeners[t] || []).push(f); };
var payload = %s, moves = %s;
var n = payload.defaults.length;
var controls = [], readouts = [], img = new El({});
for (var i = 0; i < n; i++) {
  controls.push(new El({"data-control": String(i), value: String(payload.defaults[i])}));
  readouts.push(new El({}));
}
var root = {
  querySelector: function (sel) {
    if (sel === "script.dflib-explorer-data") return {textContent: JSON.stringify(payload)};
    if (sel === "img.dflib-explorer-figure") return img;
    var m = /data-(control|readout)="(\\d+)"/.exec(sel);
    return (m[1] === "control" ? controls : readouts)[Number(m[2])];
  },
  querySelectorAll: function (sel) { return controls; }
};
var document = {currentScript: {parentNode: root}};
%s
var out = [];
moves.forEach(function (mv) {
  var el = controls[mv[0]];
  el.value = String(mv[1]);
  el.listeners.input.forEach(function (f) { f(); });
  out.push({frame: Number(img.attrs["data-frame"]), src: img.src, alt: img.alt,
            controls: controls.map(function (c) { return Number(c.value); }),
            readouts: readouts.map(function (r) { return r.textContent; })});
});
console.log(JSON.stringify(out));
""" % (json.dumps(data), json.dumps(moves), js)
    res = subprocess.run([node, "-"], input=harness, capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


def test_static_player_shows_the_frame_of_its_controls(line_every, line_one_at_a_time):
    e = line_every
    (data,) = _payload(e.to_html())
    states = _run_player(e.to_html(), [(0, 4), (1, 2), (2, 1), (0, 0)])
    for s, want in zip(states, [(4, 0, 0), (4, 2, 0), (4, 2, 1), (0, 2, 1)]):
        assert tuple(s["controls"]) == want
        assert s["frame"] == data["index"][",".join(map(str, want))]
        assert s["src"] == data["frames"][s["frame"]]
        assert s["readouts"][:2] == [data["labels"][0][want[0]], data["labels"][1][want[1]]]
    assert states[1]["alt"] == "line: slope a = 2.0, marker k = 2, line style = -"
    # one control at a time: moving one puts the others back to their defaults
    e = line_one_at_a_time
    (data,) = _payload(e.to_html())
    states = _run_player(e.to_html(), [(0, 4), (1, 2)])
    assert states[0]["controls"] == [4, 0, 0] and states[1]["controls"] == [2, 2, 0]
    assert states[1]["frame"] == data["index"]["2,2,0"]


def test_coc_calculator_draws_the_lens_it_shows():
    e = viz.coc_calculator(focal_length_mm=2.9, f_number=1.0, pixel_pitch_um=12.0, focus_m=0.3)
    assert ThinLens(2.9e-3, 1.0, 12e-6) == FOD500_CAMERA
    fig = e.figure()
    d, c = fig.axes[0].get_lines()[0].get_data()
    np.testing.assert_allclose(c, FOD500_CAMERA.coc_px(d, 0.3))
    assert c.max() == pytest.approx(11.79, abs=0.005)  # at 3.0 mm (the old slider's snap) it would be 12.63
    assert "2.9 mm f/1" in fig._suptitle.get_text()
    # its static copy: 4 controls x 5 values, one at a time, in well under a megabyte
    grids, keys, one = e.frame_grid()
    assert one and len(keys) == 17 and grids[0] == [1.4, 2.1, 2.9, 4.1, 5.8]


@pytest.mark.slow
def test_report_pages_carry_static_explorers_and_no_widget_state(tmp_path):
    import nbformat

    from dflib.report import build_report

    nb_dir = tmp_path / "nbs"
    nb_dir.mkdir()
    params = nbformat.v4.new_code_cell('PROFILE = "quick"\nSEED = 0')
    params.metadata["tags"] = ["parameters"]
    code = ("import ipywidgets\nfrom dflib import viz\nipywidgets.IntSlider()\n"  # a widget of the notebook's own
            "viz.ablation_browser([{'variant': 'a', 'rmse': 0.1, 'bump': 2}, {'variant': 'b', 'rmse': 0.3, 'bump': 1}])")
    nb = nbformat.v4.new_notebook(cells=[params, nbformat.v4.new_code_cell(code)])
    nb.metadata["kernelspec"] = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
    nbformat.write(nb, str(nb_dir / "01_explorer.ipynb"))
    out = tmp_path / "report"
    assert viz.STATIC_ENV not in os.environ
    report = build_report(out, profile="quick", notebook_dir=nb_dir)
    assert report.ok, report.entries
    assert viz.STATIC_ENV not in os.environ  # set for the run only
    page = (out / "01_explorer.html").read_text()
    (data,) = _payload(page)
    assert len(data["frames"]) == 2 and data["labels"] == [["rmse", "bump"]]
    assert "widget-state" not in page and "widget-view" not in page  # no saved widget state, no dead widgets
    executed = nbformat.read(str(out / "executed" / "01_explorer.ipynb"), as_version=4)
    outputs = [o for c in executed.cells if c.cell_type == "code" for o in c.outputs]
    assert not any("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in outputs
                   if "dflib-explorer" in o.get("data", {}).get("text/html", ""))
