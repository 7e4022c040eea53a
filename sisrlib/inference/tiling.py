"""Regions and tiles in OUTPUT pixels, and the input windows (with context) they need.

The output grid has the input grid's origin and a pixel size divided by the factor: output pixel ``(r, c)``
covers input pixel ``(r // f, c // f)`` for an integer factor ``f``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from sisrlib.errors import SisrError
from sisrlib.inference.sources import Grid


@dataclass(frozen=True)
class Region:
    """A rectangle of pixels: ``col``, ``row`` (top-left), ``width``, ``height``."""

    col: int
    row: int
    width: int
    height: int


def integer_factor(factor: float) -> int:
    """The factor as an int; tiling needs an integer factor (2, 4 …)."""
    if not factor >= 1 or abs(factor - round(factor)) > 1e-9:
        raise SisrError(
            f"model factor {factor}: tiled inference needs an integer factor >= 1 (e.g. 2.0 or 4.0)"
        )
    return round(factor)


def parse_tile_size(value: object) -> int | None:
    """A tile size in output pixels: a positive integer (``"512"`` or ``512``), or None for ``"auto"`` (chosen
    from the model's margin and the memory bound: :func:`sisrlib.inference.memory.auto_tile_size`)."""
    text = str(value).strip()
    if text.lower() == "auto":
        return None
    try:
        size = int(text)
    except ValueError:
        size = -1
    if size < 1 or isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
        raise ValueError(
            f"--tile-size {value!r}: expected a positive whole number of output pixels (e.g. 512) or auto"
        )
    return size


def context_pixels(margin: int, factor: int) -> int:
    """Input pixels of context on each side of a tile: ``ceil(margin / factor)``."""
    return math.ceil(max(margin, 0) / factor)


def output_region(
    grid: Grid,
    factor: int,
    roi: Sequence[float] | None = None,
    roi_pixels: Sequence[int] | None = None,
) -> Region:
    """The output pixels to produce.

    Args:
        grid: the input grid.
        factor: integer super-resolution factor.
        roi: ``(left, bottom, right, top)`` in the input CRS; snapped to the nearest output pixel edges.
        roi_pixels: ``(col, row, width, height)`` in input pixels.

    With neither, the whole image. The region must lie inside the image.
    """
    if roi is not None and roi_pixels is not None:
        raise ValueError("--roi and --roi-pixels are exclusive: give one of them")
    full_w, full_h = grid.width * factor, grid.height * factor
    if roi_pixels is not None:
        col, row, width, height = (int(v) for v in roi_pixels)
        if any(float(v) != int(v) for v in roi_pixels):
            raise ValueError(f"--roi-pixels {list(roi_pixels)}: expected whole input pixels")
        if width < 1 or height < 1:
            raise ValueError(f"--roi-pixels {list(roi_pixels)}: width and height must be positive")
        if col < 0 or row < 0 or col + width > grid.width or row + height > grid.height:
            raise ValueError(
                f"--roi-pixels {list(roi_pixels)} (col row width height) is not inside the image of "
                f"{grid.width} x {grid.height} input pixels"
            )
        return Region(col * factor, row * factor, width * factor, height * factor)
    if roi is not None:
        left, bottom, right, top = (float(v) for v in roi)
        if not (left < right and bottom < top):
            raise ValueError(
                f"--roi {list(roi)}: expected left bottom right top with left < right and bottom < top"
            )
        inverse = ~grid.transform
        c0, r0 = inverse @ (left, top)
        c1, r1 = inverse @ (right, bottom)
        oc0, or0 = round(c0 * factor), round(r0 * factor)
        oc1, or1 = round(c1 * factor), round(r1 * factor)
        if oc0 < 0 or or0 < 0 or oc1 > full_w or or1 > full_h:
            b = grid.bounds
            raise ValueError(
                f"--roi {list(roi)} is not inside the image bounds (left {b[0]}, bottom {b[1]}, right "
                f"{b[2]}, "
                f"top {b[3]}) in {grid.crs}"
            )
        if oc1 - oc0 < 1 or or1 - or0 < 1:
            raise ValueError(f"--roi {list(roi)} is smaller than one output pixel")
        return Region(oc0, or0, oc1 - oc0, or1 - or0)
    return Region(0, 0, full_w, full_h)


def plan_tiles(region: Region, tile_size: int) -> list[Region]:
    """Tiles of ``tile_size`` output pixels covering ``region`` row by row (the last ones may be smaller)."""
    if tile_size < 1:
        raise ValueError(f"tile size {tile_size}: expected a positive number of output pixels")
    tiles = []
    for row in range(region.row, region.row + region.height, tile_size):
        for col in range(region.col, region.col + region.width, tile_size):
            tiles.append(
                Region(
                    col,
                    row,
                    min(tile_size, region.col + region.width - col),
                    min(tile_size, region.row + region.height - row),
                )
            )
    return tiles


def input_window(tile: Region, factor: int, context: int) -> Region:
    """The input pixels (with ``context`` on each side) whose prediction covers ``tile`` (output pixels)."""
    col0 = tile.col // factor - context
    row0 = tile.row // factor - context
    col1 = -(-(tile.col + tile.width) // factor) + context
    row1 = -(-(tile.row + tile.height) // factor) + context
    return Region(col0, row0, col1 - col0, row1 - row0)
