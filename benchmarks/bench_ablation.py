"""Does each part of DualFocus help? The ablation ladder, with seed-paired confidence intervals.

Two studies, each a set of training recipes (``dflib/recipes/*.yaml``) trained
for several seeds (one ``dflib train`` process per run, ``--jobs`` at a time,
one thread each):

``--study ladder`` (default) trains the variants

- ``dfv``: DFV-style baseline, no constraints (``tiny_dfv``, or ``mid_dfv`` with ``--size mid``);
- ``dfv+fv``: the same with the focal constraint L_fv (``tiny_dfv_fv``);
- ``dualfocus_nosv``: the DualFocus network, surface branch present, λ_sv = 0;
- ``dualfocus``: dflib's DualFocus recipe (``tiny_dualfocus``);
- ``dualfocus_nofv``: the same without L_fv (λ_fv = 0), so that with ``dfv`` and
  ``dfv+fv`` the two constraints form a 2 x 2 design;
- ``dualfocus_paper``: the paper-literal spatial constraint (``tiny_dualfocus_paper``);
- ``dualfocus_sdrop``: ``dualfocus`` with surface dropout in training (``DualFocusConfig.surface_dropout`` 0.5);
- ``dualfocus_blind``: ``dualfocus`` whose decoder gets zeros in place of the surfaces, in training and at test time
  (``DualFocusConfig.surface_to_decoder`` False): DualFocus's network, branch trained, no surface information;
- ``dualfocus_binit``: ``dualfocus`` that starts as the baseline of its seed (``DualFocusConfig.baseline_init``:
  the encoder and decoder draw the baseline's initial weights, the decoder's surface inputs start at zero);
- ``dualfocus_twopath``: ``dualfocus`` whose training also supervises the depth read with zeros in place of the
  surfaces (``DualFocusConfig.surface_two_path``); test time unchanged;
- ``dualfocus_blindenc``: ``dualfocus_twopath`` whose shared encoder learns from the blind path alone
  (``DualFocusConfig.blind_encoder``): the encoder gets the blind rung's losses, the decoder still reads the surfaces;

and scores every checkpoint on the embedded **test** split (``--test-size``
seeded, noisy 256² stacks, Middlebury crops among them, ``fod500`` protocol):
RMSE, Bump and the other DDFF-12 metrics, RMSE per region (depth edges vs
smooth, textured vs textureless: :func:`dflib.metrics.region_masks`), and the
surface diagnostics (:mod:`dflib.diagnostics`). Differences between variants
are paired by seed (same seed = same initial encoder draw and data order), with
a 95 % Student-t interval over seeds. It writes ``benchmarks/results/ablation.json``
(``ablation_mid.json`` with ``--size mid``)::

    {"test_stacks": int, "stack_means": [...], "steps": int, "cpu": str, "command": str,
     "variants": {name: {"recipe": str, "seeds": [...], "rmse": [...], "bump": [...], ...}},
     "paired": {"dualfocus-dfv": {"mean": float, "ci95": [lo, hi], "metric": "rmse"}, ...}}

Runs trained on the diverse data (the mid ladder) are also scored, in the same
layout under ``"in_distribution"`` and ``"held_out"``, on as many stacks of the
diverse test split (their own distribution) and of the held-out split
(:mod:`dflib.generalisation`: scene families, photographs and cameras never
trained on).

``--stage2`` (``--size mid``) also trains each seed's stage 2, as the shipped
mid weights were trained: ``finetune_<stage-1 recipe>`` (2000 steps on a mix
that adds the embedded data's camera and scenes) from that seed's stage-1
run, and scores the stage-2 models instead, written to
``ablation_mid_stage2.{json,md}``. It measures over seeds what the shipped
pair (one seed) shows.

``--graft`` (``--variants dfv+fv``) continues each seed's trained ``dfv+fv`` run for a stage-2-sized
budget in two arms that see the same batches: as it is (``dfv+fv_cont``, ``graft_<size>_dfv_fv``) and with a
DualFocus surface branch grafted on (``dualfocus_graft``, ``graft_<size>_dualfocus``;
:mod:`dflib.models.graft`: the decoder's surface inputs start at zero, so the arm starts as the baseline).
It asks whether the branch adds anything on top of a trained V* pathway; written to
``ablation_<size>_graft.{json,md}``.

``--probe`` asks where a rung's cost sits: each seed's run of every ``--variants`` rung lends its 2-D feature
encoder, frozen, to a fresh DFV + L_fv network of the seed (recipe ``<size>_dfv_fv`` with
``TrainConfig.probe_encoder``; :func:`dflib.models.graft.freeze_encoder_from`), whose decoder then trains alone,
into ``RUNS/probe``. At a seed every probe's decoder starts from the same draw and sees the same batches, so
``X_probe − dfv+fv_probe`` compares how well depth can be read from the two runs' V* by a reader that never saw
surfaces. Only the probes are scored (give the rungs themselves with ``--recorded``); written to
``ablation_<size>_probe.{json,md}`` (``ablation_probe`` for tiny).

``--study levers`` is the lever study of issue 12: DualFocus variants that
each change one thing about the surface branch, scored on the **validation**
split only (``VAL_SEED``; the test split is never used to choose), written to
``benchmarks/results/levers.json`` in the same layout.

    python benchmarks/bench_ablation.py                          # ladder, 5 seeds, 96 test stacks
    python benchmarks/bench_ablation.py --size mid --seeds 0 1 2  # the ~1.7 M ladder, 10 k steps (a night)
    python benchmarks/bench_ablation.py --size mid --variants dfv dualfocus --seeds 0 1 2 --stage2
    python benchmarks/bench_ablation.py ... --stage2 --split-seed 900012 --test-size 144 --stem ablation_mid_stage2_fresh
    python benchmarks/bench_ablation.py --size mid --variants dfv+fv --seeds 0 1 2 --graft
    python benchmarks/bench_ablation.py --variants dfv+fv dualfocus --probe --recorded benchmarks/results/ablation_twopath.json
    python benchmarks/bench_ablation.py --study levers --steps 1000 --seeds 0 1
    python benchmarks/bench_ablation.py --size mid --variants dualfocus_sdrop --seeds 0 1 2 \
        --recorded benchmarks/results/ablation_mid_fv.json --stem ablation_mid_sdrop
    python benchmarks/bench_ablation.py --quick                  # a smoke run (minutes)

``--recorded FILE`` adds a new rung to a recorded ladder without retraining the others: the rungs of FILE
that this invocation does not train are read from it, split by split, and paired with the new one by seed.
Every split must be the one FILE was scored on (same description and number of stacks), or the script stops.
Pairing by seed keeps its meaning (same initial draw and data order), but a recorded run trained at an earlier
revision of dflib differs from a retrained one by floating-point rounding amplified over training, so the
intervals are wider than those of a ladder trained in one go; the JSON names which rungs were recorded.
It also adds seeds: a rung trained here for seeds FILE does not have joins FILE's seeds of it
(``"recorded_seeds"`` in the JSON), e.g. ``--variants dfv --seeds 3 4 --recorded FILE`` for five seeds.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dflib.evaluate import METRIC_KEYS, ResultsTable, summarise_seeds  # noqa: E402
from dflib.ladders import paired_ci  # noqa: E402
from dflib.utils import cpu_model  # noqa: E402
from dflib.checkpoint import export_weights  # noqa: E402
from dflib.train import TrainConfig, read_log, write_log  # noqa: E402

#: ladder variant -> recipe file stem, per model size (``--size``)
LADDER = {
    size: {"dfv": f"{size}_dfv", "dfv+fv": f"{size}_dfv_fv", "dualfocus_nosv": f"{size}_dualfocus_nosv",
           "dualfocus": f"{size}_dualfocus", "dualfocus_nofv": f"{size}_dualfocus_nofv",
           "dualfocus_paper": f"{size}_dualfocus_paper", "dualfocus_sdrop": f"{size}_dualfocus_sdrop",
           "dualfocus_blind": f"{size}_dualfocus_blind", "dualfocus_binit": f"{size}_dualfocus_binit",
           "dualfocus_twopath": f"{size}_dualfocus_twopath", "dualfocus_blindenc": f"{size}_dualfocus_blindenc"}
    for size in ("tiny", "mid")
}
#: the rungs trained without --variants (the recorded ladders); the others are opt-in
DEFAULT_RUNGS = ("dfv", "dfv+fv", "dualfocus_nosv", "dualfocus", "dualfocus_paper")
#: pairs reported as "a-b" (RMSE and Bump of a minus b, per seed)
PAIRS = [("dualfocus", "dfv"), ("dualfocus", "dfv+fv"), ("dualfocus", "dualfocus_nosv"),
         ("dfv+fv", "dfv"), ("dualfocus_nosv", "dfv+fv"), ("dualfocus_paper", "dfv+fv"),
         ("dualfocus", "dualfocus_paper"), ("dualfocus_nofv", "dfv"), ("dualfocus", "dualfocus_nofv"),
         ("dualfocus_sdrop", "dualfocus"), ("dualfocus_sdrop", "dfv+fv"),
         ("dualfocus_blind", "dfv+fv"), ("dualfocus", "dualfocus_blind"),
         ("dualfocus_binit", "dualfocus"), ("dualfocus_binit", "dfv+fv"),
         ("dualfocus_twopath", "dualfocus"), ("dualfocus_twopath", "dfv+fv"),
         ("dualfocus_blindenc", "dualfocus"), ("dualfocus_blindenc", "dfv+fv"), ("dualfocus_blindenc", "dualfocus_twopath"),
         ("dualfocus_blindenc", "dfv")]
#: ``--graft``: the two arms that continue each seed's trained dfv+fv run -> their recipe's stem after graft_<size>_
GRAFT = {"dfv+fv_cont": "dfv_fv", "dualfocus_graft": "dualfocus"}
PAIRS += [("dualfocus_graft", "dfv+fv_cont"), ("dfv+fv_cont", "dfv+fv"), ("dualfocus_graft", "dfv+fv")]
#: ``--probe``: every rung's frozen encoder read by a fresh dfv+fv decoder (rung ``<variant>_probe``)
PAIRS += ([(f"{v}_probe", "dfv+fv_probe") for v in LADDER["tiny"] if v != "dfv+fv"]
          + [("dualfocus_twopath_probe", "dualfocus_probe")] + [(f"{v}_probe", v) for v in LADDER["tiny"]])
#: the 2 x 2 design of the mid ladder: (with L_fv, with the surface branch) -> rung
DESIGN_2X2 = {(False, False): "dfv", (True, False): "dfv+fv", (False, True): "dualfocus_nofv", (True, True): "dualfocus"}

#: the lever study: every variant is the paper-literal recipe with some fields changed
_PLANES = {"sv_penalty": "huber", "lambda_sv": 0.3}
LEVERS: dict[str, tuple[str, dict]] = {
    "nosv": ("tiny_dualfocus_paper", {"lambda_sv": 0.0}),
    "dfv+fv": ("tiny_dfv_fv", {}),
    "planes": ("tiny_dualfocus_paper", {**_PLANES, "model_overrides": {"surface_units": "planes"}}),
    "planes+isolated": ("tiny_dualfocus_paper", {**_PLANES, "model_overrides": {
        "surface_units": "planes", "head_isolation": True}}),
    "planes+isolated+context": ("tiny_dualfocus_paper", {**_PLANES, "model_overrides": {
        "surface_units": "planes", "head_isolation": True, "head_context": True}}),
    "planes+isolated+norm": ("tiny_dualfocus_paper", {**_PLANES, "model_overrides": {
        "surface_units": "planes", "head_isolation": True, "surface_norm": True}}),
    "planes+bounded+ramp": ("tiny_dualfocus_paper", {**_PLANES, "sv_ramp_steps": 500, "model_overrides": {
        "surface_units": "planes", "surface_norm": True, "surface_backward_gain": 2.0}}),
    "planes+slowbranch": ("tiny_dualfocus_paper", {**_PLANES, "branch_lr_scale": 0.3, "sv_ramp_steps": 500,
                                                   "model_overrides": {"surface_units": "planes", "surface_norm": True}}),
}
PAIRS_LEVERS = [(k, "nosv") for k in LEVERS if k not in ("nosv",)] + [("nosv", "dfv+fv")]


#: the ladder's seed-0 checkpoints that ``--export`` ships (weights only)
EXPORT_NAMES = {"dualfocus": "dualfocus_{size}.pt", "dfv": "dfv_{size}.pt"}
#: classical shape-from-focus measures scored beside the ladder (the best is reported)
MEASURES = ("sml", "tenengrad", "lapv", "lapd", "glvar")


def run_training(cfg: TrainConfig, log: Path) -> float:
    """Train one config in its own process (one thread); returns the seconds of this call (a run resumed
    over several sessions reports only its last part, the figure recorded as ``train_seconds``).

    A finished run of the identical config (same ``config.json``) is reused;
    an unfinished one continues from its last checkpoint (``--resume``)."""
    out = Path(cfg.out_dir)
    done = out / "train_seconds.txt"
    cfg_path = out / "config.json"
    if cfg_path.is_file() and TrainConfig.load(cfg_path) == cfg:
        if done.is_file():
            return float(done.read_text())
        resume = ["--resume"]
    else:
        resume = []
    cfg.save(cfg_path)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    t0 = time.perf_counter()
    with log.open("a" if resume else "w") as f:
        subprocess.run([sys.executable, "-m", "dflib.cli", "train", "--config", str(cfg_path), *resume],
                       cwd=ROOT, env=env, stdout=f, stderr=subprocess.STDOUT, check=True)
    seconds = time.perf_counter() - t0
    done.write_text(f"{seconds:.1f}")
    return seconds


def score(checkpoint: Path, dataset, protocol: str, diag_items: int) -> dict:
    """Metrics, per-region RMSE, RMSE per focus span (``rmse_span``: :func:`dflib.generalisation.span_rmse`,
    comparable across cameras), surface diagnostics and :func:`dflib.diagnostics.surface_input_weight` of one
    checkpoint on one dataset."""
    import torch

    from dflib.diagnostics import dataset_diagnostics, surface_input_weight
    from dflib.generalisation import span_rmse
    from dflib.metrics import REGION_NAMES, depth_metrics, region_masks, region_rmse
    from dflib.train import build_loss, load_model

    model = load_model(checkpoint, "cpu")
    cfg = TrainConfig.from_dict(torch.load(checkpoint, map_location="cpu", weights_only=True)["train_config"])
    preds, gts, sigmas, regions = [], [], [], {k: [] for k in REGION_NAMES}
    with torch.no_grad():
        for i in range(len(dataset)):
            s = dataset[i]
            out = model(s["stack"][None], s["focus"][None])
            p = out["depth"][0, 0].numpy().astype(np.float64)
            g = (s["depth"][0] * s["mask"][0]).numpy().astype(np.float64)
            preds.append(p), gts.append(g), sigmas.append(out["sigma"][0, 0].numpy())
            masks = region_masks(g, s["aif"].numpy(), s["focus"].numpy())
            for k in REGION_NAMES:
                regions[k].append(region_rmse(p, g, masks[k], protocol))
    m = depth_metrics(np.stack(preds), np.stack(gts), protocol=protocol, sigma=np.stack(sigmas))
    per_stack = [depth_metrics(p, g, protocol=protocol)["rmse"] for p, g in zip(preds, gts)]
    row = {"params": model.num_parameters(), **m, "rmse_span": span_rmse(preds, dataset, protocol),
           **{f"rmse_{k}": float(np.nanmean(v)) for k, v in regions.items()}, "rmse_per_stack": per_stack}
    if model.config.surface_branch:
        row.update(dataset_diagnostics(model, dataset, items=diag_items, loss=build_loss(cfg, model)),
                   surface_input_weight=surface_input_weight(model))
    return row


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--study", choices=("ladder", "levers"), default="ladder")
    p.add_argument("--size", choices=tuple(LADDER), default="tiny", help="the ladder's model size (recipes <size>_*.yaml)")
    p.add_argument("--variants", nargs="+", help="the variants to train and score (ladder default: "
                   f"{' '.join(DEFAULT_RUNGS)})")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    p.add_argument("--steps", type=int, default=None, help="override the recipes' steps")
    p.add_argument("--test-size", type=int, default=96, help="stacks scored (test split, or validation for levers)")
    p.add_argument("--split-seed", type=int, default=None,
                   help="seed of the scored diverse and held-out stacks (default TEST_SEED); another seed scores "
                        "fresh stacks of the same distributions, to check that a difference replicates")
    p.add_argument("--diag-items", type=int, default=16, help="stacks the surface diagnostics use")
    p.add_argument("--jobs", type=int, default=2, help="training processes at once (one thread each)")
    p.add_argument("--runs", default=str(ROOT / "runs" / "ablation"))
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    p.add_argument("--cache-dir", help="where rendered training pools are kept (default RUNS/cache; 'none': not kept)")
    p.add_argument("--stem", help="output file stem (default: the study's name)")
    p.add_argument("--quick", action="store_true", help="a smoke run: 40 steps, 64² crops, 1 seed, 4 stacks")
    p.add_argument("--graft", action="store_true",
                   help="continue each seed's trained dfv+fv run twice, as it is (dfv+fv_cont, recipe graft_<size>_dfv_fv) "
                        "and with a surface branch grafted on (dualfocus_graft, graft_<size>_dualfocus), into RUNS/graft; "
                        "score both beside dfv+fv")
    p.add_argument("--probe", action="store_true",
                   help="train a fresh dfv+fv decoder on each run's frozen encoder (recipe <size>_dfv_fv with "
                        "probe_encoder) into RUNS/probe and score those probes only (rungs <variant>_probe)")
    p.add_argument("--stage2", action="store_true",
                   help="mid ladder: also train and score each seed's stage 2 (recipes finetune_<stage-1 recipe>)")
    p.add_argument("--recorded", help="a recorded ladder JSON whose rungs (those not trained here) are paired with "
                   "this invocation's by seed, split by split; its splits must be the ones scored here")
    p.add_argument("--train-only", action="store_true", help="train (or reuse) the runs, score nothing")
    p.add_argument("--export", help="ladder: copy the first seed's dualfocus and dfv models (weights only) here, "
                   "and their training curves to --out as train_log_<name>.csv")
    args = p.parse_args()

    table = LEVERS if args.study == "levers" else {k: (v, {}) for k, v in LADDER[args.size].items()}
    names = args.variants or (list(DEFAULT_RUNGS) if args.study == "ladder" else list(table))
    unknown = sorted(set(names) - set(table))
    if unknown:
        p.error(f"--variants: unknown {unknown}; known: {list(table)}")
    changes: dict = {} if args.steps is None else {"steps": args.steps}
    if args.quick:
        changes = dict(size=[64, 64], steps=40, train_scenes=16, val_scenes=2, val_every=20, ckpt_every=20, log_every=10)
        args.seeds, args.test_size, args.diag_items = args.seeds[:1], 4, 4
    if args.cache_dir != "none":  # every variant of a seed trains on one rendered pool
        changes["cache_dir"] = args.cache_dir or str(Path(args.runs) / "cache")
    runs = Path(args.runs) / args.study
    configs = {(n, s): TrainConfig.recipe(table[n][0], **table[n][1], **changes, seed=s, out_dir=str(runs / f"{n}_s{s}"))
               for s in args.seeds for n in names}

    # stage 2 of a rung: its stage-1 recipe's stem prefixed, e.g. dfv+fv -> mid_dfv_fv -> finetune_mid_dfv_fv
    stage2 = {n: f"finetune_{table[n][0]}" for n in names}
    missing = [r for r in stage2.values() if not (ROOT / "dflib" / "recipes" / f"{r}.yaml").is_file()]
    if args.stage2 and (args.study != "ladder" or missing):
        p.error(f"--stage2 needs the ladder and a stage-2 recipe per variant; missing {missing}")
    if args.graft and (args.study != "ladder" or args.stage2 or names != ["dfv+fv"]):
        p.error("--graft continues the ladder's dfv+fv runs: give --variants dfv+fv, without --stage2")
    if args.probe and (args.study != "ladder" or args.stage2 or args.graft):
        p.error("--probe reads the ladder's stage-1 runs: give it without --stage2, --graft or --study levers")

    def train_all(configs: dict) -> dict:
        with ThreadPoolExecutor(args.jobs) as pool:
            return dict(zip(configs, pool.map(lambda c: run_training(c, Path(c.out_dir + ".log")), configs.values())))

    # the steps of the runs that will be scored (stage 2's with --stage2), checked against --recorded before training
    steps = TrainConfig.recipe(stage2[names[0]], **changes).steps if args.stage2 else next(iter(configs.values())).steps
    recorded = json.loads(Path(args.recorded).read_text()) if args.recorded else None
    if recorded is not None and (recorded.get("study") != args.study or recorded.get("steps") != steps):
        p.error(f"--recorded {args.recorded}: study {recorded.get('study')!r}, {recorded.get('steps')} steps; "
                f"this invocation: {args.study!r}, {steps} steps")

    t0 = time.perf_counter()
    seconds = train_all(configs)
    if args.stage2:  # each seed's stage 2 starts from its stage-1 run; those are what is scored
        table = {n: (r, {}) for n, r in stage2.items()}
        stage1_steps = next(iter(configs.values())).steps
        configs = {(n, s): TrainConfig.recipe(stage2[n], **changes, init=str(Path(c.out_dir) / "last.pt"), seed=s,
                                              out_dir=str(Path(args.runs) / "stage2" / f"{n}_s{s}"))
                   for (n, s), c in configs.items()}
        seconds = train_all(configs)
    if args.graft:  # both arms start from the same trained dfv+fv run of their seed and see the same batches
        table.update({n: (f"graft_{args.size}_{r}", {}) for n, r in GRAFT.items()})
        arms = {(n, s): TrainConfig.recipe(table[n][0], **changes, init=str(Path(c.out_dir) / "last.pt"), seed=s,
                                           out_dir=str(Path(args.runs) / "graft" / f"{n}_s{s}"))
                for (_, s), c in configs.items() for n in GRAFT}
        seconds.update(train_all(arms))
        configs.update(arms)
    if args.probe:  # each run's encoder, frozen, read by a fresh dfv+fv decoder of its seed; only those are scored
        reader = LADDER[args.size]["dfv+fv"]
        table = {f"{n}_probe": (reader, {"probe_encoder": f"the {n} run of the seed"}) for n in names}
        configs = {(f"{n}_probe", s): TrainConfig.recipe(reader, **changes, probe_encoder=str(Path(c.out_dir) / "last.pt"),
                                                         seed=s, out_dir=str(Path(args.runs) / "probe" / f"{n}_s{s}"))
                   for (n, s), c in configs.items()}
        seconds = train_all(configs)
    wall = time.perf_counter() - t0
    if args.train_only:
        return 0

    from dflib.data import CachedDataset, SyntheticFocalStackDataset
    from dflib.evaluate import embedded_benchmark
    from dflib.train import VAL_SEED

    if args.study == "levers":
        data = SyntheticFocalStackDataset(args.test_size, size=(256, 256), n_planes=5, noise=True, seed=VAL_SEED)
    else:
        data = embedded_benchmark(length=args.test_size)
    data = CachedDataset(data, desc="rendering the scored stacks")
    pairs = PAIRS_LEVERS if args.study == "levers" else PAIRS
    split = "validation (VAL_SEED)" if args.study == "levers" else "test (embedded, TEST_SEED)"
    variants = score_all(configs, table, seconds, data, "fod500", args.diag_items)
    means = stack_means(data)
    variants = with_recorded(variants, recorded, split, means, args.recorded)
    paired = paired_differences(variants, pairs)
    sff = {}
    if args.study == "ladder":
        from dflib.evaluate import evaluate, sff_method

        rows = evaluate([sff_method(m) for m in MEASURES], {"test": (data, "fod500")}, progress=False).rows
        sff = min(rows, key=lambda r: r["rmse"])
    extra = {}  # the runs' own distribution and the held-out split, when the runs trained on diverse data
    first = next(iter(configs.values()))
    if args.study == "ladder" and first.data == "diverse":
        from dflib.data.diverse import DiverseConfig, DiverseFocalStackDataset, diverse_config
        from dflib.data.synthetic import TEST_SEED

        cfg_d = diverse_config(first.data, first.data_options)
        parts = {"in_distribution": ("diverse test", cfg_d),
                 "held_out": ("held-out test (families, photographs, cameras never trained on)",
                              DiverseConfig(split="heldout"))}
        seed = TEST_SEED if args.split_seed is None else args.split_seed
        seed_name = "TEST_SEED" if seed == TEST_SEED else f"seed {seed}"
        for key, (label, cfg) in parts.items():
            data_d = CachedDataset(DiverseFocalStackDataset(len(data), (256, 256), cfg, seed=seed),
                                   desc=f"rendering the scored {label} stacks")
            split_d = f"{label} ({seed_name}, {cfg.to_dict()})"
            variants_d = score_all(configs, table, seconds, data_d, "default", args.diag_items)
            means_d = stack_means(data_d)
            variants_d = with_recorded(variants_d, recorded and recorded.get(key), split_d, means_d, args.recorded)
            extra[key] = {"split": split_d, "test_stacks": len(data_d), "stack_means": means_d,
                          "variants": variants_d, "paired": paired_differences(variants_d, pairs)}
    result = {
        "study": args.study,
        "split": split, "test_stacks": len(data), "stack_means": means, "steps": steps,
        "cpu": cpu_model(), "command": " ".join(["python", *map(shlex.quote, sys.argv)]),
        "train_wall_seconds_this_invocation": wall,
        "variants": variants, "paired": paired, "best_sff": sff,
    }
    result.update(extra)
    if args.stage2:
        result["stage1_steps"] = stage1_steps
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = args.stem or (args.study + ("_quick" if args.quick else ""))
    if args.study == "ladder" and not args.stem and not args.quick:
        stem = (("ablation" if args.size == "tiny" else f"ablation_{args.size}") + ("_stage2" if args.stage2 else "")
                + ("_graft" if args.graft else "") + ("_probe" if args.probe else ""))
    (out / f"{stem}.json").write_text(json.dumps(result, indent=1))
    (out / f"{stem}.md").write_text(markdown(result))
    for k, v in paired.items():
        print(f"{k:45s} {v['mean']:+.4f}  [{v['ci95'][0]:+.4f}, {v['ci95'][1]:+.4f}]")
    print(f"wrote {out / f'{stem}.json'} and .md")
    if args.export:
        dest = Path(args.export)
        dest.mkdir(parents=True, exist_ok=True)
        for (n, s), cfg in configs.items():
            if n in EXPORT_NAMES and s == args.seeds[0]:
                path = dest / EXPORT_NAMES[n].format(size=args.size)
                metrics = {k: variants[n][k][variants[n]["seeds"].index(s)] for k in METRIC_KEYS if k in variants[n]}
                export_weights(Path(cfg.out_dir) / "last.pt", path, metrics=metrics)
                curve = out / f"train_log_{path.stem}.csv"  # its training curve, each step once
                write_log(curve, read_log(Path(cfg.out_dir) / "log.csv"))
                print(f"exported {path} (training curve: {curve})")
    return 0


def score_all(configs: dict, table: dict, seconds: dict, data, protocol: str, diag_items: int) -> dict:
    """Every run's last checkpoint scored on ``data``: ``{variant: {"seeds": [...], metric: [per seed], ...}}``."""
    variants: dict = {}
    for (n, s), cfg in configs.items():
        row = score(Path(cfg.out_dir) / "last.pt", data, protocol, diag_items)
        v = variants.setdefault(n, {"recipe": table[n][0], "changes": table[n][1], "seeds": []})
        v["seeds"].append(s)
        v.setdefault("train_seconds", []).append(seconds[(n, s)])
        for k, val in row.items():
            v.setdefault(k, []).append(val)
        print(f"{n} seed {s}: rmse {row['rmse']:.4f} bump {row['bump']:.3f} "
              f"corr_in_focus {row.get('corr_in_focus', float('nan')):.3f}", flush=True)
    return variants


