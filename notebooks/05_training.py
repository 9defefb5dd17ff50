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
# # 5. Training the tiny model
#
# This notebook trains `DualFocus-tiny` on rendered focal stacks with the loss of notebook 04,
# $L = L_{\text{depth}} + \lambda_{sv}L_{sv} + \lambda_{fv}L_{fv}$, while a live plot redraws the loss terms
# and the validation RMSE. Then it scores the freshly trained model, an untrained one, and the **shipped**
# weights (`weights/dualfocus_tiny.pt`, trained for 2000 steps with the recipe `dflib/recipes/tiny_dualfocus.yaml` by
# `benchmarks/bench_ablation.py`) on a few
# stacks of the embedded benchmark, and explains why the quick model loses. On the way it tracks what the surface branch learns
# (the diagnostics of notebook 04) at every validation step.
#
# The `quick` profile trains for a few dozen steps on 64×64 crops (under a minute on a laptop CPU): enough
# to see the loss fall, not to learn depth. The `full` profile is the recorded 2000-step configuration.

# %% tags=["parameters"]
PROFILE = "quick"  # "quick" (CI: ~40 steps, 64x64) or "full" (the recorded 2000-step run, about 12 minutes on 2 CPU cores)
SEED = 0

# %%
from dflib.report import check_namespace

check_namespace(globals(), known={"PROFILE", "SEED"})
S = {
    # quick: a short demo; full: the recipe tiny_dualfocus as it is (its seed 0 is what the shipped weights are)
    "quick": dict(train=dict(size=(64, 64), steps=40, train_scenes=8, val_scenes=2, batch_size=4, warmup_steps=5,
                             log_every=5, val_every=10, ckpt_every=40, sv_ramp_steps=0), eval_stacks=4),
    "full": dict(train=dict(), eval_stacks=24),
}[PROFILE]
S

# %%
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch
from IPython.display import Markdown, clear_output, display

from dflib import viz
from dflib.checkpoint import build_model, save_checkpoint
from dflib.data import CachedDataset
from dflib.evaluate import embedded_benchmark, evaluate, learned_method, sff_method
from dflib.models import pretrained_names
from dflib.train import TrainConfig, lambda_sv_at, train

scratch = tempfile.TemporaryDirectory(prefix="dflib_nb05_")  # a throwaway folder for the runs, removed at kernel exit
work = Path(scratch.name)
# the recipe of the shipped weights (dflib/recipes/tiny_dualfocus.yaml), shortened in the quick profile
cfg = TrainConfig.recipe("tiny_dualfocus", seed=SEED, device="cpu", out_dir=str(work / "tiny"), **S["train"])
cfg

# %% [markdown]
# ## Train with a live loss plot
#
# `dflib.train.train` calls `on_log` with every logged row (the loss terms, the learning rate and, every
# `val_every` steps, the validation metrics). The callback below redraws `viz.plot_training_curves`
# in place. Validation uses a seeded split no training stack comes from.

# %%
history = []


def live_plot(row):
    history.append(row)
    clear_output(wait=True)
    fig = viz.plot_training_curves(history)
    display(fig)
    plt.close(fig)


result = train(cfg, progress=False, on_log=live_plot)
print(f"trained {result.step} steps; final validation RMSE {result.val_metrics.get('rmse', float('nan')):.3f} m")

# %%
# Check: training ran every step, the loss fell, and the logged total is depth + λ_sv·sv + λ_fv·fv
first, last = history[0], history[-1]
print(f"total loss: step {first['step']}: {first['total']:.4f} -> step {last['step']}: {last['total']:.4f}")
assert result.step == cfg.steps and (work / "tiny" / "last.pt").is_file()
assert all(np.isfinite(r["total"]) for r in history)
# the loss went down: the mean of the last two logged rows is below the first row
assert np.mean([r["total"] for r in history[-2:]]) < first["total"]
# the logged total is exactly the weighted sum of its terms
lam_sv = lambda_sv_at(cfg, last["step"] - 1)  # λ_sv of the last step (the recipe may ramp it up)
assert abs(last["total"] - (last["depth"] + lam_sv * last["sv"] + cfg.lambda_fv * last["fv"])) < 1e-4 * max(1.0, last["total"])

