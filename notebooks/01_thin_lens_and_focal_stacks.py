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
# # 1. The thin lens and focal stacks
#
# A **focal stack** is a set of $N$ photographs of one scene, each focused at a different distance $f_1<\dots<f_N$.
# Depth from focus (DFF) reads depth off *where* each pixel is sharpest. This notebook builds the forward model
# that `dflib` uses to make training data: the thin lens, its circle of confusion, and a layered renderer
# that turns an RGB-D image into a focal stack.
#
# You will see: the circle of confusion against depth, why focus planes are spaced in **dioptres**,
# stacks rendered from a real RGB-D image (Middlebury *Motorcycle*) and a procedural scene, what goes wrong at
# depth edges without an occlusion model, and sensor noise.

# %% tags=["parameters"]
PROFILE = "quick"  # "quick" (CI, < 1 min on 2 CPU cores) or "full" (bigger images, more planes)
SEED = 0

# %%
from dflib.report import check_namespace

check_namespace(globals(), known={"PROFILE", "SEED"})
S = {
    "quick": dict(size=(128, 128), moto_step=4, n_planes=5),
    "full": dict(size=(256, 256), moto_step=2, n_planes=10),
}[PROFILE]
S

# %%
import matplotlib.pyplot as plt
import numpy as np
import torch

from dflib import viz
from dflib.classical import focus_volume
from dflib.optics import FOD500_CAMERA, FOD500_FOCUS_M, ThinLens, focus_uniform_diopters
from dflib.render import NoiseConfig, render_focal_stack, render_focal_stack_naive
from dflib.scenes import fronto_parallel_plane, middlebury_motorcycle, occluding_objects, step_edge

# %% [markdown]
# ## The circle of confusion
#
# A thin lens of focal length $f$ and f-number $N_f$ has an aperture of diameter $A = f/N_f$. Focused at distance
# $S_1$, it images a point at distance $S_2$ not to a point but to a disc on the sensor, the **circle of
# confusion** (CoC), of diameter
#
# $$ c \;=\; \frac{A\,f\,|S_2-S_1|}{S_2\,(S_1-f)} \;=\; \underbrace{\frac{A\,f\,S_1}{S_1-f}}_{\text{const. for a given focus}}\;\left|\frac{1}{S_2}-\frac{1}{S_1}\right| . $$
#
# Divided by the pixel pitch this is the blur diameter in pixels. Two facts to take away:
# the blur is **zero at the focus distance**, and it is **linear in inverse depth** $1/S_2$ (dioptres, m$^{-1}$).
# A wider aperture (smaller $N_f$) scales all blur up.
#
# `dflib.optics.FOD500_CAMERA` is the camera of the FoD500 benchmark (2.9 mm, f/1.0, 12 µm pixels).

# %%
cam = FOD500_CAMERA
fig = viz.plot_coc_curves(cam, [0.1, 0.3, 0.7, 1.5], depth_range=(0.06, 3.0), f_numbers=[2.0, 4.0])
plt.show()

# %%
# Check: zero blur at the focus distance, blur exactly linear in |1/S2 − 1/S1|, and f/2 halves the blur of f/1
for s1 in FOD500_FOCUS_M:
    assert cam.coc_px(s1, s1) == 0.0
d = np.linspace(0.1, 3.0, 50)
k = cam.coc_per_diopter_px(0.3)
assert np.allclose(cam.coc_px(d, 0.3), k * np.abs(1 / d - 1 / 0.3))
# halving the aperture (f/1 -> f/2) halves the blur
assert np.allclose(ThinLens(cam.focal_length_m, 2.0, cam.pixel_pitch_m).coc_px(d, 0.3), cam.coc_px(d, 0.3) / 2)
print(f"slope at 0.3 m focus: {k:.3f} px per dioptre")

# %% [markdown]
# ## Why focus planes are spaced in dioptres
#
# Each pixel is sharpest in the plane whose focus is nearest to its depth *in blur*, and blur is linear in
# $1/S$. If we place the $N$ planes uniformly in $1/S$, the worst-case blur of a pixel's *best* plane,
# $\max_{S}\min_n c(S; f_n)$, is the same everywhere in the range. Planes uniform in metres crowd the far
# range (where blur changes slowly) and leave gaps near the camera, where it changes fast.

# %%
# Check: planes uniform in dioptres leave a smaller worst-case blur than planes uniform in metres
near, far, n = 0.1, 1.5, S["n_planes"]
spacings = {"uniform in dioptres": focus_uniform_diopters(near, far, n), "uniform in metres": np.linspace(near, far, n)}
depths = np.linspace(near, far, 2000)
fig, ax = plt.subplots(figsize=(6.5, 3.4))
worst = {}
for (name, planes), c in zip(spacings.items(), ("C0", "C3")):
    best = cam.coc_px(depths[:, None], planes[None, :]).min(axis=1)  # blur of the sharpest plane
    worst[name] = best.max()
    ax.plot(depths, best, color=c, label=f"{name} (worst {best.max():.2f} px)")
    ax.plot(planes, np.zeros(n), "|", color=c, ms=14, mew=2)