def stack_means(data) -> list[float]:
    """The mean of each scored stack's values (float64): the fingerprint :func:`with_recorded` compares."""
    return [float(data[i]["stack"].double().mean()) for i in range(len(data))]


#: the largest difference of a stack's mean that still counts as the same stack: renderings on two CPUs differ
#: in about 1e-5 of their values by one level (benchmarks/render_reproducibility.py), which moves a 256 x 256
#: stack's mean by less than 1e-7; another draw of its noise moves it by ~1e-5
SAME_STACK_ATOL = 1e-6


def with_recorded(variants: dict, recorded: dict | None, split: str, means: list[float], source: str | None) -> dict:
    """``variants`` (scored here) plus the rungs of a recorded ladder's matching split that were not scored here,
    each marked ``"recorded": source``. A rung scored here for other seeds than the recorded ones (more seeds of
    a recorded rung) is merged with it seed by seed (:func:`merge_seeds`); one scored here for any recorded seed
    replaces the recorded rung. ``means`` are the scored stacks' means (:func:`stack_means`).

    Raises ``SystemExit`` when the recorded split is missing or is not the one scored here (its description or
    number of stacks differ, or its stacks' means, or it has none): seed-paired differences need the same stacks on
    both sides.
    """
    if source is None:
        return variants
    stacks = len(means)
    if recorded is None or recorded.get("split") != split or recorded.get("test_stacks") != stacks:
        have = None if recorded is None else (recorded.get("split"), recorded.get("test_stacks"))
        raise SystemExit(f"--recorded {source}: its split {have} is not the one scored here ({split!r}, {stacks})")
    if "stack_means" not in recorded:
        raise SystemExit(f"--recorded {source}: recorded without its stacks' means, so with shot noise drawn by "
                         "rejection (exact Poisson), which neither this revision nor another CPU renders again; "
                         "score its runs here instead")
    off = max(abs(a - b) for a, b in zip(recorded["stack_means"], means))
    if off > SAME_STACK_ATOL:
        raise SystemExit(f"--recorded {source}: its stacks are not the ones scored here (a stack's mean differs by "
                         f"{off:.2e}; another renderer revision)")
    merged = {**variants, **{n: {**v, "recorded": source} for n, v in recorded["variants"].items() if n not in variants}}
    for n, v in recorded["variants"].items():
        if n in variants and not set(v["seeds"]) & set(variants[n]["seeds"]):
            merged[n] = merge_seeds(v, variants[n], source)
    return merged


