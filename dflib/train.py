"""Training: a config dataclass, a seeded loop, checkpoints and exact resume.

A run is fully described by :class:`TrainConfig` (saved as ``config.json`` next
to the run). The loop is deterministic on CPU: the model is initialised from
``seed``, the data order of every epoch comes from a
:class:`~torch.utils.data.DistributedSampler` seeded with ``seed`` (one replica
on a single process), and a checkpoint stores the model, the optimiser, the
schedule and the step, so ``resume=True`` continues bit-for-bit where an
interrupted run stopped.

Multi-GPU: ``torchrun --nproc_per_node=4 -m dflib.cli train --config run.json``
wraps the model in DistributedDataParallel; each process reads its own shard.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import os
import signal
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from dflib.diagnostics import DIAGNOSTIC_KEYS
from dflib.metrics import METRIC_NAMES
from dflib.models.config import PRESETS as MODEL_PRESETS
from dflib.utils import default_device

#: seeds of the embedded synthetic splits; training stacks use the run's own seed
VAL_SEED = 900_001
TEST_SEED = 1_000_003

#: the ``format`` entry of every checkpoint :func:`save_checkpoint` writes
CHECKPOINT_FORMAT = "dflib-checkpoint-1"
#: columns of a run's ``log.csv``: the loss terms, and on validation steps the validation metrics and,
#: for models with a surface branch, the surface diagnostics (:mod:`dflib.diagnostics`) on the validation split
LOG_COLUMNS = (["step", "lr", "total", "depth", "sv", "fv"] + [f"val_{k}" for k in METRIC_NAMES]
               + [f"diag_{k}" for k in DIAGNOSTIC_KEYS])


@dataclass
class TrainConfig:
    """Everything a training run depends on.

    Units: ``size`` in pixels (H, W); ``lr`` per step; the loss weights are the
    paper's λ_sv and λ_fv (METHOD.md section 5).
    """

    model: str = "tiny"  #: preset of :class:`dflib.models.DualFocusConfig`
    data: str = "synthetic"  #: synthetic | diverse | fod500 | ddff12 | nyu
    data_dir: str | None = None  #: folder of a fetched dataset (not needed for synthetic)
    #: diverse: fields of :class:`dflib.data.diverse.DiverseConfig` to change, e.g. {"n_planes": [3, 6]}
    data_options: dict = field(default_factory=dict)
    size: tuple[int, int] = (128, 128)  #: training crop (H, W), pixels
    n_planes: int = 5  #: focal planes per stack
    train_scenes: int = 512  #: synthetic: distinct rendered training stacks
    val_scenes: int = 16  #: synthetic: validation stacks (a seed no other split uses)
    batch_size: int = 4
    steps: int = 2000  #: optimiser steps
    optimizer: str = "adamw"  #: adam | adamw
    lr: float = 1e-3
    weight_decay: float = 1e-4
    schedule: str = "cosine"  #: cosine | constant
    warmup_steps: int = 50
    lambda_sv: float = 0.1  #: weight of the spatial variational constraint L_sv
    lambda_fv: float = 1.0  #: weight of the focal variational constraint L_fv
    #: fields of the model preset to change, e.g. {"surface_units": "planes", "head_isolation": true}
    model_overrides: dict = field(default_factory=dict)
    sv_penalty: str = "l1"  #: L_sv penalty, l1 (the paper) | huber; units come from the model's surface_units
    sv_tau: float = 1.0  #: temperature of L_sv's in-focus weights q, in the surfaces' units
    sv_delta: float = 0.5  #: Huber threshold of L_sv, in the surfaces' units
    sv_ramp_steps: int = 0  #: λ_sv rises linearly from 0 over this many steps (0: constant)
    branch_lr_scale: float = 1.0  #: learning rate of the surface branch (gradient head, mix) relative to lr
    depth_clip: bool = False  #: clip the depth target to [f_1, f_N] in L_depth (every method alike)
    seed: int = 0
    device: str = "auto"  #: auto (CUDA when present), cpu, cuda, cuda:1, …
    amp: bool = True  #: bfloat16 autocast, used on CUDA only
    num_workers: int = 0
    cache_dir: str | None = None  #: keep rendered synthetic pools here and reuse them across runs
    out_dir: str = "runs/tiny"
    log_every: int = 10
    val_every: int = 250
    ckpt_every: int = 250
    max_grad_norm: float = 1.0

    def __post_init__(self) -> None:
        self.size = tuple(int(s) for s in self.size)  # JSON gives lists
        checks = {
            "model": self.model in MODEL_PRESETS,
            "data": self.data in ("synthetic", "diverse", "fod500", "ddff12", "nyu"),
            "size": len(self.size) == 2 and min(self.size) >= 16,
            "n_planes": self.n_planes >= 2,
            "train_scenes": self.train_scenes >= 1,
            "val_scenes": self.val_scenes >= 0,
            "batch_size": self.batch_size >= 1,
            "steps": self.steps >= 1,
            "optimizer": self.optimizer in ("adam", "adamw"),
            "lr": math.isfinite(self.lr) and self.lr > 0,
            "weight_decay": self.weight_decay >= 0,
            "schedule": self.schedule in ("cosine", "constant"),
            "warmup_steps": self.warmup_steps >= 0,
            "lambda_sv": math.isfinite(self.lambda_sv) and self.lambda_sv >= 0,
            "lambda_fv": math.isfinite(self.lambda_fv) and self.lambda_fv >= 0,
            "model_overrides": isinstance(self.model_overrides, dict),
            "sv_penalty": self.sv_penalty in ("l1", "huber"),
            "sv_tau": math.isfinite(self.sv_tau) and self.sv_tau > 0,
            "sv_delta": math.isfinite(self.sv_delta) and self.sv_delta > 0,
            "sv_ramp_steps": self.sv_ramp_steps >= 0,
            "branch_lr_scale": math.isfinite(self.branch_lr_scale) and self.branch_lr_scale >= 0,
            "log_every": self.log_every >= 1,
            "val_every": self.val_every >= 1,
            "ckpt_every": self.ckpt_every >= 1,
            "num_workers": self.num_workers >= 0,
        }
        expected = {
            "model": f"one of {MODEL_PRESETS}",
            "data": "one of synthetic, diverse, fod500, ddff12, nyu",
            "size": "(H, W) with both >= 16",
            "optimizer": "adam or adamw",
            "schedule": "cosine or constant",
        }
        if isinstance(self.model_overrides, dict):
            from dflib.models import DualFocusConfig

            try:
                DualFocusConfig.preset(self.model).replace(**self.model_overrides)
            except (TypeError, ValueError) as e:
                raise ValueError(f"TrainConfig.model_overrides: got {self.model_overrides!r}: {e}") from None
        if self.data_options:
            from dflib.data.diverse import diverse_config

            diverse_config(self.data, self.data_options)  # raises ValueError naming TrainConfig.data_options
        for name, ok in checks.items():
            if not ok:
                raise ValueError(
                    f"TrainConfig.{name}: got {getattr(self, name)!r}, expected {expected.get(name, 'a valid value (see the field docs)')}"
                )

    # -- (de)serialisation ------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["size"] = list(self.size)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TrainConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ValueError(f"TrainConfig: unknown field(s) {unknown}; known fields: {sorted(names)}")
        return cls(**d)

    def save(self, path: str | Path) -> None:
        """Write the config as JSON (``.json``) or YAML (``.yaml``/``.yml``)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.suffix in (".yaml", ".yml"):
            import yaml

            path.write_text(yaml.safe_dump(self.to_dict(), sort_keys=False))
        else:
            path.write_text(json.dumps(self.to_dict(), indent=2))

    @classmethod
    def recipe(cls, name: str, **changes: Any) -> "TrainConfig":
        """A recipe shipped in ``dflib/recipes/<name>.yaml`` (see :func:`recipes`), with some fields changed.

        ``model_overrides`` in ``changes`` updates the recipe's overrides rather than replacing them.
        """
        from importlib.resources import files

        path = files("dflib") / "recipes" / f"{name}.yaml"
        if not path.is_file():
            raise ValueError(f"recipe must be one of {recipes()}, got {name!r}")
        import yaml

        d = {**cls.from_dict(yaml.safe_load(path.read_text()) or {}).to_dict()}
        for k, v in changes.items():
            d[k] = {**d.get(k, {}), **v} if k == "model_overrides" else v
        return cls.from_dict(d)

    @classmethod
    def load(cls, path: str | Path) -> "TrainConfig":
        path = Path(path)
        if path.suffix in (".yaml", ".yml"):
            import yaml

            return cls.from_dict(yaml.safe_load(path.read_text()) or {})
        return cls.from_dict(json.loads(path.read_text()))


