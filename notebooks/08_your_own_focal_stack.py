# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.7
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 8. Depth from your own focal stack
#
# Depth from a stack taken with your own phone or camera: capturing it, loading it with the right focus
# units, seeing and removing focus breathing, and reading depth, σ and the all-in-focus image from it, with
# what to expect from weights trained on synthetic stacks.
#
# Notebooks 01–07 used stacks rendered from RGB-D, frame-perfect and focused at known distances in metres.
# A stack from your own phone or camera differs in three ways:
#
# 1. **Focus breathing.** Most lenses change magnification as they refocus, and a hand-held camera moves a
#    little between frames, so the frames do not line up. Depth from focus compares each pixel across the frames;
#    misaligned frames make it compare different points of the scene.
# 2. **Focus units.** Cameras report focus as a distance in metres, in dioptres (Android's `LENS_FOCUS_DISTANCE`,
#    Raspberry Pi's `LensPosition`), as a motor position, or not at all; one end is often infinity.
# 3. **Size.** A 12-megapixel frame is 50× the pixels the networks here were trained on.
#
# With no stack of yours at hand this notebook makes one: the Middlebury scene, shrunk to a table-top, seen by a phone-like camera with
# simulated breathing and hand shake, saved as JPEGs with EXIF. Your own stack goes through the same calls
# (or `dflib predict --images FOLDER --focus ... --focus-unit ...`).

# %% tags=["parameters"]
PROFILE = "quick"  # "quick" (CI: half-size frames, 5 planes) or "full" (full-size frames, 8 planes)
SEED = 0

# %%
from dflib.report import check_namespace

check_namespace(globals(), known={"PROFILE", "SEED"})
S = {
    "quick": dict(step=2, n_planes=5),  # 250x371 frames
    "full": dict(step=1, n_planes=8),  # 500x741 frames
}[PROFILE]
S

# %%
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from dflib import align, io, viz
from dflib.blur_estimate import largest_blur_px
from dflib.classical import sff
from dflib.metrics import depth_metrics
from dflib.optics import ThinLens, focus_uniform_diopters
from dflib.models.pretrained import pretrained_train_config
from dflib.predict import blur_range_note, breathing_order_note, predict, predict_files, training_range_note
from dflib.render import render_focal_stack
from dflib.scenes import middlebury_motorcycle

# %% [markdown]
# ## 1. Capturing a stack
#
# **What to use.** On a camera, the *focus bracketing* (or *focus shift*) mode of many mirrorless bodies takes the
# whole stack with one press. On a phone, use an app with manual focus or focus bracketing; Android apps built on
# the Camera2 API can report each frame's focus in dioptres. Take the widest aperture (a phone's is fixed): depth
# from focus is stereo with a baseline the size of the aperture, so a large aperture gives large blur differences.
#
# **Keep everything still but the focus.** A tripod, or the phone resting on something; a static scene; fixed
# exposure, ISO and white balance (lock them), so that frames differ by focus only. Alignment (below) removes
# breathing and small shifts and rotations of the camera; it cannot undo parallax from a camera that moved
# sideways in a scene with depth, or a scene that moved.
#
# **How many frames, where.** Blur is linear in *inverse* distance (notebook 01), so space the focus planes
# uniformly in dioptres from the nearest to the farthest thing you care about: `focus_uniform_diopters(near, far, N)`.
# A depth can only be read between the first and last plane. Resolution improves with N (a hard-argmax readout
# errs by Δ/√12 for a plane spacing Δ), up to the point where neighbouring frames look the same; 5 to 10 frames is
# typical, and the shipped weights saw 5. Neighbouring planes should blur a point by a few pixels more or less.
#
# Here: a phone-like camera (f = 4.2 mm, f/1.8, a 5.6 mm wide sensor) photographing a table-top scene at 0.1–0.25 m,
# with planes from 0.1 to 0.3 m.

