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
# # 4. The DualFocus model, piece by piece
#
# DualFocus (NeurIPS 2025) is a learned depth-from-focus network with two extra constraints: a **spatial** one
# (per-plane surfaces built from predicted gradients, notebook 03) and a **focal** one (focus curves should have
# one peak). This notebook runs a freshly built `tiny` model on one rendered batch and opens it up:
# focal volume with focal differences → gradient head → integrable projection → 3-D decoder → readout,
# then the three loss terms. It is untrained here (notebook 05 trains it), so look at shapes and mechanics,
# not at the quality of the depth.

# %% tags=["parameters"]
PROFILE = "quick"  # "quick" (CI) or "full" (bigger images, bigger batch)
SEED = 0

# %%
from dflib.report import check_namespace

check_namespace(globals(), known={"PROFILE", "SEED"})
S = {
    "quick": dict(size=(64, 64), batch=2),
    "full": dict(size=(128, 128), batch=4),
}[PROFILE]
S

# %%
import matplotlib.pyplot as plt
import numpy as np
import torch

from dflib import viz
from dflib.classical import focus_volume
from dflib.data import SyntheticFocalStackDataset
from dflib.losses import DualFocusLoss, focal_variational_loss, sharpness_weights, spatial_variational_loss
from dflib.models import DualFocus, DualFocusConfig
from dflib.models.dualfocus import focal_difference_volume, focus_readout

ds = SyntheticFocalStackDataset(S["batch"], size=S["size"], include_middlebury=False, seed=SEED)
batch = torch.utils.data.default_collate([ds[i] for i in range(len(ds))])
stack, focus, depth, mask = batch["stack"], batch["focus"], batch["depth"], batch["mask"]
print({k: tuple(v.shape) for k, v in batch.items()})
torch.manual_seed(SEED)
model = DualFocus(DualFocusConfig.tiny()).eval()
cfg = model.config
print(cfg)

# %% [markdown]
# ## 1. Focal volume with focal differences
#
# A shared 2-D encoder maps every focal image $I_n$ to features $V_n$ (at $1/s$ resolution, $s$ = feature stride).
# Stacked over $n$ they form the focal volume $V\in\mathbb R^{B\times C_1\times N\times H'\times W'}$. Sharpness is
# *relative*: a pixel is in focus in plane $n$ if it is sharper there than in its neighbours. DualFocus makes that
# explicit by appending the **focal difference**
#
# $$ V^*_n = [\,V_n,\; V_{n+1}-V_n\,]\ (n<N), \qquad V^*_N = [\,V_N,\; V_N-V_{N-1}\,]. $$

# %% tags=["figure"]
# Check: the focal differences are $V_{n+1} - V_n$, and $V_N - V_{N-1}$ at the last plane
b, n, _, h, w = stack.shape
with torch.no_grad():
    feats = model.encoder(stack.reshape(b * n, 3, h, w))
    v = feats.view(b, n, cfg.feature_channels, *feats.shape[-2:]).transpose(1, 2)   # [B, C1, N, H', W']
    vstar = focal_difference_volume(v)                                              # [B, 2 C1, N, H', W']
print("V", tuple(v.shape), "-> V*", tuple(vstar.shape))
assert torch.equal(vstar[:, cfg.feature_channels:, 0], v[:, :, 1] - v[:, :, 0])
assert torch.equal(vstar[:, cfg.feature_channels:, -1], v[:, :, -1] - v[:, :, -2])
fig = viz.plot_image_grid({f"V_{i} (ch 0)": v[0, 0, i] for i in range(n)} | {f"V_{i+1}-V_{i}": vstar[0, cfg.feature_channels, i] for i in range(n - 1)},
                          ncols=n, cmap="coolwarm", symmetric=True, size=2.2)
plt.show()

# %% [markdown]
# ## 2. Gradient head and integrable projection
#
# From $V^*$ a small head predicts, for every plane, $C_2$ gradient fields $\Gamma_n$; each is projected onto the
# nearest integrable surface $z^*_n$ (notebook 03) and a learned $1\times1$ map mixes the $C_2$ surfaces into one
# $\bar z_n$, whose gradient $\theta_{\text{grad}}(z^*_n)=P\bar z_n$ the spatial loss supervises.

# %%
# Check: the gradient head gives one (x, y) field per plane and surface channel
with torch.no_grad():
    gamma = model.gradient_head(vstar)
    out = model(stack, focus)
print("Gamma", tuple(gamma.shape), "= [B, N, C2, (x,y), H', W']")
print("surfaces z*", tuple(out["surfaces"].shape), " mixed surface", tuple(out["surface"].shape))
assert gamma.shape == (b, n, cfg.surface_channels, 2) + tuple(v.shape[-2:])