def recipes() -> list[str]:
    """Names of the training recipes shipped in ``dflib/recipes/`` (for :meth:`TrainConfig.recipe`)."""
    from importlib.resources import files

    return sorted(p.name[:-5] for p in (files("dflib") / "recipes").iterdir() if p.name.endswith(".yaml"))


# -- data -------------------------------------------------------------------
def build_datasets(cfg: TrainConfig) -> tuple[Dataset, Dataset | None]:
    """(train, val) datasets for ``cfg.data``; synthetic stacks are rendered once and cached."""
    if cfg.data == "synthetic":
        from dflib.data import CachedDataset, SyntheticFocalStackDataset

        common = dict(size=cfg.size, n_planes=cfg.n_planes)

        def cached(n: int, seed: int) -> CachedDataset:
            return CachedDataset(SyntheticFocalStackDataset(n, seed=seed, **common),
                                 cache_file=_cache_file(cfg, n, seed) if cfg.cache_dir else None)

        return cached(cfg.train_scenes, cfg.seed), (cached(cfg.val_scenes, VAL_SEED) if cfg.val_scenes else None)
    if cfg.data == "diverse":
        from dflib.data.diverse import diverse_pools

        return diverse_pools(cfg, VAL_SEED)
    from dflib.data import open_dataset

    train = open_dataset(cfg.data, split="train", root=cfg.data_dir, crop=cfg.size, n_planes=cfg.n_planes, seed=cfg.seed)
    # only DDFF-12 has a validation split; the others are never validated on their test split
    val = open_dataset(cfg.data, split="val", root=cfg.data_dir) if cfg.data == "ddff12" else None
    return train, val


