"""The controlled distortions of the metrics benchmark (torchsisr's ``simulate``), on reflectance patches."""

from __future__ import annotations

import math
from typing import Literal, get_args

import torch

from sisrlib.degradation import add_noise, blur
from sisrlib.flow import warp

#: ``"seeded"``: our 4×4 pattern drawn from a seeded generator; ``"reference"``: torchsisr's fixed table.
PatternKind = Literal["seeded", "reference"]
PATTERN_KINDS: tuple[str, ...] = get_args(PatternKind)
#: Borders of the blur: ``"reflect"`` (ours) or ``"zeros"`` (torchsisr's "same" convolution, darker borders).
BlurPadding = Literal["reflect", "zeros"]
BLUR_PADDINGS: tuple[str, ...] = get_args(BlurPadding)

#: torchsisr's fixed 4×4 periodic pattern (values in ±0.5), row by row.
REFERENCE_PATTERN: tuple[tuple[float, ...], ...] = (
    (-0.2958, 0.0351, -0.4362, 0.2725),
    (0.2069, 0.3313, 0.2105, -0.0692),
    (0.3401, -0.3956, 0.2525, -0.0705),
    (0.4418, 0.2502, -0.4821, -0.3385),
)


def pattern_tile(seed: int = 0, kind: PatternKind = "seeded") -> torch.Tensor:
    """The fixed 4×4 pattern ``[4, 4]`` (float64), values in [−0.5, 0.5): ``"seeded"`` drawn uniformly from a
    generator seeded with ``seed``, ``"reference"`` torchsisr's table (``seed`` ignored)."""
    if kind == "reference":
        return torch.tensor(REFERENCE_PATTERN, dtype=torch.float64)
    if kind != "seeded":
        raise ValueError(f"pattern kind must be one of {PATTERN_KINDS}, got {kind!r}")
    g = torch.Generator().manual_seed(seed)
    return torch.rand(4, 4, generator=g, dtype=torch.float64) - 0.5


def simulate(
    x: torch.Tensor,
    mtf: float | None = None,
    spectral: float | None = None,
    spatial: float | None = None,
    pattern: float | None = None,
    noise: float | None = None,
    generator: torch.Generator | None = None,
    pattern_kind: PatternKind = "seeded",
    blur_padding: BlurPadding = "reflect",
) -> torch.Tensor:
    """Distort reflectance patches ``[B, C, H, W]`` (torchsisr's order); ``None`` disables a step:

    1. ``spatial``: sub-pixel translation by ``spatial/√2`` px in x and in y (total ``spatial``), bicubic
       warp;
    2. ``spectral``: contrast loss around reflectance 0.1, ``x ← 0.1 + (x − 0.1)(1 − spectral)``;
    3. ``mtf``: Gaussian blur whose MTF at Nyquist is ``mtf`` (7×7 kernel as the reference), borders
       ``blur_padding``;
    4. ``noise``: white Gaussian noise of std ``noise`` (reflectance, from ``generator``);
    5. ``pattern``: the fixed 4×4 pattern (``pattern_kind``, values in ±0.5) tiled over the patch (cropped
       where H or W is not a multiple of 4) × ``pattern``, added.
    """
    if x.dim() != 4:
        raise ValueError(f"x must be [B, C, H, W], got {tuple(x.shape)}")
    out = x
    if spatial is not None and spatial != 0.0:
        d = spatial / math.sqrt(2.0)
        flow = torch.full((x.shape[0], 2, x.shape[-2], x.shape[-1]), d, device=x.device, dtype=x.dtype)
        out = warp(out, flow)
    if spectral is not None:
        out = 0.1 + (out - 0.1) * (1.0 - spectral)
    if mtf is not None:
        out = blur(out, mtf, half_width=3, padding_mode=blur_padding)
    if noise is not None and noise > 0.0:
        out = add_noise(out, noise, generator)
    if pattern is not None and pattern != 0.0:
        h, w = out.shape[-2:]
        tile = pattern_tile(kind=pattern_kind).to(device=out.device, dtype=out.dtype)
        tiled = tile.repeat((h + 3) // 4, (w + 3) // 4)[:h, :w]
        out = out + pattern * tiled
    return out
