"""Generic UNet with a ``min_skip_depth`` option (torchsisr), the backbone of the registration network.

Encoder: ``depth`` stages of two 3×3 convolutions (zero padding 1) + activation; stage ``i`` has
``start_filters·2^i`` channels; a 2×2 max-pool follows every stage but the last (``depth − 1`` poolings).
Decoder: ``depth − 1`` stages, counted from the coarsest (index 0): bilinear ×2 up-sampling and a 1×1
convolution halving the channels, then (only for stages with index ≥ ``min_skip_depth``) concatenation with
the
encoder features of the same resolution, then two 3×3 convolutions + activation. A final 1×1 convolution maps
to
``out_channels``. Weights are Xavier-normal, biases zero; activation leaky ReLU (slope 0.01).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _init(module: nn.Module) -> None:
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.xavier_normal_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


class _DoubleConv(nn.Module):
    """Two 3×3 convolutions, each followed by a leaky ReLU."""

    def __init__(self, in_channels: int, out_channels: int, negative_slope: float) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        self.negative_slope = negative_slope

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.leaky_relu(self.conv1(x), self.negative_slope)
        return F.leaky_relu(self.conv2(x), self.negative_slope)


class _UpStage(nn.Module):
    """Bilinear ×2 + 1×1 conv (halving channels), optional skip concatenation, two 3×3 convs."""

    def __init__(self, in_channels: int, out_channels: int, use_skip: bool, negative_slope: float) -> None:
        super().__init__()
        self.reduce = nn.Conv2d(in_channels, out_channels, 1)
        self.use_skip = use_skip
        self.convs = _DoubleConv(2 * out_channels if use_skip else out_channels, out_channels, negative_slope)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
        x = self.reduce(x)
        if self.use_skip:
            x = torch.cat([x, skip], dim=1)
        return self.convs(x)


class UNet(nn.Module):
    """``[B, in_channels, H, W]`` → ``[B, out_channels, H, W]``.

    H and W should be divisible by ``2^(depth − 1)`` (other sizes work, the up-sampling follows the encoder
    sizes, but border pixels then see an uneven pooling grid; the flow network pads to a multiple).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        depth: int = 4,
        start_filters: int = 64,
        min_skip_depth: int = 2,
        negative_slope: float = 0.01,
    ) -> None:
        super().__init__()
        if depth < 1:
            raise ValueError(f"UNet depth must be >= 1, got {depth}")
        if in_channels < 1 or out_channels < 1 or start_filters < 1:
            raise ValueError(
                f"UNet channels must be >= 1, got in={in_channels}, out={out_channels}, start={start_filters}"
            )
        self.depth = depth
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.down = nn.ModuleList()
        channels = in_channels
        for i in range(depth):
            self.down.append(_DoubleConv(channels, start_filters * 2**i, negative_slope))
            channels = start_filters * 2**i
        self.up = nn.ModuleList()
        for i in range(depth - 1):
            out = channels // 2
            self.up.append(
                _UpStage(channels, out, use_skip=i >= min_skip_depth, negative_slope=negative_slope)
            )
            channels = out
        self.head = nn.Conv2d(channels, out_channels, 1)
        _init(self)

    @property
    def multiple(self) -> int:
        """Spatial sizes divisible by this value go through the poolings without remainder."""
        return int(2 ** (self.depth - 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips: list[torch.Tensor] = []
        for i, stage in enumerate(self.down):
            x = stage(x)
            if i < self.depth - 1:
                skips.append(x)
                x = F.max_pool2d(x, 2)
        for stage, skip in zip(self.up, reversed(skips), strict=True):
            x = stage(x, skip)
        return self.head(x)
