"""Tiled super-resolution of a raster source into one tiled, compressed GeoTIFF (int16 DN, no data −10000).

Each tile of ``tile_size`` output pixels is read with ``ceil(margin / factor)`` input pixels of context
(mirrored at the image borders), no-data pixels are filled with a per-band constant before the network (so
they do not poison their neighbours), the prediction is cropped back to the tile, no-data is set to −10000
where any input band had no data (mask up-sampled by nearest neighbour), and the tile is written by window.
Reading the next tile and writing the previous one overlap with the prediction (one reader and one writer
thread); memory stays bounded by a few tiles whatever the image size. The output is written under a
temporary name and renamed at the end: on any error nothing is left behind.
"""

from __future__ import annotations

import contextlib
import os
import queue
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine
from rasterio.windows import Window
from tqdm import tqdm

from sisrlib.bands import NODATA_DN
from sisrlib.errors import SisrError
from sisrlib.export import set_default_permissions
from sisrlib.inference.predictors import Predictor
from sisrlib.inference.sources import ArraySource, Grid, RasterSource, fill_values_dn
from sisrlib.inference.tiling import (
    Region,
    context_pixels,
    input_window,
    integer_factor,
    output_region,
    plan_tiles,
)

#: Valid predictions are clipped to this int16 range so that −10000 only ever means "no data".
VALID_DN_RANGE: tuple[int, int] = (NODATA_DN + 1, 32767)
DEFAULT_TILE_SIZE = 512
#: GDAL block cache (bytes) while writing: bounds the memory of dirty output blocks whatever the image size.
GDAL_CACHE_BYTES = 256 * 1024 * 1024


@dataclass(frozen=True)
class InferenceSummary:
    """What :func:`super_resolve` wrote."""

    output: Path
    bands: tuple[str, ...]
    factor: int
    region: Region
    tiles: int
    transform: Affine
    seconds: float

    @property
    def megapixels(self) -> float:
        """Output pixels written, in millions (per band)."""
        return self.region.width * self.region.height / 1e6


def predict_tile(
    predictor: Predictor, source: RasterSource, tile: Region, factor: int, context: int
) -> np.ndarray:
    """``[C, tile.height, tile.width]`` float32 DN for one output tile; NaN where the input had no data."""
    window = input_window(tile, factor, context)
    dn = source.read(window.col, window.row, window.width, window.height)
    return predict_window(predictor, dn, tile, window, factor)


def predict_window(
    predictor: Predictor, dn: np.ndarray, tile: Region, window: Region, factor: int
) -> np.ndarray:
    """Run ``predictor`` on the input window ``dn`` ``[C, h, w]`` (DN, NaN = no data) and crop to ``tile``."""
    invalid = np.isnan(dn).any(axis=0)
    channels = dn.shape[0]
    if invalid.all():
        return np.full((channels, tile.height, tile.width), np.nan, dtype=np.float32)
    if invalid.any():
        dn = np.where(invalid[None], fill_values_dn(predictor.bands)[:, None, None], dn)
    out = predictor(dn[None].astype(np.float32, copy=False))[0]
    expected = (channels, window.height * factor, window.width * factor)
    if out.shape != expected:
        raise SisrError(
            f"{predictor.name}: output shape {list(out.shape)} for an input of {list(dn.shape)}; expected "
            f"{list(expected)} (factor {factor})"
        )
    r0 = tile.row - window.row * factor
    c0 = tile.col - window.col * factor
    out = out[:, r0 : r0 + tile.height, c0 : c0 + tile.width]
    if invalid.any():
        rows = np.arange(tile.row, tile.row + tile.height) // factor - window.row
        cols = np.arange(tile.col, tile.col + tile.width) // factor - window.col
        out = np.where(invalid[rows][:, cols][None], np.float32(np.nan), out)
    return out


def to_int16_dn(prediction: np.ndarray) -> np.ndarray:
    """Float DN (NaN = no data) → int16 DN: rounded, clipped to the valid range, no data −10000."""
    out = np.rint(prediction.astype(np.float32, copy=True))
    invalid = ~np.isfinite(out)
    np.clip(out, *VALID_DN_RANGE, out=out)
    out[invalid] = NODATA_DN
    return out.astype(np.int16)


def super_resolve_array(predictor: Predictor, dn: np.ndarray) -> np.ndarray:
    """Whole-image inference of an in-memory ``[C, H, W]`` DN array (NaN = no data) in one piece.

    Same padding (mirror, ``ceil(margin / f)`` input px), no-data filling and masking as the tiled path:
    returns ``[C, H·f, W·f]`` float32 DN with NaN for no data.
    """
    factor = integer_factor(predictor.factor)
    source = ArraySource(dn, predictor.bands)
    region = Region(0, 0, source.grid.width * factor, source.grid.height * factor)
    return predict_tile(predictor, source, region, factor, context_pixels(predictor.margin, factor))


def _block_size(tile_size: int) -> int:
    """GeoTIFF block edge: the largest of 512, 256 … 16 dividing the tile size, else 256."""
    for size in (512, 256, 128, 64, 32, 16):
        if tile_size % size == 0:
            return size
    return 256


def output_transform(grid: Grid, factor: int, region: Region) -> Affine:
    """The input transform scaled by 1/factor and moved to the region's top-left output pixel."""
    return (
        grid.transform
        @ Affine.translation(region.col / factor, region.row / factor)
        @ Affine.scale(1 / factor)
    )