def merge_seeds(recorded: dict, here: dict, source: str) -> dict:
    """One rung from its recorded seeds and the other seeds scored here, in seed order.

    Every per-seed list both have is joined; values that are not per-seed (the recipe, its changes) must agree,
    and per-seed lists only one side has are dropped. ``"recorded_seeds"`` says which seeds came from ``source``.

    Raises ``SystemExit`` when the two are not the same rung (another recipe or other changes).
    """
    if (recorded.get("recipe"), recorded.get("changes")) != (here.get("recipe"), here.get("changes")):
        raise SystemExit(f"--recorded {source}: rung {here.get('recipe')!r} was recorded with another recipe or changes")
    n_rec, n_here = len(recorded["seeds"]), len(here["seeds"])
    order = sorted(range(n_rec + n_here), key=lambda i: (recorded["seeds"] + here["seeds"])[i])
    out = {k: v for k, v in here.items() if not isinstance(v, list)}
    for k, v in here.items():
        r = recorded.get(k)
        if isinstance(v, list) and len(v) == n_here and isinstance(r, list) and len(r) == n_rec:
            joined = r + v
            out[k] = [joined[i] for i in order]
    return {**out, "recorded_seeds": {"seeds": sorted(recorded["seeds"]), "source": source}}


def paired_differences(variants: dict, pairs: list[tuple[str, str]]) -> dict:
    """Seed-paired differences a − b of RMSE, RMSE per span, Bump and RMSE at edges / in textured regions
    (those the variants have), with 95 % CIs."""
    paired = {}
    for a, b in pairs:
        if a in variants and b in variants:
            for metric in ("rmse", "rmse_span", "bump", "rmse_edge", "rmse_textured"):
                if metric not in variants[a] or metric not in variants[b]:
                    continue
                key = f"{a}-{b}" if metric == "rmse" else f"{a}-{b}:{metric}"
                va, vb = (dict(zip(variants[x]["seeds"], variants[x][metric])) for x in (a, b))
                paired[key] = {**paired_ci(va, vb), "metric": metric}
    paired.update(factorial_effects(variants))
    return paired


