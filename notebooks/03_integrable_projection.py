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
# # 3. The integrable projection
#
# DualFocus does not only predict a focus distribution: for every focal plane it predicts a **gradient field**
# $\Gamma_n=(\Gamma_x,\Gamma_y)$ and turns it into a **surface** $z^*_n$. A network's gradient field is generally
# not the gradient of any surface (it is not *integrable*: its curl is not zero). The integrable projection finds
# the surface whose gradient is closest to it in the least-squares sense. This notebook solves that problem
# exactly with the discrete cosine transform (DCT), checks it against a generic sparse solver, compares it with
# the classic periodic (Frankot–Chellappa-style) FFT method on a depth step, and finally shows the per-plane
# surfaces inside a DualFocus model.

# %% tags=["parameters"]
PROFILE = "quick"  # "quick" (CI) or "full" (bigger grids)
SEED = 0

# %%
from dflib.report import check_namespace

check_namespace(globals(), known={"PROFILE", "SEED"})
S = {
    "quick": dict(grid=(24, 32), image=(64, 64), timing_grid=(40, 40)),
    "full": dict(grid=(48, 64), image=(128, 128), timing_grid=(48, 48)),
}[PROFILE]
S

# %%
import math
import time
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla
import torch

from dflib import viz
from dflib.dct import dct2, idct2
from dflib.integrate import forward_differences, integrable_projection
from dflib.models import DualFocus, DualFocusConfig
from dflib.optics import FOD500_CAMERA, FOD500_FOCUS_M
from dflib.render import render_focal_stack
from dflib.scenes import occluding_objects

rng = np.random.default_rng(SEED)

# %% [markdown]
# ## Least squares on a gradient field
#
# On an $H\times W$ grid let $P$ stack the forward differences
# $(D_x z)_{i,j} = z_{i,j+1}-z_{i,j}$ (an $H\times(W-1)$ field) and $(D_y z)_{i,j}=z_{i+1,j}-z_{i,j}$
# ($(H-1)\times W$). Given a field $\Gamma=(\Gamma_x,\Gamma_y)$ we want
#
# $$ z^* = \arg\min_z \;\lVert P z-\Gamma\rVert^2 \quad\Longleftrightarrow\quad P^\top P\, z = P^\top\Gamma . $$
#
# $P^\top P = L$ is the 5-point Laplacian with **Neumann** (zero-flux) boundaries. Constants are in its null space
# (a surface is defined up to an offset), so we take the zero-mean (minimum-norm) solution.
#
# We make a test field: the gradient of a smooth surface, plus noise, which makes it non-integrable.

# %%
H, W = S["grid"]
yy, xx = np.mgrid[0:H, 0:W] / max(H, W)
z_true = np.sin(3 * xx) * np.cos(2 * yy) + 0.5 * xx**2
z_true -= z_true.mean()
gx_t, gy_t = forward_differences(torch.from_numpy(z_true))
gx = gx_t + 0.02 * torch.from_numpy(rng.standard_normal(gx_t.shape))
gy = gy_t + 0.02 * torch.from_numpy(rng.standard_normal(gy_t.shape))
curl = (gx[1:, :] - gx[:-1, :]) - (gy[:, 1:] - gy[:, :-1])
print(f"curl of the noisy field: max |curl| = {curl.abs().max():.3f} (0 for an integrable field)")


# %% [markdown]
# ## The DCT solver, step by step
#
# The DCT-II basis functions $\cos\big(\pi k (i+\tfrac12)/H\big)\cos\big(\pi l (j+\tfrac12)/W\big)$ are
# eigenvectors of the Neumann Laplacian, with eigenvalues
#
# $$ \lambda_{kl} = 4\sin^2\!\frac{\pi k}{2H} + 4\sin^2\!\frac{\pi l}{2W}. $$
#
# So $z^* = \mathrm{IDCT}\big(\mathrm{DCT}(P^\top\Gamma)\,/\,\lambda\big)$, with the $(0,0)$ coefficient (the mean)
# set to $0$. Cost: two FFT-sized transforms, $O(HW\log HW)$. Below, each step by hand; $P$ is built as a
# scipy sparse matrix so that $P^\top\Gamma$ is literally the transpose applied to the field.

# %%
def difference_matrix(h: int, w: int) -> sp.csr_matrix:
    """P: [h(w-1) + (h-1)w, hw], rows = forward differences in x then y (row-major pixels)."""
    dx = sp.diags([-np.ones(w - 1), np.ones(w - 1)], [0, 1], shape=(w - 1, w))
    dy = sp.diags([-np.ones(h - 1), np.ones(h - 1)], [0, 1], shape=(h - 1, h))
    return sp.vstack([sp.kron(sp.eye(h), dx), sp.kron(dy, sp.eye(w))]).tocsr()


