"""A linear, shift-invariant super-resolution filter: the simplest model a pixel loss can train.

One K×K convolution on the LR grid maps the input bands to ``out_bands · r²`` channels, which a pixel shuffle
places on the HR grid: each of the r² HR phases (sub-pixel positions) has its own K×K filter per band pair.
Trained with a squared loss it converges to the least-squares linear estimator of its target (a polyphase
Wiener filter); trained against a registered or an unregistered target it shows, in a model with no
non-linearity at all, what registration changes.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from sisrlib.models.base import SRModel


class PolyphaseLinear(SRModel):
    """``[B, in_bands, h, w]`` → ``[B, out_bands, h·r, w·r]`` (standardised units), r an integer factor.

    Args:
        in_bands, out_bands: channels (``out_bands`` defaults to ``in_bands``).
        factor: the integer super-resolution factor r.
        kernel_size: odd filter size K in LR px; zero padding, so the ``margin`` is r·(K − 1)/2 output px.
    """

    def __init__(
        self, in_bands: int, factor: float = 2.0, out_bands: int | None = None, kernel_size: int = 7
    ) -> None:
        out = int(in_bands if out_bands is None else out_bands)
        super().__init__(in_bands, out, factor)
        r = round(self._factor)
        if abs(r - self._factor) > 1e-9 or r < 1:
            raise ValueError(f"PolyphaseLinear: factor must be an integer >= 1, got {factor}")
        if (
            isinstance(kernel_size, bool)
            or int(kernel_size) != kernel_size
            or kernel_size < 1
            or kernel_size % 2 == 0
        ):
            raise ValueError(f"PolyphaseLinear: kernel_size must be an odd integer >= 1, got {kernel_size}")
        self.scale = r
        self.kernel_size = int(kernel_size)
        self.conv = nn.Conv2d(in_bands, out * r * r, self.kernel_size, padding=self.kernel_size // 2)

    @property
    def margin(self) -> int:
        return self.scale * (self.kernel_size // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Standardised ``[B, in_bands, h, w]`` → standardised ``[B, out_bands, h·r, w·r]``."""
        self.check_input(x)
        return F.pixel_shuffle(self.conv(x), self.scale)
