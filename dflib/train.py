"""Training: a seeded loop from small steps, with exact resume and DDP.

A run is fully described by :class:`~dflib.train_config.TrainConfig` (saved as
``config.json`` next to the run; recipes in ``dflib/recipes/``). The loop is
deterministic on CPU: the model is initialised from ``seed``, the data order of
every epoch comes from a :class:`~torch.utils.data.DistributedSampler` seeded
with ``seed`` (one replica on a single process), and a checkpoint
(:mod:`dflib.checkpoint`) stores the model, the optimiser, the schedule and the
step, so ``resume=True`` continues bit-for-bit where an interrupted run stopped.

Multi-GPU: ``torchrun --nproc_per_node=4 -m dflib.cli train --config run.json``
wraps the model in DistributedDataParallel; each process reads its own shard.
"""

from __future__ import annotations

import csv
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
from torch.utils.data import DataLoader, Dataset

# the checkpoint functions, the config and the seeds are imported from here by older code: keep them importable
from dflib.checkpoint import CHECKPOINT_FORMAT, build_model, load_model, read_checkpoint, save_checkpoint  # noqa: F401
from dflib.data.synthetic import TEST_SEED, VAL_SEED  # noqa: F401
from dflib.diagnostics import DIAGNOSTIC_KEYS
from dflib.interrupt import StopRequest, TrainingInterrupted, stop_signals
from dflib.metrics import METRIC_NAMES
from dflib.train_config import TrainConfig, recipes  # noqa: F401
from dflib.train_data import RENDER_SOURCES, batches_for_epoch, build_datasets, to_device  # noqa: F401
from dflib.utils import default_device

__all__ = ["LOG_COLUMNS", "TrainConfig", "TrainResult", "TrainingInterrupted", "build_datasets", "build_loss",
           "build_model", "lambda_sv_at", "load_model", "read_log", "recipes", "run_history", "save_checkpoint", "train",
           "validate", "write_log"]

#: columns of a run's ``log.csv``: the loss terms, and on validation steps the validation metrics and,
#: for models with a surface branch, the surface diagnostics (:mod:`dflib.diagnostics`) on the validation split
LOG_COLUMNS = (["step", "lr", "total", "depth", "sv", "fv"] + [f"val_{k}" for k in METRIC_NAMES]
               + [f"diag_{k}" for k in DIAGNOSTIC_KEYS])


# -- model, optimiser, schedule ------------------------------------------------
def build_loss(cfg: TrainConfig, model: torch.nn.Module):
    """The run's :class:`~dflib.losses.DualFocusLoss`; L_sv's units are the model's ``surface_units``."""
    from dflib.losses import DualFocusLoss

    return DualFocusLoss(lambda_sv=cfg.lambda_sv, lambda_fv=cfg.lambda_fv, sv_units=getattr(model, "module", model).config.surface_units,
                         sv_penalty=cfg.sv_penalty, sv_tau=cfg.sv_tau, sv_delta=cfg.sv_delta, depth_clip=cfg.depth_clip)


def _lr_lambda(cfg: TrainConfig):
    def f(step: int) -> float:
        if step < cfg.warmup_steps:
            return (step + 1) / cfg.warmup_steps
        if cfg.schedule == "constant":
            return 1.0
        t = (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, t)))

    return f


def _optimizer(cfg: TrainConfig, model: torch.nn.Module) -> torch.optim.Optimizer:
    """Adam(W) over two groups of the trainable parameters: the surface branch at ``lr * branch_lr_scale``, the
    rest at ``lr``."""
    cls = torch.optim.AdamW if cfg.optimizer == "adamw" else torch.optim.Adam
    branch = [p for n, p in model.named_parameters() if n.startswith(("gradient_head.", "surface_mix.")) and p.requires_grad]
    ids = {id(p) for p in branch}
    groups = [{"params": [p for p in model.parameters() if id(p) not in ids and p.requires_grad]}]
    if branch:
        groups.append({"params": branch, "lr": cfg.lr * cfg.branch_lr_scale})
    return cls(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)


def lambda_sv_at(cfg: TrainConfig, step: int) -> float:
    """λ_sv at optimiser step ``step`` (0-based): a linear ramp over ``sv_ramp_steps``, then constant.

    >>> cfg = TrainConfig(lambda_sv=0.3, sv_ramp_steps=100)
    >>> lambda_sv_at(cfg, 0), lambda_sv_at(cfg, 49), lambda_sv_at(cfg, 500)
    (0.003, 0.15, 0.3)
    """
    if cfg.sv_ramp_steps <= 0:
        return cfg.lambda_sv
    return cfg.lambda_sv * min(1.0, (step + 1) / cfg.sv_ramp_steps)