ax.set(xlabel="depth (m)", ylabel="CoC of the sharpest plane (px)", title=f"{n} focus planes over {near}-{far} m")
ax.legend(fontsize=8)
plt.show()
print({k: np.round(v, 3).tolist() for k, v in spacings.items()})
assert worst["uniform in dioptres"] < worst["uniform in metres"]

# %% [markdown]
# **Try it:** the CoC calculator below redraws these curves for any lens (focal length, f-number, pixel pitch,
# focus distance); the title names the lens it draws. In the HTML report its sliders step through a few
# pre-rendered settings, one slider at a time.

# %%
viz.coc_calculator(focal_length_mm=2.9, f_number=1.0, pixel_pitch_um=12.0, focus_m=0.3)

# %% [markdown]
# ## Rendering a focal stack (layered, in linear light)
#
# `dflib.render.render_focal_stack` follows the physics closely enough to make useful training data:
#
# 1. undo the sRGB curve (blur mixes *light*, so work in linear intensities);
# 2. quantise inverse depth into $K$ layers (chosen so that neighbouring layers differ by at most 1 px of blur);
# 3. for every focus plane $n$, blur each layer's premultiplied RGBA with a disc PSF of its CoC $c(S_k; f_n)$ and
#    composite the layers **back to front** with the "over" operator, then normalise by the blurred coverage;
# 4. re-apply sRGB, add sensor noise and quantise to 8 bits.
#
# First a sanity check on a single textured plane at 0.3 m, rendered with FoD500's camera and focus planes
# (0.1, 0.15, 0.3, 0.7, 1.5 m): the third image must be the sharpest.

# %%
# Check: a fronto-parallel plane at 0.3 m is sharpest in the frame focused at 0.3 m
plane = fronto_parallel_plane(0.3, size=S["size"], seed=SEED)
st = render_focal_stack(plane.rgb, plane.depth, cam, FOD500_FOCUS_M, seed=SEED)
sharpness = focus_volume(st.images, "lapv").mean(axis=(1, 2))
print("mean focus measure per plane:", np.round(sharpness, 5))
assert int(np.argmax(sharpness)) == list(FOD500_FOCUS_M).index(0.3)

# %% [markdown]
# Now a procedural scene of overlapping textured objects at 0.1-1.5 m (the kind `dflib` trains on):

# %%
scene = occluding_objects(S["size"], seed=SEED, depth_range=(0.1, 1.5))
stack = render_focal_stack(scene.rgb, scene.depth, cam, FOD500_FOCUS_M, seed=SEED)
print(f"{stack.images.shape[0]} planes, {stack.n_layers} depth layers, images {tuple(stack.images.shape[-2:])}")
fig = viz.plot_focal_stack(stack.images, stack.focus_m, depth=stack.depth)
plt.show()

# %%
# Check: per pixel, the sharpest frame is the right plane more often than chance, and within one plane for over 60 % of pixels
# How often is a pixel's sharpest plane (per-pixel argmax of a focus measure) the plane focused nearest
# to its true depth (in dioptres)? Far from perfect: notebook 02 is about exactly this.
vol = focus_volume(stack.images, "lapv")
nearest = np.argmin(np.abs(1 / stack.depth.numpy()[None] - 1 / np.array(FOD500_FOCUS_M)[:, None, None]), axis=0)
sharpest = vol.argmax(axis=0)
exact, within1 = (sharpest == nearest).mean(), (np.abs(sharpest - nearest) <= 1).mean()
print(f"sharpest plane = nearest plane for {exact:.0%} of pixels, within one plane for {within1:.0%}")
assert exact > 1 / len(FOD500_FOCUS_M) and within1 > 0.6

# %% [markdown]
# ### A real RGB-D image: Middlebury *Motorcycle*
#
# `dflib.scenes.middlebury_motorcycle()` converts the stereo disparity shipped with scikit-image into metric depth
# (2.1-5 m; pixels without ground truth are holes, which the renderer fills and reports in `mask`). To make the
# blur visible on a small image we use a 50 mm f/2 lens and focus planes uniform in dioptres over 2.2-4.8 m.

