"""The DualFocus network (METHOD.md §1–§4) and its DFV-style baselines.

Data flow for a stack ``[B, N, 3, H, W]`` with focus distances ``[B, N]``:

1. The stack is padded (replicate, bottom/right) to a multiple of
   ``config.pad_multiple`` and every focal image goes through the shared 2-D
   encoder (N folded into the batch) -> focal volume V ``[B, C1, N, H', W']``,
   with H' = H_pad / feature_stride.
2. Focal differences (§1): V*_n = [V_n, V_{n+1} - V_n] for n < N and
   V*_N = [V_N, V_N - V_{N-1}] -> ``[B, 2 C1, N, H', W']``. When
   ``focal_differences`` is off, V* = V (C1 channels; nothing concatenated).
3. Surface branch (§2, when ``surface_branch`` is on): a gradient head predicts
   Γ ``[B, N, C2, 2, H', W']``; :func:`dflib.integrate.integrable_projection_full`
   projects all B·N·C2 fields in one batched call onto integrable surfaces
   z* ``[B, N, C2, H', W']`` (zero-mean, not otherwise normalised: L_sv gives
   them its units, ``config.surface_units``: depth, or focal-plane index).
   The projection runs in float32 even under mixed-precision autocast. A learned 1x1 map without bias (``surface_mix``) mixes
   the C2 surfaces of each plane into one surface z̄_n ``[B, N, H', W']``; since
   the map is linear it commutes with the projection, so z̄_n is itself the
   least-squares integrable surface of the mixed gradient field, and
   θ_grad(z*_n) := P z̄_n (forward differences) is what L_sv supervises.
   The C2 surfaces are concatenated with V* as features (divided by their
   RMS first when ``config.surface_norm``; the decoder's first convolution
   takes the two parts separately, which is the same map). Further switches, all off by
   default (the paper-literal branch): ``head_isolation`` (the head reads
   V*.detach()), ``head_context`` (the head sees all N planes) and
   ``surface_backward_gain`` (a bounded backward pass of the projection);
   see :class:`~dflib.models.config.DualFocusConfig`.
4. A 3-D encoder-decoder turns the volume into logits ``[B, N, H', W']``,
   upsampled bilinearly to the padded input size and cropped to ``[H, W]``;
   p = softmax over n (§4).
5. Readout (:func:`focus_readout`): depth D̂ = Σ p_n f_n, uncertainty
   σ = sqrt(Σ p_n (D̂ - f_n)²) and all-in-focus image Σ p_n I_n.

The network never sees the focus distances: they only enter the readout, so
metres (increasing) and disparities (decreasing) work alike, and the planes'
order is all the network assumes (a stack must be sorted by focus).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from dflib import checks
from dflib.integrate import forward_differences, integrable_projection_full
from dflib.models.blocks import FeatureEncoder, GradientHead, VolumeDecoder, channels_last_on_cpu
from dflib.models.config import DualFocusConfig


def check_focus(focus: torch.Tensor, batch: int | None = None, planes: int | None = None) -> None:
    """Validate focus distances ``[B, N]`` (to match a stack of ``batch`` x ``planes``): finite,
    N >= 2, strictly monotonic along N in each row (increasing metres or decreasing disparities)."""
    known = {k: v for k, v in (("B", batch), ("N", planes)) if v is not None}
    checks.check_focus(focus, "B N", "focus", min_planes=2, types=(torch.Tensor,), **known)


def focus_readout(prob: torch.Tensor, focus: torch.Tensor, stack: torch.Tensor | None = None
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Expectation readout of a focus distribution (METHOD.md §4).

    Args:
        prob: ``[B, N, H, W]`` focus probability (sums to 1 over N).
        focus: ``[B, N]`` focus distances (metres, or disparities).
        stack: optional ``[B, N, C, H, W]`` focal stack.

    Returns:
        depth ``[B, 1, H, W]`` = Σ p_n f_n (units of ``focus``),
        sigma ``[B, 1, H, W]`` = sqrt(Σ p_n (depth - f_n)²) (exactly 0 for a
        one-hot p; the square root is guarded so its gradient stays finite),
        aif ``[B, C, H, W]`` = Σ p_n I_n, or None without ``stack``.
    """
    if prob.dim() != 4:
        raise ValueError(f"prob must have shape [B, N, H, W], got {tuple(prob.shape)}")
    if focus.shape != prob.shape[:2]:
        raise ValueError(
            f"focus must have shape [B, N] = {tuple(prob.shape[:2])}, got {tuple(focus.shape)}")
    f = focus.to(prob.dtype)[:, :, None, None]
    depth = (prob * f).sum(dim=1, keepdim=True)
    var = (prob * (depth - f) ** 2).sum(dim=1, keepdim=True)
    pos = var > 0
    sigma = torch.where(pos, torch.sqrt(torch.where(pos, var, torch.ones_like(var))),
                        torch.zeros_like(var))
    aif = None
    if stack is not None:
        if stack.dim() != 5 or stack.shape[:2] != prob.shape[:2] or stack.shape[-2:] != prob.shape[-2:]:
            raise ValueError(
                f"stack must have shape [B, N, C, H, W] matching prob {tuple(prob.shape)}, "
                f"got {tuple(stack.shape)}")
        aif = (prob.unsqueeze(2) * stack.to(prob.dtype)).sum(dim=1)
    return depth, sigma, aif


