"""Bicubic interpolation as an ``SRModel``: the floor baseline and the default 20 m → 10 m branch."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from sisrlib.degradation import bicubic_resample_margin
from sisrlib.models.base import SRModel


class BicubicInterpolation(SRModel):
    """``[B, bands, h, w]`` → ``[B, bands, h·factor, w·factor]`` by ``interpolate(mode="bicubic",
    align_corners=False)`` with a fixed scale factor (exportable). Works in any linear unit.

    ``margin`` is the reference's 1 output px; ``receptive_field`` is the exact border that depends on the
    index clamping of the interpolation, ⌊1.5·factor − ½⌋ + 1 (3 px at ×2, 6 px at ×4).
    """

    def __init__(self, bands: int, factor: float = 2.0) -> None:
        if bands < 1:
            raise ValueError(f"BicubicInterpolation: bands must be >= 1, got {bands}")
        if not factor > 0:
            raise ValueError(f"BicubicInterpolation: factor must be > 0, got {factor}")
        super().__init__(bands, bands, factor)

    @property
    def margin(self) -> int:
        return 1

    @property
    def receptive_field(self) -> int:
        return bicubic_resample_margin(0, self._factor)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, bands, h, w]`` → ``[B, bands, h·factor, w·factor]`` (same unit)."""
        self.check_input(x)
        return F.interpolate(
            x, scale_factor=self._factor, mode="bicubic", align_corners=False, recompute_scale_factor=False
        )
