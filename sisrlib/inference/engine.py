"""Tiled super-resolution of a raster source into one tiled, compressed GeoTIFF (int16 DN, no data −10000).

Each tile of ``tile_size`` output pixels is read with ``ceil(margin / factor)`` input pixels of context
(mirrored at the image borders), no-data pixels are filled with a per-band constant before the network (so
they do not poison their neighbours), the prediction is cropped back to the tile, and the tile is written by
window. An input pixel has no data where any band has none (NaN, ±inf, DN ≤ −10000, or the source's
no-data tag and masks). Output pixels are written as no data (−10000) where they cover such an input pixel
and, by default, also within the model's ``margin`` (output pixels, square neighbourhood) of one: those
pixels' receptive field saw the fill value, not data (``keep_filled=True`` keeps their prediction). Both
rules depend on the image only, never on the tiling, so tiled and whole-image results agree.

The float predictions are rounded to the nearest DN before the int16 cast (half to even); ``truncate=True``
truncates them toward zero instead, as the EVOLAND tool's cast does (1.7 → 1), to reproduce its output
exactly; the two differ by at most 1 DN.

A model whose output is not finite on valid input (NaN weights, overflow) is an error, not no-data. Reading
the next tile and writing the previous one overlap with the prediction (one reader and one writer thread);
memory stays bounded by a few tiles whatever the image size, and settings whose estimated peak memory
exceeds a bound are refused before any work (:func:`estimate_peak_memory`). The output is written under a
temporary name and renamed at the end: on any error, and on SIGTERM under :func:`sigterm_raises`, nothing
is left behind; temporaries left by a killed run (SIGKILL) on this host are removed by the next run.
"""

from __future__ import annotations

import contextlib
import os
import queue
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine
from rasterio.errors import RasterioError
from rasterio.windows import Window
from tqdm import tqdm

from sisrlib.bands import NODATA_DN
from sisrlib.errors import SisrError
from sisrlib.inference.memory import GDAL_CACHE_BYTES, auto_tile_size, check_memory, model_label
from sisrlib.inference.output import (
    DEFAULT_COMPRESSION,
    check_output_path,
    geotiff_profile,
    output_transform,
    temporary_output,
)
from sisrlib.inference.sources import ArraySource, RasterSource, any_in_boxes, fill_values_dn
from sisrlib.inference.tiling import (
    Region,
    context_pixels,
    input_window,
    integer_factor,
    output_region,
    plan_tiles,
)
from sisrlib.predictors.base import Predictor

#: Valid predictions are clipped to this int16 range so that −10000 only ever means "no data".
VALID_DN_RANGE: tuple[int, int] = (NODATA_DN + 1, 32767)
#: ``--tile-size``'s default: chosen from the model's margin and the memory bound.
DEFAULT_TILE_SIZE = "auto"
#: Tiles waiting between the reader and the model, and between the model and the writer.
QUEUE_DEPTH = 2
#: Scheduling niceness of the reader and writer threads (Linux, per thread). The model's intra-op threads
#: meet at the end of every parallel operator: a reader or writer holding one core makes the other model
#: thread wait for it. At the lowest priority they run in the model's idle moments instead (measured with
#: benchmarks/inference.py --against-evoland, x4 whole scene, 2 threads, median of 7 alternating runs: CPU
#: time 15.7 s against 17.1 s, wall 8.6 s against 9.6 s).
BACKGROUND_NICENESS = 19

#: (tile, input window, model input ``[1, C, h, w]`` or None when all no data, ``[h, w]`` no-data mask)
_Prepared = tuple[Region, Region, "np.ndarray | None", np.ndarray]
#: (tile, input window, model output ``[C, h·f, w·f]`` or None, ``[h, w]`` no-data mask)
_Predicted = tuple[Region, Region, "np.ndarray | None", np.ndarray]


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
    predictor: Predictor,
    source: RasterSource,
    tile: Region,
    factor: int,
    context: int,
    *,
    keep_filled: bool = False,
) -> np.ndarray:
    """``[C, tile.height, tile.width]`` float32 DN for one output tile; NaN where the output has no data."""
    window = input_window(tile, factor, context)
    dn = source.read(window.col, window.row, window.width, window.height)
    return predict_window(predictor, dn, tile, window, factor, keep_filled=keep_filled)


