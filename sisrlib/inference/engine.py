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
import signal
import socket
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
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
from sisrlib.export import set_default_permissions
from sisrlib.inference.predictors import Predictor
from sisrlib.inference.sources import ArraySource, Grid, RasterSource, any_in_boxes, fill_values_dn
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
#: Feature maps at the output resolution assumed for a network's activations in the memory estimate
#: (ESRGAN-like generators keep 64 features after up-sampling).
ACTIVATION_CHANNELS = 64
#: Default memory bound: this fraction of the machine's physical memory.
MEMORY_FRACTION = 0.5


class Terminated(BaseException):
    """SIGTERM received (SLURM cancellation, ``kill``): unwinds like Ctrl-C, so temporaries are removed."""


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


def model_label(predictor: Predictor) -> str:
    """``predictor.name`` and the model file it was loaded from, for messages."""
    return f"{predictor.name} ({predictor.files[-1]})" if predictor.files else predictor.name


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


def predict_window(
    predictor: Predictor,
    dn: np.ndarray,
    tile: Region,
    window: Region,
    factor: int,
    *,
    keep_filled: bool = False,
) -> np.ndarray:
    """Run ``predictor`` on the input window ``dn`` ``[C, h, w]`` (DN, NaN = no data) and crop to ``tile``.

    Returns ``[C, tile.height, tile.width]`` float32 DN with NaN where the output has no data: over input
    holes and, unless ``keep_filled``, within the model's margin of them. Raises :class:`SisrError` naming
    the model when its output is not finite.
    """
    invalid = input_nodata(dn)
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


def check_output_path(output: str | os.PathLike[str], protected: Iterable[tuple[str, Path]]) -> Path:
    """Refuse an output that is a folder, lies in a missing or read-only folder, or is a protected file.

    ``protected``: ``(role, path)`` pairs (the model, its ONNX file and yaml, the input files): an output
    that resolves (symlinks followed) to one of them, or is the same file (hard link), is refused, since
    writing it would replace a model or an input. Returns ``output`` as a path.
    """
    output = Path(output)
    if output.is_dir():
        raise SisrError(
            f"--output {output} is a folder; give the GeoTIFF file to write, e.g. {output / 'NAME_sr.tif'}"
        )
    parent = output.resolve().parent
    if not parent.is_dir():
        raise FileNotFoundError(f"output {output}: the folder {output.parent} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise PermissionError(f"output {output}: the folder {output.parent} is not writable")
    target = output.resolve()
    for role, path in protected:
        same = target == Path(path).resolve()
        if not same and output.exists() and Path(path).exists():
            same = os.path.samefile(output, path)
        if same:
            raise SisrError(
                f"--output {output} is {role} {path}: writing it would replace that file; choose another "
                "output name"
            )
    return output


def _temporary_prefix(path: Path, pid: int | None = None) -> str:
    """``.NAME.sisr-HOST-PID.``: the temporary of ``path`` written by process ``pid`` on this host."""
    return f".{path.stem}.sisr-{socket.gethostname()}-{os.getpid() if pid is None else pid}."


def remove_stale_temporaries(path: Path) -> list[Path]:
    """Remove the temporaries of ``path`` left by dead processes of this host (a SIGKILLed run).

    Only ``.NAME.sisr-HOST-PID.*.tif.tmp`` files whose PID is not running are removed; those of live
    processes and of other hosts (shared file systems) are left alone. Returns the removed paths.
    """
    head = f".{path.stem}.sisr-{socket.gethostname()}-"
    removed = []
    with contextlib.suppress(FileNotFoundError):
        for entry in os.scandir(path.parent):
            name = entry.name
            if not (name.startswith(head) and name.endswith(".tif.tmp")):
                continue
            pid_text = name[len(head) :].split(".", 1)[0]
            if not pid_text.isdigit() or int(pid_text) == os.getpid():
                continue
            try:
                os.kill(int(pid_text), 0)
            except ProcessLookupError:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(entry.path)
                removed.append(Path(entry.path))
            except PermissionError:  # alive, another user's
                continue
    return removed


@contextlib.contextmanager
def sigterm_raises() -> Iterator[None]:
    """While active (main thread only), SIGTERM raises :class:`Terminated` once; later ones are ignored.

    The exception unwinds like Ctrl-C, so that :func:`atomic_output` removes its temporary file.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []

    def handler(signum: int, frame: object) -> None:
        if received:
            return
        received.append(signum)
        raise Terminated(f"terminated by {signal.Signals(signum).name}; the partial output was removed")

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def atomic_output(path: Path) -> Iterator[Path]:
    """A temporary path beside ``path``, renamed onto it on success and removed on any error.

    The temporary is ``.NAME.sisr-HOST-PID.XXXX.tif.tmp``; stale ones of ``path`` (dead PIDs on this host)
    are removed first.
    """
    if not path.parent.is_dir():
        raise FileNotFoundError(f"output {path}: the folder {path.parent} does not exist")
    remove_stale_temporaries(path)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=_temporary_prefix(path), suffix=".tif.tmp")
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
    keep_filled: bool = False,
    max_memory: int | None = None,
    truncate: bool = False,
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
        keep_filled: keep the prediction of output pixels within the model's margin of an input hole
            (computed from the fill value); by default they are written as no data.
        max_memory: bound (bytes) on the estimated peak memory; default half of this machine's memory.
        truncate: write the float predictions truncated toward zero (the EVOLAND tool's int16 cast)
            instead of rounded to the nearest DN.

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
    if isinstance(tile_size, bool) or not isinstance(tile_size, int) or tile_size < 1:
        raise ValueError(f"--tile-size {tile_size!r}: expected a positive whole number of output pixels")
    factor = integer_factor(predictor.factor)
    context = context_pixels(predictor.margin, factor)
    region = output_region(source.grid, factor, roi, roi_pixels)
    tiles = plan_tiles(region, tile_size)
    check_memory(predictor, tiles, tile_size, factor, max_memory)
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
                prediction = predict_window(predictor, dn, tile, window, factor, keep_filled=keep_filled)
                if errors:
                    raise errors[0]
                write_queue.put((tile, to_int16_dn(prediction, truncate=truncate)))
                bar.update(1)
    finally:
        write_queue.put(None)
        thread.join()
    if errors:
        if isinstance(errors[0], RasterioError):
            raise SisrError(f"cannot write the output {label}: {errors[0]} (disk full?)") from errors[0]
        raise errors[0]
