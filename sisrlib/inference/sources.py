"""The raster source contract and what every source shares: the grid, window reads, mirroring, no data.

The sources themselves: :mod:`~sisrlib.inference.geotiff` (a multi-band GeoTIFF),
:mod:`~sisrlib.inference.products` (Sentinel-2 SAFE products, Sen2Cor L2A or L1C, and Theia L2A products);
:func:`sisrlib.inference.inputs.open_source` picks one.

Every source presents the model's bands, in the model's order, on one pixel grid (the model's source
resolution), and reads any window of it as ``[C, h, w]`` float32 **DN** (reflectance × 10000) with NaN where
the input has no data. Windows may extend beyond the image: those positions are filled by mirror reflection
about the image border (``… 2 1 | 0 1 2 … n−1 | n−2 …``), so the value at a position depends on the image
only, never on the window, which keeps tiled inference seamless. Memory: only the window (plus a few pixels)
is read.

No data, explicitly: a pixel has no data where its raw value equals the file's no-data tag, where GDAL's mask
says so (an internal per-dataset mask band or an alpha band, ``dataset.read_masks``), where it is not finite
(NaN, +inf, −inf), or where its DN is ≤ −10000 (the Sentinel-2 / Theia fill −10000 written without a no-data
tag; a reflectance ≤ −1 is not physical). Negative DN above −10000 stay valid (dark pixels after Sen2Cor's BOA
offset).
"""

from __future__ import annotations

import abc
import math
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import numpy as np
import rasterio
from affine import Affine
from rasterio.crs import CRS
from rasterio.enums import MaskFlags
from rasterio.errors import NotGeoreferencedWarning, RasterioError, RasterioIOError
from rasterio.windows import Window

from sisrlib.bands import BAND_RESOLUTION_M, NODATA_DN, STANDARDISATION
from sisrlib.errors import DataError

#: Data types a DN raster may have.
SUPPORTED_DTYPES: tuple[str, ...] = ("uint16", "int16", "uint32", "int32", "float32", "float64")
#: DN at or below this are no data (the −10000 fill of Sentinel-2 L2A products, with or without a tag).
NODATA_FLOOR_DN = float(NODATA_DN)
#: A float raster whose valid pixels' 99th percentile is at most this holds reflectance (0–1), not DN.
REFLECTANCE_P99_MAX = 2.0


@dataclass(frozen=True)
class Grid:
    """A north-up pixel grid: size in pixels, affine transform (pixel → map), CRS."""

    width: int
    height: int
    transform: Affine
    crs: CRS

    @property
    def resolution(self) -> tuple[float, float]:
        return abs(self.transform.a), abs(self.transform.e)

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """``(left, bottom, right, top)`` in map units."""
        left, top = self.transform @ (0, 0)
        right, bottom = self.transform @ (self.width, self.height)
        return min(left, right), min(bottom, top), max(left, right), max(bottom, top)


def normalise_band_name(name: str) -> str | None:
    """``B02`` / ``b2`` / ``B8A`` → ``B2`` / ``B2`` / ``B8A``; None when not a Sentinel-2 band name."""
    match = re.fullmatch(r"\s*B0*(\d{1,2}A?)\s*", name, flags=re.IGNORECASE)
    if match is None:
        return None
    candidate = "B" + match.group(1).upper()
    return candidate if candidate in BAND_RESOLUTION_M else None


def fill_values_dn(bands: Sequence[str]) -> np.ndarray:
    """Per-band DN filling no-data pixels before the network: the EVOLAND mean reflectance × 10000, ``[C]``.

    A constant that depends on the band only (not on the tile) keeps the tiled result independent of tiling.
    """
    stats = STANDARDISATION["evoland"].select(bands)
    return np.asarray(stats.mean, dtype=np.float32) * np.float32(10000.0)


def any_in_boxes(
    invalid: np.ndarray, r0: np.ndarray, r1: np.ndarray, c0: np.ndarray, c1: np.ndarray
) -> np.ndarray:
    """``out[i, j]``: whether ``invalid[r0[i]:r1[i], c0[j]:c1[j]]`` holds a True (summed-area table).

    ``invalid`` is ``[h, w]`` bool; the bounds are clipped to it (pixels beyond it count as False).
    """
    h, w = invalid.shape
    table = np.zeros((h + 1, w + 1), dtype=np.int64)
    table[1:, 1:] = invalid.cumsum(axis=0, dtype=np.int64).cumsum(axis=1)
    r0, r1 = np.clip(r0, 0, h), np.clip(r1, 0, h)
    c0, c1 = np.clip(c0, 0, w), np.clip(c1, 0, w)
    count = table[r1][:, c1] - table[r0][:, c1] - table[r1][:, c0] + table[r0][:, c0]
    return np.asarray(count > 0)


def reflect_indices(start: int, size: int, n: int) -> np.ndarray:
    """Pixel indices ``start … start+size−1`` mirrored into ``[0, n)`` (reflection, edge not repeated)."""
    idx = np.arange(start, start + size)
    if n == 1:
        return np.zeros_like(idx)
    period = 2 * (n - 1)
    folded = np.mod(idx, period)
    return np.where(folded >= n, period - folded, folded)