# %%
# Check: the simulated phone's focus planes are uniform in dioptres
scene = middlebury_motorcycle()
rgb = np.ascontiguousarray(scene.rgb[:: S["step"], :: S["step"]])
depth = scene.depth[:: S["step"], :: S["step"]] * 0.05  # the 2.1-5 m scene as a 0.1-0.25 m table-top
H, W = depth.shape
cam = ThinLens(focal_length_m=4.2e-3, f_number=1.8, pixel_pitch_m=5.6e-3 / W)  # the sensor's width over W pixels
focus_m = focus_uniform_diopters(0.1, 0.3, S["n_planes"])
print(f"{W}x{H} px, pixel pitch {cam.pixel_pitch_m * 1e6:.1f} um")
print("focus (m):        ", np.round(focus_m, 4))
print("focus (dioptres): ", np.round(1 / focus_m, 3))
valid = depth > 0
near, far = float(depth[valid].min()), float(depth[valid].max())
print(f"scene {near:.3f}-{far:.3f} m; CoC of the nearest point at the far plane "
      f"{float(cam.coc_px(near, focus_m[-1])):.1f} px, of the farthest at the near plane {float(cam.coc_px(far, focus_m[0])):.1f} px")
assert np.allclose(np.diff(1 / focus_m), np.diff(1 / focus_m)[0])  # uniform in dioptres
fig = viz.plot_coc_curves(cam, focus_m, depth_range=(near, far), title="the phone-like camera on the table-top scene")
plt.show()

# %% [markdown]
# ## 2. A phone stack, simulated
#
# A phone lens focuses by moving as a whole: focused at $S$, it sits $v = fS/(S-f)$ in front of the sensor, so the picture is magnified by $v/f = S/(S-f)$ relative to focus at infinity
# (`align.breathing_scales`): 4.4 % at 0.1 m for f = 4.2 mm, 1.4 % at 0.3 m. On top of that, a hand-held phone
# shifts by a pixel or so and turns by a fraction of a degree between frames. We render the stack
# (`render_focal_stack`, occlusion-aware, with sensor noise), apply that breathing and shake
# (`align.warp_stack` with the inverse maps), and save the frames as JPEGs with EXIF, in the order a focus
# bracket would take them (far to near here) with their focus in dioptres, as an Android phone reports it.

# %%
rendered = render_focal_stack(rgb, depth, cam, focus_m, seed=SEED, device="cpu")
truth_depth = rendered.depth.numpy()
rng = np.random.default_rng(SEED)
scales = align.breathing_scales(focus_m, cam.focal_length_m)
true_maps = align.breathing_matrices(scales, (H, W), shifts=rng.uniform(-1.5, 1.5, (len(focus_m), 2)),
                                     rotations_deg=rng.uniform(-0.15, 0.15, len(focus_m)))
captured = align.warp_stack(rendered.images.numpy(), np.linalg.inv(true_maps), progress=False)

scratch = tempfile.TemporaryDirectory(prefix="dflib_phone_stack_")  # removed when the kernel exits
folder = Path(scratch.name)
capture_order = np.arange(len(focus_m))[::-1]  # far to near
exif = dict(make="Simulated", model="Phone", focal_length_mm=4.2, f_number=1.8, exposure_s=1 / 60, iso=100)
for k, i in enumerate(capture_order):
    io.write_image(folder / f"IMG_{k + 1:04d}.jpg", captured[i], exif=exif)
focus_dpt = [round(float(1 / focus_m[i]), 4) for i in capture_order]  # what the phone recorded, per file
print(sorted(p.name for p in folder.iterdir()), "focus (dioptres):", focus_dpt)
print("magnification per frame (near to far):", np.round(scales, 4))