def _cache_file(cfg: TrainConfig, scenes: int, seed: int) -> Path:
    """Where a rendered synthetic pool is kept: named after its parameters and the renderer's source."""
    import hashlib

    import dflib

    root = Path(dflib.__file__).parent
    h = hashlib.sha256()
    for name in ("optics.py", "render.py", "scenes.py", "data/synthetic.py"):
        h.update((root / name).read_bytes())
    tag = f"synthetic_s{seed}_n{scenes}_{cfg.size[0]}x{cfg.size[1]}_p{cfg.n_planes}_{h.hexdigest()[:12]}.pt"
    return Path(cfg.cache_dir) / tag


def _batches_for_epoch(n_items: int, cfg: TrainConfig, epoch: int, rank: int, world: int,
                       counts: list[int] | None = None) -> list[list[int]]:
    """This process's batches of item indices for one epoch (DistributedSampler order); items of
    different N (``counts``, :func:`dflib.data.batching.plane_counts`) are never batched together."""
    if counts is not None and len(set(counts)) > 1:
        from dflib.data.batching import bucketed_batches

        return bucketed_batches(counts, cfg.batch_size, cfg.seed, epoch, rank, world)
    sampler = DistributedSampler(range(n_items), num_replicas=world, rank=rank, shuffle=True, seed=cfg.seed, drop_last=True)
    sampler.set_epoch(epoch)
    order = list(sampler)
    usable = len(order) - len(order) % cfg.batch_size
    return [order[i : i + cfg.batch_size] for i in range(0, usable, cfg.batch_size)]


def _to_device(batch: dict, device: torch.device) -> dict:
    return {k: v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}


# -- model, optimiser, schedule ------------------------------------------------
def build_model(preset: str, seed: int, overrides: dict | None = None) -> torch.nn.Module:
    """A freshly initialised model of a named preset (with some fields changed), its weights drawn from ``seed``."""
    from dflib.models import DualFocus, DualFocusConfig

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return DualFocus(DualFocusConfig.preset(preset).replace(**(overrides or {})))


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
    """Adam(W) over two groups: the surface branch at ``lr * branch_lr_scale``, the rest at ``lr``."""
    cls = torch.optim.AdamW if cfg.optimizer == "adamw" else torch.optim.Adam
    branch = [p for n, p in model.named_parameters() if n.startswith(("gradient_head.", "surface_mix."))]
    ids = {id(p) for p in branch}
    groups = [{"params": [p for p in model.parameters() if id(p) not in ids]}]
    if branch:
        groups.append({"params": branch, "lr": cfg.lr * cfg.branch_lr_scale})
    return cls(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)


