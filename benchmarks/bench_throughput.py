"""Training throughput: optimiser steps per second at the README's recipe, and the projection's share.

For each recipe (``tiny_dualfocus``, ``tiny_dfv``, and the generalisation preset's two shipped recipes
``mid_dualfocus_blindenc`` and ``mid_dfv``) one training step is what ``dflib.train.train``
does per batch: forward, the recipe's loss (:func:`dflib.train.build_loss`),
backward, gradient clipping at ``max_grad_norm``, an AdamW step. The batch is
the recipe's (4 stacks of 5 planes, 128 x 128 crops), rendered once by
:class:`dflib.data.SyntheticFocalStackDataset` and reused, so data loading
is not timed. All recipes are timed in one process, interleaved round by
round, so a machine that gets busier affects them alike; the medians over the
rounds are reported.

Each timed step is split into forward, loss, and backward + clipping +
optimiser step. The projection's share of a DualFocus step: the gradient
field Γ one forward pass hands to ``integrable_projection_full`` is captured,
and its projection forward + backward (PᵀΓ included) is timed on its own
once per round, right after the step; the share is its median over the
step's median.

Each recipe's arithmetic is counted once (``"gflop_per_step"``): one step under
``torch.utils.flop_counter.FlopCounterMode`` (a multiply-add counts as two), with the 3-D convolutions
routed through ``F.conv3d`` for the count, since the counter has no formula for oneDNN's
``mkldnn_convolution`` that :func:`dflib.models.blocks.conv3d` calls on CPU. From it,
``"arithmetic"`` gives the DualFocus-tiny / DFV-tiny ratio of operations, the rate (operations per second)
at which DualFocus's extra work ran against the DFV step's own, and the rate that extra work would need for
the 1.2 target.

Target: a DualFocus-tiny step costs at most 1.2x a DFV-tiny step. Besides the
ratio of the medians, the JSON gives the median of the per-round ratios (the
two steps of a round run back to back) with its distribution-free 95 %
interval (binomial order statistics, ``scipy.stats.quantile_test``): on a
noisy machine the interval says whether a run resolves the target.

On CPU it also measures what :mod:`dflib.models.blocks`' CPU paths buy (``"cpu_paths"``): one
gradient-head convolution at the shape of predicting a 5 x 480 x 640 stack with DualFocus-tiny through
PyTorch's own dispatch (``F.conv3d``, which sends it to the reference ``slow_conv3d``) and through
``blocks.conv3d`` (oneDNN), and every recipe's step with the channels-last layout switched off,
interleaved with the normal step.

Usage::

    python benchmarks/bench_throughput.py [--quick] [--device cpu|cuda] [--threads N] [--out benchmarks/results/throughput.json]
    python benchmarks/bench_throughput.py --threads 1 --out benchmarks/results/throughput_1thread.json  # as the ladders train

Timings on a shared machine are provisional: compare only within one run.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import statistics
import sys
import time
from pathlib import Path

import scipy.stats
import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

import dflib.models.blocks as blocks
import dflib.models.dualfocus as dualfocus_module
from dflib.train import TrainConfig, build_loss, build_model
from dflib.utils import benchmark_output, cpu_model, default_device

RECIPES = ("tiny_dualfocus", "tiny_dfv", "mid_dualfocus_blindenc", "mid_dfv")
RESULTS = Path(__file__).resolve().parent / "results" / "throughput.json"


def _batch(cfg: TrainConfig, device: torch.device) -> dict[str, torch.Tensor]:
    """One training batch of the recipe's shape, rendered by the synthetic dataset."""
    from torch.utils.data import default_collate

    from dflib.data import SyntheticFocalStackDataset

    ds = SyntheticFocalStackDataset(cfg.batch_size, size=cfg.size, n_planes=cfg.n_planes, seed=cfg.seed)
    return {k: v.to(device) for k, v in default_collate([ds[i] for i in range(len(ds))]).items()}