# %% [markdown]
# ## 3. Loading: order and units
#
# `io.load_stack(folder or files, focus=..., focus_unit=...)` reads the frames in file-name order, pairs them
# with `focus`, checks it and returns the frames **near to far** as one `[N, 3, H, W]` array, with the EXIF
# camera settings of each frame. Units: `"m"` (distance; `inf` for focus at infinity), `"diopter"` (1/m; 0 is
# infinity), `"disparity"` (a dataset's calibrated unit, larger is nearer) or `"index"` (plane numbers or raw
# motor positions, larger is farther; depth then comes out on that scale). Without `focus`, it is taken from
# the folder's `focus.json` (`dflib render` writes one) or from the frames' EXIF `SubjectDistance`.

# %%
# Check: `load_stack` orders the files near to far, converts dioptres to metres and reads the EXIF focal length
stack = io.load_stack(folder, focus=focus_dpt, focus_unit="diopter")
print("files near to far:", [p.name for p in stack.paths])
print("focus (dioptres): ", stack.focus, " = metres:", np.round(io.diopters_to_metres(stack.focus), 4))
print("camera:", io.describe_camera(stack.exif[0]))
assert [p.name for p in stack.paths] == [f"IMG_{k:04d}.jpg" for k in range(len(focus_m), 0, -1)]  # reversed
assert np.allclose(io.diopters_to_metres(stack.focus), focus_m, rtol=1e-3)
assert stack.images.shape == (len(focus_m), 3, H, W) and stack.exif[0]["focal_length_mm"] == 4.2

# %% [markdown]
# Bad focus lists fail early, with one line naming the argument and the value (the command line prints it and
# exits with status 2). Infinity is a valid far end: in metres it is `inf`, in dioptres 0, and the depth
# readout then runs in dioptres.

# %%
print("metres with inf, as dioptres:", io.focus_to_diopters(io.check_focus_values([0.1, 0.2, 0.5, "inf"], "m"), "m"))
bad = {"zero distance": ([0.1, 0.0, 0.5], "m"), "negative dioptres": ([10, 5, -1], "diopter"),
       "NaN": ([0.1, float("nan"), 0.5], "m"), "not monotonic": ([0.1, 0.5, 0.2], "m")}
for what, (values, unit) in bad.items():
    try:
        io.check_focus_values(values, unit)
        raise AssertionError(f"{what} was accepted")
    except ValueError as err:
        print(f"{what:18s} -> {err}")

# %% [markdown]
# ## 4. Seeing and removing focus breathing
#
# Subtract the nearest-focused frame from the farthest: where the frames line up, the difference is only the
# change of blur; with breathing, every edge shows twice, more and more toward the borders (a magnification
# moves points in proportion to their distance from the centre).
#
# `align.align_stack` / `align_if_needed` (what `dflib predict` runs) registers each frame to its neighbour in
# focus, whose blur is similar (ORB features and RANSAC with scikit-image for a start, then a direct alignment
# of the two images, every pixel at once, for the last tenths of a pixel), chains these maps to the reference
# frame, the one with the narrowest view (every other frame covers it), resamples the frames onto it bicubically
# and crops to the part all frames cover.

# %%
# Check: alignment finds the simulated breathing: scale error < 0.003, offset error < 0.3 px
raw = stack.images.copy()  # kept to compare with; alignment below resamples stack.images in place
result = align.align_if_needed(stack.images, inplace=True, progress=False)
print(result.message)
est = result.estimate
expected = true_maps @ np.linalg.inv(true_maps[est.reference])
scale_error = np.abs(est.scales - align.matrix_scale(expected))
offset_error = align.displacement_px(np.linalg.inv(expected) @ est.matrices, (H, W))
print("estimated magnification:", np.round(est.scales, 4))
print("true magnification:     ", np.round(align.matrix_scale(expected), 4))
print(f"worst error: scale {scale_error.max():.5f}, position {offset_error.max():.3f} px")
assert result.applied and scale_error.max() < 0.003 and offset_error.max() < 0.3