def input_nodata(dn: np.ndarray) -> np.ndarray:
    """``[h, w]`` bool: pixels without data in some band of ``dn`` ``[C, h, w]`` (NaN, ±inf, ≤ −10000 DN)."""
    with np.errstate(invalid="ignore"):
        return np.asarray((~(dn > np.float32(NODATA_DN)) | np.isposinf(dn)).any(axis=0), dtype=bool)


def output_nodata(invalid: np.ndarray, tile: Region, window: Region, factor: int, halo: int) -> np.ndarray:
    """``[tile.height, tile.width]`` bool: output pixels within ``halo`` output px of an input hole.

    Output pixel ``p`` (row or column, output px) is no data when an input pixel ``q`` of ``invalid``
    (``[h, w]`` on ``window``, input px) has its ``factor × factor`` footprint ``[q·f, q·f + f − 1]`` within
    ``halo`` of ``p`` on both axes (square dilation), i.e. ``(p − halo) // f ≤ q ≤ (p + halo) // f``.
    ``halo = 0`` is the footprint itself (nearest-neighbour up-sampling of the mask). Computed with a
    summed-area table; the window (``ceil(margin / f)`` px of context) always holds every ``q`` needed when
    ``halo ≤ margin`` (pixels beyond the window count as data).
    """
    rows = np.arange(tile.row, tile.row + tile.height)
    cols = np.arange(tile.col, tile.col + tile.width)
    return any_in_boxes(
        invalid,
        (rows - halo) // factor - window.row,
        (rows + halo) // factor - window.row + 1,
        (cols - halo) // factor - window.col,
        (cols + halo) // factor - window.col + 1,
    )


def prepare_window(predictor: Predictor, dn: np.ndarray) -> tuple[np.ndarray | None, np.ndarray]:
    """The model's input for the window ``dn`` ``[C, h, w]`` (DN, NaN = no data): ``[1, C, h, w]`` float32
    with no-data pixels filled by :func:`~sisrlib.inference.sources.fill_values_dn` (None when the whole
    window has no data), and the ``[h, w]`` no-data mask."""
    invalid = input_nodata(dn)
    if invalid.all():
        return None, invalid
    if invalid.any():
        dn = np.where(invalid[None], fill_values_dn(predictor.bands)[:, None, None], dn)
    return np.ascontiguousarray(dn[None], dtype=np.float32), invalid


def finish_window(
    predictor: Predictor,
    out: np.ndarray | None,
    invalid: np.ndarray,
    tile: Region,
    window: Region,
    factor: int,
    *,
    keep_filled: bool = False,
) -> np.ndarray:
    """The model's output ``out`` ``[C, h·f, w·f]`` on ``window`` (None: the window had no data) cropped to
    ``tile``: ``[C, tile.height, tile.width]`` float32 DN, NaN over input holes and, unless ``keep_filled``,
    within the model's margin of them. Raises :class:`SisrError` naming the model when its output has the
    wrong shape or is not finite."""
    channels = len(predictor.out_bands)
    if out is None:
        return np.full((channels, tile.height, tile.width), np.nan, dtype=np.float32)
    expected = (channels, window.height * factor, window.width * factor)
    if out.shape != expected:
        raise SisrError(
            f"{predictor.name}: output shape {list(out.shape)} for an input of "
            f"{[len(predictor.in_bands), window.height, window.width]}; expected {list(expected)} (factor "
            f"{factor})"
        )
    r0 = tile.row - window.row * factor
    c0 = tile.col - window.col * factor
    out = out[:, r0 : r0 + tile.height, c0 : c0 + tile.width]
    finite = np.isfinite(out)
    if not finite.all():
        bad = int(out.size - np.count_nonzero(finite))
        raise SisrError(
            f"model {model_label(predictor)}: {bad} of {out.size} output values are not finite (NaN or inf) "
            f"on the output tile at col {tile.col}, row {tile.row} ({tile.width} x {tile.height} px) from "
            "finite input: the model is broken (NaN or inf weights, or a numerical overflow); check its "
            "weights and export it again"
        )
    if invalid.any():
        mask = output_nodata(invalid, tile, window, factor, 0 if keep_filled else max(predictor.margin, 0))
        out = np.where(mask[None], np.float32(np.nan), out)
    return out


def predict_window(
    predictor: Predictor,
    dn: np.ndarray,
    tile: Region,
    window: Region,
    factor: int,
    *,
    keep_filled: bool = False,
) -> np.ndarray:
    """Run ``predictor`` on the input window ``dn`` ``[C, h, w]`` (DN, NaN = no data) and crop to ``tile``
    (:func:`prepare_window`, the model, :func:`finish_window`): ``[C, tile.height, tile.width]`` float32 DN
    with NaN where the output has no data."""
    model_input, invalid = prepare_window(predictor, dn)
    out = None if model_input is None else predictor(model_input)[0]
    return finish_window(predictor, out, invalid, tile, window, factor, keep_filled=keep_filled)