# -- validation ----------------------------------------------------------------
@torch.no_grad()
def validate(model: torch.nn.Module, dataset: Dataset, device: torch.device, protocol: str = "default", batch_size: int = 4) -> dict[str, float]:
    """Mean depth metrics of ``model`` over ``dataset`` (see :func:`dflib.metrics.depth_metrics`)."""
    from dflib.data.batching import ordered_batches, plane_counts
    from dflib.metrics import depth_metrics

    was_training = model.training
    model.eval()
    preds, gts = [], []
    for batch in DataLoader(dataset, batch_sampler=ordered_batches(len(dataset), batch_size, plane_counts(dataset))):
        batch = to_device(batch, device)
        out = model(batch["stack"], batch["focus"])
        preds.append(out["depth"].float().cpu())
        gts.append(torch.where(batch["mask"], batch["depth"], torch.zeros_like(batch["depth"])).cpu())
    model.train(was_training)
    return depth_metrics(torch.cat(preds), torch.cat(gts), protocol=protocol)


# -- the loop ------------------------------------------------------------------
@dataclass
class TrainResult:
    """What :func:`train` returns: the run folder, the step reached, the logged rows and the last validation metrics."""

    out_dir: Path
    step: int
    history: list[dict] = field(default_factory=list)
    val_metrics: dict[str, float] = field(default_factory=dict)


@dataclass
class _Run:
    """Everything the loop carries from step to step (one per process)."""

    cfg: TrainConfig
    device: torch.device
    rank: int
    world: int
    train_set: Dataset
    val_set: Dataset | None
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    criterion: torch.nn.Module
    net: torch.nn.Module | None = None  #: the model, wrapped in DDP when distributed
    step: int = 0
    history: list[dict] = field(default_factory=list)
    val_metrics: dict[str, float] = field(default_factory=dict)
    counts: list[int] | None = None  #: N of every training item when it varies (:func:`dflib.data.batching.plane_counts`)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world > 1

    @property
    def out_dir(self) -> Path:
        return Path(self.cfg.out_dir)

    @property
    def ckpt_path(self) -> Path:
        return self.out_dir / "last.pt"