def factorial_effects(variants: dict) -> dict:
    """The 2 x 2 design's effects (:data:`DESIGN_2X2`), per seed, with 95 % CIs, where all four rungs were scored.

    With x(fv, branch) a rung's RMSE (or RMSE per span) for one seed:
    - ``"fv main effect"``: [x(1,0) − x(0,0) + x(1,1) − x(0,1)] / 2, what L_fv changes, averaged over the branch;
    - ``"branch main effect"``: [x(0,1) − x(0,0) + x(1,1) − x(1,0)] / 2, what the surface branch changes;
    - ``"fv x branch interaction"``: [x(1,1) − x(0,1)] − [x(1,0) − x(0,0)], how much L_fv's effect differs
      with the branch present.
    """
    if not all(n in variants for n in DESIGN_2X2.values()):
        return {}
    out = {}
    for metric in ("rmse", "rmse_span"):
        if not all(metric in variants[n] for n in DESIGN_2X2.values()):
            continue
        x = {cell: dict(zip(variants[n]["seeds"], variants[n][metric])) for cell, n in DESIGN_2X2.items()}
        seeds = sorted(set.intersection(*(set(v) for v in x.values())))

        def mean_of(*cells: tuple[bool, bool]) -> dict[int, float]:
            return {s: float(np.mean([x[c][s] for c in cells])) for s in seeds}

        def diff(a: tuple[bool, bool], b: tuple[bool, bool]) -> dict[int, float]:
            return {s: x[a][s] - x[b][s] for s in seeds}

        suffix = "" if metric == "rmse" else f":{metric}"
        effects = {
            "fv main effect": (mean_of((True, False), (True, True)), mean_of((False, False), (False, True))),
            "branch main effect": (mean_of((False, True), (True, True)), mean_of((False, False), (True, False))),
            "fv x branch interaction": (diff((True, True), (False, True)), diff((True, False), (False, False))),
        }
        for name, (a, b) in effects.items():
            out[name + suffix] = {**paired_ci(a, b), "metric": metric}
    return out