def lambda_sv_at(cfg: TrainConfig, step: int) -> float:
    """λ_sv at optimiser step ``step`` (0-based): a linear ramp over ``sv_ramp_steps``, then constant."""
    if cfg.sv_ramp_steps <= 0:
        return cfg.lambda_sv
    return cfg.lambda_sv * min(1.0, (step + 1) / cfg.sv_ramp_steps)


# -- checkpoints -------------------------------------------------------------
def save_checkpoint(path: str | Path, model, cfg: TrainConfig, optimizer=None, scheduler=None, step: int = 0, metrics=None) -> None:
    """Save a checkpoint that ``torch.load(path, weights_only=True)`` can read."""
    model = getattr(model, "module", model)
    state = {
        "format": CHECKPOINT_FORMAT,
        "model": model.state_dict(),
        "model_config": model.config.to_dict(),
        "train_config": cfg.to_dict(),
        "step": int(step),
        "metrics": dict(metrics or {}),
    }
    if optimizer is not None:
        state["optimizer"] = optimizer.state_dict()
    if scheduler is not None:
        state["scheduler"] = scheduler.state_dict()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)  # never leave a half-written checkpoint behind


def read_checkpoint(checkpoint: str | Path) -> dict[str, Any]:
    """The contents of a dflib checkpoint (loaded on the CPU with ``weights_only=True``).

    Raises ``FileNotFoundError`` if there is no such file and ``ValueError``
    (saying the file is not a dflib checkpoint, and what is wrong with it) for a
    corrupt file, a foreign one (any other torch or pickle file) or one of
    another format.
    """
    path = Path(checkpoint)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {str(path)!r} does not exist")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # corrupt, truncated, or a pickle of arbitrary objects
        # torch's own message would advise weights_only=False, i.e. running the file's code: never
        reason = "not a torch file, or a corrupt one" if not _is_zip(path) else "it holds objects other than tensors and plain data"
        raise ValueError(f"checkpoint {str(path)!r} is not a dflib checkpoint ({reason}; {type(exc).__name__})") from None
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        found = state.get("format") if isinstance(state, dict) else type(state).__name__
        raise ValueError(f"checkpoint {str(path)!r} is not a dflib checkpoint (format {found!r}, expected {CHECKPOINT_FORMAT!r})")
    missing = sorted({"model", "model_config"} - set(state))
    if missing:
        raise ValueError(f"checkpoint {str(path)!r} is not a dflib checkpoint (no {', '.join(missing)})")
    return state


def _is_zip(path: Path) -> bool:
    """torch.save writes zip archives; anything else is not a torch file."""
    import zipfile

    return zipfile.is_zipfile(path)