P = difference_matrix(H, W)
gamma = np.concatenate([gx.numpy().ravel(), gy.numpy().ravel()])
b = (P.T @ gamma).reshape(H, W)                          # step 1: P^T Gamma
B = dct2(torch.from_numpy(b))                            # step 2: DCT
k, l = np.arange(H)[:, None], np.arange(W)[None, :]
lam = 4 * np.sin(np.pi * k / (2 * H)) ** 2 + 4 * np.sin(np.pi * l / (2 * W)) ** 2
Z = B / torch.from_numpy(np.where(lam > 0, lam, 1.0))    # step 3: divide by lambda ...
Z[0, 0] = 0.0                                            #         ... and drop the mean
z_steps = idct2(Z).numpy()                               # step 4: inverse DCT
fig = viz.plot_image_grid({"PᵀΓ": b, "log10 |DCT(PᵀΓ)|": np.log10(B.abs().numpy() + 1e-12), "λ_kl": lam,
                           "z* = IDCT(DCT/λ)": z_steps, "true surface": z_true}, symmetric=False, size=2.6)
plt.show()

# %%
# Check: the step-by-step DCT solve equals `integrable_projection` (to 1e-10), with zero mean
z_lib = integrable_projection(gx, gy).numpy()
print(f"max |steps - dflib.integrate.integrable_projection| = {np.abs(z_steps - z_lib).max():.2e}")
print(f"RMS |z* - true| = {np.sqrt(np.mean((z_lib - z_true) ** 2)):.4f}")
assert np.allclose(z_steps, z_lib, atol=1e-10)
assert abs(z_lib.mean()) < 1e-12

# %% [markdown]
# ## Agreement with a sparse least-squares solver
#
# `scipy.sparse.linalg.lsqr` solves $\min\lVert Pz-\Gamma\rVert$ iteratively without knowing anything about
# Laplacians. It returns the minimum-norm solution (zero mean here); it must agree with the DCT solver.

# %%
# Check: the DCT solution equals scipy's LSQR least squares (to 1e-7); its residual is orthogonal to the range of P
z_lsqr = spla.lsqr(P, gamma, atol=1e-14, btol=1e-14, iter_lim=20000)[0].reshape(H, W)
z_lsqr -= z_lsqr.mean()
print(f"max |DCT - lsqr| = {np.abs(z_lib - z_lsqr).max():.2e}")
assert np.allclose(z_lib, z_lsqr, atol=1e-7)
# and it is a least-squares solution: the residual is orthogonal to the range of P
r = gamma - P @ z_lib.ravel()
assert np.abs(P.T @ r).max() < 1e-9

# %% [markdown]
# ### Speed (printed, not asserted)
#
# A dense least-squares solve costs $O((HW)^3)$; the DCT solver $O(HW\log HW)$ and runs on a whole batch of
# fields at once (DualFocus solves $B\cdot N\cdot C_2$ of them per forward pass).

# %%
# Check: the DCT projection equals the dense normal-equations solve (to 1e-8)
h2, w2 = S["timing_grid"]
P2 = difference_matrix(h2, w2).toarray()
g2 = rng.standard_normal(P2.shape[0])
t0 = time.perf_counter(); z_dense = np.linalg.lstsq(P2, g2, rcond=None)[0]; t_dense = time.perf_counter() - t0
gx2 = torch.from_numpy(g2[: h2 * (w2 - 1)].reshape(h2, w2 - 1)); gy2 = torch.from_numpy(g2[h2 * (w2 - 1):].reshape(h2 - 1, w2))
integrable_projection(gx2, gy2)  # warm-up (first-call overheads)
t0 = time.perf_counter(); z_dct = integrable_projection(gx2, gy2); t_dct = time.perf_counter() - t0
print(f"{h2}x{w2} grid: dense lstsq {1e3 * t_dense:.1f} ms, DCT {1e3 * t_dct:.2f} ms (ratio ~{t_dense / t_dct:.0f}x)")
assert np.allclose(z_dct.numpy(), (z_dense - z_dense.mean()).reshape(h2, w2), atol=1e-8)

# %% [markdown]
# ## Step edges: Neumann DCT vs a periodic FFT solver
#
# The classic Frankot–Chellappa method solves the same Poisson equation with the **FFT**, which assumes the
# surface is *periodic*: the right edge wraps onto the left. For a depth step (exactly what a foreground object
# in front of a background looks like) the periodic solver must invent a second, opposite step at the border
# and spreads it over the image; the DCT (Neumann) solver has no such constraint and recovers the step exactly
# from its own gradients. The periodic solver below is written inline, for contrast only.