class _Step:
    """One recipe's model, loss, optimiser and batch (:func:`_timed_phases` runs a step)."""

    def __init__(self, recipe: str, device: torch.device) -> None:
        self.cfg = TrainConfig.recipe(recipe, device=str(device))
        self.model = build_model(self.cfg.model, self.cfg.seed, self.cfg.model_overrides).to(device).train()
        self.loss = build_loss(self.cfg, self.model)
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=self.cfg.lr,
                                           weight_decay=self.cfg.weight_decay)
        self.batch = _batch(self.cfg, device)
        self.device = device



def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed_phases(step: _Step) -> dict[str, float]:
    """Seconds of one step's phases: forward, loss, backward + clip + optimiser step."""
    b, t = step.batch, [time.perf_counter()]
    step.optimizer.zero_grad(set_to_none=True)
    out = step.model(b["stack"], b["focus"])
    _sync(step.device)
    t.append(time.perf_counter())
    terms = step.loss(out, b["depth"], b["focus"], b["mask"], lambda_sv=step.cfg.lambda_sv)
    _sync(step.device)
    t.append(time.perf_counter())
    terms["total"].backward()
    torch.nn.utils.clip_grad_norm_(step.model.parameters(), step.cfg.max_grad_norm)
    step.optimizer.step()
    _sync(step.device)
    t.append(time.perf_counter())
    return {"forward_s": t[1] - t[0], "loss_s": t[2] - t[1], "backward_update_s": t[3] - t[2],
            "step_s": t[3] - t[0]}


def _projection_input(step: _Step) -> tuple[torch.Tensor, float | None] | None:
    """The gradient field Γ ``[B, N, C2, 2, H', W']`` and backward gain one forward pass projects (None without a surface branch)."""
    seen = []
    original = dualfocus_module.integrable_projection_full

    def spy(g, gain=None):
        seen.append((g.detach().clone(), gain))
        return original(g, gain)

    dualfocus_module.integrable_projection_full = spy
    try:
        with torch.no_grad():
            step.model(step.batch["stack"], step.batch["focus"])
    finally:
        dualfocus_module.integrable_projection_full = original
    return seen[0] if seen else None


def _projection_time(gamma: torch.Tensor, gain: float | None) -> float:
    """Seconds of one projection forward + backward (``autograd.grad``) of Γ, as in a training step."""
    g = gamma.clone().requires_grad_()
    t0 = time.perf_counter()
    z = dualfocus_module.integrable_projection_full(g, gain)
    torch.autograd.grad(z, g, torch.ones_like(z))
    _sync(g.device)
    return time.perf_counter() - t0


@contextlib.contextmanager
def _default_layout():
    """Switch off the channels-last layout of the 3-D parts (``channels_last_on_cpu`` becomes the identity)."""
    saved = blocks.channels_last_on_cpu, dualfocus_module.channels_last_on_cpu
    blocks.channels_last_on_cpu = dualfocus_module.channels_last_on_cpu = lambda x: x
    try:
        yield
    finally:
        blocks.channels_last_on_cpu, dualfocus_module.channels_last_on_cpu = saved


@contextlib.contextmanager
def _countable_convolutions():
    """Run :func:`blocks.conv3d` as ``F.conv3d``, whose operations ``FlopCounterMode`` counts (same values to rounding)."""
    saved = blocks.conv3d
    blocks.conv3d = lambda x, w, b, stride, padding: F.conv3d(x, w, b, stride=stride, padding=padding)
    try:
        yield
    finally:
        blocks.conv3d = saved


def _step_gflop(step: _Step) -> dict[str, float]:
    """Operations of one training step in GFLOP (a multiply-add counts as two), in all and by aten op."""
    with _countable_convolutions(), FlopCounterMode(display=False) as counter:
        _timed_phases(step)
    by_op = {str(op): n / 1e9 for op, n in counter.get_flop_counts().get("Global", {}).items()}
    return {"total": counter.get_total_flops() / 1e9, "by_op": by_op}


