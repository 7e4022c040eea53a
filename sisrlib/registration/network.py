"""The optical-flow registration network (the reference's ``UnetOpticalFlowEstimation``, spec §4.1).

``R(left, right)`` estimates, from two single-band images of the same grid, the flow ``f`` ``[B, 2, H, W]``
(pixels of that grid, channel 0 = x/column, 1 = y/row) such that ``warp(left, f) ≈ right``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from sisrlib.models.unet import UNet


class FlowEstimator(nn.Module):
    """UNet flow estimator with a bounded output.

    Both images are instance-normalised (zero mean, unit variance per image, so units do not matter: DN,
    reflectance or standardised), stacked as 2 channels and passed through a :class:`UNet` with ``features``
    output channels, then LeakyReLU → 3×3 convolution (reflect padding) → ``tanh · max_range / √2``: each flow
    component is bounded by ``max_range/√2`` and its norm by ``max_range`` pixels.

    Inputs of any size work: they are padded by reflection (replication where too small) to a multiple of
    ``2^(depth − 1)`` and the flow is cropped back.
    """

    def __init__(
        self,
        max_range: float = 10.0,
        depth: int = 4,
        start_filters: int = 64,
        min_skip_depth: int = 2,
        features: int = 32,
    ) -> None:
        super().__init__()
        if max_range <= 0:
            raise ValueError(f"max_range must be > 0 pixels, got {max_range}")
        self.max_range = float(max_range)
        self.unet = UNet(2, features, depth=depth, start_filters=start_filters, min_skip_depth=min_skip_depth)
        self.head = nn.Conv2d(features, 2, 3, padding=1, padding_mode="reflect")
        nn.init.xavier_normal_(self.head.weight)
        nn.init.zeros_(self.head.bias)  # type: ignore[arg-type]

    @staticmethod
    def _check(name: str, x: torch.Tensor) -> None:
        if x.dim() != 3:
            raise ValueError(f"{name} must be a single-band [B, H, W] tensor, got shape {tuple(x.shape)}")

    def forward(self, left: torch.Tensor, right: torch.Tensor) -> torch.Tensor:
        """``left``, ``right`` ``[B, H, W]`` → flow ``[B, 2, H, W]`` in pixels with ``warp(left, f) ≈
        right``."""
        self._check("left", left)
        self._check("right", right)
        if left.shape != right.shape:
            raise ValueError(
                f"left {tuple(left.shape)} and right {tuple(right.shape)} must have the same shape"
            )
        x = torch.stack([left, right], dim=1)
        x = F.instance_norm(x)
        h, w = x.shape[-2:]
        m = self.unet.multiple
        pad_h, pad_w = (-h) % m, (-w) % m
        if pad_h or pad_w:
            # Split the padding on both sides; reflection needs the pad to be smaller than the size.
            pads = (pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2)
            mode = "reflect" if max(pads[0], pads[1]) < w and max(pads[2], pads[3]) < h else "replicate"
            x = F.pad(x, pads, mode=mode)
        else:
            pads = (0, 0, 0, 0)
        y = self.head(F.leaky_relu(self.unet(x), 0.01))
        flow = torch.tanh(y) * (self.max_range / math.sqrt(2.0))
        return flow[..., pads[2] : pads[2] + h, pads[0] : pads[0] + w]


def freeze(module: nn.Module) -> nn.Module:
    """Set ``requires_grad = False`` on every parameter and switch to eval mode; returns the module."""
    for p in module.parameters():
        p.requires_grad_(False)
    return module.eval()