@contextlib.contextmanager
def atomic_output(path: Path) -> Iterator[Path]:
    """A temporary path beside ``path``, renamed onto it on success and removed on any error."""
    if not path.parent.is_dir():
        raise FileNotFoundError(f"output {path}: the folder {path.parent} does not exist")
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".tif.tmp")
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        set_default_permissions(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def super_resolve(
    predictor: Predictor,
    source: RasterSource,
    output: str | os.PathLike[str],
    *,
    roi: Sequence[float] | None = None,
    roi_pixels: Sequence[int] | None = None,
    tile_size: int = DEFAULT_TILE_SIZE,
    progress: bool = True,
) -> InferenceSummary:
    """Super-resolve ``source`` (or its ROI) tile by tile into the GeoTIFF ``output``.

    Args:
        predictor: DN → DN model (ONNX, torch or bicubic), whose bands match ``source.bands``.
        source: the input on its grid (its bands in the predictor's order).
        output: GeoTIFF to write (int16 DN, no data −10000, deflate, tiled, band descriptions = band names).
        roi: ``(left, bottom, right, top)`` in the input CRS, or ``roi_pixels``: ``(col, row, width, height)``
            in input pixels; the whole image when neither is given.
        tile_size: tile edge in output pixels.
        progress: show a tqdm progress bar (on stderr).
    """
    start = time.perf_counter()
    output = Path(output)
    if tuple(source.bands) != tuple(predictor.bands):
        raise SisrError(
            f"the input bands {list(source.bands)} differ from the model's {list(predictor.bands)}"
        )
    if isinstance(tile_size, bool) or not isinstance(tile_size, int) or tile_size < 1:
        raise ValueError(f"--tile-size {tile_size!r}: expected a positive whole number of output pixels")
    factor = integer_factor(predictor.factor)
    context = context_pixels(predictor.margin, factor)
    region = output_region(source.grid, factor, roi, roi_pixels)
    tiles = plan_tiles(region, tile_size)
    transform = output_transform(source.grid, factor, region)
    block = _block_size(tile_size)
    profile = {
        "driver": "GTiff",
        "width": region.width,
        "height": region.height,
        "count": len(predictor.bands),
        "dtype": "int16",
        "crs": source.grid.crs,
        "transform": transform,
        "nodata": NODATA_DN,
        "tiled": True,
        "blockxsize": block,
        "blockysize": block,
        "compress": "deflate",
        # Level 1: half the compression time of the default level 6 for ~1 % larger files on SR outputs.
        "zlevel": 1,
        "predictor": 2,
        "BIGTIFF": "IF_SAFER",
        "interleave": "band" if len(predictor.bands) > 4 else "pixel",
    }
    with (
        rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_BYTES),
        atomic_output(output) as tmp,
        rasterio.open(tmp, "w", **profile) as dst,
    ):
        for i, band in enumerate(predictor.bands, start=1):
            dst.set_band_description(i, band)
        dst.update_tags(
            model=predictor.name, factor=str(factor), margin=str(predictor.margin), source=source.description
        )
        _run_tiles(predictor, source, dst, tiles, region, factor, context, progress, output.name)
    return InferenceSummary(
        output, tuple(predictor.bands), factor, region, len(tiles), transform, time.perf_counter() - start
    )


def _run_tiles(
    predictor: Predictor,
    source: RasterSource,
    dst: rasterio.io.DatasetWriter,
    tiles: list[Region],
    region: Region,
    factor: int,
    context: int,
    progress: bool,
    label: str,
) -> None:
    """Read-ahead (1 tile), predict, and write behind (bounded queue of 2 tiles)."""
    write_queue: queue.Queue[tuple[Region, np.ndarray] | None] = queue.Queue(maxsize=2)
    errors: list[BaseException] = []

    def writer() -> None:
        while True:
            item = write_queue.get()
            if item is None:
                return
            if errors:
                continue
            tile, data = item
            try:
                dst.write(
                    data, window=Window(tile.col - region.col, tile.row - region.row, tile.width, tile.height)
                )
            except BaseException as exc:  # reported in the main thread
                errors.append(exc)

    def read(tile: Region) -> tuple[Region, np.ndarray]:
        window = input_window(tile, factor, context)
        return window, source.read(window.col, window.row, window.width, window.height)

    thread = threading.Thread(target=writer, name="sisr-writer", daemon=True)
    thread.start()
    try:
        with (
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="sisr-reader") as pool,
            tqdm(
                total=len(tiles), unit="tile", desc=f"sisr infer {label}", disable=not progress, leave=False
            ) as bar,
        ):
            pending: Future[tuple[Region, np.ndarray]] | None = pool.submit(read, tiles[0]) if tiles else None
            for i, tile in enumerate(tiles):
                assert pending is not None
                window, dn = pending.result()
                pending = pool.submit(read, tiles[i + 1]) if i + 1 < len(tiles) else None
                prediction = predict_window(predictor, dn, tile, window, factor)
                if errors:
                    raise errors[0]
                write_queue.put((tile, to_int16_dn(prediction)))
                bar.update(1)
    finally:
        write_queue.put(None)
        thread.join()
    if errors:
        raise errors[0]
