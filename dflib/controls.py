"""Controls of the notebook explorers (:class:`dflib.explorers.Explorer`) and the static mode.

A control is a frozen dataclass naming one argument of a plot function, its
label, default and the values it may take; ``$DFLIB_STATIC_EXPLORERS``
(:func:`static_explorers`) makes explorers pre-render every value as HTML.

>>> c = FloatControl("focus_m", "focus distance (m)", 2.0, 0.5, 4.0, 0.5)
>>> c.static_values(8), c.snap(1.3)
([0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0], 1.5)
"""

from __future__ import annotations

import math
import numbers
import os
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator, Union

import numpy as np

__all__ = ["STATIC_ENV", "ChoiceControl", "Control", "FloatControl", "IntControl", "static_explorers", "static_mode"]

#: Environment variable that turns explorers into self-contained, pre-rendered HTML
#: (set by :func:`static_explorers`; the report runner sets it while it executes notebooks,
#: and the notebook kernels it starts inherit it).
STATIC_ENV = "DFLIB_STATIC_EXPLORERS"


def static_mode() -> bool:
    """True when ``$DFLIB_STATIC_EXPLORERS`` is set to ``1``, ``true``, ``yes`` or ``on``."""
    return os.environ.get(STATIC_ENV, "").strip().lower() in ("1", "true", "yes", "on")


@contextmanager
def static_explorers(enabled: bool = True) -> Iterator[None]:
    """Set (or, with ``enabled=False``, unset) ``$DFLIB_STATIC_EXPLORERS`` for the block,
    then restore its previous value.

    Explorers displayed in this process, and in notebook kernels started inside the
    block (they inherit the environment), render static HTML instead of live widgets.
    """
    old = os.environ.get(STATIC_ENV)
    if enabled:
        os.environ[STATIC_ENV] = "1"
    else:
        os.environ.pop(STATIC_ENV, None)
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(STATIC_ENV, None)
        else:
            os.environ[STATIC_ENV] = old


def _decimals(step: float) -> int:
    """Decimal places needed to write multiples of ``step`` (1 → 0, 0.1 → 1, 0.05 → 2)."""
    for d in range(12):
        if abs(round(step, d) - step) <= 1e-12 * max(1.0, abs(step)):
            return d
    return 12


def _check_real(owner: str, attr: str, v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, numbers.Real):
        raise TypeError(f"{owner}: {attr} must be a real number, got {type(v).__name__} ({v!r})")
    if not math.isfinite(float(v)):
        raise ValueError(f"{owner}: {attr} must be finite, got {v!r}")
    return float(v)