def to_int16_dn(prediction: np.ndarray, *, truncate: bool = False) -> np.ndarray:
    """Float DN (NaN = no data) → int16 DN: rounded to the nearest integer (half to even), or with
    ``truncate`` truncated toward zero as the EVOLAND tool's int16 cast does (1.7 → 1, −1.7 → −1); then
    clipped to the valid range (the tool does not clip: its cast wraps values beyond int16); no data −10000.
    """
    prediction = prediction.astype(np.float32, copy=True)
    out = np.trunc(prediction) if truncate else np.rint(prediction)
    invalid = ~np.isfinite(out)
    np.clip(out, *VALID_DN_RANGE, out=out)
    out[invalid] = NODATA_DN
    return out.astype(np.int16)


def super_resolve_array(predictor: Predictor, dn: np.ndarray, *, keep_filled: bool = False) -> np.ndarray:
    """Whole-image inference of an in-memory ``[C, H, W]`` DN array (NaN = no data) in one piece.

    Same padding (mirror, ``ceil(margin / f)`` input px), no-data filling and masking (``keep_filled``) as
    the tiled path: returns ``[C, H·f, W·f]`` float32 DN with NaN for no data.
    """
    factor = integer_factor(predictor.factor)
    source = ArraySource(dn, predictor.bands)
    region = Region(0, 0, source.grid.width * factor, source.grid.height * factor)
    context = context_pixels(predictor.margin, factor)
    return predict_tile(predictor, source, region, factor, context, keep_filled=keep_filled)


def super_resolve(
    predictor: Predictor,
    source: RasterSource,
    output: str | os.PathLike[str],
    *,
    roi: Sequence[float] | None = None,
    roi_pixels: Sequence[int] | None = None,
    tile_size: int | None = None,
    progress: bool = True,
    keep_filled: bool = False,
    max_memory: int | None = None,
    truncate: bool = False,
    compress: str = DEFAULT_COMPRESSION,
) -> InferenceSummary:
    """Super-resolve ``source`` (or its ROI) tile by tile into the GeoTIFF ``output``.

    Args:
        predictor: DN → DN model (ONNX, torch or bicubic), whose bands match ``source.bands``.
        source: the input on its grid (its bands in the predictor's order).
        output: GeoTIFF to write (int16 DN, no data −10000, deflate, tiled, band descriptions = band names).
        roi: ``(left, bottom, right, top)`` in the input CRS, or ``roi_pixels``: ``(col, row, width, height)``
            in input pixels; the whole image when neither is given.
        tile_size: tile edge in output pixels; None: :func:`~sisrlib.inference.memory.auto_tile_size`.
        progress: show a tqdm progress bar (on stderr).
        keep_filled: keep the prediction of output pixels within the model's margin of an input hole
            (computed from the fill value); by default they are written as no data.
        max_memory: bound (bytes) on the estimated peak memory; default half of this machine's memory.
        truncate: write the float predictions truncated toward zero (the EVOLAND tool's int16 cast)
            instead of rounded to the nearest DN.
        compress: the output's compression (:data:`sisrlib.inference.output.COMPRESSIONS`).

    Raises ``SisrError`` before any work when ``output`` is a folder or would replace the model or an
    input file, or when the memory estimate exceeds the bound.
    """
    start = time.perf_counter()
    output = check_output_path(
        output,
        [*(("the model file", p) for p in predictor.files), *(("the input file", p) for p in source.files)],
    )
    if tuple(source.bands) != tuple(predictor.bands):
        raise SisrError(
            f"the input bands {list(source.bands)} differ from the model's {list(predictor.bands)}"
        )
    if tile_size is not None and (
        isinstance(tile_size, bool) or not isinstance(tile_size, int) or tile_size < 1
    ):
        raise ValueError(f"--tile-size {tile_size!r}: expected a positive whole number of output pixels")
    factor = integer_factor(predictor.factor)
    if tile_size is None:
        tile_size = auto_tile_size(predictor, factor, max_memory)
    context = context_pixels(predictor.margin, factor)
    region = output_region(source.grid, factor, roi, roi_pixels)
    tiles = plan_tiles(region, tile_size)
    check_memory(predictor, tiles, tile_size, factor, max_memory)
    transform = output_transform(source.grid, factor, region)
    profile = geotiff_profile(
        region, len(predictor.out_bands), source.grid.crs, transform, tile_size, compress
    )
    with (
        rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_BYTES),
        temporary_output(output) as tmp,
        rasterio.open(tmp, "w", **profile) as dst,
    ):
        for i, band in enumerate(predictor.bands, start=1):
            dst.set_band_description(i, band)
        dst.update_tags(
            model=predictor.name,
            factor=str(factor),
            margin=str(predictor.margin),
            source=source.description,
            rounding="truncate" if truncate else "nearest",
        )
        _run_tiles(
            predictor,
            source,
            dst,
            tiles,
            region,
            factor,
            context,
            progress,
            output.name,
            keep_filled,
            truncate,
        )
    return InferenceSummary(
        output, tuple(predictor.bands), factor, region, len(tiles), transform, time.perf_counter() - start
    )