def _arithmetic(dualfocus: dict, dfv: dict, target: float) -> dict[str, float]:
    """DualFocus-tiny against DFV-tiny in operations: the ratio, and the rate of the extra work.

    With F the operations and T the median time of a step, the extra work F_df - F_dv ran at
    (F_df - F_dv) / (T_df - T_dv) operations per second, against F_dv / T_dv for the DFV step as a whole;
    a step ratio of ``target`` needs the extra work to run at (F_df / F_dv - 1) / (target - 1) of that.
    """
    f_df, f_dv = dualfocus["gflop_per_step"]["total"], dfv["gflop_per_step"]["total"]
    t_df, t_dv = dualfocus["median_step_s"], dfv["median_step_s"]
    dfv_rate = f_dv / t_dv
    return {"gflop_ratio": f_df / f_dv, "extra_gflop": f_df - f_dv,
            "extra_rate_over_dfv_rate": (f_df - f_dv) / (t_df - t_dv) / dfv_rate if t_df > t_dv else math.inf,
            "extra_rate_over_dfv_rate_for_target": (f_df / f_dv - 1) / (target - 1)}


def _median_ms(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1e3 * statistics.median(times)


def _cpu_paths(steps: dict[str, _Step], rounds: int) -> dict:
    """The CPU paths of :mod:`dflib.models.blocks` against PyTorch's defaults (see the module docstring)."""
    g = torch.Generator().manual_seed(0)
    x, w = torch.randn(1, 32, 5, 120, 160, generator=g), torch.randn(16, 32, 3, 3, 3, generator=g)
    with torch.no_grad():
        conv = {"shape": [list(x.shape), list(w.shape)],
                "torch_dispatch_ms": _median_ms(lambda: F.conv3d(x, w, padding=1), 3),
                "dflib_conv3d_ms": _median_ms(lambda: blocks.conv3d(x, w, None, (1, 1, 1), (1, 1, 1)), 3)}
    times: dict[str, dict[str, list[float]]] = {r: {"channels_last": [], "default_layout": []} for r in steps}
    for _ in range(rounds):
        for r, s in steps.items():
            times[r]["channels_last"].append(_timed_phases(s)["step_s"])
            with _default_layout():
                times[r]["default_layout"].append(_timed_phases(s)["step_s"])
    layout = {r: {k: statistics.median(v) for k, v in t.items()} for r, t in times.items()}
    for d in layout.values():
        d["default_over_channels_last"] = d["default_layout"] / d["channels_last"]
    return {"head_conv_at_predict_shape": conv, "step_s_by_layout": layout}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds")
    parser.add_argument("--rounds", type=int, default=None, help="timed steps per recipe (default 12, quick 3)")
    parser.add_argument("--device", default="auto", help="cpu, cuda or auto (default)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads (default: torch's own, all cores); the ladders train on 1 each")
    parser.add_argument("--out", type=Path, default=None,
                        help="default benchmarks/results/throughput.json (throughput_quick.json with --quick)")
    args = parser.parse_args(argv)
    args.out = args.out or benchmark_output(RESULTS, args.quick)
    rounds = args.rounds or (3 if args.quick else 12)
    if rounds < 1:
        parser.error(f"--rounds must be >= 1, got {rounds}")
    if args.threads is not None:
        if args.threads < 1:
            parser.error(f"--threads must be >= 1, got {args.threads}")
        torch.set_num_threads(args.threads)
    device = default_device(args.device)

    steps = {r: _Step(r, device) for r in RECIPES}
    for s in steps.values():  # warm-up: allocator, first-call set-up
        _timed_phases(s)
    gflop = {r: _step_gflop(s) for r, s in steps.items()}
    gammas = {r: _projection_input(s) for r, s in steps.items()}
    times: dict[str, list[dict[str, float]]] = {r: [] for r in RECIPES}
    for _ in range(rounds):
        for r, s in steps.items():
            times[r].append(_timed_phases(s))
            if gammas[r] is not None:
                times[r][-1]["projection_s"] = _projection_time(*gammas[r])
    per_recipe = {}
    for r, s in steps.items():
        med = {k: statistics.median(t[k] for t in times[r]) for k in times[r][0]}
        per_recipe[r] = {
            "model": s.cfg.model, "batch": [s.cfg.batch_size, s.cfg.n_planes, 3, *s.cfg.size],
            "parameters": sum(p.numel() for p in s.model.parameters()), "gflop_per_step": gflop[r],
            "steps_per_s": 1.0 / med["step_s"], **{f"median_{k}": v for k, v in med.items()},
            "step_s_all": [t["step_s"] for t in times[r]],
        }
        if gammas[r] is not None:
            per_recipe[r]["projection_shape"] = list(gammas[r][0].shape)
            per_recipe[r]["projection_share"] = med["projection_s"] / med["step_s"]
    cpu_paths = _cpu_paths(steps, rounds) if device.type == "cpu" else None
    target = 1.2
    ratio = per_recipe["tiny_dualfocus"]["median_step_s"] / per_recipe["tiny_dfv"]["median_step_s"]
    # the two steps of one round ran back to back: their ratio cancels what the machine did meanwhile
    per_round = [a["step_s"] / b["step_s"] for a, b in zip(times["tiny_dualfocus"], times["tiny_dfv"])]
    ci = scipy.stats.quantile_test(per_round, q=statistics.median(per_round), p=0.5).confidence_interval(0.95)
    result = {
        "benchmark": "throughput",
        "torch": torch.__version__, "threads": torch.get_num_threads(), "device": str(device),
        "cuda_device": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
        "cpu": cpu_model(), "command": " ".join(["python", *sys.argv]), "quick": args.quick,
        "rounds": rounds, "recipes": per_recipe, "cpu_paths": cpu_paths,
        "dualfocus_tiny_over_dfv_tiny": ratio,
        "dualfocus_tiny_over_dfv_tiny_per_round": {
            "median": statistics.median(per_round), "rounds": per_round,
            # None when there are too few rounds for a 95 % interval (fewer than 6)
            "ci95": [float(ci.low), float(ci.high)] if math.isfinite(ci.low) and math.isfinite(ci.high) else None},
        "arithmetic": _arithmetic(per_recipe["tiny_dualfocus"], per_recipe["tiny_dfv"], target),
        "targets": {"dualfocus_tiny_over_dfv_tiny_max": target},
        "note": "provisional if the machine was shared while measuring",
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items()
                      if k not in ("recipes", "cpu_paths", "dualfocus_tiny_over_dfv_tiny_per_round")}, indent=2))
    pr = result["dualfocus_tiny_over_dfv_tiny_per_round"]
    interval = (f"[{pr['ci95'][0]:.3f}, {pr['ci95'][1]:.3f}] (95 %, {rounds} rounds)" if pr["ci95"]
                else f"({rounds} rounds: too few for an interval)")
    print(f"DualFocus-tiny / DFV-tiny step, per round: {pr['median']:.3f} {interval}")
    a = result["arithmetic"]
    print(f"DualFocus-tiny / DFV-tiny operations: {a['gflop_ratio']:.3f} ({a['extra_gflop']:.2f} GFLOP more a step); "
          f"the extra ran at {a['extra_rate_over_dfv_rate']:.2f}x the DFV step's GFLOP/s, "
          f"{target} needs {a['extra_rate_over_dfv_rate_for_target']:.2f}x")
    if cpu_paths:
        c = cpu_paths["head_conv_at_predict_shape"]
        print(f"head conv {c['shape'][0]}: PyTorch's dispatch {c['torch_dispatch_ms']:.1f} ms, "
              f"dflib conv3d {c['dflib_conv3d_ms']:.1f} ms")
        for r, d in cpu_paths["step_s_by_layout"].items():
            print(f"{r:16s} step in the default layout / channels-last: {d['default_over_channels_last']:.3f}")
    for r, d in per_recipe.items():
        share = d.get("projection_share")
        print(f"{r:16s} {d['steps_per_s']:6.2f} steps/s  step {d['median_step_s'] * 1e3:7.1f} ms"
              f" {d['gflop_per_step']['total']:5.1f} GFLOP"
              f" (forward {d['median_forward_s'] * 1e3:.0f}, loss {d['median_loss_s'] * 1e3:.0f},"
              f" backward+update {d['median_backward_update_s'] * 1e3:.0f})"
              + (f"  projection {100 * share:4.1f}% of a step" if share is not None else ""))
    return result


if __name__ == "__main__":
    main()