# %% [markdown]
# ## 3. The 3-D decoder and the readout
#
# The surfaces are concatenated with $V^*$ and a 3-D convolutional encoder-decoder (which mixes neighbouring
# planes as well as neighbouring pixels) outputs one logit per plane and pixel, upsampled to full resolution;
# $p_n = \mathrm{softmax}_n$ is the focus probability. The readout is an expectation:
#
# $$ \hat D = \sum_n p_n f_n, \qquad \sigma = \sqrt{\textstyle\sum_n p_n (\hat D - f_n)^2}, \qquad \text{AiF} = \sum_n p_n I_n . $$
#
# Check with a one-hot $p$ (all mass on plane $k$): depth must be exactly $f_k$, $\sigma=0$, and the all-in-focus
# image exactly $I_k$.

# %%
# Check: the readout of a one-hot focus distribution is that plane's distance, zero σ and its frame; probabilities sum to 1
for k_ in range(n):
    onehot = torch.zeros(b, n, h, w); onehot[:, k_] = 1
    d1, s1, a1 = focus_readout(onehot, focus, stack)
    assert torch.allclose(d1, focus[:, k_, None, None, None].expand_as(d1))
    assert torch.all(s1 == 0) and torch.allclose(a1, stack[:, k_])
print("prob", tuple(out["prob"].shape), "depth", tuple(out["depth"].shape), "sigma", tuple(out["sigma"].shape))
assert torch.allclose(out["prob"].sum(1), torch.ones(b, h, w), atol=1e-5)
viz.focal_plane_explorer(stack[0], focus[0], depth=out["depth"][0], sigma=out["sigma"][0], prob=out["prob"][0])

# %% [markdown]
# ## Model sizes
#
# `tiny` trains on a laptop CPU; `paper` matches the paper's ~27 M parameters (a GPU model). `dfv_tiny` drops the
# surface branch (the DFV-style baseline) and `plain_tiny` also the focal differences.

# %%
# Check: model sizes: tiny under 1 M parameters, plain < DFV < tiny, paper 20–35 M
counts = {name: DualFocus(DualFocusConfig.preset(name)).num_parameters() for name in ("tiny", "dfv_tiny", "plain_tiny", "paper")}
for name, c in counts.items():
    print(f"{name:11s} {c:>12,d} parameters")
assert counts["tiny"] < 1_000_000 and counts["plain_tiny"] < counts["dfv_tiny"] < counts["tiny"]
assert 20e6 < counts["paper"] < 35e6

# %% [markdown]
# ## The three losses
#
# $$ L = L_{\text{depth}} + \lambda_{sv} L_{sv} + \lambda_{fv} L_{fv} $$
#
# * $L_{\text{depth}}$: smooth-L1 between $\hat D$ and the true depth $D^*$ over valid pixels.
# * $L_{sv}=\sum_{x,n} q_n(x)\,\lVert\nabla D^*(x)-\theta_{\text{grad}}(z^*_n)(x)\rVert_1$ with
#   $q_n(x)=\mathrm{softmax}_n(-|f_n-D^*(x)|)$: plane $n$'s surface must match the scene's shape **where plane $n$
#   is in focus**.
# * $L_{fv}$: with $k(x)=\arg\max_n p_n(x)$, $\sum_{i<k}\max(0,p_i-p_{i+1})^2+\sum_{i\ge k}\max(0,p_{i+1}-p_i)^2$:
#   zero for any single-peaked focus curve, positive when $p$ has a second peak.

# %%
# Check: one backward pass gives every parameter a finite gradient; $L_{sv}$ and $L_{depth}$ are positive
model.train()
out = model(stack, focus)
terms = DualFocusLoss(lambda_sv=1.0, lambda_fv=1.0)(out, depth, focus, mask)
print({k: round(float(v.detach()), 5) for k, v in terms.items()})
terms["total"].backward()
grads = [p.grad for p in model.parameters() if p.grad is not None]
assert len(grads) == sum(1 for p in model.parameters() if p.requires_grad)
assert all(torch.isfinite(g).all() for g in grads)
assert float(terms["sv"].detach()) > 0 and float(terms["depth"].detach()) > 0
model.eval()

q = sharpness_weights(depth, focus)[0]
fig = viz.plot_image_grid({"true depth (m)": depth[0]} | {f"q_{i} (focus {float(f):.2g} m)": q[i] for i, f in enumerate(focus[0])},
                          cmap="viridis", size=2.4)
plt.show()

# %% [markdown]
# ### The focal constraint on real focus curves
#
# Normalised to sum to one over the planes, a classical focus curve (notebook 02) is a focus distribution. Most
# are single-peaked, but texture-less spots and depth edges give curves with two peaks: exactly what $L_{fv}$
# penalises. Below: per-pixel $L_{fv}$ of the Laplacian-variance curves of the first stack, and the curves at the
# pixel with the smallest and the largest penalty.