def load_model(checkpoint: str | Path, device: str | torch.device | None = None) -> torch.nn.Module:
    """The model stored in a checkpoint, in eval mode, on ``device`` (default: CUDA when present).

    Raises ``FileNotFoundError`` or ``ValueError`` as :func:`read_checkpoint` does,
    and ``ValueError`` when the stored weights do not fit the stored model config.
    """
    from dflib.models import DualFocus, DualFocusConfig

    state = read_checkpoint(checkpoint)
    try:
        model = DualFocus(DualFocusConfig.from_dict(state["model_config"]))
        model.load_state_dict(state["model"])
    except (TypeError, ValueError, KeyError, RuntimeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(f"checkpoint {str(checkpoint)!r} is not a usable dflib checkpoint ({first})") from None
    return model.to(default_device(device)).eval()


# -- validation ----------------------------------------------------------------
@torch.no_grad()
def validate(model: torch.nn.Module, dataset: Dataset, device: torch.device, protocol: str = "default", batch_size: int = 4) -> dict[str, float]:
    """Mean depth metrics of ``model`` over ``dataset`` (see :func:`dflib.metrics.depth_metrics`)."""
    from dflib.metrics import depth_metrics

    from dflib.data.batching import ordered_batches, plane_counts

    was_training = model.training
    model.eval()
    preds, gts = [], []
    for batch in DataLoader(dataset, batch_sampler=ordered_batches(len(dataset), batch_size, plane_counts(dataset))):
        batch = _to_device(batch, device)
        out = model(batch["stack"], batch["focus"])
        preds.append(out["depth"].float().cpu())
        gts.append(torch.where(batch["mask"], batch["depth"], torch.zeros_like(batch["depth"])).cpu())
    model.train(was_training)
    return depth_metrics(torch.cat(preds), torch.cat(gts), protocol=protocol)


# -- the loop ------------------------------------------------------------------
@dataclass
class TrainResult:
    out_dir: Path
    step: int
    history: list[dict] = field(default_factory=list)
    val_metrics: dict[str, float] = field(default_factory=dict)


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

    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    distributed = world > 1
    if distributed:
        import torch.distributed as dist

        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        if not dist.is_initialized():
            dist.init_process_group(backend)
        device = torch.device(f"cuda:{local_rank}") if torch.cuda.is_available() else torch.device("cpu")
        if device.type == "cuda":
            torch.cuda.set_device(device)
    else:
        device = default_device(cfg.device)
    is_main = rank == 0

    out_dir = Path(cfg.out_dir)
    if is_main:
        out_dir.mkdir(parents=True, exist_ok=True)
        cfg.save(out_dir / "config.json")

    train_set, val_set = build_datasets(cfg)
    model = build_model(cfg.model, cfg.seed, cfg.model_overrides).to(device)
    optimizer = _optimizer(cfg, model)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _lr_lambda(cfg))
    criterion = build_loss(cfg, model)

    step = 0
    ckpt_path = out_dir / "last.pt"
    if resume and ckpt_path.exists():
        state = read_checkpoint(ckpt_path)
        missing = sorted({"optimizer", "scheduler", "step"} - set(state))
        if missing:
            raise ValueError(f"cannot resume from {str(ckpt_path)!r}: it has no {', '.join(missing)} (a weights-only export?)")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        step = int(state["step"])

    net = model
    if distributed:
        net = torch.nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    use_amp = cfg.amp and device.type == "cuda"

    from dflib.data import protocol_for

    # the synthetic data uses FoD500's camera and planes, so it is scored like FoD500
    val_protocol = {"synthetic": "fod500", "diverse": "default"}.get(cfg.data) or protocol_for(cfg.data)
    log_path = out_dir / "log.csv"
    if is_main and step == 0 and log_path.exists():
        log_path.unlink()  # a fresh run starts a fresh log
    history: list[dict] = []
    val_metrics: dict[str, float] = {}
    from dflib.data.batching import plane_counts

    counts = plane_counts(train_set)
    batches_per_epoch = len(_batches_for_epoch(len(train_set), cfg, 0, rank, world, counts))
    if batches_per_epoch == 0:
        raise ValueError(
            f"TrainConfig.batch_size: {cfg.batch_size} is larger than the training set per process "
            f"({len(train_set)} items over {world} process(es))"
        )
    end = cfg.steps if stop_after is None else min(cfg.steps, stop_after)
    bar = tqdm(total=cfg.steps, initial=step, desc=f"train {cfg.model}", disable=not (progress and is_main), unit="step")
    net.train()
    stopping = False
    with _stop_signals() as stop:
        while step < end and not stopping:
            epoch, offset = divmod(step, batches_per_epoch)
            batches = _batches_for_epoch(len(train_set), cfg, epoch, rank, world, counts)[offset:]
            if hasattr(train_set, "set_epoch"):
                train_set.set_epoch(epoch)  # per-epoch augmentation seeds of the real datasets
            loader = DataLoader(train_set, batch_sampler=batches, num_workers=cfg.num_workers)
            for batch in loader:
                if step >= end:
                    break
                batch = _to_device(batch, device)
                with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=use_amp):
                    out = net(batch["stack"], batch["focus"])
                terms = criterion(out, batch["depth"], batch["focus"], batch["mask"], lambda_sv=lambda_sv_at(cfg, step))
                optimizer.zero_grad(set_to_none=True)
                terms["total"].backward()
                if cfg.max_grad_norm > 0:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
                optimizer.step()
                scheduler.step()
                step += 1
                bar.update(1)
                row = None
                if step % cfg.log_every == 0 or step == end:
                    row = {"step": step, "lr": scheduler.get_last_lr()[0], **{k: float(v.detach()) for k, v in terms.items()}}
                    bar.set_postfix({k: f"{v:.4g}" for k, v in row.items() if k not in ("step", "lr")})
                if val_set is not None and is_main and (step % cfg.val_every == 0 or step == cfg.steps):
                    val_metrics = validate(model, val_set, device, protocol=val_protocol)
                    row = row or {"step": step, "lr": scheduler.get_last_lr()[0], **{k: float(v.detach()) for k, v in terms.items()}}
                    row.update({f"val_{k}": v for k, v in val_metrics.items()})
                    if model.config.surface_branch:  # what the surfaces have learned so far (dflib.diagnostics)
                        from dflib.diagnostics import dataset_diagnostics

                        diag = dataset_diagnostics(model, val_set, items=len(val_set), batch_size=cfg.batch_size,
                                                   loss=criterion)
                        row.update({f"diag_{k}": v for k, v in diag.items()})
                if row is not None and is_main:
                    history.append(row)
                    _append_csv(log_path, row)
                    if on_log is not None:
                        on_log(row)
                stopping = stop.agreed(distributed)  # every process stops after the same step
                if is_main and (step % cfg.ckpt_every == 0 or step == end or stopping):
                    save_checkpoint(ckpt_path, model, cfg, optimizer, scheduler, step, val_metrics)
                if stopping:
                    break
    bar.close()
    if distributed:
        dist.destroy_process_group()
    if stopping and step < end:
        raise TrainingInterrupted(stop.signum, step, ckpt_path)
    if is_main and step == cfg.steps:
        (out_dir / "final_metrics.json").write_text(json.dumps({"step": step, "val": val_metrics}, indent=2))
    return TrainResult(out_dir, step, history, val_metrics)