# %%
# Check: after alignment the frames differ less at the borders, where breathing is largest
y0, y1, x0, x1 = result.crop
raw_c = raw[..., y0:y1, x0:x1]
aligned = result.images  # [N, 3, y1 - y0, x1 - x0]
before = np.abs(raw_c[-1] - raw_c[0]).mean(0)
after = np.abs(aligned[-1] - aligned[0]).mean(0)
fig = viz.plot_image_grid({"nearest focus": aligned[0], "farthest focus": aligned[-1],
                           "|far - near| before": before, "|far - near| after": after}, cmap="magma", ncols=4)
plt.show()
# breathing grows toward the borders: there the difference drops most
yy, xx = np.mgrid[y0:y1, x0:x1]
r = np.hypot((xx - (W - 1) / 2) / W, (yy - (H - 1) / 2) / H)
outer = r > np.quantile(r, 0.75)
print(f"mean |far - near| in the outer quarter: {before[outer].mean():.4f} before, {after[outer].mean():.4f} after")
assert after[outer].mean() < 0.8 * before[outer].mean()

# %% [markdown]
# Breathing also tells which end of a stack is near: a lens that focuses by moving magnifies toward near focus.
# With `--focus-unit index` the frames' order is all dflib knows, and frames given far to near give an inverted
# depth map. So `dflib predict` checks the order against the magnification (`breathing_order_note`): index-ordered
# frames that magnify toward the far end get a note. Stacks from a focusing rail, which moves the camera, magnify
# toward far focus and get the note too, which says so.

# %%
# Check: the order note stays silent for this stack near to far, and speaks for it far to near
print("near to far:", breathing_order_note(est.scales, "index"))
print("far to near:", breathing_order_note(est.scales[::-1], "index"))
assert breathing_order_note(est.scales, "index") is None
assert "far to near" in breathing_order_note(est.scales[::-1], "index")

# %% [markdown]
# ## 5. Depth, σ and the all-in-focus image
#
# `predict` runs the shipped default weights (`dflib.models.pretrained.DEFAULT_MODEL`: DFV-mid). Three versions of the stack: as captured (cropped the same
# way), aligned, and the rendering before breathing was applied (the best alignment could do). Shape from focus
# (`sff`, notebook 02) is shown beside it. Depth is compared with the scene's true depth.

# %%
# Check: alignment costs no RMSE and brings the depth closer to the breathing-free one
focus = stack.focus  # dioptres, near to far; depth comes back in metres
versions = {"as captured": raw_c, "aligned": aligned, "no breathing": rendered.images.numpy()[..., y0:y1, x0:x1]}
preds = {name: predict(images, focus, focus_unit="diopter", device="cpu", progress=False) for name, images in versions.items()}
gt = truth_depth[y0:y1, x0:x1]
rows = []
for name, images in versions.items():
    m = depth_metrics(preds[name].depth, gt)
    s = depth_metrics(sff(images, io.diopters_to_metres(focus), "lapv").depth, gt)
    rows.append((name, m["rmse"], m["abs_rel"], m["bump"], s["rmse"]))
print(f"{'stack':14s} {'RMSE (m)':>9s} {'AbsRel':>7s} {'Bump':>6s} {'SFF RMSE':>9s}")
for row in rows:
    print(f"{row[0]:14s} {row[1]:9.4f} {row[2]:7.3f} {row[3]:6.3f} {row[4]:9.4f}")
rmse = {row[0]: row[1] for row in rows}
# the RMSE gain is small for the shipped weights (a few tenths of a mm): alignment must not cost accuracy
assert rmse["aligned"] <= rmse["as captured"] + 1e-3
# the aligned stack's depth is closer to the breathing-free one than the captured stack's
gap = {k: np.abs(preds[k].depth - preds["no breathing"].depth).mean() for k in ("as captured", "aligned")}
print("mean |depth - depth without breathing| (m):", {k: round(float(v), 4) for k, v in gap.items()})
assert gap["aligned"] < gap["as captured"]
fig = viz.plot_depth_maps({k: p.depth for k, p in preds.items()}, gt=gt, vmin=0.1, vmax=0.3)
plt.show()