# %% tags=["figure"]
moto = middlebury_motorcycle()
step = S["moto_step"]
rgb, depth = moto.rgb[::step, ::step], moto.depth[::step, ::step]
moto_cam = ThinLens(0.05, 2.0, 6e-6 * step)  # pixel pitch grows with the downsampling
moto_focus = focus_uniform_diopters(2.2, 4.8, S["n_planes"])
moto_stack = render_focal_stack(rgb, depth, moto_cam, moto_focus, seed=SEED)
print(f"max CoC: {moto_cam.coc_px(depth[depth > 0], moto_focus[:, None]).max():.1f} px;",
      f"{(~moto_stack.mask).float().mean():.1%} of pixels had no ground truth (filled)")
fig = viz.plot_focal_stack(moto_stack.images, moto_stack.focus_m, depth=np.where(depth > 0, depth, np.nan))
plt.show()

# %% [markdown]
# Slide through the planes:

# %%
viz.focal_plane_explorer(moto_stack.images, moto_stack.focus_m, depth=np.where(depth > 0, depth, np.nan))

# %% [markdown]
# ## Occlusion at depth edges: naive vs layered
#
# A tempting shortcut blurs each pixel with *its own* CoC ("gather", `render_focal_stack_naive`). It ignores that
# a blurred foreground object spreads light **over** the background next to it, and that a sharp foreground
# must hide the blurred background behind it. We render a vertical depth step (left half at 1.5 m, right half
# at 3 m) with a shallow depth of field and zoom on the edge.
#
# * **Focused on the far plane** the near half is blurred: its disc of blur must spill over the sharp far half.
#   Layered rendering does so; naive rendering keeps a hard, sharp boundary.
# * **Focused on the near plane** the far half is blurred: naive rendering smears the sharp foreground texture
#   into it (a halo), while the layered render leaves the foreground edge crisp.

# %%
H, W = S["size"]
edge = step_edge(near_m=1.5, far_m=3.0, size=(H, W), seed=SEED)
edge_cam = ThinLens(0.05, 2.0, 2.4e-5)
edge_focus = [1.5, 3.0]
print("CoC of the near half when focused far:", round(float(edge_cam.coc_px(1.5, 3.0)), 1), "px")
lay = render_focal_stack(edge.rgb, edge.depth, edge_cam, edge_focus, noise=False)
nai = render_focal_stack_naive(edge.rgb, edge.depth, edge_cam, edge_focus, noise=False)
crop = (H // 2 - 16, H // 2 + 16, W // 2 - 24, W // 2 + 24)
fig = viz.plot_image_grid({"all in focus": lay.aif, "layered, focus far": lay.images[1], "naive, focus far": nai.images[1],
                           "layered, focus near": lay.images[0], "naive, focus near": nai.images[0]}, crop=crop)
plt.show()

# %%
# Check: at a depth edge focused far, the blurred near half covers the far side in the layered render, not in the naive one
c = float(edge_cam.coc_px(1.5, 3.0))
band = slice(W // 2, W // 2 + int(c // 2) - 1)
diff_lay = (lay.images[1] - lay.aif)[:, :, band].abs().mean().item()
diff_nai = (nai.images[1] - nai.aif)[:, :, band].abs().mean().item()
print(f"mean |image - sharp| in the {band.stop - band.start}-px band beside the edge: layered {diff_lay:.4f}, naive {diff_nai:.4f}")
assert diff_lay > 5 * diff_nai

# %% [markdown]
# ## Sensor noise
#
# Without noise, a learned method can invert the renderer's exact blur and look perfect. `NoiseConfig` adds
# signal-dependent (Poisson-like, variance $\propto$ intensity) and constant Gaussian read noise, then quantises to 8 bits.

# %%
# Check: sensor noise is the same for the same seed, lands on 8-bit levels, and is small (0 < std < 0.02)
clean = render_focal_stack(scene.rgb, scene.depth, cam, FOD500_FOCUS_M, noise=False)
noisy = render_focal_stack(scene.rgb, scene.depth, cam, FOD500_FOCUS_M, noise=NoiseConfig(), seed=SEED)
noisy2 = render_focal_stack(scene.rgb, scene.depth, cam, FOD500_FOCUS_M, noise=NoiseConfig(), seed=SEED)
delta = noisy.images[2] - clean.images[2]
fig = viz.plot_image_grid({"clean": clean.images[2], "noisy": noisy.images[2], "noisy - clean (x 20)": (0.5 + 20 * delta).clamp(0, 1)})
plt.show()
print(f"noise std: {delta.std():.4f} (in [0, 1] units)")
assert torch.equal(noisy.images, noisy2.images)  # deterministic given the seed
assert torch.allclose(noisy.images * 255, (noisy.images * 255).round(), atol=1e-3)  # 8-bit levels
assert 0 < delta.std() < 0.02

# %% [markdown]
# **Next:** notebook 02 recovers depth from these stacks with classical focus measures.
