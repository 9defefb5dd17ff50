"""dflib.viz: every pure plotting function on small inputs, and every explorer headless."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from dflib import viz  # noqa: E402
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


def _check_widget(w):
    try:
        import ipywidgets
    except ImportError:  # pragma: no cover
        assert w is None
        return
    assert isinstance(w, ipywidgets.interactive)
    # moving a control re-runs the pure plot without raising (interact would swallow it)
    assert w.result is None  # update() returns None: it displays the figure itself
    return w


def test_explorers_headless(capsys):
    stack = torch.rand(4, 3, 8, 8)
    focus = torch.tensor([0.1, 0.2, 0.4, 0.8])
    prob = torch.softmax(torch.randn(4, 8, 8), 0)
    w = _check_widget(viz.focal_plane_explorer(stack, focus, depth=torch.rand(8, 8), prob=prob))
    if w is not None:
        w.children[0].value = 3  # slider -> plane 3
        assert w.kwargs == {"plane": 3}
    w = _check_widget(viz.pixel_focus_explorer(torch.rand(4, 8, 8), focus, prob=prob))
    if w is not None:
        assert set(w.kwargs) == {"y", "x"}
        assert w.kwargs["y"] == 4
    w = _check_widget(viz.coc_calculator(focal_length_mm=2.9, f_number=1.0, pixel_pitch_um=12.0, focus_m=0.3))
    if w is not None:
        assert w.kwargs["focus_m"] == pytest.approx(0.3)
    rows = [{"variant": "full", "rmse": 0.1, "delta1": 0.9}, {"variant": "no_sv", "rmse": 0.2, "delta1": 0.8}]
    w = _check_widget(viz.ablation_browser(rows))
    if w is not None:
        assert w.kwargs == {"metric": "rmse"}  # metrics missing from the rows are dropped


def test_coc_calculator_default_matches_fod500_camera():
    # the calculator draws a ThinLens built from its sliders: check that conversion once
    cam = ThinLens(2.9e-3, 1.0, 12e-6)
    assert cam == FOD500_CAMERA
    fig = viz.plot_coc_curves(cam, [0.3], depth_range=(0.1, 3.0))
    d, c = fig.axes[0].get_lines()[0].get_data()
    np.testing.assert_allclose(c, FOD500_CAMERA.coc_px(d, 0.3))
