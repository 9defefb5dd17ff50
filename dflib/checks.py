"""Input checks and numpy <-> torch conversion, one vocabulary for the whole package (internal).

Shapes are written as in the docstrings, ``"B N 3 H W"``: a number must match
exactly, a name binds to the size it meets (and must agree wherever it appears
again, and with sizes given by keyword), ``*`` is any size and a leading
``...`` any number of leading dimensions. Errors are ``ValueError`` (or
``TypeError``) messages that name the argument, what was expected and what came.

>>> import torch
>>> check_shape(torch.zeros(2, 5, 3, 8, 8), "B N 3 H W", "stack")
{'B': 2, 'N': 5, 'H': 8, 'W': 8}
>>> check_shape(torch.zeros(2, 4), "B N", "focus", N=5)
Traceback (most recent call last):
...
ValueError: focus must have shape [B, N] with N=5, got (2, 4)
>>> check_focus(np.array([0.1, 0.3, 0.2]))
Traceback (most recent call last):
...
ValueError: focus must be strictly monotonic along N (increasing metres or decreasing disparities), got [0.1, 0.3, 0.2]
"""

from __future__ import annotations

from typing import Any, TypeVar

import numpy as np
import torch

__all__ = ["as_numpy", "as_torch", "check_focus", "check_shape"]

Array = TypeVar("Array", np.ndarray, torch.Tensor)


def check_shape(x: Any, spec: str, name: str, types: tuple[type, ...] = (torch.Tensor, np.ndarray),
                **known: int) -> dict[str, int]:
    """Check that ``x`` (an instance of ``types``) has the shape ``spec``; returns the named sizes.

    ``known`` fixes some names (e.g. ``N=5`` to match a stack); a mismatch names them in the message.
    Alternatives are separated by ``|``; the sizes of the first that matches are returned.

    >>> check_shape(np.zeros((3, 4, 5)), "H W 3 | 3 H W", "rgb")
    {'H': 4, 'W': 5}
    >>> check_shape(np.zeros((4, 4)), "H W 3 | 3 H W", "rgb")
    Traceback (most recent call last):
    ...
    ValueError: rgb must have shape [H, W, 3] or [3, H, W], got (4, 4)
    """
    if not isinstance(x, types):
        raise TypeError(f"{name} must be a {' or '.join(_type_name(t) for t in types)}, got {type(x).__name__}")
    shape = tuple(int(s) for s in x.shape)
    alternatives = [alt.split() for alt in spec.split("|")]
    for dims in alternatives:
        sizes = _match(shape, dims, known)
        if sizes is not None:
            return sizes
    names = {d for dims in alternatives for d in dims}
    fixed = ", ".join(f"{k}={v}" for k, v in known.items() if k in names)
    raise ValueError(f"{name} must have shape " + " or ".join(f"[{', '.join(dims)}]" for dims in alternatives)
                     + (f" with {fixed}" if fixed else "") + f", got {shape}")


def _match(shape: tuple[int, ...], dims: list[str], known: dict[str, int]) -> dict[str, int] | None:
    """The named sizes when ``shape`` matches ``dims`` (one alternative of a spec), else None."""
    leading = dims[:1] == ["..."]
    body = dims[1:] if leading else dims
    if len(shape) < len(body) or (not leading and len(shape) != len(body)):
        return None
    sizes: dict[str, int] = {}
    for dim, size in zip(reversed(body), reversed(shape)):
        if dim.isdigit():
            if size != int(dim):
                return None
        elif dim != "*" and size != sizes.setdefault(dim, known.get(dim, size)):
            return None
    return {d: sizes[d] for d in body if d in sizes}


def check_focus(focus: Array, spec: str = "N", name: str = "focus", min_planes: int = 1,
                types: tuple[type, ...] = (torch.Tensor, np.ndarray), **known: int) -> Array:
    """Check focus positions (shape ``spec``, last dimension the planes): finite, at least
    ``min_planes`` planes, strictly monotonic along the planes in every row (increasing metres
    or decreasing disparities). Returns ``focus`` unchanged (numpy or torch as it came).

    >>> check_focus(torch.tensor([[0.1, 0.2], [0.3, 0.2]]), "B N").shape
    torch.Size([2, 2])
    """
    check_shape(focus, spec, name, types, **known)
    n = int(focus.shape[-1])
    if n < min_planes:
        raise ValueError(f"{name} needs N >= {min_planes} focal planes, got N = {n}")
    values = focus.detach().cpu().double().numpy() if isinstance(focus, torch.Tensor) else np.asarray(focus, np.float64)
    if not np.all(np.isfinite(values)):
        raise ValueError(f"{name} must be finite, got {values.tolist()}")
    d = np.diff(values, axis=-1)
    if not np.all(np.all(d > 0, axis=-1) | np.all(d < 0, axis=-1)):
        raise ValueError(f"{name} must be strictly monotonic along N (increasing metres or decreasing disparities), "
                         f"got {values.tolist()}")
    return focus


def as_numpy(x: Any, name: str, dtype: Any = None) -> np.ndarray:
    """A numpy array of a tensor (any device, detached) or an array; anything else is a ``TypeError``.

    ``dtype`` converts (e.g. ``np.float64`` for the classical methods and the metrics).

    >>> as_numpy(torch.ones(2, requires_grad=True), "x", np.float64)
    array([1., 1.])
    """
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    elif not isinstance(x, np.ndarray):
        raise TypeError(f"{name} must be a numpy array or torch tensor, got {type(x).__name__}")
    return x if dtype is None else x.astype(dtype, copy=False)


def as_torch(x: Any, name: str, dtype: torch.dtype | None = None, device: str | torch.device | None = None) -> torch.Tensor:
    """A tensor of an array or a tensor (no copy where none is needed); anything else is a ``TypeError``.

    >>> as_torch(np.zeros((2, 3)), "x", torch.float32).dtype
    torch.float32
    """
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(np.ascontiguousarray(x) if any(st < 0 for st in x.strides) else x)  # torch wraps no reversed view
    elif not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a numpy array or torch tensor, got {type(x).__name__}")
    return x.to(device=device, dtype=dtype)


def _type_name(t: type) -> str:
    return {torch.Tensor: "torch tensor", np.ndarray: "numpy array"}.get(t, t.__name__)
