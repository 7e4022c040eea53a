"""Upsampling factors and receptive-field arithmetic shared by the generators.

All margins are counted in pixels of the grid named in the argument (LR input grid, an intermediate grid or
the output grid) and mean: the number of pixels, from every border, whose value depends on how the network
pads its input (zero/reflect padding of convolutions, index clamping of bicubic interpolation). A prediction
cropped by that many pixels equals, exactly, the prediction of the same network run on a larger image.
"""

from __future__ import annotations

import math
from fractions import Fraction

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
    """CARN's rounding of the factor (spec §3.1): r = 2·⌈factor/2⌉ (2 → 2, 3 → 4, 4 → 4, 5 → 6)."""
    if not math.isfinite(factor) or factor < 1.0:
        raise ValueError(f"upsampling factor must be a finite number >= 1, got {factor}")
    return 2 * math.ceil(factor / 2.0 - 1e-9)


def is_integer_factor(factor: float) -> bool:
    """True when ``factor`` is an integer (up to 1e-9)."""
    return abs(factor - round(factor)) < 1e-9


def bicubic_resample_margin(margin_in: int, scale: float) -> int:
    """Margin (output px) after a bicubic resampling by ``scale`` (> 1 up, < 1 down) of an image whose
    ``margin_in`` border pixels are already padding-dependent (0: only the index clamping matters).

    ``interpolate(mode="bicubic", align_corners=False)`` samples output pixel q at the input coordinate
    x = (q + ½)/scale − ½ with the four taps ⌊x⌋−1 … ⌊x⌋+2 (indices clamped at the border). When x is an
    integer only the tap x has a non-zero weight, so q is exact iff x ≥ m; otherwise iff ⌊x⌋ − 1 ≥ m. The
    margin is one more than the last inexact q (the right border is the mirror image when the output size is
    exactly ``scale`` × the input size). E.g. m = 0: 3 px at ×2, 4 px at ×3, 6 px at ×4.
    """
    if margin_in < 0:
        raise ValueError(f"margin_in must be >= 0, got {margin_in}")
    if not scale > 0:
        raise ValueError(f"scale must be > 0, got {scale}")
    s = Fraction(scale).limit_denominator(1_000_000)
    half = Fraction(1, 2)
    last_inexact = -1
    q = 0
    while True:
        x = (q + half) / s - half
        if x >= margin_in + 1:  # ⌊x⌋ − 1 ≥ m from here on
            return last_inexact + 1
        inexact = x < margin_in if x.denominator == 1 else math.floor(x) <= margin_in
        if inexact:
            last_inexact = q
        q += 1


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