def lower_thread_priority(niceness: int = BACKGROUND_NICENESS) -> None:
    """Give the calling thread the scheduling ``niceness`` (Linux only, where a thread id is a valid
    ``setpriority`` target; elsewhere nothing is done). Raising one's niceness needs no privilege; a failure
    leaves the priority as it was."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), niceness)


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
    keep_filled: bool,
    truncate: bool = False,
) -> None:
    """The model runs in this thread; a reader thread prepares the next tiles (read, no-data mask, fill) and a
    writer thread finishes the previous ones (crop, checks, masks, int16, compression, write), each through a
    queue of :data:`QUEUE_DEPTH` tiles, so that reading and writing overlap with the model and memory stays
    bounded by a few tiles; both run at the lowest priority (:data:`BACKGROUND_NICENESS`), so that the model
    never waits for them."""
    ready: queue.Queue[_Prepared | None] = queue.Queue(maxsize=QUEUE_DEPTH)
    done: queue.Queue[_Predicted | None] = queue.Queue(maxsize=QUEUE_DEPTH)
    errors: list[BaseException] = []
    stop = threading.Event()

    def reader() -> None:
        lower_thread_priority()
        try:
            for tile in tiles:
                if stop.is_set():
                    break
                window = input_window(tile, factor, context)
                dn = source.read(window.col, window.row, window.width, window.height)
                model_input, invalid = prepare_window(predictor, dn)
                while not stop.is_set():
                    try:
                        ready.put((tile, window, model_input, invalid), timeout=0.1)
                        break
                    except queue.Full:
                        continue
        except BaseException as exc:  # reported in the main thread
            errors.append(exc)
        finally:
            _put_end(ready, stop)

    def writer() -> None:
        lower_thread_priority()
        while (item := done.get()) is not None:
            if errors:
                continue
            tile, window, out, invalid = item
            try:
                data = finish_window(predictor, out, invalid, tile, window, factor, keep_filled=keep_filled)
                where = Window(tile.col - region.col, tile.row - region.row, tile.width, tile.height)
                dst.write(to_int16_dn(data, truncate=truncate), window=where)
            except BaseException as exc:  # reported in the main thread
                errors.append(exc)
                stop.set()

    threads = [
        threading.Thread(target=reader, name="sisr-reader", daemon=True),
        threading.Thread(target=writer, name="sisr-writer", daemon=True),
    ]
    for thread in threads:
        thread.start()
    prepared: _Prepared | None = None
    try:
        with tqdm(
            total=len(tiles), unit="tile", desc=f"sisr infer {label}", disable=not progress, leave=False
        ) as bar:
            while (prepared := ready.get()) is not None and not errors:
                tile, window, model_input, invalid = prepared
                out = None if model_input is None else predictor(model_input)[0]
                done.put((tile, window, out, invalid))
                bar.update(1)
    finally:
        stop.set()
        done.put(None)
        while prepared is not None:  # let the reader reach its end marker
            prepared = ready.get()
        for thread in threads:
            thread.join()
    if errors:
        if isinstance(errors[0], RasterioError):
            raise SisrError(f"cannot write the output {label}: {errors[0]} (disk full?)") from errors[0]
        raise errors[0]


def _put_end(items: queue.Queue[_Prepared | None], stop: threading.Event) -> None:
    """Put the end marker even when the queue is full and nobody reads it any more (drained on stop)."""
    while True:
        try:
            items.put(None, timeout=0.1)
            return
        except queue.Full:
            if stop.is_set():
                with contextlib.suppress(queue.Empty):
                    items.get_nowait()
