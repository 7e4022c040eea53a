"""ESRGAN (RRDB) generator of the paper's experiments (torchsisr).

Encoder on the LR grid: 3×3 conv (bands → latent), N residual-in-residual dense blocks (RRDB), 3×3 conv, and a
global skip from the first conv. Decoder: log_base(r) blocks of (nearest ×base → 3×3 conv → LeakyReLU), then
3×3 conv → LeakyReLU → 3×3 conv to the output bands, r being the factor rounded up to a power of ``base``;
a final bicubic down-sampling by r/factor gives non-power factors (×3 = ×4 then ↓4/3). Zero padding everywhere
and LeakyReLU(0.2), as the reference's ``esrgan`` package (in which *every* conv of a dense block, the fifth
included, is followed by a LeakyReLU; the original ESRGAN paper has no activation after the fifth).

Margins (output px):

* ``margin`` (``margin_rule="reference"``, the default): the reference's (5·N + 2)·factor + 2, i.e. 66 for
  6 RRDB ×2, 110 for 5 RRDB ×4, 130 for 6 RRDB ×4: the values carried by the published ONNX models and used to
  crop training losses, so paper results stay comparable.
* ``receptive_field``: the exact padding-dependent border. An RRDB stacks 3 dense blocks of 5 chained 3×3
  convs, i.e. a radius of 15 LR px, not 5: the exact value is (15·N + 2)·r + (r − 1)/(base − 1) + 2 before
  the final resampling (187 for 6 RRDB ×2). The reference formula therefore under-estimates the receptive
  field; the pixels between the two are influenced by the padding through the 0.2-scaled residual paths only,
  weakly but not exactly zero. ``margin_rule="receptive_field"`` makes ``margin`` return the exact value.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from sisrlib.degradation import bicubic_resample_margin
from sisrlib.models.base import SRModel
from sisrlib.models.geometry import resample_to_factor, rounded_factor

MarginRule = Literal["reference", "receptive_field"]

_SLOPE = 0.2


def _conv3x3(in_channels: int, out_channels: int) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, bias=True)


class ResidualDenseBlock(nn.Module):
    """Dense block of ``num_convs`` 3×3 convs, each fed the concatenation of the block input and all earlier
    outputs; every conv is followed by LeakyReLU(0.2). Output = x + scaling·(last conv output).

    ``[B, latent, H, W]`` → ``[B, latent, H, W]``; the first ``num_convs − 1`` convs produce ``growth``
    channels, the last one ``latent``. Receptive radius: ``num_convs`` px.
    """

    def __init__(self, latent: int, growth: int, num_convs: int = 5, residual_scaling: float = 0.2) -> None:
        super().__init__()
        if num_convs < 1:
            raise ValueError(f"num_convs must be >= 1, got {num_convs}")
        self.residual_scaling = float(residual_scaling)
        self.convs = nn.ModuleList(
            _conv3x3(latent + i * growth, growth if i < num_convs - 1 else latent) for i in range(num_convs)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = [x]
        out = x
        for conv in self.convs:
            out = F.leaky_relu(conv(torch.cat(features, dim=1)), _SLOPE)
            features.append(out)
        return x + self.residual_scaling * out


class RRDB(nn.Module):
    """Residual-in-residual dense block: x + scaling·(three chained ``ResidualDenseBlock``s)(x).

    ``[B, latent, H, W]`` → ``[B, latent, H, W]``; receptive radius 3·``num_convs`` px.
    """

    def __init__(
        self,
        latent: int,
        growth: int,
        residual_scaling: float = 0.2,
        num_dense_blocks: int = 3,
        num_convs: int = 5,
    ) -> None:
        super().__init__()
        self.residual_scaling = float(residual_scaling)
        self.blocks = nn.Sequential(
            *(
                ResidualDenseBlock(latent, growth, num_convs, residual_scaling)
                for _ in range(num_dense_blocks)
            )
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.residual_scaling * self.blocks(x)


class UpsamplingBlock(nn.Module):
    """Nearest-neighbour ×``scale`` → 3×3 conv → LeakyReLU(0.2): ``[B, C, H, W]`` → ``[B, C, s·H, s·W]``."""

    def __init__(self, channels: int, scale: int) -> None:
        super().__init__()
        self.scale = int(scale)
        self.conv = _conv3x3(channels, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, scale_factor=float(self.scale), mode="nearest")
        return F.leaky_relu(self.conv(x), _SLOPE)


class ESRGANGenerator(SRModel):
    """RRDB generator, ``[B, in_bands, h, w]`` → ``[B, out_bands, h·factor, w·factor]``, standardised units.

    Args:
        in_bands: input channels. ``out_bands`` defaults to ``in_bands``.
        factor: super-resolution factor (any value ≥ 1: 2, 4, but also 3 or 2.5 via rounding up to a power
            of ``upsampling_base`` and a final bicubic down-sampling).
        num_blocks: number of RRDBs (paper: 6 for ×2 and wsx4, 5 for s2vx4).
        latent_size, growth_channels, residual_scaling: RRDB sizes (64, 32, 0.2 in the paper).
        upsampling_base: scale of every upsampling block (2).
        margin_rule: what ``margin`` reports (see the module docstring).
        bicubic_residual: add the bicubic interpolation of the input to the decoder's output, so that the
            network learns the residual over bicubic (global residual learning; needs ``out_bands ==
            in_bands``). Off in torchsisr and by default.
    """

    def __init__(
        self,
        in_bands: int,
        factor: float = 2.0,
        out_bands: int | None = None,
        num_blocks: int = 6,
        latent_size: int = 64,
        growth_channels: int = 32,
        residual_scaling: float = 0.2,
        upsampling_base: int = 2,
        margin_rule: MarginRule = "reference",
        bicubic_residual: bool = False,
    ) -> None:
        for name, value in (
            ("in_bands", in_bands),
            ("latent_size", latent_size),
            ("growth_channels", growth_channels),
        ):
            if value < 1:
                raise ValueError(f"ESRGANGenerator: {name} must be >= 1, got {value}")
        if num_blocks < 0:
            raise ValueError(f"ESRGANGenerator: num_blocks must be >= 0, got {num_blocks}")
        if margin_rule not in ("reference", "receptive_field"):
            raise ValueError(
                f"ESRGANGenerator: margin_rule must be 'reference' or 'receptive_field', got {margin_rule!r}"
            )
        out = int(in_bands if out_bands is None else out_bands)
        if out < 1:
            raise ValueError(f"ESRGANGenerator: out_bands must be >= 1, got {out}")
        if bicubic_residual and out != in_bands:
            raise ValueError(
                f"ESRGANGenerator: bicubic_residual needs out_bands == in_bands, got {out} and {in_bands}"
            )
        super().__init__(in_bands, out, factor)
        self.bicubic_residual = bool(bicubic_residual)
        self.upsampling_base = int(upsampling_base)
        self.rounded_factor = rounded_factor(self._factor, self.upsampling_base)
        self.num_blocks = int(num_blocks)
        self.margin_rule: MarginRule = margin_rule
        num_upsampling = 0
        r = 1
        while r < self.rounded_factor:
            r *= self.upsampling_base
            num_upsampling += 1

        self.first_conv = _conv3x3(in_bands, latent_size)
        self.trunk = nn.Sequential(
            *(RRDB(latent_size, growth_channels, residual_scaling) for _ in range(num_blocks))
        )
        self.trunk_conv = _conv3x3(latent_size, latent_size)
        self.upsampling = nn.Sequential(
            *(UpsamplingBlock(latent_size, self.upsampling_base) for _ in range(num_upsampling))
        )
        self.hr_conv = _conv3x3(latent_size, latent_size)
        self.last_conv = _conv3x3(latent_size, self._out_bands)

    @property
    def reference_margin(self) -> int:
        """The reference's margin (5·N + 2)·factor + 2 (output px): 66, 110, 130 for the paper's models."""
        return int((5 * self.num_blocks + 2) * self._factor + 2)

    @property
    def receptive_field(self) -> int:
        lr_radius = 15 * self.num_blocks + 2
        r = self.rounded_factor
        b = self.upsampling_base
        on_rounded_grid = lr_radius * r + (r - 1) // (b - 1) + 2
        if r == self._factor:
            return on_rounded_grid
        return bicubic_resample_margin(on_rounded_grid, self._factor / r)

    @property
    def margin(self) -> int:
        return self.reference_margin if self.margin_rule == "reference" else self.receptive_field

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """LR features ``[B, latent, h, w]`` of a standardised ``[B, in_bands, h, w]`` input."""
        first = self.first_conv(x)
        return first + self.trunk_conv(self.trunk(first))

    def decode(self, latent: torch.Tensor) -> torch.Tensor:
        """``[B, latent, h, w]`` → ``[B, out_bands, h·factor, w·factor]``."""
        y = self.upsampling(latent)
        y = self.last_conv(F.leaky_relu(self.hr_conv(y), _SLOPE))
        return resample_to_factor(y, self.rounded_factor, self._factor)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Standardised ``[B, in_bands, h, w]`` → standardised ``[B, out_bands, h·factor, w·factor]``."""
        self.check_input(x)
        y = self.decode(self.encode(x))
        if self.bicubic_residual:
            y = y + F.interpolate(x, size=y.shape[-2:], mode="bicubic", align_corners=False)
        return y
