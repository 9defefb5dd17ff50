"""dflib: learned depth from focus, with DualFocus and its baselines.

The flow, in the order the modules meet it::

    RGB-D -> optics (thin lens) -> render (focal stack) -> models (focal volume,
    integrable projection, focus probabilities) -> depth -> metrics -> evaluate

Submodules are imported on use (``import dflib.render``) so that
``import dflib`` stays fast.

numpy or torch: torch on the differentiable path (rendering, integrable
projection, models, losses; any device, float32 by default); numpy float64 for
the classical methods, the metrics and I/O. Every public function takes either
and converts at its edge (:mod:`dflib.checks`: ``as_numpy``, ``as_torch``), so a
caller never converts by hand; inputs are checked with one vocabulary there too
(``check_shape(x, "B N 3 H W", "stack")``, ``check_focus``).
"""

__version__ = "0.1.0"