# %%
# Check: $L_{fv}$ is zero on a unimodal focus curve and exactly $0.25^2$ on the bimodal example
vol = torch.from_numpy(focus_volume(stack[0], "lapv")).float()
p_cls = (vol / vol.sum(0, keepdim=True).clamp_min(1e-12))[None]          # [1, N, H, W]
# per-pixel L_fv: every pixel as its own 1x1 "image" (the loss of one pixel)
flat = p_cls[0].permute(1, 2, 0).reshape(h * w, n, 1, 1)
lfv = torch.stack([focal_variational_loss(flat[j:j + 1]) for j in range(h * w)]).reshape(h, w)
j_min, j_max = int(lfv.argmin()), int(lfv.argmax())
pix = [divmod(j_min, w), divmod(j_max, w)]
print(f"L_fv of the classical curves: {float((lfv == 0).float().mean()):.0%} of pixels single-peaked (L_fv = 0),",
      f"max {float(lfv.max()):.4f} at pixel {pix[1]}")
fig = viz.plot_image_grid({"focal image 0": stack[0, 0], "per-pixel L_fv": lfv}, cmap="magma")
plt.show()
fig = viz.plot_focus_curves(vol, focus[0], pix, prob=p_cls[0], depth_gt=depth[0], prob_label="normalised curve")
fig.axes[0].set_title(f"L_fv = {float(lfv.flatten()[j_min]):.4f}")
fig.axes[1].set_title(f"L_fv = {float(lfv.flatten()[j_max]):.4f}")
plt.show()
# the exact statement: zero on a unimodal curve, positive on a bimodal one
uni = torch.tensor([0.05, 0.15, 0.5, 0.2, 0.1]).view(1, 5, 1, 1)
bi = torch.tensor([0.05, 0.4, 0.1, 0.35, 0.1]).view(1, 5, 1, 1)
assert float(focal_variational_loss(uni)) == 0.0
# bimodal: the peak is plane 1 (0.4); after it, 0.1 -> 0.35 rises by 0.25: L_fv = 0.25^2
assert abs(float(focal_variational_loss(bi)) - 0.25**2) < 1e-7
assert float(lfv.flatten()[j_min]) == 0.0 and float(lfv.flatten()[j_max]) > 0

# %% [markdown]
# **Explore:** pick a pixel to compare its classical focus curve with the (untrained) model's $p_n$; after
# training (notebook 05) the two should peak together.

# %%
viz.pixel_focus_explorer(vol, focus[0], prob=out["prob"][0].detach(), depth_gt=depth[0])

# %% [markdown]
# ### What the surfaces learn: the diagnostics
#
# The spatial constraint only helps if the surface of plane $n$ really carries the scene's shape where plane $n$
# is in focus. `dflib.diagnostics.surface_diagnostics` measures that on the feature grid, in the units $L_{sv}$ uses
# (metres in the paper's form; the fractional plane index $u(D^*)$ in dflib's, see the README's "Where dflib
# departs from the paper"):
#
# * `err_in_focus` / `err_out_of_focus`: mean $|\nabla T-\theta_{\text{grad}}(z^*_n)|$ at the in-focus plane / at the others;
# * `err_zero`: the same error for surfaces that are zero everywhere, and `err_depth_ref` for the gradient of the
#   model's own depth: what "knowing the edges" scores at this resolution;
# * `corr_in_focus`: correlation of the in-focus surface with the target (each image's mean removed);
# * `encoder_grad_share`: how much of the shared encoder's gradient comes from $L_{sv}$.
#
# Below: the shipped DualFocus-tiny on this batch. An error bar under the dashed zero line, in focus but not out of
# focus, and a clearly positive correlation mean the surfaces learned in-focus geometry; an error level with the
# zero line means they learned nothing.

# %%
from dflib.diagnostics import DIAGNOSTIC_KEYS, plane_errors, surface_diagnostics
from dflib.models import load_pretrained

trained = load_pretrained("dualfocus_tiny", "cpu")
diag = surface_diagnostics(trained, stack, focus, depth, mask)
per_plane = plane_errors(trained, stack, focus, depth, mask)
print(f"surfaces in {trained.config.surface_units!r} units;", {k: round(v, 4) for k, v in diag.items()})
fig = viz.plot_surface_diagnostics(per_plane, diag, focus[0].tolist(), title="shipped DualFocus-tiny")
plt.show()

# %%
# Check: the surface diagnostics are defined (finite errors, correlation in [−1, 1], share in [0, 1]) and the per-plane errors pool to the total
assert set(diag) == set(DIAGNOSTIC_KEYS)
assert all(np.isfinite(diag[k]) and diag[k] >= 0 for k in ("err_in_focus", "err_out_of_focus", "err_zero", "err_depth_ref"))
assert -1 <= diag["corr_in_focus"] <= 1 and 0 <= diag["encoder_grad_share"] <= 1
# the per-plane errors pool to the overall in-focus error
w = per_plane["in_focus_count"]
assert abs(np.nansum(per_plane["in_focus"] * w) / w.sum() - diag["err_in_focus"]) < 1e-4

# %% [markdown]
# **Next:** notebook 05 trains the tiny model with these losses.
