"""DualFocus and its baselines.

``DualFocus(config)`` with presets ``DualFocusConfig.tiny()``, ``.paper()``,
``.dfv_tiny()``/``.dfv()`` (DFV-style: no surface branch) and
``.plain_tiny()``/``.plain()`` (no focal differences either).
"""

from dflib.models.config import DualFocusConfig
from dflib.models.dualfocus import DualFocus, check_focus, focal_difference_volume, focus_readout

__all__ = ["DualFocus", "DualFocusConfig", "check_focus", "focal_difference_volume", "focus_readout"]
