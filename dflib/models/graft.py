"""Grafting a surface branch onto a trained baseline: DualFocus that starts as the DFV network it came from.

A DualFocus model and the DFV-style baseline of the same size share every layer except the surface branch
(gradient head, surface mix) and the decoder's first convolution, which in DualFocus reads V* and the C2
surfaces per plane (``[Cout, Cv + C2, 3, 3, 3]``, V*'s slice first) where DFV's reads V* alone
(``[Cout, Cv, 3, 3, 3]``). :func:`graft_surface_branch` copies the shared weights, puts the baseline's first
convolution in the V* slice and zeros in the surface slice, and leaves the branch as initialised. With the
surface slice zero the decoder ignores the surfaces, so the grafted model predicts what the baseline predicts
(to rounding) until training moves that slice: whatever the branch then changes, it changes on top of a
trained V* pathway instead of alongside an untrained one.
"""

from __future__ import annotations

import dataclasses

import torch

from dflib.models.dualfocus import DualFocus

__all__ = ["BRANCH_FIELDS", "graft_surface_branch"]

#: DualFocusConfig fields that configure only the surface branch (the baseline's values of these are unused)
BRANCH_FIELDS = ("surface_branch", "surface_channels", "head_width", "surface_units", "head_isolation",
                 "head_context", "surface_norm", "surface_backward_gain", "surface_dropout",
                 "surface_to_decoder", "baseline_init", "surface_two_path")

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
