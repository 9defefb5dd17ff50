"""dflib: learned depth from focus, with DualFocus and its baselines.

The flow, in the order the modules meet it::

    RGB-D -> optics (thin lens) -> render (focal stack) -> models (focal volume,
    integrable projection, focus probabilities) -> depth -> metrics -> evaluate

Submodules are imported on use (``import dflib.render``) so that
``import dflib`` stays fast.
"""

__version__ = "0.1.0"