def focal_difference_volume(v: torch.Tensor) -> torch.Tensor:
    """V ``[B, C, N, H, W]`` -> V* ``[B, 2C, N, H, W]`` with
    V*_n = [V_n, V_{n+1} - V_n] (n < N) and V*_N = [V_N, V_N - V_{N-1}]."""
    fwd = v[:, :, 1:] - v[:, :, :-1]  # [B, C, N-1, H, W]
    diff = torch.cat([fwd, fwd[:, :, -1:]], dim=2)
    return torch.cat([v, diff], dim=1)


class DualFocus(nn.Module):
    """DualFocus depth-from-focus network; with ``surface_branch=False`` the
    DFV-style baseline, with ``focal_differences=False`` too the plain
    focal-volume baseline. See the module docstring for the data flow.

    Example::

        model = DualFocus(DualFocusConfig.tiny())
        out = model(stack, focus)   # stack [B,N,3,H,W] in [0,1], focus [B,N]
        out["depth"]                # [B,1,H,W], units of focus
    """

    def __init__(self, config: DualFocusConfig | None = None) -> None:
        super().__init__()
        if config is None:
            config = DualFocusConfig.tiny()
        if not isinstance(config, DualFocusConfig):
            raise TypeError(f"config must be a DualFocusConfig, got {type(config).__name__}")
        config.validate()
        self.config = config
        c = config
        self.encoder = FeatureEncoder(c.in_channels, c.stem_width, c.stem_kernel, c.encoder_widths,
                                      c.encoder_blocks, c.feature_channels, c.feature_stride, c.norm)
        self.gradient_head: GradientHead | None = None
        self.surface_mix: nn.Conv2d | None = None
        c2 = c.surface_channels if c.surface_branch else 0
        decoder_first = c.surface_branch and c.baseline_init  # the baseline's draws, then zero surface inputs
        if decoder_first:
            self.decoder = VolumeDecoder(c.volume_channels, c.decoder_widths, c.decoder_convs, c.norm)
            self.decoder.add_zero_inputs(c2)
        if c.surface_branch:
            self.gradient_head = GradientHead(c.volume_channels, c.head_width, c2, c.norm, context=c.head_context)
            self.surface_mix = nn.Conv2d(c2, 1, 1, bias=False)
            nn.init.constant_(self.surface_mix.weight, 1.0 / c2)
        if not decoder_first:
            self.decoder = VolumeDecoder(c.volume_channels + c2, c.decoder_widths, c.decoder_convs, c.norm)

    def num_parameters(self, trainable_only: bool = True) -> int:
        """Number of (trainable) parameters."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not trainable_only)

    def _check_inputs(self, stack: torch.Tensor, focus: torch.Tensor) -> None:
        checks.check_shape(stack, f"B N {self.config.in_channels} H W", "stack", types=(torch.Tensor,))
        b, n = stack.shape[:2]
        if n < 2:
            raise ValueError(f"stack needs N >= 2 focal planes, got N = {n}")
        if stack.shape[0] == 0 or stack.shape[-1] == 0 or stack.shape[-2] == 0:
            raise ValueError(f"stack must be non-empty, got {tuple(stack.shape)}")
        if not stack.is_floating_point():
            raise TypeError(f"stack must be a floating tensor (values in [0, 1]), got {stack.dtype}")
        check_focus(focus, b, n)

    def forward(self, stack: torch.Tensor, focus: torch.Tensor) -> dict[str, Any]:
        """Predict depth from a focal stack.

        Args:
            stack: ``[B, N, C, H, W]`` focal images in [0, 1], sorted by focus;
                any N >= 2, any H, W.
            focus: ``[B, N]`` focus distances, strictly monotonic per row
                (metres increasing, or disparities decreasing).

        Returns:
            dict with ``depth [B,1,H,W]``, ``prob [B,N,H,W]``, ``logits [B,N,H,W]``,
            ``sigma [B,1,H,W]``, ``aif [B,C,H,W]``, in training mode with ``surface_two_path`` also
            ``depth_blind [B,1,H,W]`` (the depth read with zeros in place of the surfaces; with ``blind_encoder``
            also its probabilities ``prob_blind [B,N,H,W]``), and with the surface branch
            on also ``surface [B,N,H',W']`` (z̄_n, zero-mean per plane over the
            padded grid), ``surface_grad`` = (gx ``[B,N,H',W'-1]``,
            gy ``[B,N,H'-1,W']``) (θ_grad, depth units per feature pixel) and ``surfaces
            [B,N,C2,H',W']`` (z*). Feature-grid outputs cover
            H' = ceil(H / feature_stride) rows: feature pixel (i, j) covers
            input pixels [i s, (i+1) s) x [j s, (j+1) s), s = feature_stride.
        """
        self._check_inputs(stack, focus)
        c = self.config
        b, n, ch, h, w = stack.shape
        m = c.pad_multiple
        hp, wp = -(-h // m) * m, -(-w // m) * m
        x = stack.reshape(b * n, ch, h, w)
        if (hp, wp) != (h, w):
            x = F.pad(x, (0, wp - w, 0, hp - h), mode="replicate")
        feats = self.encoder(x)  # [B N, C1, H', W']
        hf, wf = feats.shape[-2:]
        v = feats.view(b, n, c.feature_channels, hf, wf).transpose(1, 2)  # [B, C1, N, H', W']
        vstar = channels_last_on_cpu(focal_difference_volume(v) if c.focal_differences else v)  # head and decoder read it

        out: dict[str, Any] = {}
        surface_features = None
        if self.gradient_head is not None and self.surface_mix is not None:
            gamma = self.gradient_head(vstar.detach() if c.head_isolation else vstar)  # [B, N, C2, 2, H', W']
            # The projection and everything L_sv reads run in float32 (or the
            # model's float64), also under bfloat16/float16 autocast.
            with torch.autocast(device_type=gamma.device.type, enabled=False):
                if gamma.dtype in (torch.float16, torch.bfloat16):
                    gamma = gamma.float()
                z = integrable_projection_full(gamma, c.surface_backward_gain)  # [B, N, C2, H', W']
                zbar = F.conv2d(z.reshape(b * n, c.surface_channels, hf, wf),
                                self.surface_mix.weight.to(z.dtype)).view(b, n, hf, wf)
                zfeat = z * torch.rsqrt(z.square().mean(dim=(-2, -1), keepdim=True) + 1e-4) if c.surface_norm else z
            surface_features = zfeat.transpose(1, 2).to(vstar.dtype)  # [B, C2, N, H', W'], after V*
            if not c.surface_to_decoder:  # the branch trains, the depth never sees it
                surface_features = torch.zeros_like(surface_features)
            elif self.training and c.surface_dropout > 0:
                keep = torch.rand(b, 1, 1, 1, 1, device=vstar.device) >= c.surface_dropout
                surface_features = surface_features * keep.to(surface_features.dtype)
            # Crop to the feature pixels that overlap the unpadded input.
            hc, wc = -(-h // c.feature_stride), -(-w // c.feature_stride)
            zbar_c = zbar[..., :hc, :wc]
            gx, gy = forward_differences(zbar_c)
            out.update(surface=zbar_c, surface_grad=(gx, gy), surfaces=z[..., :hc, :wc])

        def decode(v: torch.Tensor, features: torch.Tensor | None) -> torch.Tensor:
            """Logits ``[B, N, H, W]`` from [v, features], upsampled to the padded input and cropped."""
            logits = self.decoder(v, features)  # [B, N, H', W']
            logits = F.interpolate(logits, size=(hp, wp), mode="bilinear", align_corners=False)[..., :h, :w]
            # the readout (and so every loss) runs in float32 under autocast
            return logits.float() if logits.dtype in (torch.float16, torch.bfloat16) else logits

        two_path = self.training and c.surface_two_path and surface_features is not None
        logits = decode(vstar.detach() if two_path and c.blind_encoder else vstar, surface_features)
        prob = torch.softmax(logits, dim=1)
        depth, sigma, aif = focus_readout(prob, focus, stack)
        assert aif is not None
        out.update(depth=depth, prob=prob, logits=logits, sigma=sigma, aif=aif)
        if two_path:
            blind = torch.softmax(decode(vstar, torch.zeros_like(surface_features)), dim=1)
            out["depth_blind"] = focus_readout(blind, focus)[0]
            if c.blind_encoder:
                out["prob_blind"] = blind
        return out
