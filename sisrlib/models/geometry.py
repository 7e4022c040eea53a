"""Upsampling factors and receptive-field arithmetic shared by the generators.

All margins are counted in pixels of the grid named in the argument (LR input grid, an intermediate grid or
the output grid) and mean: the number of pixels, from every border, whose value depends on how the network
pads its input (zero/reflect padding of convolutions, index clamping of bicubic interpolation). A prediction
cropped by that many pixels equals, exactly, the prediction of the same network run on a larger image.
"""

from __future__ import annotations

import math

import torch


def rounded_factor(factor: float, base: int) -> int:
    """Smallest power of ``base`` that is ≥ ``factor`` (the factor a network really upsamples by).

    ``factor`` 2 → 2, 3 → 4, 4 → 4 (base 2); the output is then bicubic-downsampled by ``r / factor``.
    """
    if base < 2:
        raise ValueError(f"upsampling base must be an integer >= 2, got {base}")
    if not math.isfinite(factor) or factor < 1.0:
        raise ValueError(f"upsampling factor must be a finite number >= 1, got {factor}")
    r = 1
    while r < factor - 1e-9:
        r *= base
    return r


def even_factor(factor: float) -> int:
    """CARN's rounding of the factor (torchsisr): r = 2·⌈factor/2⌉ (2 → 2, 3 → 4, 4 → 4, 5 → 6)."""
    if not math.isfinite(factor) or factor < 1.0:
        raise ValueError(f"upsampling factor must be a finite number >= 1, got {factor}")
    return 2 * math.ceil(factor / 2.0 - 1e-9)


def is_integer_factor(factor: float) -> bool:
    """True when ``factor`` is an integer (up to 1e-9)."""
    return abs(factor - round(factor)) < 1e-9


def resample_to_factor(x: torch.Tensor, rounded: int, factor: float) -> torch.Tensor:
    """Bicubic down-sampling of ``[B, C, r·h, r·w]`` by ``r / factor`` (no antialias, as the reference), or
    ``x`` itself when ``r == factor``. A fixed scale factor keeps the graph exportable to ONNX."""
    if abs(rounded - factor) < 1e-9:
        return x
    return torch.nn.functional.interpolate(
        x,
        scale_factor=factor / rounded,
        mode="bicubic",
        align_corners=False,
        recompute_scale_factor=False,
    )