@dataclass(frozen=True)
class FloatControl:
    """A float slider whose default ``value`` is exactly on its grid ``min + k * step``.

    A Jupyter front end snaps a slider to that grid as soon as it draws it (the
    FoD500 lens, 2.9 mm, on a 1 mm grid became 3.0 mm), so the figure would show
    another value than the one asked for. On construction the range is therefore
    widened by whole steps to include ``value`` and ``step`` is divided by 10 (at
    most six times) until ``value`` lies on the grid; ``max`` is moved onto the grid.

    Attributes:
        name: keyword argument of the plot function.
        description: label shown beside the slider, with its unit ("focus (m)").
        value, min, max, step: as in ``ipywidgets.FloatSlider``.
        scale: spacing of the values pre-rendered for the static copy: ``"log"``
            (factors of √2 around the default, e.g. one stop of f-number) or
            ``"linear"`` (evenly over the range, the default among them).
    """

    name: str
    description: str
    value: float
    min: float
    max: float
    step: float
    scale: str = "linear"

    def __post_init__(self) -> None:
        owner = f"control {self.name!r}"
        value, lo, hi, step = (_check_real(owner, a, getattr(self, a)) for a in ("value", "min", "max", "step"))
        if step <= 0 or not lo < hi:
            raise ValueError(f"{owner}: need min < max and step > 0, got min={lo}, max={hi}, step={step}")
        if self.scale not in ("linear", "log"):
            raise ValueError(f"{owner}: scale must be 'linear' or 'log', got {self.scale!r}")
        if self.scale == "log" and value <= 0:
            raise ValueError(f"{owner}: a log-scaled control needs a positive value, got {value}")
        if value < lo:  # widen by whole steps, keeping the grid
            lo -= math.ceil((lo - value) / step - 1e-9) * step
        for _ in range(7):
            if abs(lo + round((value - lo) / step) * step - value) <= 1e-9 * max(1.0, abs(value)):
                break
            step /= 10
        else:
            raise ValueError(f"{owner}: value {self.value!r} is not on any grid {lo:g} + k * step "
                             f"with step down to {step * 10:g}; pass a rounder value")
        d = _decimals(step)
        step, lo = round(step, d), round(lo, d)
        hi = round(lo + math.ceil((max(hi, value) - lo) / step - 1e-9) * step, d)
        object.__setattr__(self, "step", step)
        object.__setattr__(self, "min", lo)
        object.__setattr__(self, "max", hi)
        object.__setattr__(self, "value", self.snap(value))

    @property
    def decimals(self) -> int:
        """Decimal places of the grid (and of the slider's readout)."""
        return _decimals(self.step)

    def snap(self, v: float) -> float:
        """The grid value nearest to ``v`` within ``[min, max]``."""
        v = min(max(float(v), self.min), self.max)
        return round(self.min + round((v - self.min) / self.step) * self.step, self.decimals)

    def format(self, v: float) -> str:
        """``v`` as the readout shows it."""
        return f"{v:.{self.decimals}f}"

    def static_values(self, n: int) -> list[float]:
        """About ``n`` grid values for the static copy, always including ``value``."""
        if self.scale == "log":
            cand = [self.value * 2 ** ((j - n // 2) / 2) for j in range(n)]
        else:
            cand = list(np.linspace(self.min, self.max, n))
            cand[int(np.argmin(np.abs(np.asarray(cand) - self.value)))] = self.value
        return sorted({self.snap(c) for c in cand} | {self.value})

    def widget(self, widgets: Any, style: dict, layout: Any) -> Any:
        """The ``ipywidgets.FloatSlider`` (redraws on release, not while dragging)."""
        return widgets.FloatSlider(value=self.value, min=self.min, max=self.max, step=self.step,
                                   description=self.description, readout_format=f".{self.decimals}f",
                                   continuous_update=False, style=style, layout=layout)


@dataclass(frozen=True)
class IntControl:
    """An integer slider ``min..max`` (step 1), e.g. a plane index or a pixel coordinate.

    Attributes:
        name: keyword argument of the plot function.
        description: label shown beside the slider.
        value, min, max: as in ``ipywidgets.IntSlider``; ``value`` must lie in ``[min, max]``.
    """

    name: str
    description: str
    value: int
    min: int
    max: int

    def __post_init__(self) -> None:
        for a in ("value", "min", "max"):
            v = getattr(self, a)
            if isinstance(v, bool) or not isinstance(v, numbers.Integral):
                raise TypeError(f"control {self.name!r}: {a} must be an integer, got {type(v).__name__} ({v!r})")
            object.__setattr__(self, a, int(v))
        if not self.min <= self.value <= self.max:
            raise ValueError(f"control {self.name!r}: value must be in [{self.min}, {self.max}], got {self.value}")

    def format(self, v: int) -> str:
        """``v`` as the readout shows it."""
        return str(v)

    def static_values(self, n: int) -> list[int]:
        """Every integer when there are at most ``2 n + 2`` of them, else the centres of
        ``n`` equal bins of the range (the default replacing the nearest)."""
        count = self.max - self.min + 1
        if count <= 2 * n + 2:
            return list(range(self.min, self.max + 1))
        cand = [self.min + int((k + 0.5) * count / n) for k in range(n)]
        cand[int(np.argmin([abs(c - self.value) for c in cand]))] = self.value
        return sorted(set(cand))

    def widget(self, widgets: Any, style: dict, layout: Any) -> Any:
        """The ``ipywidgets.IntSlider`` (redraws on release, not while dragging)."""
        return widgets.IntSlider(value=self.value, min=self.min, max=self.max, step=1, description=self.description,
                                 continuous_update=False, style=style, layout=layout)


@dataclass(frozen=True)
class ChoiceControl:
    """A drop-down over ``options`` (strings); ``value`` must be one of them."""

    name: str
    description: str
    value: str
    options: tuple[str, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "options", tuple(self.options))
        if self.value not in self.options:
            raise ValueError(f"control {self.name!r}: value must be one of {list(self.options)}, got {self.value!r}")

    def format(self, v: str) -> str:
        """``v`` as the drop-down shows it."""
        return str(v)

    def static_values(self, n: int) -> list[str]:
        """Every option."""
        return list(self.options)

    def widget(self, widgets: Any, style: dict, layout: Any) -> Any:
        """The ``ipywidgets.Dropdown``."""
        return widgets.Dropdown(options=list(self.options), value=self.value, description=self.description,
                                style=style, layout=layout)


Control = Union[FloatControl, IntControl, ChoiceControl]
