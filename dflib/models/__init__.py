"""DualFocus and its baselines.

``DualFocus(config)`` with presets ``DualFocusConfig.tiny()``, ``.paper()``,
``.dfv_tiny()``/``.dfv()`` (DFV-style: no surface branch) and
``.plain_tiny()``/``.plain()`` (no focal differences either).
``load_pretrained(name)`` loads a shipped checkpoint (``"dualfocus"``, ``"dfv"``, ``"dualfocus_tiny"``, …).
"""

from dflib.models.config import DualFocusConfig
from dflib.models.dualfocus import DualFocus, check_focus, focal_difference_volume, focus_readout
from dflib.models.pretrained import load_pretrained, pretrained_names

__all__ = ["DualFocus", "DualFocusConfig", "check_focus", "focal_difference_volume", "focus_readout",
           "load_pretrained", "pretrained_names"]