# %% tags=["figure"]
# Check: the Neumann DCT solver recovers a depth step exactly; the periodic FFT solver misses it by more than 0.1
h3, w3 = S["image"]
step = np.zeros((h3, w3)); step[:, w3 // 3: 2 * w3 // 3] = 1.0; step[h3 // 2:, w3 // 2:] += 0.5
step -= step.mean()
sx, sy = forward_differences(torch.from_numpy(step))
z_neu = integrable_projection(sx, sy).numpy()


def periodic_fft_solve(gx: np.ndarray, gy: np.ndarray) -> np.ndarray:
    """Frankot–Chellappa-style: pad the forward differences to periodic fields, solve L_per z = div in Fourier."""
    h, w = gy.shape[0] + 1, gx.shape[1] + 1
    px = np.zeros((h, w)); px[:, :-1] = gx          # the wrap-around difference is taken as 0
    py = np.zeros((h, w)); py[:-1, :] = gy
    div = (px - np.roll(px, 1, axis=1)) + (py - np.roll(py, 1, axis=0))
    ky, kx = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    lam_p = 4 * np.sin(np.pi * kx / w) ** 2 + 4 * np.sin(np.pi * ky / h) ** 2
    Zf = -np.fft.fft2(div) / np.where(lam_p > 0, lam_p, 1.0); Zf[0, 0] = 0
    return np.real(np.fft.ifft2(Zf))


z_per = periodic_fft_solve(sx.numpy(), sy.numpy())
fig = viz.plot_image_grid({"true step surface": step, "DCT (Neumann)": z_neu, "periodic FFT": z_per,
                           "periodic error": z_per - step}, cmap="viridis", size=2.8)
plt.show()
print(f"max error: DCT {np.abs(z_neu - step).max():.1e}, periodic FFT {np.abs(z_per - step).max():.2f}")
assert np.abs(z_neu - step).max() < 1e-9
assert np.abs(z_per - step).max() > 0.1

# %% [markdown]
# ## Per-plane surfaces inside DualFocus
#
# DualFocus predicts $C_2$ gradient fields for each focal plane $n$ from the focal volume, projects each onto an
# integrable surface with exactly this solver (one batched call), and mixes the $C_2$ surfaces into one surface
# $\bar z_n$ per plane (`out["surface"]`, at the feature resolution, zero mean). Training supervises the
# gradient of $\bar z_n$ with the true depth gradient **only where plane $n$ is in focus**
# (weights $q_n=\mathrm{softmax}_n(-|f_n-D^*|)$, notebook 04). So a trained model's surface for plane $n$ should
# follow the scene's shape where plane $n$ is sharp.
#
# A freshly built (untrained) model's surfaces are smooth noise: its gradient head is random. Notebook 05
# trains it; if the shipped weights `weights/dualfocus_tiny.pt` are present, they are used here instead.

# %%
# Check: DualFocus's per-plane surfaces are integrable: projecting their own gradient changes nothing
scene = occluding_objects(S["image"], seed=SEED, depth_range=(0.1, 1.5))
st = render_focal_stack(scene.rgb, scene.depth, FOD500_CAMERA, FOD500_FOCUS_M, seed=SEED, device="cpu")
from dflib.models import load_pretrained, pretrained_names
if "dualfocus_tiny" in pretrained_names():
    model, label = load_pretrained("dualfocus_tiny", device="cpu"), "trained (weights/dualfocus_tiny.pt)"
else:
    torch.manual_seed(SEED)
    model, label = DualFocus(DualFocusConfig.tiny()).eval(), "untrained (random weights)"
with torch.no_grad():
    out = model(st.images[None], st.focus_m[None])
surf = out["surface"][0]                                   # [N, H', W']
print(label, "| surfaces", tuple(surf.shape), "| feature stride", model.config.feature_stride)
maps = {"image (plane 0)": st.images[0], "true depth (m)": st.depth}
maps.update({f"z̄_{n} (focus {f:.2g} m)": surf[n] for n, f in enumerate(FOD500_FOCUS_M)})
fig = viz.plot_image_grid(maps, cmap="coolwarm", ncols=4, size=2.6)
fig.suptitle(f"per-plane surfaces, {label}")
plt.show()
# the surfaces are integrable by construction: re-projecting their own gradient changes nothing
gxs, gys = forward_differences(surf.double())
assert torch.allclose(integrable_projection(gxs, gys), surf.double() - surf.double().mean(dim=(-2, -1), keepdim=True), atol=1e-5)

# %% [markdown]
# **Next:** notebook 04 walks through the rest of the model (focal differences, the 3-D decoder, the readout)
# and the three losses.
