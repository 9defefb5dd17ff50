"""A training run as data: :class:`TrainConfig` and the recipes shipped with dflib.

A run is fully described by a :class:`TrainConfig`, saved as ``config.json``
next to the run and read back by ``dflib train --config run.json --resume``.
Every training recipe (the embedded tiny runs, the DFV baselines at the same
budget, the paper-size run, ...) is a YAML file in ``dflib/recipes/``, written
once and loaded with :meth:`TrainConfig.recipe`:

>>> cfg = TrainConfig.recipe("tiny_dfv", steps=10)
>>> cfg.model, cfg.lambda_sv, cfg.steps
('dfv_tiny', 0.0, 10)
>>> "paper_dualfocus" in recipes()
True
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import Any

from dflib.models.config import PRESETS as MODEL_PRESETS

__all__ = ["TrainConfig", "recipes"]


@dataclass
class TrainConfig:
    """Everything a training run depends on.

    Units: ``size`` in pixels (H, W); ``lr`` per step; the loss weights are the
    paper's λ_sv and λ_fv (METHOD.md section 5).
    """

    model: str = "tiny"  #: preset of :class:`dflib.models.DualFocusConfig`
    data: str = "synthetic"  #: synthetic, diverse, or a benchmark of :data:`dflib.data.DATASETS` (fod500, ddff12, nyu, ...)
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
    #: start from these weights (fine-tuning): a checkpoint file or a shipped model name (``dualfocus_mid``, …);
    #: its model must be the one this run builds (``model`` with ``model_overrides``)
    init: str | None = None
    #: with ``init`` a model without the surface branch (DFV-style) and ``model`` one with it: graft the branch
    #: onto it (:func:`dflib.models.graft.graft_surface_branch`: shared weights copied, the decoder's surface
    #: inputs zeroed, so training starts from the baseline's predictions)
    init_graft: bool = False
    #: a probe (issue 12): copy the 2-D feature encoder of this checkpoint (or shipped name) into the run's model
    #: and freeze it, so only the rest trains (:func:`dflib.models.graft.freeze_encoder_from`)
    probe_encoder: str | None = None
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
        from dflib.data import DATASETS

        self.size = tuple(int(s) for s in self.size)  # JSON gives lists
        checks = {
            "model": self.model in MODEL_PRESETS,
            "data": self.data in ("synthetic", "diverse") or self.data in DATASETS,
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
            "init": self.init is None or (isinstance(self.init, str) and self.init != ""),
            "init_graft": isinstance(self.init_graft, bool),
            "probe_encoder": self.probe_encoder is None or (isinstance(self.probe_encoder, str) and self.probe_encoder != ""),
        }
        expected = {
            "model": f"one of {MODEL_PRESETS}",
            "data": f"synthetic, diverse or one of {sorted(DATASETS)}",
            "size": "(H, W) with both >= 16",
            "optimizer": "adam or adamw",
            "schedule": "cosine or constant",
            "init": "None, a checkpoint file or a shipped model name",
            "init_graft": "a bool",
            "probe_encoder": "None, a checkpoint file or a shipped model name",
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
    return sorted(p.name[:-5] for p in (files("dflib") / "recipes").iterdir() if p.name.endswith(".yaml"))
