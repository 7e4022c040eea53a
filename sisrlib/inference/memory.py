"""The peak memory of the tile loop, estimated from the tile size, and the bound it is checked against before
any work (``--max-memory``)."""

from __future__ import annotations

import os
from collections.abc import Sequence

from sisrlib.errors import SisrError
from sisrlib.inference.tiling import Region, context_pixels
from sisrlib.predictors.base import Predictor

#: GDAL block cache (bytes) while writing: bounds the memory of dirty output blocks whatever the image size.
GDAL_CACHE_BYTES = 256 * 1024 * 1024
#: Feature maps at the output resolution assumed for a network's activations in the memory estimate
#: (ESRGAN-like generators keep 64 features after up-sampling).
ACTIVATION_CHANNELS = 64
#: Default memory bound: this fraction of the machine's physical memory.
MEMORY_FRACTION = 0.5
#: ``--tile-size auto``: the largest tile (output px, a multiple of :data:`AUTO_TILE_STEP`, at most
#: :data:`AUTO_TILE_MAX`) whose estimated peak memory stays within this budget (and the memory bound).
AUTO_MEMORY_BUDGET = 768 * 1024**2
AUTO_TILE_STEP, AUTO_TILE_MIN, AUTO_TILE_MAX = 256, 256, 2048


def model_label(predictor: Predictor) -> str:
    """``predictor.name`` and the model file it was loaded from, for messages."""
    return f"{predictor.name} ({predictor.files[-1]})" if predictor.files else predictor.name


def estimate_peak_memory(tile_height: int, tile_width: int, bands: int, factor: int, margin: int) -> int:
    """A rough upper estimate (bytes) of the peak memory of the tile loop for tiles of the given size.

    Per tile (output px ``tile_height × tile_width``): the input window (tile / ``factor`` + ``ceil(margin /
    factor)`` px of context on each side) in flight twice (read-ahead and current), with ~6 float32 copies
    per band (raw, DN, mirror, fill, mask tables); the network's output at ``factor ×`` the window with
    ``ACTIVATION_CHANNELS`` float32 feature maps plus 2 per band; the cropped tile and three int16 tiles
    queued for writing; the GDAL block cache. The network's own activations are not known from the model
    yaml: 64 output-resolution feature maps covers the generators of this project.
    """
    context = context_pixels(margin, factor)
    in_h = -(-tile_height // factor) + 1 + 2 * context
    in_w = -(-tile_width // factor) + 1 + 2 * context
    in_px = in_h * in_w
    out_px = in_px * factor * factor
    tile_px = tile_height * tile_width
    return (
        2 * 6 * 4 * bands * in_px
        + 4 * (ACTIVATION_CHANNELS + 2 * bands) * out_px
        + (4 + 3 * 2) * bands * tile_px
        + GDAL_CACHE_BYTES
    )


def default_memory_bound() -> int:
    """``MEMORY_FRACTION`` of this machine's physical memory, in bytes (16 GiB when it cannot be read)."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - non-POSIX
        total = 32 * 1024**3
    return int(total * MEMORY_FRACTION)


def check_memory(
    predictor: Predictor, tiles: Sequence[Region], tile_size: int, factor: int, max_memory: int | None
) -> int:
    """Refuse tiles whose :func:`estimate_peak_memory` exceeds ``max_memory`` bytes (default: half the RAM).

    Returns the estimate (bytes). The message says the estimate, the bound and which option to change.
    """
    if not tiles:
        return 0
    height = max(t.height for t in tiles)
    width = max(t.width for t in tiles)
    margin = max(predictor.margin, 0)
    estimate = estimate_peak_memory(height, width, len(predictor.bands), factor, margin)
    bound = default_memory_bound() if max_memory is None else int(max_memory)
    if estimate > bound:
        gib = 1024**3
        where = "half of this machine's memory" if max_memory is None else "--max-memory"
        context = context_pixels(margin, factor)
        advice = (
            f"the model's margin of {margin} output px (its yaml 'margin') needs {context} input px of "
            f"context on each side of every tile: check the model {model_label(predictor)}"
            if 2 * context > -(-min(height, width) // factor)
            else f"lower --tile-size (now {tile_size}; e.g. {max(64, tile_size // 4)})"
        )
        raise SisrError(
            f"estimated peak memory {estimate / gib:.1f} GiB for tiles of {height} x {width} output px, "
            f"{len(predictor.bands)} bands, x{factor}, margin {margin} output px, exceeds the bound "
            f"{bound / gib:.1f} GiB ({where}): {advice}, or raise the bound with --max-memory GIB"
        )
    return estimate


def auto_tile_size(predictor: Predictor, factor: int, max_memory: int | None = None) -> int:
    """The tile edge (output px) of ``--tile-size auto``: the largest multiple of :data:`AUTO_TILE_STEP` up
    to :data:`AUTO_TILE_MAX` whose :func:`estimate_peak_memory` fits :data:`AUTO_MEMORY_BUDGET` and the
    memory bound, so that the share of the model's work spent on the ``ceil(margin / factor)`` input px of
    context around each tile stays small (~6 % at ×2 with margin 16 and 1024 px tiles) while memory stays
    bounded whatever the image size. At least :data:`AUTO_TILE_MIN`."""
    bound = default_memory_bound() if max_memory is None else int(max_memory)
    budget = min(AUTO_MEMORY_BUDGET, bound)
    margin = max(predictor.margin, 0)
    for size in range(AUTO_TILE_MAX, AUTO_TILE_MIN - 1, -AUTO_TILE_STEP):
        if estimate_peak_memory(size, size, len(predictor.in_bands), factor, margin) <= budget:
            return size
    return AUTO_TILE_MIN
