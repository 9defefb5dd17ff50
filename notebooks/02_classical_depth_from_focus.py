# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 2. Classical depth from focus
#
# Before any learning: **shape from focus** (SFF). For every pixel, measure how sharp each focal image is
# around it (a *focus measure*), which gives a **focus curve** over the $N$ planes; the plane where the curve
# peaks is the pixel's depth. This notebook computes focus measures, looks at focus curves, refines the peak
# below the plane spacing with a Gaussian fit, and shows where the method breaks: texture-less areas and depth edges.

# %% tags=["parameters"]
PROFILE = "quick"  # "quick" (CI) or "full" (bigger images, more planes)
SEED = 0

# %%
from dflib.report import check_namespace

check_namespace(globals(), known={"PROFILE", "SEED"})
S = {
    "quick": dict(size=(128, 128), n_planes=7),
    "full": dict(size=(256, 256), n_planes=10),
}[PROFILE]
S

# %%
import matplotlib.pyplot as plt
import numpy as np

from dflib import viz
from dflib.classical import FOCUS_MEASURES, focus_volume, interpolate_peak, sff
from dflib.metrics import depth_metrics, format_metrics
from dflib.optics import FOD500_CAMERA, focus_uniform_diopters
from dflib.render import render_focal_stack
from dflib.scenes import RGBDScene, occluding_objects, slanted_plane, step_edge

cam = FOD500_CAMERA
focus = focus_uniform_diopters(0.1, 1.5, S["n_planes"])
print("focus planes (m):", np.round(focus, 3))

# %% [markdown]
# ## Focus measures
#
# A focus measure is a local, non-negative statistic that grows with high-frequency content. `dflib.classical`
# has five classics, each averaged over a $w\times w$ window (grey levels $I$):
#
# | name | measure |
# |---|---|
# | `sml` | sum-modified Laplacian $\lvert I_{xx}\rvert + \lvert I_{yy}\rvert$ |
# | `tenengrad` | squared Sobel gradient magnitude $I_x^2 + I_y^2$ |
# | `lapv` | variance of the Laplacian $\nabla^2 I$ |
# | `lapd` | diagonal Laplacian (also the diagonal second differences) |
# | `glvar` | local grey-level variance |
#
# A slanted textured plane from 0.1 m to 1.5 m gives every depth in the range. Here is the measure of
# one focal image: each measure lights up the band of the plane that is in focus there.

# %%
scene = slanted_plane(0.1, 1.5, size=S["size"], seed=SEED)
stack = render_focal_stack(scene.rgb, scene.depth, cam, focus, seed=SEED)
gt = stack.depth.numpy()
mid = S["n_planes"] // 2
maps = {"focal image": stack.images[mid]}
maps.update({name: focus_volume(stack.images[mid:mid + 1], name)[0] for name in FOCUS_MEASURES})
fig = viz.plot_image_grid(maps, cmap="magma")
plt.show()
fig = viz.plot_focal_stack(stack.images, focus, depth=gt)
plt.show()

# %% [markdown]
# ## Focus curves
#
# Stacking a measure over the planes gives the focus volume $F[n, y, x]$. At a pixel, $n\mapsto F[n,y,x]$ is the
# focus curve; it should peak at the plane focused at the pixel's depth (black line).

