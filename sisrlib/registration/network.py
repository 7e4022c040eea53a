"""The optical-flow registration network (the reference's ``UnetOpticalFlowEstimation``, torchsisr).

``R(left, right)`` estimates, from two single-band images of the same grid, the flow ``f`` ``[B, 2, H, W]``
(pixels of that grid, channel 0 = x/column, 1 = y/row) such that ``warp(left, f) ≈ right``.
"""

from __future__ import annotations

import math
from typing import Literal, get_args

import torch
import torch.nn.functional as F
from torch import nn

from sisrlib.models.unet import UNet

#: How the two images are normalised before the UNet: ``image`` (ours: zero mean, unit variance per image) or
#: ``reference_rows`` (torchsisr's: ``F.instance_norm`` applied to ``[B, H, W]`` tensors, which PyTorch reads
#: as ``(N, C, L)``, so each image **row** is normalised over its W pixels).
InputNormalisation = Literal["image", "reference_rows"]
INPUT_NORMALISATIONS: tuple[str, ...] = get_args(InputNormalisation)

#: ``F.instance_norm``'s default ε, added to the (biased) variance.
NORM_EPS = 1e-5


def normalise_rows(x: torch.Tensor, eps: float = NORM_EPS) -> torch.Tensor:
    """torchsisr's flow-input normalisation: each row of ``x`` ``[B, H, W]`` becomes ``(x − row mean) /
    sqrt(row biased variance + eps)`` over its W pixels (what ``F.instance_norm`` does to a 3-D tensor).

    A per-row offset or positive per-row gain added to the image leaves the result unchanged (up to ``eps``);
    the units (DN, reflectance, standardised) therefore do not matter either.
    """
    if x.dim() != 3:
        raise ValueError(f"normalise_rows expects a [B, H, W] tensor, got shape {tuple(x.shape)}")
    return F.instance_norm(x, eps=eps)


def normalise_images(x: torch.Tensor, eps: float = NORM_EPS) -> torch.Tensor:
    """Our flow-input normalisation: each image of ``x`` ``[B, H, W]`` becomes ``(x − image mean) /
    sqrt(image biased variance + eps)`` over its H·W pixels."""
    if x.dim() != 3:
        raise ValueError(f"normalise_images expects a [B, H, W] tensor, got shape {tuple(x.shape)}")
    return F.instance_norm(x.unsqueeze(1), eps=eps).squeeze(1)


class FlowEstimator(nn.Module):
    """UNet flow estimator with a bounded output.

    Both images are normalised (``input_normalisation``: ``image``, the default, gives each image zero mean
    and unit variance; ``reference_rows``, torchsisr's, does so for each image row — see
    :func:`normalise_rows`; either way units do not matter: DN, reflectance or standardised), stacked as 2
    channels and passed through a :class:`UNet` with ``features``
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
        input_normalisation: InputNormalisation = "image",
    ) -> None:
        super().__init__()
        if max_range <= 0:
            raise ValueError(f"max_range must be > 0 pixels, got {max_range}")
        if input_normalisation not in INPUT_NORMALISATIONS:
            raise ValueError(
                f"input_normalisation must be one of {list(INPUT_NORMALISATIONS)}, "
                f"got {input_normalisation!r}"
            )
        self.max_range = float(max_range)
        self.input_normalisation: InputNormalisation = input_normalisation
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
        normalise = normalise_rows if self.input_normalisation == "reference_rows" else normalise_images
        x = torch.stack([normalise(left), normalise(right)], dim=1)
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