# %% [markdown]
# Besides depth, the network gives its **uncertainty** σ (the spread of its focus distribution; here in
# dioptres, since the readout ran in dioptres) and the **all-in-focus image** $\sum_n p_n I_n$, each pixel taken
# from the frames where it is sharp. The all-in-focus image is sharper than any single frame.

# %% tags=["figure"]
# Check: the all-in-focus image is sharper than the median frame; depth stays within the focus range
best = preds["aligned"]
print("depth unit:", best.unit, "| sigma unit:", best.sigma_unit, "| working size:", best.working_size)
fig = viz.plot_image_grid({"all-in-focus": best.aif, "σ (dioptres)": best.sigma, "|error| (m)": np.abs(best.depth - gt)},
                          cmap="magma", ncols=3)
plt.show()


def sharpness(img):
    """Mean squared Laplacian of the grey image."""
    g = img.mean(0)
    lap = g[1:-1, 1:-1] * 4 - g[:-2, 1:-1] - g[2:, 1:-1] - g[1:-1, :-2] - g[1:-1, 2:]
    return float((lap ** 2).mean())


frame_sharpness = [sharpness(f) for f in aligned]
print("sharpness of the frames:", np.round(frame_sharpness, 5), " all-in-focus:", round(sharpness(best.aif), 5))
assert sharpness(best.aif) > np.median(frame_sharpness)
# the readout is a weighted mean of the focus positions: depth never leaves the focus range
assert best.depth.min() >= 0.1 - 1e-4 and best.depth.max() <= 0.3 + 1e-4

# %% [markdown]
# All of the above in one call, which is what `dflib predict` runs before writing `depth.png` (16-bit mm),
# `depth.npy`, `depth.json` (units, focus, EXIF, the alignment maps and crop), `depth_sigma.*` and `depth_aif.png`:
#
# ```bash
# dflib predict --images FOLDER --focus 3.333 3.75 ... 10 --focus-unit diopter --out depth.png
# ```

# %%
# Check: `predict_files` (what `dflib predict` runs) gives the same depth and records the alignment
print(f"dflib predict --images {folder} --focus {' '.join(map(str, focus_dpt))} --focus-unit diopter --out depth.png\n")
pred, info = predict_files(folder, focus=focus_dpt, focus_unit="diopter", device="cpu", progress=False, log=print)
assert np.allclose(pred.depth, best.depth, atol=1e-5)  # the same steps, the same depth
assert info["alignment"]["applied"] and info["alignment"]["crop_yyxx"] == list(result.crop)

# %% [markdown]
# **Explore:** step through the aligned frames beside the depth, σ and the focus probability of the plane shown.

# %%
viz.focal_plane_explorer(aligned, io.diopters_to_metres(focus), depth=best.depth, sigma=best.sigma, prob=best.prob)

# %% [markdown]
# **How far to trust σ.** Counted in focus planes (`Prediction.plane_sigma()`: the spread of the plane index, the
# same whatever the focus unit), σ marks where the focus distribution spreads over several planes. `dflib predict
# --max-sigma 1` leaves those pixels without depth (0 in the PNG, NaN in the `.npy`, grey in the preview). On
# rendered stacks with known depth the shipped models' σ ranks pixels by their error better than chance but far
# from perfectly; the pixels above one plane hold a third to three quarters of the errors larger than a plane
# (README: "How far to trust σ", `benchmarks/sigma_sparsification.py`).

# %%
# Check: the few pixels whose focus spreads over more than one plane err far more than the rest
ps = best.plane_sigma()
err = np.abs(best.depth - gt)
for t in (0.5, 1.0):
    m = ps > t
    there = f"{err[m].mean():.4f} m there" if m.any() else "none"
    print(f"σ > {t} plane: {m.mean():.1%} of the pixels, mean |error| {there}, {err[~m].mean():.4f} m elsewhere")
