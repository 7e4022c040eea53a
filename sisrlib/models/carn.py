"""CARN-style network of the EVOLAND model (torchsisr), with an additive cascade.

F = ``features_per_factor``·r² features, r = 2·⌈factor/2⌉. Blocks:

* ``EResBlock``: grouped k×k conv (reflect) → LeakyReLU → grouped k×k conv (reflect) → LeakyReLU → 1×1 conv;
  output LeakyReLU(input + that).
* ``CascadingBlock``: a chain of EResBlocks (with ``shared_weights`` the *same* block is applied each time);
  after block j the next state is 1×1conv_j(b_j) + (block input + b_1 + … + b_{j−1}), b the raw block outputs.
  An additive cascade, not the concatenation of the original CARN (Ahn et al., 2018).
* ``CARN``: k×k input conv (bands → F) → cascading blocks chained by the same additive rule with their own 1×1
  convs → k×k conv F → F → PixelShuffle(r) (F/r² channels) → k×k conv → out bands → bicubic ↓ r/factor when
  r ≠ factor. No global skip.

Margin (output px), spec formula: ((2·n_eres·n_casc + 2)·factor + 1)·⌊k/2⌋ = 41 for the EVOLAND model
(3×3 convs, 3 cascading × 3 EResBlocks, ×2). It is the exact receptive field for even integer factors; for odd
or fractional factors the exact value (``receptive_field``) adds a pixel or two for the bicubic resampling.
NOTE: the EVOLAND contract lists the shipped CARN ("carn_3x3x64g4sw_bootstrap") with margin 32 and the joint
10 m + 20 m model with 43 = 41 + 2·1 in the reference code: the shipped value 32 does not follow from the
formula (it is smaller than the receptive field); we implement the formula.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from sisrlib.degradation import bicubic_resample_margin
from sisrlib.models.base import SRModel
from sisrlib.models.geometry import even_factor, resample_to_factor


def _conv_params(in_channels: int, out_channels: int, kernel_size: int, groups: int = 1) -> int:
    """Weights + biases of a ``Conv2d``."""
    return kernel_size * kernel_size * in_channels * out_channels // groups + out_channels


class EResBlock(nn.Module):
    """Efficient residual block, ``[B, F, H, W]`` → ``[B, F, H, W]`` (receptive radius 2·⌊k/2⌋)."""

    def __init__(
        self, features: int, groups: int = 4, kernel_size: int = 3, negative_slope: float = 0.2
    ) -> None:
        super().__init__()
        if features % groups != 0:
            raise ValueError(f"EResBlock: features ({features}) must be divisible by groups ({groups})")
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"EResBlock: kernel_size must be odd and >= 1, got {kernel_size}")
        self.features = features
        self.groups = groups
        self.kernel_size = kernel_size
        self.negative_slope = float(negative_slope)
        pad = kernel_size // 2
        self.conv1 = nn.Conv2d(
            features, features, kernel_size, padding=pad, groups=groups, padding_mode="reflect"
        )
        self.conv2 = nn.Conv2d(
            features, features, kernel_size, padding=pad, groups=groups, padding_mode="reflect"
        )
        self.pointwise = nn.Conv2d(features, features, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.leaky_relu(self.conv1(x), self.negative_slope)
        y = F.leaky_relu(self.conv2(y), self.negative_slope)
        return F.leaky_relu(x + self.pointwise(y), self.negative_slope)

    def nb_params(self) -> int:
        """Analytic parameter count: 2·(k²F²/g + F) + F(F + 1)."""
        f, k, g = self.features, self.kernel_size, self.groups
        return 2 * _conv_params(f, f, k, g) + _conv_params(f, f, 1)


def _additive_cascade(x: torch.Tensor, blocks: list[nn.Module], pointwise: nn.ModuleList) -> torch.Tensor:
    """state_j = 1×1conv_j(b_j) + x + Σ_{i<j} b_i, with b_j = block_j(state_{j−1}) and state_0 = x."""
    state = x
    accumulated = x
    for block, conv in zip(blocks, pointwise, strict=True):
        out = block(state)
        state = conv(out) + accumulated
        accumulated = accumulated + out
    return state


class CascadingBlock(nn.Module):
    """``n_eres`` EResBlocks chained by the additive cascade, ``[B, F, H, W]`` → ``[B, F, H, W]``."""

    def __init__(
        self,
        n_eres: int,
        features: int,
        groups: int = 4,
        kernel_size: int = 3,
        shared_weights: bool = True,
        negative_slope: float = 0.2,
    ) -> None:
        super().__init__()
        if n_eres < 1:
            raise ValueError(f"CascadingBlock: n_eres must be >= 1, got {n_eres}")
        self.n_eres = n_eres
        self.features = features
        self.shared_weights = shared_weights
        n_distinct = 1 if shared_weights else n_eres
        self.eres_blocks = nn.ModuleList(
            EResBlock(features, groups, kernel_size, negative_slope) for _ in range(n_distinct)
        )
        self.pointwise = nn.ModuleList(nn.Conv2d(features, features, 1) for _ in range(n_eres))

    def _sequence(self) -> list[nn.Module]:
        if self.shared_weights:
            return [self.eres_blocks[0]] * self.n_eres
        return list(self.eres_blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _additive_cascade(x, self._sequence(), self.pointwise)

    def nb_params(self) -> int:
        """Analytic parameter count (the shared block is counted once)."""
        block = self.eres_blocks[0]
        assert isinstance(block, EResBlock)
        distinct = 1 if self.shared_weights else self.n_eres
        return distinct * block.nb_params() + self.n_eres * _conv_params(self.features, self.features, 1)


class CARN(SRModel):
    """CARN, ``[B, in_bands, h, w]`` → ``[B, out_bands, h·factor, w·factor]``, standardised units.

    Args:
        in_bands, out_bands (defaults to ``in_bands``), factor (any value ≥ 1; r = 2·⌈factor/2⌉).
        groups: groups of the EResBlock convs (EVOLAND: 4). shared_weights: one EResBlock reused inside each
        cascading block (EVOLAND: True). features_per_factor: F/r² (EVOLAND: 64 → F = 256 at ×2).
        n_cascading, n_eres: 3 and 3. kernel_size: 3. negative_slope: LeakyReLU slope (0.2).
    """

    def __init__(
        self,
        in_bands: int,
        factor: float = 2.0,
        out_bands: int | None = None,
        groups: int = 4,
        shared_weights: bool = True,
        features_per_factor: int = 64,
        n_cascading: int = 3,
        n_eres: int = 3,
        kernel_size: int = 3,
        negative_slope: float = 0.2,
    ) -> None:
        if in_bands < 1 or features_per_factor < 1 or n_cascading < 1:
            raise ValueError(
                f"CARN: in_bands, features_per_factor and n_cascading must be >= 1, got {in_bands}, "
                f"{features_per_factor}, {n_cascading}"
            )
        super().__init__(in_bands, in_bands if out_bands is None else out_bands, factor)
        self.rounded_factor = even_factor(self._factor)
        self.features_per_factor = int(features_per_factor)
        self.features = self.features_per_factor * self.rounded_factor**2
        if self.features % groups != 0:
            raise ValueError(
                f"CARN: the number of features F = features_per_factor·r² = {self.features} must be "
                f"divisible by groups = {groups}; change carn_groups or carn_features_per_factor"
            )
        self.groups = groups
        self.shared_weights = shared_weights
        self.n_cascading = n_cascading
        self.n_eres = n_eres
        self.kernel_size = kernel_size
        self.negative_slope = float(negative_slope)
        pad = kernel_size // 2
        f = self.features
        self.input_conv = nn.Conv2d(in_bands, f, kernel_size, padding=pad, padding_mode="reflect")
        self.cascading_blocks = nn.ModuleList(
            CascadingBlock(n_eres, f, groups, kernel_size, shared_weights, negative_slope)
            for _ in range(n_cascading)
        )
        self.pointwise = nn.ModuleList(nn.Conv2d(f, f, 1) for _ in range(n_cascading))
        self.output_conv1 = nn.Conv2d(f, f, kernel_size, padding=pad, padding_mode="reflect")
        self.shuffle = nn.PixelShuffle(self.rounded_factor)
        self.output_conv2 = nn.Conv2d(
            self.features_per_factor, self._out_bands, kernel_size, padding=pad, padding_mode="reflect"
        )

    @property
    def margin(self) -> int:
        """Spec formula ((2·n_eres·n_casc + 2)·factor + 1)·⌊k/2⌋ (output px); 41 for the EVOLAND model."""
        unit = self.kernel_size // 2
        return int(((2 * self.n_eres * self.n_cascading + 2) * self._factor + 1) * unit)

    @property
    def receptive_field(self) -> int:
        unit = self.kernel_size // 2
        r = self.rounded_factor
        on_rounded_grid = ((2 * self.n_eres * self.n_cascading + 2) * r + 1) * unit
        if r == self._factor:
            return on_rounded_grid
        return bicubic_resample_margin(on_rounded_grid, self._factor / r)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Standardised ``[B, in_bands, h, w]`` → standardised ``[B, out_bands, h·factor, w·factor]``."""
        self.check_input(x)
        features = self.input_conv(x)
        features = _additive_cascade(features, list(self.cascading_blocks), self.pointwise)
        y = self.output_conv2(self.shuffle(self.output_conv1(features)))
        return resample_to_factor(y, self.rounded_factor, self._factor)

    def nb_params(self) -> int:
        """Analytic parameter count (torchsisr), equal to ``sum(p.numel() for p in parameters())``."""
        f, k = self.features, self.kernel_size
        block = self.cascading_blocks[0]
        assert isinstance(block, CascadingBlock)
        cascading = self.n_cascading * (block.nb_params() + _conv_params(f, f, 1))
        return (
            _conv_params(self._in_bands, f, k)
            + cascading
            + _conv_params(f, f, k)
            + _conv_params(self.features_per_factor, self._out_bands, k)
        )