def markdown(result: dict) -> str:
    """The README's tables: mean ± std over seeds per variant, the best classical SFF, the paired differences
    (and the same for the in-distribution and held-out splits when the runs trained on diverse data)."""
    steps = (f"{result['stage1_steps']} + {result['steps']} (stage 2)" if "stage1_steps" in result
             else result["steps"])
    keys = ["rmse", "rmse_span", "rmse_edge", "rmse_textured", "rmse_textureless", "bump", "abs_rel", "delta1", "avg_unc",
            "corr_in_focus", "err_in_focus", "err_out_of_focus", "err_zero"]

    def tables(part: dict, sff: dict) -> list[str]:
        table = []
        for name, v in part["variants"].items():
            rows = [{k: v[k][i] for k in keys if k in v} for i in range(len(v["seeds"]))]
            summ = summarise_seeds(rows, keys)
            table.append({"variant": name + (" (recorded)" if "recorded" in v else ""), "seeds": len(v["seeds"]), "params": int(v["params"][0]) if "params" in v else "",
                          **{k: summ.get(k, "–") for k in keys}})
        if sff:
            table.append({"variant": f"classical SFF ({sff['method']})", "seeds": "–", "params": 0,
                          **{k: sff[k] for k in ("rmse", "bump", "abs_rel", "delta1")}})
        paired = [{"difference (a − b, per seed)": k, "mean": f"{d['mean']:+.4f}",
                   "95 % CI": f"[{d['ci95'][0]:+.4f}, {d['ci95'][1]:+.4f}]", "seeds": len(d["seeds"])}
                  for k, d in part["paired"].items()]
        return [ResultsTable(table).to_markdown(percent_delta=False, columns=["variant", "seeds", "params", *keys]),
                ResultsTable(paired).to_markdown().rstrip("\n"),
                f"\n{part['test_stacks']} stacks ({part['split']}), {steps} steps; {result['cpu']}; "
                f"`{result['command']}`"]

    lines = tables(result, result.get("best_sff") or {})
    for key, title in (("in_distribution", "In the runs' own distribution:"),
                       ("held_out", "On the held-out split (generalisation):")):
        if key in result:
            lines += ["", title, "", *tables(result[key], {})]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