m = ps > 1.0
assert 0 < m.mean() < 0.2 and err[m].mean() > 1.5 * err[~m].mean()

# %% [markdown]
# ## 6. What to expect from weights trained on synthetic stacks
#
# The default weights (`weights/dfv_mid.pt`, 1.7 M parameters, the DFV-style twin of `dualfocus_mid`; README: "The
# default model is DFV-mid" says why it is the default) learned from diverse synthetic stacks: many
# scene families textured with photographs, random cameras (largest blur 3–25 px), 3–10 focus planes, sensor
# noise, then a short second stage that adds FoD500's camera, scenes reaching past the focus set and crops of
# the Middlebury scene (README: "What the shipped weights were trained for"). Expect:
#
# - **Depth only within your focus range.** The readout is a weighted mean of the focus positions, so nothing
#   comes out nearer than the first plane or farther than the last; outside them depth saturates.
# - **Blur size matters, not only distance.** The network reads blur in pixels; it saw largest blurs of 3–25 px
#   on 128² crops. A different camera, aperture or image size changes how many pixels of blur a depth makes.
#   `dflib predict` runs the network at a working size (long side 1024 px by default, `--working-size`); a
#   smaller one shrinks large blurs toward what the network saw. `dflib predict` measures the blur from the frames
#   (`dflib.blur_estimate.largest_blur_px`: per textured patch, how wide a Gaussian turns the sharpest frame
#   into the most blurred one) and, when it is far beyond 25 px, prints a note with a working size to try;
#   `--working-size auto` takes that size itself.
# - **Texture-less regions** (walls, sky) carry no focus information: depth there is a guess, and σ is large;
#   `--max-sigma 1` leaves them without depth.
# - **Real images** differ from the renderer: sharpening and noise reduction in the phone's image pipeline,
#   JPEG artefacts, lens aberrations, exposure flicker between frames. These shift the focus measure.
# - **Coarse, not metric-perfect depth.** The README's generalisation table gives the models' error on synthetic
#   stacks and on the real Middlebury scene; real captures do worse. For better results, render training stacks with your own camera
#   (`dflib render --camera custom --focal-length-mm ... --f-number ... --pixel-pitch-um ...`, or
#   `dflib.data.SyntheticFocalStackDataset`) and fine-tune (`dflib train`, notebook 05).

# %%
half = predict(aligned, focus, focus_unit="diopter", device="cpu", working_size=max(H, W) // 2, progress=False)
for p in (best, half):  # at half size every blur is half as many pixels wide
    print(f"working size {p.working_size[1]}x{p.working_size[0]}: RMSE {depth_metrics(p.depth, gt)['rmse']:.4f} m")
trained_on = pretrained_train_config()  # what the default weights saw
print(training_range_note(focus, "diopter", len(focus), trained_on) or "this stack's frame count is inside the training data's")
print(training_range_note(np.linspace(0.5, 4.0, 12), "m", 12, trained_on))

# %%
# Check: the blur measured from the aligned frames alone is the camera's largest circle of confusion, within 30 %
blur = largest_blur_px(aligned)
largest_coc = max(float(cam.coc_px(near, focus_m[-1])), float(cam.coc_px(far, focus_m[0])))
print(f"measured {blur.largest_px:.1f} px (90th percentile over {len(blur.per_patch_px)} patches); "
      f"largest circle of confusion of the scene {largest_coc:.1f} px")
print(blur_range_note(aligned, None, trained_on)[0] or "within the blur the default weights learned: no note")
assert abs(blur.largest_px / largest_coc - 1) < 0.3

# %% [markdown]
# **Next:** the command line for your own stack is in the README ("Depth from your own focal stack"); the
# benchmark of time and memory at 0.3, 3 and 12 megapixels is `benchmarks/bench_predict.py`.

# %%
scratch.cleanup()  # remove this notebook's throwaway folder (also removed at kernel exit if a run stops early)