# %% [markdown]
# ## What the surface branch learned, step by step
#
# At every validation step the trainer also logs the surface diagnostics of notebook 04 on the validation
# stacks (`diag_*` columns of `log.csv`): the surface-gradient error in focus and out of focus against the error
# of a zero prediction, the in-focus correlation with the target, and the share of the encoder's gradient that
# comes from $L_{sv}$. In the quick profile there are only a few points and the branch has not learned yet;
# in the full run, the in-focus error falling below the zero line (and below the out-of-focus error) is the sign
# that the surfaces carry geometry.

# %%
# Check: every validation row carries finite surface diagnostics, correlation in [−1, 1]
diag_rows = [r for r in history if "diag_err_zero" in r]
fig = viz.plot_surface_training(history)
plt.show()
# a validation row carries the diagnostics of a model with a surface branch, all finite where defined
assert diag_rows and all(np.isfinite(r["diag_err_zero"]) and np.isfinite(r["diag_err_in_focus"]) for r in diag_rows)
assert all(-1 <= r["diag_corr_in_focus"] <= 1 for r in diag_rows if np.isfinite(r["diag_corr_in_focus"]))

# %% [markdown]
# ## Against the shipped weights
#
# Four contestants on the embedded benchmark (seeded noisy 256×256 test stacks, FoD500 camera and planes,
# `fod500` protocol): the model just trained, the same architecture **untrained** (its depth is a blur of the
# five plane distances), the shipped 2000-step model, and classical shape from focus (Laplacian variance)
# as a reference that needs no training.

# %%
untrained_ckpt = work / "untrained.pt"
save_checkpoint(untrained_ckpt, build_model("tiny", SEED), cfg, step=0)
methods = [learned_method(work / "tiny" / "last.pt", name=f"this run ({cfg.steps} steps)", device="cpu"),
           learned_method(untrained_ckpt, name="untrained", device="cpu")]
shipped = "dualfocus_tiny" in pretrained_names()
if shipped:
    methods.append(learned_method("dualfocus_tiny", name="shipped (2000 steps)", device="cpu"))
else:
    display(Markdown(f"**The shipped weights `dualfocus_tiny.pt` are not there** (run "
                     "`python benchmarks/bench_ablation.py --export weights` to make them); "
                     "comparing the quick run with the untrained model only."))
methods.append(sff_method("lapv"))
test = CachedDataset(embedded_benchmark(S["eval_stacks"]), progress=False)
table = evaluate(methods, {"embedded": (test, "fod500")}, progress=False)
display(Markdown(table.to_markdown()))

# %%
# Check: the shipped weights beat the untrained model and this quick run (when they are there)
rmse = {r["method"]: r["rmse"] for r in table.rows}
assert all(np.isfinite(v) for v in rmse.values())
if shipped:
    # the shipped model learned depth: it beats the untrained architecture and the quick run
    assert rmse["shipped (2000 steps)"] < rmse["untrained"]
    assert rmse["shipped (2000 steps)"] < rmse[f"this run ({cfg.steps} steps)"]
rmse

# %% [markdown]
# Depth and |error| maps of one test stack (one colour scale for all depth maps):

# %% tags=["figure"]
sample = test[0]
maps = {m.name: m.predict(sample["stack"], sample["focus"])[0] for m in methods}
fig = viz.plot_depth_maps(maps, gt=sample["depth"][0], vmin=0.1, vmax=1.5)
plt.show()

# %% [markdown]
# ## Why the quick model is worse
#
# * **Budget.** A few dozen optimiser steps on eight 64×64 scenes is a few hundred focal images; the shipped
#   model saw 2000 steps × 4 stacks of 128×128 crops from 512 scenes. The quick run has barely left the
#   warm-up: its depth is still close to a smooth blend of the plane distances.
# * **Scale.** The quick model trained on 64×64 crops and is tested at 256×256: the sharpness cues are the same,
#   but the context the 3-D decoder learned to use is not.
# * **Generalisation.** Eight scenes can be memorised; the validation RMSE in the live plot (a seeded split no
#   training stack comes from) shows how little of that transfers.
#
# Run this notebook with `PROFILE="full"` (papermill: `-p PROFILE full`) to reproduce the shipped model;
# on a GPU it takes minutes, on a laptop CPU a few hours. `dflib train --config run.json` does the same from
# the command line, with exact resume.

# %%
scratch.cleanup()  # remove this notebook's throwaway folder (also removed at kernel exit if a run stops early)