class TrainingInterrupted(KeyboardInterrupt):
    """Training was stopped by SIGINT (Ctrl-C) or SIGTERM (e.g. a cluster's
    pre-emption) after ``step`` optimiser steps, with ``checkpoint`` saved there;
    ``train(cfg, resume=True)`` continues bit-for-bit. A ``KeyboardInterrupt``,
    so that it ends a program that does not handle it, like Ctrl-C does."""

    def __init__(self, signum: int, step: int, checkpoint: Path) -> None:
        self.signum, self.step, self.checkpoint = signum, step, Path(checkpoint)
        super().__init__(f"training stopped by {signal.Signals(signum).name} at step {step}; saved {checkpoint}")


class _StopRequest:
    """The first stop signal received, if any (set by the handlers of :func:`_stop_signals`)."""

    def __init__(self) -> None:
        self.signum: int | None = None

    def agreed(self, distributed: bool) -> bool:
        """Whether to stop now: this process got a signal, or (under DDP) any process did."""
        if not distributed:
            return self.signum is not None
        import torch.distributed as dist

        flag = torch.tensor([-1 if self.signum is None else self.signum], dtype=torch.int64)
        if dist.get_backend() == "nccl":
            flag = flag.cuda()
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        if self.signum is None and int(flag) >= 0:
            self.signum = int(flag)
        return self.signum is not None


@contextmanager
def _stop_signals() -> Iterator[_StopRequest]:
    """While the block runs, SIGINT and SIGTERM only record a stop request (the loop
    then checkpoints at the step it reached and stops); the previous handlers are
    restored afterwards. Outside the main thread, where Python cannot set signal
    handlers, nothing changes."""
    request = _StopRequest()
    if threading.current_thread() is not threading.main_thread():
        yield request
        return

    def handler(signum, frame):
        if request.signum is None:
            request.signum = signum

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield request
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _append_csv(path: Path, row: dict) -> None:
    """Append one row of :data:`LOG_COLUMNS` (header written with the first row)."""
    new = not path.exists()
    with path.open("a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=LOG_COLUMNS, restval="")
        if new:
            writer.writeheader()
        writer.writerow(row)
