"""Grafting a surface branch onto a trained baseline: DualFocus that starts as the DFV network it came from.

A DualFocus model and the DFV-style baseline of the same size share every layer except the surface branch
(gradient head, surface mix) and the decoder's first convolution, which in DualFocus reads V* and the C2
surfaces per plane (``[Cout, Cv + C2, 3, 3, 3]``, V*'s slice first) where DFV's reads V* alone
(``[Cout, Cv, 3, 3, 3]``). :func:`graft_surface_branch` copies the shared weights, puts the baseline's first
convolution in the V* slice and zeros in the surface slice, and leaves the branch as initialised. With the
surface slice zero the decoder ignores the surfaces, so the grafted model predicts what the baseline predicts
(to rounding) until training moves that slice: whatever the branch then changes, it changes on top of a
trained V* pathway instead of alongside an untrained one.

:func:`freeze_encoder_from` is the converse transplant, a *probe*: a fresh network gets a trained run's 2-D
feature encoder (the layers that make V; V* has no weights of its own), frozen, so that training it measures how
well depth can be read from that run's V* by a decoder that never read surfaces (the ladder's ``--probe``).
"""

from __future__ import annotations

import dataclasses

import torch

from dflib.models.dualfocus import DualFocus

__all__ = ["BRANCH_FIELDS", "ENCODER_FIELDS", "freeze_encoder_from", "graft_surface_branch"]

#: DualFocusConfig fields that configure only the surface branch (the baseline's values of these are unused)
BRANCH_FIELDS = ("surface_branch", "surface_channels", "head_width", "surface_units", "head_isolation",
                 "head_context", "surface_norm", "surface_backward_gain", "surface_dropout",
                 "surface_to_decoder", "baseline_init", "surface_two_path", "blind_encoder")

#: DualFocusConfig fields that shape the 2-D feature encoder (what makes the focal volume V)
ENCODER_FIELDS = ("in_channels", "stem_width", "stem_kernel", "encoder_widths", "encoder_blocks",
                  "feature_channels", "feature_stride", "norm")

_FIRST_CONV = "decoder.down.0.0.0.weight"


def graft_surface_branch(model: DualFocus, baseline: DualFocus) -> DualFocus:
    """Load ``baseline``'s weights into ``model`` (in place) and zero the decoder's surface inputs.

    Args:
        model: a DualFocus with the surface branch (``config.surface_branch``), freshly initialised.
        baseline: a trained model without it whose config equals ``model``'s outside :data:`BRANCH_FIELDS`.

    Returns:
        ``model``: every shared parameter and buffer copied from ``baseline``; the decoder's first convolution
        ``[Cout, Cv + C2, 3, 3, 3]`` holds the baseline's ``[Cout, Cv, 3, 3, 3]`` in its V* slice and zeros in
        its surface slice; the gradient head and surface mix keep ``model``'s initialisation.

    Raises:
        ValueError: ``model`` has no surface branch, ``baseline`` has one, or they differ elsewhere.
    """
    if not isinstance(model, DualFocus) or not isinstance(baseline, DualFocus):
        raise TypeError("model and baseline must be DualFocus networks")
    if not model.config.surface_branch:
        raise ValueError("graft_surface_branch: model has no surface branch to graft (config.surface_branch False)")
    if baseline.config.surface_branch:
        raise ValueError("graft_surface_branch: baseline already has a surface branch; load it as it is instead")
    shared = {f.name for f in dataclasses.fields(model.config)} - set(BRANCH_FIELDS)
    differ = sorted(n for n in shared if getattr(model.config, n) != getattr(baseline.config, n))
    if differ:
        raise ValueError("graft_surface_branch: model and baseline differ outside the surface branch in "
                         + ", ".join(f"{n} ({getattr(model.config, n)!r} vs {getattr(baseline.config, n)!r})"
                                     for n in differ))
    src = baseline.state_dict()
    state = model.state_dict()
    with torch.no_grad():
        for name, value in src.items():
            if name == _FIRST_CONV:
                w = state[name]
                w.zero_()
                w[:, : value.shape[1]] = value
            else:
                state[name].copy_(value)
    return model


def freeze_encoder_from(model: DualFocus, source: DualFocus) -> DualFocus:
    """Copy ``source``'s feature encoder into ``model`` (in place) and freeze it (``requires_grad`` off).

    Args:
        model: any DualFocus network (usually a fresh baseline, the probe's reader).
        source: a trained network whose config equals ``model``'s in :data:`ENCODER_FIELDS`.

    Returns:
        ``model``, whose ``encoder`` holds ``source``'s weights and no longer trains; the rest is untouched.

    Raises:
        ValueError: the encoders differ in shape, or they use batch normalisation (whose running statistics
            would still move in training mode, so the encoder would not stay frozen).
    """
    if not isinstance(model, DualFocus) or not isinstance(source, DualFocus):
        raise TypeError("model and source must be DualFocus networks")
    differ = [n for n in ENCODER_FIELDS if getattr(model.config, n) != getattr(source.config, n)]
    if differ:
        raise ValueError("freeze_encoder_from: the encoders differ in "
                         + ", ".join(f"{n} ({getattr(model.config, n)!r} vs {getattr(source.config, n)!r})"
                                     for n in differ))
    if model.config.norm == "batch":
        raise ValueError("freeze_encoder_from: a batch-normalised encoder would keep updating its running statistics "
                         "in training mode; probe a group-normalised (or unnormalised) one")
    model.encoder.load_state_dict(source.encoder.state_dict())
    model.encoder.requires_grad_(False)
    return model
