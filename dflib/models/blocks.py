"""Building blocks of DualFocus: a ResNet-style 2-D encoder with a top-down
path, the per-plane gradient head and the 3-D encoder-decoder over (N, H', W').

Written in plain torch (no torchvision). Shapes are in the docstrings.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def make_norm(kind: str, channels: int, dims: int = 2) -> nn.Module:
    """A normalisation layer: ``"batch"`` (BatchNorm{2,3}d), ``"group"``
    (GroupNorm with up to 8 groups dividing ``channels``) or ``"none"``."""
    if kind == "batch":
        return nn.BatchNorm2d(channels) if dims == 2 else nn.BatchNorm3d(channels)
    if kind == "group":
        return nn.GroupNorm(math.gcd(8, channels), channels)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"norm must be 'batch', 'group' or 'none', got {kind!r}")


def conv_norm_act(cin: int, cout: int, norm: str, dims: int = 2, kernel: int = 3,
                  stride: int | tuple[int, ...] = 1) -> nn.Sequential:
    """Conv (no bias when normalised) -> norm -> ReLU."""
    conv_cls = nn.Conv2d if dims == 2 else Conv3d
    conv = conv_cls(cin, cout, kernel, stride=stride, padding=kernel // 2, bias=(norm == "none"))
    return nn.Sequential(conv, make_norm(norm, cout, dims), nn.ReLU(inplace=True))


def conv3d(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, stride: tuple[int, ...],
           padding: tuple[int, ...]) -> torch.Tensor:
    """``F.conv3d`` (zero padding), run by oneDNN for float32 on CPU whatever the sizes.

    PyTorch sends a CPU 3-D convolution whose B·C·N·H is at most 20480 (one stack of 5 planes with 32 channels
    at 120 rows, as in predicting a 480 x 640 stack) to a slow reference kernel, about 10x slower than oneDNN
    on this kit's volumes. The oneDNN op has its own backward; results agree with ``F.conv3d`` to rounding.
    """
    if x.device.type == "cpu" and x.dtype == torch.float32 and torch.backends.mkldnn.is_available():
        return torch.ops.aten.mkldnn_convolution(x, weight, bias, list(padding), list(stride), [1, 1, 1], 1)
    return F.conv3d(x, weight, bias, stride=stride, padding=padding)


class Conv3d(nn.Conv3d):
    """``nn.Conv3d`` (zero padding, no dilation or groups) through :func:`conv3d`; same parameters."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if self.padding_mode != "zeros" or self.dilation != (1, 1, 1) or self.groups != 1 or isinstance(self.padding, str):
            raise ValueError("Conv3d supports numeric zero padding only, without dilation or groups")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return conv3d(x, self.weight, self.bias, self.stride, self.padding)


def channels_last_on_cpu(x: torch.Tensor) -> torch.Tensor:
    """A 5-D volume ``[B, C, N, H, W]`` in the channels-last 3-D memory layout when on CPU, else as it is.

    oneDNN runs the 3-D parts' narrow convolutions fastest in that layout, the backward pass of a
    4-channel input above all (``benchmarks/bench_throughput.py``). Only the order in which memory is
    read changes: values agree with the default layout to rounding (the sums run in another order).
    """
    return x.contiguous(memory_format=torch.channels_last_3d) if x.device.type == "cpu" else x


class BasicBlock(nn.Module):
    """ResNet basic block: two 3x3 convs, identity or 1x1 projection shortcut.

    ``[B, cin, H, W] -> [B, cout, H / stride, W / stride]``.
    """

    def __init__(self, cin: int, cout: int, stride: int, norm: str) -> None:
        super().__init__()
        bias = norm == "none"
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=bias)
        self.norm1 = make_norm(norm, cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=bias)
        self.norm2 = make_norm(norm, cout)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride=stride, bias=bias), make_norm(norm, cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.norm1(self.conv1(x)), inplace=True)
        y = self.norm2(self.conv2(y))
        return F.relu(y + self.shortcut(x), inplace=True)