# %%
vol = focus_volume(stack.images, "lapv")
H, W = S["size"]
pixels = [(int(H * 0.15), W // 2), (H // 2, W // 2), (int(H * 0.85), W // 2)]
fig = viz.plot_focus_curves(vol, focus, pixels, depth_gt=gt)
plt.show()

# %% [markdown]
# ## Argmax vs Gaussian peak interpolation
#
# The argmax can only return one of the $N$ focus distances: depth comes out in steps. Near its peak a focus
# curve is close to a Gaussian, $F(n)\approx a\,e^{-(n-\mu)^2/2s^2}$, so $\log F$ is a parabola. Through the three
# samples $\ell_{k-1},\ell_k,\ell_{k+1}$ of $\log F$ around the argmax $k$ the vertex lies at
#
# $$ \hat n \;=\; k + \frac{\ell_{k-1}-\ell_{k+1}}{2\,(\ell_{k-1}-2\ell_k+\ell_{k+1})}, $$
#
# a fractional plane index, which we map to metres by linear interpolation between neighbouring focus distances.

# %%
y, x = pixels[1]
# in plane-index units (the planes are uniform in dioptres, not in metres)
true_index = float(np.interp(1 / gt[y, x], 1 / focus[::-1], np.arange(len(focus))[::-1]))
fig = viz.plot_peak_fit(vol[:, y, x], true_value=true_index, unit="plane index")
plt.show()

# %%
# Check: a Gaussian peak fit cuts the median depth error below 0.85× that of argmax, which gives only the plane distances
res = {name: sff(stack.images, focus, "lapv", interpolation=name) for name in ("none", "gaussian")}
m = {name: depth_metrics(r.depth, gt) for name, r in res.items()}
for name in m:
    print(f"{name:9s}", format_metrics(m[name]))
fig = viz.plot_depth_maps({"argmax": res["none"].depth, "Gaussian peak": res["gaussian"].depth}, gt=gt)
plt.show()
# RMSE is dominated by a few wild outliers in weakly textured spots (see below); the typical pixel is
# what sub-plane interpolation improves, so compare the median |error|.
med = {name: float(np.median(np.abs(r.depth - gt))) for name, r in res.items()}
print("median |error| (m):", {k: round(v, 4) for k, v in med.items()})
assert med["gaussian"] < 0.85 * med["none"]
assert len(np.unique(res["none"].depth)) <= S["n_planes"]  # argmax gives only the plane distances

# %% [markdown]
# ## Where classical SFF fails
#
# **Texture-less areas.** A uniform patch looks the same in every focal image: its focus curve is flat (only
# noise), and the argmax is arbitrary. We paint a grey square on the slanted plane. `sff` also returns a
# confidence, the peak sharpness $(\max_n F / \overline{F} - 1)/(N-1)$, which drops there.
#
# **Depth edges.** The focus measure averages over a window, and near an edge the window sees both sides, and
# the blurred side's light spills across it: the curve mixes two peaks. Errors concentrate along the edge.

# %%
# Check: in a texture-less patch SFF's median error more than doubles and its confidence halves
rgb = scene.rgb.copy()
sq = (slice(H // 3, 2 * H // 3), slice(W // 3, 2 * W // 3))
rgb[sq] = 0.5
flat = RGBDScene(rgb, scene.depth, "slanted plane with a flat patch")
st_flat = render_focal_stack(flat.rgb, flat.depth, cam, focus, seed=SEED)
r_flat = sff(st_flat.images, focus, "lapv")
err_flat = np.abs(r_flat.depth - gt)
inside = np.zeros((H, W), bool)
inside[sq] = True
inside_core = np.zeros((H, W), bool)
inside_core[H // 3 + 6:2 * H // 3 - 6, W // 3 + 6:2 * W // 3 - 6] = True  # away from the patch border
print(f"median |error| inside the flat patch {np.median(err_flat[inside_core]):.3f} m, textured part {np.median(err_flat[~inside]):.3f} m")
print(f"confidence inside {r_flat.confidence[inside_core].mean():.3f}, textured part {r_flat.confidence[~inside].mean():.3f}")
assert np.median(err_flat[inside_core]) > 2 * np.median(err_flat[~inside])
assert r_flat.confidence[inside_core].mean() < 0.5 * r_flat.confidence[~inside].mean()

# %%
# Check: next to a depth edge SFF's median error is over 2.5× that away from it
edge = step_edge(near_m=0.12, far_m=0.3, size=S["size"], seed=SEED)
st_edge = render_focal_stack(edge.rgb, edge.depth, cam, focus, seed=SEED)
r_edge = sff(st_edge.images, focus, "lapv")
err_edge = np.abs(r_edge.depth - edge.depth)
near_edge = np.abs(np.arange(W) - W // 2) < 6
print(f"median |error| within 6 px of the edge {np.median(err_edge[:, near_edge]):.3f} m, elsewhere {np.median(err_edge[:, ~near_edge]):.3f} m")
assert np.median(err_edge[:, near_edge]) > 2.5 * np.median(err_edge[:, ~near_edge])
fig = viz.plot_image_grid({"flat patch: image": st_flat.images[mid], "SFF depth (m)": r_flat.depth,
                           "confidence": r_flat.confidence, "step edge: image": st_edge.images[mid],
                           "SFF depth (m) ": r_edge.depth, "|error| (m)": err_edge}, ncols=3, cmap="turbo_r")
plt.show()

# %% [markdown]
# ## Which focus measure? Metrics on a rendered scene
#
# On a procedural scene of overlapping objects (noise included), we score each measure with the DDFF-12
# benchmark metrics (`dflib.metrics.depth_metrics`: RMSE, AbsRel, δ₁, Bump, ...).

# %% tags=["figure"]
# Check: every focus measure gives a finite RMSE on the occluding-objects scene
objs = occluding_objects(S["size"], seed=SEED, depth_range=(0.1, 1.5))
st_obj = render_focal_stack(objs.rgb, objs.depth, cam, focus, seed=SEED)
rows, depths = [], {}
for name in FOCUS_MEASURES:
    d = sff(st_obj.images, focus, name).depth
    depths[name] = d
    rows.append({"method": name, **depth_metrics(d, st_obj.depth)})
print(f"{'measure':10s} {'rmse':>7s} {'abs_rel':>8s} {'delta1':>7s} {'bump':>6s}")
for r in rows:
    print(f"{r['method']:10s} {r['rmse']:7.4f} {r['abs_rel']:8.4f} {r['delta1']:7.3f} {r['bump']:6.3f}")
fig = viz.plot_metric_bars(rows, "rmse")
plt.show()
fig = viz.plot_depth_maps(depths, gt=st_obj.depth)
plt.show()
assert all(np.isfinite(r["rmse"]) for r in rows)

# %% [markdown]
# **Explore:** pick a pixel (y, x sliders) to see its focus curve on the objects scene.

# %%
viz.pixel_focus_explorer(focus_volume(st_obj.images, "lapv"), focus, depth_gt=st_obj.depth)

# %% [markdown]
# **Next:** notebook 03 introduces the integrable projection, the least-squares tool DualFocus uses to turn
# predicted gradients into surfaces, and notebook 04 the learned model.