def _process_group(cfg: TrainConfig) -> tuple[torch.device, int, int]:
    """(device, rank, world size) of this process; under torchrun, joins the process group first."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    if world == 1:
        return default_device(cfg.device), rank, world
    import torch.distributed as dist

    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    device = torch.device(f"cuda:{local_rank}") if torch.cuda.is_available() else torch.device("cpu")
    if device.type == "cuda":
        torch.cuda.set_device(device)
    return device, rank, world


def _start(cfg: TrainConfig, resume: bool) -> _Run:
    """Set up a run: its folder and config file, data, model, optimiser, schedule and loss; resumed when asked."""
    device, rank, world = _process_group(cfg)
    out_dir = Path(cfg.out_dir)
    if rank == 0:
        out_dir.mkdir(parents=True, exist_ok=True)
        cfg.save(out_dir / "config.json")
    model = build_model(cfg.model, cfg.seed, cfg.model_overrides)  # leaves the global RNG as it was
    if cfg.init_graft and cfg.init is None:
        raise ValueError("TrainConfig.init_graft: there is nothing to graft onto without init (the baseline's weights)")
    if cfg.init is not None:
        _init_weights(model, cfg)  # before the data: a wrong init fails before minutes of rendering
    if cfg.probe_encoder is not None:
        _freeze_probe_encoder(model, cfg)
    train_set, val_set = build_datasets(cfg)
    model = model.to(device)
    optimizer = _optimizer(cfg, model)
    run = _Run(cfg, device, rank, world, train_set, val_set, model, optimizer,
               torch.optim.lr_scheduler.LambdaLR(optimizer, _lr_lambda(cfg)), build_loss(cfg, model))
    from dflib.data.batching import plane_counts

    run.counts = plane_counts(train_set)
    if resume and run.ckpt_path.exists():
        _resume(run)
    run.net = model
    if run.distributed:
        run.net = torch.nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    log_path = out_dir / "log.csv"
    if run.is_main and log_path.exists():
        if run.step == 0:
            log_path.unlink()  # a fresh run starts a fresh log
        else:
            _truncate_log(log_path, run.step)
    return run


def read_log(path: str | Path) -> list[dict[str, float]]:
    """A run's ``log.csv`` as the rows :attr:`TrainResult.history` holds (``step`` an int, the rest floats; empty cells left out).

    When a step appears more than once (a log written before resuming dropped
    the rows past the checkpoint), its last row is kept. Rows come in step order.
    """
    with Path(path).open(newline="") as f:
        rows = {int(r["step"]): {k: int(float(v)) if k in ("step", "stage") else float(v)
                                 for k, v in r.items() if v not in ("", None)}
                for r in csv.DictReader(f)}
    return [rows[k] for k in sorted(rows)]


def run_history(run_dir: str | Path) -> list[dict[str, float]]:
    """A run's whole training curve: its ``log.csv`` preceded by that of the run it was fine-tuned from.

    When the run's ``init`` is a checkpoint inside another run folder (one with
    ``log.csv``), that run's rows come first (recursively) and this run's steps
    are shifted to continue from its last one; a shipped name as ``init`` has no
    curve to add.

    Returns:
        :func:`read_log` rows, each with ``stage`` (0 for the first run).
    """
    run_dir = Path(run_dir)
    cfg = TrainConfig.load(run_dir / "config.json")
    earlier: list[dict[str, float]] = []
    if cfg.init is not None and (Path(cfg.init).parent / "log.csv").is_file():
        earlier = run_history(Path(cfg.init).parent)
    offset = earlier[-1]["step"] if earlier else 0
    stage = earlier[-1]["stage"] + 1 if earlier else 0
    return earlier + [{**r, "step": r["step"] + offset, "stage": stage} for r in read_log(run_dir / "log.csv")]


def _truncate_log(path: Path, step: int) -> None:
    """Drop the rows of ``log.csv`` after ``step``: those a stopped run logged past its last checkpoint.

    A resumed run repeats those steps, so without this the log would hold two rows for each of them.
    """
    with path.open(newline="") as f:
        rows = [r for r in csv.DictReader(f) if int(r["step"]) <= step]
    write_log(path, rows)


def write_log(path: str | Path, rows: list[dict]) -> None:
    """Write rows (of :func:`read_log`, :func:`run_history` or a run's history) as a ``log.csv`` with
    :data:`LOG_COLUMNS` (and ``stage`` when the rows have it)."""
    stage = ["stage"] if any("stage" in r for r in rows) else []
    with Path(path).open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=LOG_COLUMNS[:1] + stage + LOG_COLUMNS[1:], restval="", extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


def _init_weights(model: torch.nn.Module, cfg: TrainConfig) -> None:
    """Load the weights of ``cfg.init`` (a checkpoint file or a shipped name) into ``model`` (fine-tuning), or
    with ``cfg.init_graft`` graft ``model``'s surface branch onto them (:mod:`dflib.models.graft`).

    Raises:
        ValueError: its model is not the one the run builds (or, grafting, not its baseline).
    """
    from dflib.models.pretrained import load_checkpoint_or_name

    src = load_checkpoint_or_name(cfg.init, "cpu")
    if cfg.init_graft:
        from dflib.models.graft import graft_surface_branch

        try:
            graft_surface_branch(model, src)
        except ValueError as e:
            raise ValueError(f"TrainConfig.init_graft: {cfg.init!r}: {e}") from None
        return
    if src.config != model.config:
        raise ValueError(f"TrainConfig.init: {cfg.init!r} holds a different model than this run builds "
                         f"(model {cfg.model!r}, model_overrides {cfg.model_overrides}): {src.config} vs {model.config}")
    model.load_state_dict(src.state_dict())


def _freeze_probe_encoder(model: torch.nn.Module, cfg: TrainConfig) -> None:
    """Copy the encoder of ``cfg.probe_encoder`` into ``model`` and freeze it (a resumed run loads the same
    weights back, and this freezes them again)."""
    from dflib.models.graft import freeze_encoder_from
    from dflib.models.pretrained import load_checkpoint_or_name

    try:
        freeze_encoder_from(model, load_checkpoint_or_name(cfg.probe_encoder, "cpu"))
    except ValueError as e:
        raise ValueError(f"TrainConfig.probe_encoder: {cfg.probe_encoder!r}: {e}") from None


def _resume(run: _Run) -> None:
    """Load the model, optimiser, schedule and step of ``run.ckpt_path``."""
    state = read_checkpoint(run.ckpt_path)
    missing = sorted({"optimizer", "scheduler", "step"} - set(state))
    if missing:
        raise ValueError(f"cannot resume from {str(run.ckpt_path)!r}: it has no {', '.join(missing)} (a weights-only export?)")
    run.model.load_state_dict(state["model"])
    run.optimizer.load_state_dict(state["optimizer"])
    run.scheduler.load_state_dict(state["scheduler"])
    run.step = int(state["step"])


def _train_step(run: _Run, batch: dict) -> dict[str, torch.Tensor]:
    """One optimiser step on ``batch``; returns the loss terms."""
    cfg, device = run.cfg, run.device
    batch = to_device(batch, device)
    with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=cfg.amp and device.type == "cuda"):
        out = run.net(batch["stack"], batch["focus"])
    terms = run.criterion(out, batch["depth"], batch["focus"], batch["mask"], lambda_sv=lambda_sv_at(cfg, run.step))
    run.optimizer.zero_grad(set_to_none=True)
    terms["total"].backward()
    if cfg.max_grad_norm > 0:
        torch.nn.utils.clip_grad_norm_(run.model.parameters(), cfg.max_grad_norm)
    run.optimizer.step()
    run.scheduler.step()
    run.step += 1
    return terms


def _log_row(run: _Run, terms: dict[str, torch.Tensor], end: int) -> dict | None:
    """The row logged after this step: the loss terms on logging steps, plus the validation
    metrics (and surface diagnostics) on validation steps; None when neither."""
    cfg, step = run.cfg, run.step
    row = None
    if step % cfg.log_every == 0 or step == end:
        row = {"step": step, "lr": run.scheduler.get_last_lr()[0], **{k: float(v.detach()) for k, v in terms.items()}}
    if run.val_set is not None and run.is_main and (step % cfg.val_every == 0 or step == cfg.steps):
        row = row or {"step": step, "lr": run.scheduler.get_last_lr()[0], **{k: float(v.detach()) for k, v in terms.items()}}
        row.update(_validation_row(run))
    return row


def _validation_row(run: _Run) -> dict[str, float]:
    """Validate (updating ``run.val_metrics``); the ``val_*`` and ``diag_*`` columns of the log."""
    from dflib.data import protocol_for

    # the synthetic data uses FoD500's camera and planes, so it is scored like FoD500
    protocol = {"synthetic": "fod500", "diverse": "default"}.get(run.cfg.data) or protocol_for(run.cfg.data)
    run.val_metrics = validate(run.model, run.val_set, run.device, protocol=protocol)
    row = {f"val_{k}": v for k, v in run.val_metrics.items()}
    if run.model.config.surface_branch:  # what the surfaces have learned so far (dflib.diagnostics)
        from dflib.diagnostics import dataset_diagnostics

        diag = dataset_diagnostics(run.model, run.val_set, items=len(run.val_set), batch_size=run.cfg.batch_size,
                                   loss=run.criterion)
        row.update({f"diag_{k}": v for k, v in diag.items()})
    return row


def _record(run: _Run, row: dict, on_log: Callable[[dict], None] | None) -> None:
    """Keep a logged row: in the history, in ``log.csv`` and through ``on_log``."""
    run.history.append(row)
    _append_csv(run.out_dir / "log.csv", row)
    if on_log is not None:
        on_log(row)


def _batches_per_epoch(run: _Run) -> int:
    n = len(batches_for_epoch(len(run.train_set), run.cfg, 0, run.rank, run.world, run.counts))
    if n == 0:
        if run.counts is not None and len(set(run.counts)) > 1:
            sizes = {k: run.counts.count(k) for k in sorted(set(run.counts))}
            raise ValueError(
                f"TrainConfig.batch_size: {run.cfg.batch_size} is larger than every group of training items "
                f"that share a plane count N (a batch never mixes N): items per N {sizes}, over {run.world} "
                "process(es). Use more train_scenes or a smaller batch_size."
            )
        raise ValueError(
            f"TrainConfig.batch_size: {run.cfg.batch_size} is larger than the training set per process "
            f"({len(run.train_set)} items over {run.world} process(es))"
        )
    return n


def _epoch_loader(run: _Run, batches_per_epoch: int) -> DataLoader:
    """The batches left in the epoch of ``run.step`` (all of them at an epoch's start)."""
    epoch, offset = divmod(run.step, batches_per_epoch)
    batches = batches_for_epoch(len(run.train_set), run.cfg, epoch, run.rank, run.world, run.counts)[offset:]
    if hasattr(run.train_set, "set_epoch"):
        run.train_set.set_epoch(epoch)  # per-epoch augmentation seeds of the real datasets
    return DataLoader(run.train_set, batch_sampler=batches, num_workers=run.cfg.num_workers)


def train(
    cfg: TrainConfig,
    resume: bool = False,
    progress: bool = True,
    stop_after: int | None = None,
    on_log: Callable[[dict], None] | None = None,
) -> TrainResult:
    """Train ``cfg.model`` on ``cfg.data``; logs, checkpoints and config go to ``cfg.out_dir``.

    Args:
        cfg: the run's configuration.
        resume: continue from ``out_dir/last.pt`` if it exists (bit-for-bit on CPU).
        progress: show a tqdm bar with the loss terms.
        stop_after: stop (with a checkpoint) after this many steps in total, as if
            interrupted; used by the tests of resume.
        on_log: called with every logged row (a dict of the loss terms, the
            learning rate and any validation metrics), e.g. for a live plot.

    Files written: ``config.json``, ``log.csv`` (one row per ``log_every``
    steps: every loss term, the learning rate, and validation metrics when
    computed), ``last.pt`` (every ``ckpt_every`` steps, at the end, and when
    stopped by a signal), ``final_metrics.json``.

    SIGINT (Ctrl-C) and SIGTERM (a cluster's pre-emption) stop the run after the
    step in progress: ``last.pt`` is written at the step reached (atomically, as
    always), then :class:`TrainingInterrupted` is raised; ``resume=True``
    continues bit-for-bit.

    Raises:
        TrainingInterrupted: stopped by SIGINT or SIGTERM (``last.pt`` saved).
        ValueError: a bad config, or a ``last.pt`` that cannot be resumed from.
    """
    from tqdm.auto import tqdm

    run = _start(cfg, resume)
    batches_per_epoch = _batches_per_epoch(run)
    end = cfg.steps if stop_after is None else min(cfg.steps, stop_after)
    bar = tqdm(total=cfg.steps, initial=run.step, desc=f"train {cfg.model}", disable=not (progress and run.is_main), unit="step")
    run.net.train()
    with stop_signals() as stop:
        stopping = _loop(run, end, batches_per_epoch, stop, bar, on_log)
    bar.close()
    if run.distributed:
        import torch.distributed as dist

        dist.destroy_process_group()
    if stopping and run.step < end:
        raise TrainingInterrupted(stop.signum, run.step, run.ckpt_path)
    if run.is_main and run.step == cfg.steps:
        (run.out_dir / "final_metrics.json").write_text(json.dumps({"step": run.step, "val": run.val_metrics}, indent=2))
    return TrainResult(run.out_dir, run.step, run.history, run.val_metrics)


def _loop(run: _Run, end: int, batches_per_epoch: int, stop: StopRequest, bar, on_log) -> bool:
    """Steps until ``end`` or a stop request (then True), logging, validating and checkpointing on the way."""
    cfg, stopping = run.cfg, False
    while run.step < end and not stopping:
        for batch in _epoch_loader(run, batches_per_epoch):
            if run.step >= end:
                break
            terms = _train_step(run, batch)
            bar.update(1)
            row = _log_row(run, terms, end)
            if row is not None:
                bar.set_postfix({k: f"{v:.4g}" for k, v in row.items() if k in terms})
                if run.is_main:
                    _record(run, row, on_log)
            stopping = stop.agreed(run.distributed)  # every process stops after the same step
            if run.is_main and (run.step % cfg.ckpt_every == 0 or run.step == end or stopping):
                save_checkpoint(run.ckpt_path, run.model, cfg, run.optimizer, run.scheduler, run.step, run.val_metrics)
            if stopping:
                break
    return stopping


def _append_csv(path: Path, row: dict) -> None:
    """Append one row of :data:`LOG_COLUMNS` (header written with the first row)."""
    new = not path.exists()
    with path.open("a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=LOG_COLUMNS, restval="")
        if new:
            writer.writeheader()
        writer.writerow(row)