def take_window(block: np.ndarray, rows: np.ndarray, cols: np.ndarray, row0: int, col0: int) -> np.ndarray:
    """``block[:, rows − row0][:, :, cols − col0]``, without copying when the indices are a plain range."""
    if not (rows.size and np.all(np.diff(rows) == 1) and rows[0] == row0 and rows.size == block.shape[1]):
        block = block[:, rows - row0]
    if not (cols.size and np.all(np.diff(cols) == 1) and cols[0] == col0 and cols.size == block.shape[2]):
        block = block[:, :, cols - col0]
    return block


def check_georeferencing(ds: rasterio.DatasetReader, path: str) -> Grid:
    if ds.crs is None or ds.transform == Affine.identity():
        raise DataError(
            f"{path} has no georeferencing (CRS {ds.crs}, transform {tuple(ds.transform)[:6]}); the output "
            "could "
            "not be placed on a map: give the input a CRS and a geotransform (e.g. gdal_edit.py -a_srs "
            "-a_ullr)"
        )
    if ds.transform.b != 0 or ds.transform.d != 0 or ds.transform.a <= 0 or ds.transform.e >= 0:
        raise DataError(
            f"{path}: rotated or south-up geotransform {tuple(ds.transform)[:6]} is not supported"
        )
    return Grid(ds.width, ds.height, ds.transform, ds.crs)


def open_raster(path: str) -> rasterio.DatasetReader:
    try:
        with warnings.catch_warnings():
            # A file without georeferencing gets a clear error from check_georeferencing.
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            return rasterio.open(path)
    except RasterioIOError as exc:
        raise DataError(f"cannot open {path} as a raster: {exc}") from exc


class RasterSource(abc.ABC):
    """The model's bands on one grid, read by window as ``[C, h, w]`` float32 DN with NaN for no data."""

    #: Band names in channel order (the model's).
    bands: tuple[str, ...]
    #: The grid the windows refer to.
    grid: Grid
    #: A short description (file or product name).
    description: str
    #: The local files read (an output must never replace one of them).
    files: tuple[Path, ...] = ()

    @abc.abstractmethod
    def read(self, col_off: int, row_off: int, width: int, height: int) -> np.ndarray:
        """``[C, height, width]`` float32 DN; NaN where no data; mirrored beyond the image borders."""

    def close(self) -> None:  # noqa: B027 - sources without files have nothing to release
        """Release file handles."""

    def __enter__(self) -> RasterSource:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class ArraySource(RasterSource):
    """An in-memory ``[C, H, W]`` DN array (NaN for no data) on a grid: whole-image inference and tests."""

    def __init__(self, dn: np.ndarray, bands: Sequence[str], grid: Grid | None = None) -> None:
        if dn.ndim != 3 or dn.shape[0] != len(bands):
            raise ValueError(f"expected a [C={len(bands)}, H, W] array, got shape {list(dn.shape)}")
        self.dn = np.asarray(dn, dtype=np.float32)
        self.bands = tuple(bands)
        self.grid = grid or Grid(dn.shape[2], dn.shape[1], Affine.identity(), CRS.from_epsg(4326))
        self.description = "array"

    def read(self, col_off: int, row_off: int, width: int, height: int) -> np.ndarray:
        rows = reflect_indices(row_off, height, self.grid.height)
        cols = reflect_indices(col_off, width, self.grid.width)
        return self.dn[:, rows][:, :, cols]


def to_dn(
    raw: np.ndarray,
    nodata: float | None,
    offset: float = 0.0,
    scale: float = 1.0,
    valid: np.ndarray | None = None,
) -> np.ndarray:
    """Raw ``[..]`` → float32 DN ``(raw + offset) · scale`` with NaN for no data.

    No data: ``raw == nodata``, ``valid`` false (GDAL mask, same shape), raw not finite (NaN, ±inf), or a
    DN ≤ −10000.
    """
    out = raw.astype(np.float32, copy=True)
    invalid = ~np.isfinite(out)
    if nodata is not None and not math.isnan(nodata):
        invalid |= raw == nodata
    if valid is not None:
        invalid |= ~valid
    if offset:
        out += np.float32(offset)
    if scale != 1.0:
        out *= np.float32(scale)
    with np.errstate(invalid="ignore"):
        invalid |= ~(out > np.float32(NODATA_FLOOR_DN))
    out[invalid] = np.nan
    return out


def has_gdal_mask(ds: rasterio.DatasetReader, indexes: Sequence[int]) -> bool:
    """Whether GDAL has a mask for these bands beyond the no-data tag (per-dataset mask band, alpha)."""
    for i in indexes:
        flags = ds.mask_flag_enums[i - 1]
        if MaskFlags.all_valid not in flags and MaskFlags.nodata not in flags:
            return True
    return False


def read_raster_window(
    ds: rasterio.DatasetReader, path: str, indexes: list[int], window: Window, masked: bool
) -> tuple[np.ndarray, np.ndarray | None]:
    """Raw ``[C, h, w]`` values of ``window`` and, when ``masked``, GDAL's validity mask (True = data).

    A read failure (truncated or corrupt file) becomes a :class:`DataError` naming the file and window.
    """
    try:
        raw = ds.read(indexes, window=window)
        valid = ds.read_masks(indexes, window=window) > 0 if masked else None
    except RasterioError as exc:
        raise DataError(
            f"{path}: cannot read the window col {window.col_off}, row {window.row_off}, "
            f"{window.width} x {window.height} px ({exc}); the file is truncated or corrupt: "
            "copy or download it again"
        ) from exc
    return raw, valid