class FeatureEncoder(nn.Module):
    """Shared 2-D encoder applied to every focal image.

    A stride-2 stem, ``len(widths)`` residual stages that each halve the
    resolution (ResNet-18 trunk for ``widths=(64,128,256,512)``,
    ``blocks=(2,2,2,2)``), then a top-down path (1x1 laterals + upsampling +
    3x3 smoothing, FPN style) back to ``out_stride``.

    ``[B, in_ch, H, W] -> [B, out_ch, H / out_stride, W / out_stride]``;
    H and W must be multiples of ``2 ** (1 + len(widths))``.
    """

    def __init__(self, in_ch: int, stem_width: int, stem_kernel: int, widths: tuple[int, ...],
                 blocks: tuple[int, ...], out_ch: int, out_stride: int, norm: str) -> None:
        super().__init__()
        self.stem = conv_norm_act(in_ch, stem_width, norm, kernel=stem_kernel, stride=2)
        stages = []
        cin = stem_width
        for w, nb in zip(widths, blocks):
            layers = [BasicBlock(cin, w, 2, norm)] + [BasicBlock(w, w, 1, norm) for _ in range(nb - 1)]
            stages.append(nn.Sequential(*layers))
            cin = w
        self.stages = nn.ModuleList(stages)
        # Level strides: stem 2, stage i 2 ** (i + 2). Keep levels with stride >= out_stride.
        level_channels = [stem_width, *widths]
        level_strides = [2 ** (i + 1) for i in range(len(level_channels))]
        self.first_level = level_strides.index(out_stride)
        kept = level_channels[self.first_level:]
        self.laterals = nn.ModuleList([nn.Conv2d(c, out_ch, 1) for c in kept])
        self.smooth = nn.ModuleList(
            [conv_norm_act(out_ch, out_ch, norm) for _ in range(len(kept) - 1)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = [self.stem(x)]
        for stage in self.stages:
            feats.append(stage(feats[-1]))
        feats = feats[self.first_level:]
        y = self.laterals[-1](feats[-1])
        for i in range(len(feats) - 2, -1, -1):
            y = F.interpolate(y, size=feats[i].shape[-2:], mode="bilinear", align_corners=False)
            y = self.smooth[i](y + self.laterals[i](feats[i]))
        return y


class GradientHead(nn.Module):
    """Predicts C2 gradient fields per focal plane from the enhanced volume.

    A 3x3x3 conv (one plane of focal context each side) then a 1x3x3 conv.
    With ``context=True`` the whole focal stack is visible to every plane: the
    mean and the max over N of the first conv's features are concatenated to
    each plane's features and go through a second 3x3x3 conv.
    ``V* [B, Cv, N, H', W'] -> Γ [B, N, C2, 2, H', W']`` (component 0 = x, 1 = y).
    """

    def __init__(self, cin: int, hidden: int, surface_channels: int, norm: str, context: bool = False) -> None:
        super().__init__()
        self.c2 = surface_channels
        self.body = conv_norm_act(cin, hidden, norm, dims=3)
        self.context = conv_norm_act(3 * hidden, hidden, norm, dims=3) if context else None
        self.out = Conv3d(hidden, 2 * surface_channels, (1, 3, 3), padding=(0, 1, 1))

    def forward(self, v: torch.Tensor) -> torch.Tensor:
        h = self.body(channels_last_on_cpu(v))  # [B, hidden, N, H', W']
        if self.context is not None:
            n = h.shape[2]
            pooled = torch.cat([h.mean(2, keepdim=True), h.amax(2, keepdim=True)], dim=1)
            h = self.context(torch.cat([h, pooled.expand(-1, -1, n, -1, -1)], dim=1))
        g = self.out(h)  # [B, 2 C2, N, H', W']
        b, _, n, h, w = g.shape
        return g.view(b, self.c2, 2, n, h, w).permute(0, 3, 1, 2, 4, 5)


class VolumeDecoder(nn.Module):
    """3-D encoder-decoder over (N, H', W') with skip connections (DFV style).

    Level 0 works at (N, H', W'); each further level halves H', W' with a
    stride-(1, 2, 2) conv (N is never strided, so any N >= 1 works); the way up
    upsamples trilinearly to the skip's size, concatenates and convolves.
    ``[B, cin, N, H', W'] -> logits [B, N, H', W']``; H', W' must be multiples of
    ``2 ** (len(widths) - 1)``.

    ``forward(x, extra)`` with ``x [B, cx, N, H', W']`` and ``extra [B, cin - cx, N, H', W']`` equals
    ``forward(torch.cat([x, extra], 1))``: the first convolution is linear in its input, so it is applied
    to the two parts with the two slices of its weight and summed. On CPU this is faster when ``cx`` is a
    multiple of 8 and ``cin`` is not (oneDNN's blocked layouts), as for V* plus a few surfaces.

    On CPU the volume runs in the channels-last layout (:func:`channels_last_on_cpu`).
    """

    def __init__(self, cin: int, widths: tuple[int, ...], convs: int, norm: str) -> None:
        super().__init__()
        down = []
        for i, w in enumerate(widths):
            prev = cin if i == 0 else widths[i - 1]
            stride = (1, 1, 1) if i == 0 else (1, 2, 2)
            layers = [conv_norm_act(prev, w, norm, dims=3, stride=stride)]
            layers += [conv_norm_act(w, w, norm, dims=3) for _ in range(convs - 1)]
            down.append(nn.Sequential(*layers))
        self.down = nn.ModuleList(down)
        up = []
        for i in range(len(widths) - 2, -1, -1):
            layers = [conv_norm_act(widths[i + 1] + widths[i], widths[i], norm, dims=3)]
            layers += [conv_norm_act(widths[i], widths[i], norm, dims=3) for _ in range(convs - 1)]
            up.append(nn.Sequential(*layers))
        self.up = nn.ModuleList(up)
        self.head = Conv3d(widths[0], 1, 3, padding=1)

    def add_zero_inputs(self, extra: int) -> None:
        """Append ``extra`` input channels whose weights in the first convolution are zero (in place).

        The decoder then computes for ``[x, anything]`` what it computed for ``x`` before, and it draws
        nothing from the RNG: a decoder built for ``cin`` channels and widened keeps that decoder's draws.
        """
        conv = self.down[0][0][0]
        with torch.no_grad():
            w = conv.weight
            conv.weight = nn.Parameter(torch.cat([w, w.new_zeros(w.shape[0], extra, *w.shape[2:])], dim=1))
        conv.in_channels += extra

    def forward(self, x: torch.Tensor, extra: torch.Tensor | None = None) -> torch.Tensor:
        x = channels_last_on_cpu(x)
        if extra is not None:
            extra = channels_last_on_cpu(extra)
            conv, norm, act = self.down[0][0]  # level 0's first conv_norm_act (stride 1)
            cx = x.shape[1]
            y = conv3d(x, conv.weight[:, :cx], conv.bias, conv.stride, conv.padding)
            y = y + conv3d(extra, conv.weight[:, cx:], None, conv.stride, conv.padding)
            x = self.down[0][1:](act(norm(y)))
        skips = [x] if extra is not None else []
        for level in self.down[len(skips):]:
            x = level(x)
            skips.append(x)
        x = skips.pop()
        for level in self.up:
            skip = skips.pop()
            x = F.interpolate(x, size=skip.shape[-3:], mode="trilinear", align_corners=False)
            x = level(torch.cat([x, skip], dim=1))
        return self.head(x)[:, 0]
