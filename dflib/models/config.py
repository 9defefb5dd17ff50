"""Configuration dataclass and presets for :class:`dflib.models.DualFocus`.

Presets (parameter counts are checked in ``tests/test_models.py``):

========================  ===========  ==================  ===============
preset                    focal diffs  surface branch      parameters
========================  ===========  ==================  ===============
``tiny()``                on           on                  ~0.2 M (CPU)
``mid()``/``dfv_mid()``   on           on / off            ~1.7 M (long CPU runs)
``paper()``               on           on                  ~27 M (GPU)
``dfv_tiny()``/``dfv()``  on           off                 DFV-style baseline
``plain_tiny()``/``plain()`` off       off                 plain focal volume
========================  ===========  ==================  ===============
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any

_NORMS = ("batch", "group", "none")


@dataclass(frozen=True)
class DualFocusConfig:
    """Every architectural choice of :class:`~dflib.models.DualFocus`.

    Attributes:
        in_channels: colour channels of each focal image (3 for RGB).
        stem_width: channels of the stride-2 stem convolution of the 2-D encoder.
        stem_kernel: kernel size of the stem convolution (7 = ResNet, 3 = tiny).
        encoder_widths: channels of the residual stages; each stage halves the
            resolution, so the encoder's deepest stride is ``2 ** (1 + len)``.
        encoder_blocks: residual basic blocks per stage (ResNet-18: 2, 2, 2, 2).
        feature_channels: C1, channels of the focal volume V (per plane).
        feature_stride: 2 or 4, the focal volume's resolution is 1/stride of the
            input (a top-down path fuses the deeper stages up to this stride).
        focal_differences: build V*_n = [V_n, V_{n+1} - V_n] (METHOD.md §1);
            when off, V* = V (C1 channels, nothing concatenated).
        surface_branch: predict the gradient fields Γ_n, project them onto
            integrable surfaces z*_n and feed them to the decoder (METHOD.md §2).
        surface_channels: C2, surfaces per focal plane.
        head_width: hidden channels of the gradient head.
        decoder_widths: channels of the 3-D encoder-decoder, one entry per level;
            level i > 0 halves H', W' (never N), so any N >= 2 works.
        decoder_convs: 3x3x3 convolutions per level (on the way down and up).
        norm: ``"batch"``, ``"group"`` (batch-size independent) or ``"none"``.

    Surface-branch switches (issue 12; the defaults are the paper-literal
    branch, METHOD.md §2, and each departure is measured in
    ``benchmarks/bench_ablation.py``):

        surface_units: what the surfaces z*_n mean and L_sv supervises:
            ``"depth"`` (units of the focus distances, the paper's formula) or
            ``"planes"`` (fractional focal-plane index u(D*) ∈ [0, N-1], the
            depth clipped to [f_1, f_N] and mapped piecewise-linearly).
        head_isolation: feed the gradient head V*.detach(), so L_sv (and the
            decoder's gradient through the surfaces) never reaches the shared
            encoder.
        head_context: give the gradient head the whole focal context: after
            its first 3x3x3 conv, the mean and max over all N planes are
            concatenated to every plane before a second 3x3x3 conv.
        surface_norm: divide each surface by its RMS over the feature grid
            (per item, plane and channel) before it is fused with V*.
        surface_backward_gain: None for the exact backward pass of the
            projection, or G > 0 to bound its low-frequency gain to G
            (:func:`dflib.integrate.integrable_projection`).
        surface_dropout: in training mode only, the probability that an item's
            surfaces reach the decoder as zeros (all planes and channels at
            once, no rescaling), so that the decoder keeps reading depth from
            V* alone (``docs/ablations.md``: "Does DualFocus-mid's decoder use
            its surfaces?"). 0 (default): off; evaluation never drops.
        surface_to_decoder: False hands the decoder zeros in place of the
            surfaces, in training and evaluation alike: the branch still
            trains (L_sv) and the network keeps DualFocus's shape and
            initialisation, but no surface information reaches the depth
            (the ladder's ``dualfocus_blind`` rung). True (default): as the
            paper.
        baseline_init: start as the DFV-style baseline of the same seed
            (``surface_branch`` off, all else equal): the encoder and the
            decoder draw exactly the baseline's initial weights, the decoder's
            weights on the surfaces start at zero and the gradient head draws
            after them, so at initialisation the depth is the baseline's and
            the surfaces enter only as far as training moves those zeros (a
            zero-initialised fusion; :mod:`dflib.models.graft` does the same
            from a trained baseline). False (default): the layers draw in
            data-flow order and the decoder's first convolution is drawn
            whole, so at the same seed the decoder starts elsewhere than the
            baseline's (the ladder's ``dualfocus_binit`` rung tests it).
        surface_two_path: in training mode only, the decoder runs a second
            time with zeros in place of the surfaces, and the model returns
            that depth as ``depth_blind``; :class:`~dflib.losses.DualFocusLoss`
            adds its depth loss to the total. The V* pathway then also learns
            as in a network that never reads its surfaces (the ladder's
            ``dualfocus_blind`` rung, level with DFV + L_fv), while the
            decoder still learns to read them (the ladder's
            ``dualfocus_twopath`` rung). Evaluation runs one pass.
            Costs one more decoder pass per training step. False (default).
        blind_encoder: with ``surface_two_path``, the shared encoder learns from the blind path alone: in
            training the main path (the one that reads the surfaces) reads V* detached, and the model also
            returns the blind path's focus probabilities as ``prob_blind``, which
            :class:`~dflib.losses.DualFocusLoss` gives the focal constraint L_fv too. With the head isolated
            the encoder then gets exactly the losses of the ladder's ``dualfocus_blind`` rung, while the
            decoder (trained by both paths) still learns to read the surfaces (rung
            ``dualfocus_blindenc``). Evaluation is unchanged. False (default).
    """

    in_channels: int = 3
    stem_width: int = 16
    stem_kernel: int = 3
    encoder_widths: tuple[int, ...] = (16, 32, 64)
    encoder_blocks: tuple[int, ...] = (1, 1, 1)
    feature_channels: int = 16
    feature_stride: int = 4
    focal_differences: bool = True
    surface_branch: bool = True
    surface_channels: int = 4
    head_width: int = 16
    decoder_widths: tuple[int, ...] = (16, 32)
    decoder_convs: int = 1
    norm: str = "group"
    surface_units: str = "depth"
    head_isolation: bool = False
    head_context: bool = False
    surface_norm: bool = False
    surface_backward_gain: float | None = None
    surface_dropout: float = 0.0
    surface_to_decoder: bool = True
    baseline_init: bool = False
    surface_two_path: bool = False
    blind_encoder: bool = False

    def __post_init__(self) -> None:
        # Accept lists (e.g. from JSON/YAML) but store tuples (hashable, frozen).
        for name in ("encoder_widths", "encoder_blocks", "decoder_widths"):
            value = getattr(self, name)
            if isinstance(value, list):
                object.__setattr__(self, name, tuple(value))
        self.validate()

    # ------------------------------------------------------------------ checks
    def validate(self) -> None:
        """Raise ``ValueError`` naming the first invalid field."""

        def positive_int(name: str) -> None:
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"DualFocusConfig.{name} must be a positive int, got {v!r}")

        for name in ("in_channels", "stem_width", "stem_kernel", "feature_channels",
                     "surface_channels", "head_width", "decoder_convs"):
            positive_int(name)
        if self.stem_kernel % 2 == 0:
            raise ValueError(f"DualFocusConfig.stem_kernel must be odd, got {self.stem_kernel}")
        for name in ("encoder_widths", "encoder_blocks", "decoder_widths"):
            v = getattr(self, name)
            if (not isinstance(v, tuple) or len(v) == 0
                    or any(isinstance(x, bool) or not isinstance(x, int) or x < 1 for x in v)):
                raise ValueError(
                    f"DualFocusConfig.{name} must be a non-empty tuple of positive ints, got {v!r}")
        if len(self.encoder_blocks) != len(self.encoder_widths):
            raise ValueError(
                "DualFocusConfig.encoder_blocks must have one entry per encoder stage "
                f"({len(self.encoder_widths)}), got {self.encoder_blocks!r}")
        if self.feature_stride not in (2, 4):
            raise ValueError(
                f"DualFocusConfig.feature_stride must be 2 or 4, got {self.feature_stride!r}")
        if self.norm not in _NORMS:
            raise ValueError(f"DualFocusConfig.norm must be one of {_NORMS}, got {self.norm!r}")
        if self.surface_units not in ("depth", "planes"):
            raise ValueError(f"DualFocusConfig.surface_units must be 'depth' or 'planes', got {self.surface_units!r}")
        g = self.surface_backward_gain
        if g is not None and (isinstance(g, bool) or not isinstance(g, (int, float)) or not 0 < g < float("inf")):
            raise ValueError(f"DualFocusConfig.surface_backward_gain must be None or a number > 0, got {g!r}")
        p = self.surface_dropout
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 <= p < 1:
            raise ValueError(f"DualFocusConfig.surface_dropout must be a number in [0, 1), got {p!r}")
        for name in ("focal_differences", "surface_branch", "head_isolation", "head_context", "surface_norm",
                     "surface_to_decoder", "baseline_init", "surface_two_path", "blind_encoder"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"DualFocusConfig.{name} must be a bool, got {getattr(self, name)!r}")
        if self.blind_encoder and not self.surface_two_path:
            raise ValueError("DualFocusConfig.blind_encoder needs surface_two_path: the encoder learns from the "
                             "blind path, which only two-path training runs")

    # -------------------------------------------------------------- derived
    @property
    def encoder_stride(self) -> int:
        """Stride of the deepest encoder stage (stem 2 x 2 per stage)."""
        return 2 ** (1 + len(self.encoder_widths))

    @property
    def pad_multiple(self) -> int:
        """Input H, W are padded (replicate, bottom/right) to a multiple of this."""
        return max(self.encoder_stride, self.feature_stride * 2 ** (len(self.decoder_widths) - 1))

    @property
    def volume_channels(self) -> int:
        """Channels of V* (2 C1 with focal differences, else C1)."""
        return 2 * self.feature_channels if self.focal_differences else self.feature_channels

    # ------------------------------------------------------------ (de)serialise
    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON dict (tuples become lists)."""
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "DualFocusConfig":
        """Inverse of :meth:`to_dict`; unknown keys raise ``ValueError``."""
        if not isinstance(d, dict):
            raise TypeError(f"from_dict expects a dict, got {type(d).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"DualFocusConfig.from_dict: unknown field(s) {unknown}")
        return cls(**d)

    def replace(self, **changes: Any) -> "DualFocusConfig":
        """A copy with some fields changed (validated)."""
        return replace(self, **changes)

    # ---------------------------------------------------------------- presets
    @classmethod
    def tiny(cls) -> "DualFocusConfig":
        """Well under 1 M parameters; trains on a 2-core CPU in minutes."""
        return cls()

    @classmethod
    def paper(cls) -> "DualFocusConfig":
        """About 27 M parameters (the paper's size): ResNet-18 trunk + 3-D decoder."""
        return cls(
            stem_width=64,
            stem_kernel=7,
            encoder_widths=(64, 128, 256, 512),
            encoder_blocks=(2, 2, 2, 2),
            feature_channels=64,
            feature_stride=4,
            surface_channels=8,
            head_width=64,
            decoder_widths=(64, 128, 256, 288),
            decoder_convs=2,
            norm="batch",
        )

    @classmethod
    def mid(cls) -> "DualFocusConfig":
        """About 1.7 M parameters: between ``tiny`` and ``paper``, for long CPU runs (10 k+ steps) or a small GPU.

        The parameters sit in the deep, low-resolution stages; the full-resolution stem and the
        3-D decoder (which runs on every plane) stay narrow, so a training step costs about 3x
        ``tiny``'s and a 5 x 480 x 640 forward pass about 1.4x (2 CPU threads). An earlier
        2.25 M draft with a 32-wide stem and two convolutions per decoder level cost 2.7x
        this one's forward pass for 30 % more parameters.
        """
        return cls(
            stem_width=16,
            encoder_widths=(24, 64, 192),
            encoder_blocks=(1, 2, 2),
            feature_channels=24,
            head_width=24,
            decoder_widths=(24, 48, 96),
            decoder_convs=1,
        )

    @classmethod
    def dfv_mid(cls) -> "DualFocusConfig":
        """DFV-style baseline at the ``mid`` size."""
        return cls.mid().replace(surface_branch=False)

    @classmethod
    def dfv_tiny(cls) -> "DualFocusConfig":
        """DFV-style baseline (focal differences, no surface branch), tiny size."""
        return cls.tiny().replace(surface_branch=False)

    @classmethod
    def dfv(cls) -> "DualFocusConfig":
        """DFV-style baseline at paper size."""
        return cls.paper().replace(surface_branch=False)

    @classmethod
    def plain_tiny(cls) -> "DualFocusConfig":
        """Plain focal-volume baseline (no focal differences, no surfaces), tiny."""
        return cls.tiny().replace(surface_branch=False, focal_differences=False)

    @classmethod
    def plain(cls) -> "DualFocusConfig":
        """Plain focal-volume baseline at paper size."""
        return cls.paper().replace(surface_branch=False, focal_differences=False)

    @classmethod
    def preset(cls, name: str) -> "DualFocusConfig":
        """A preset by name, one of :data:`PRESETS`.

        >>> DualFocusConfig.preset("dfv_tiny") == DualFocusConfig.tiny().replace(surface_branch=False)
        True
        """
        if name not in PRESETS:
            raise ValueError(f"preset name must be one of {PRESETS}, got {name!r}")
        return getattr(cls, name)()


#: every preset name :meth:`DualFocusConfig.preset` knows
PRESETS: tuple[str, ...] = ("tiny", "mid", "paper", "dfv_tiny", "dfv_mid", "dfv", "plain_tiny", "plain")
