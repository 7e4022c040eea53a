"""Raster sources read window by window: a multi-band GeoTIFF, a Sentinel-2 SAFE product (Sen2Cor L2A or
L1C), a Theia L2A product.

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
import os
import re
import warnings
import xml.etree.ElementTree as ET
import zipfile
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

from sisrlib.bands import BAND_RESOLUTION_M, NODATA_DN, STANDARDISATION, match_bands
from sisrlib.errors import DataError
from sisrlib.export import source_resolution_m

#: Data types a DN raster may have.
SUPPORTED_DTYPES: tuple[str, ...] = ("uint16", "int16", "uint32", "int32", "float32", "float64")
#: DN at or below this are no data (the −10000 fill of Sentinel-2 L2A products, with or without a tag).
NODATA_FLOOR_DN = float(NODATA_DN)
#: A float raster whose valid pixels' 99th percentile is at most this holds reflectance (0–1), not DN.
REFLECTANCE_P99_MAX = 2.0
#: Sampling of a float raster for the reflectance check: up to ``n × n`` windows of ``size`` pixels.
_SAMPLE_GRID, _SAMPLE_SIZE = 8, 32


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


def _take(block: np.ndarray, rows: np.ndarray, cols: np.ndarray, row0: int, col0: int) -> np.ndarray:
    """``block[:, rows − row0][:, :, cols − col0]``, without copying when the indices are a plain range."""
    if not (rows.size and np.all(np.diff(rows) == 1) and rows[0] == row0 and rows.size == block.shape[1]):
        block = block[:, rows - row0]
    if not (cols.size and np.all(np.diff(cols) == 1) and cols[0] == col0 and cols.size == block.shape[2]):
        block = block[:, :, cols - col0]
    return block


#: Parameter ``a`` of the Keys cubic convolution kernel of GDAL's ``cubic`` resampling (rasterio
#: ``Resampling.cubic``); torch's ``bicubic`` uses ``a = −0.75``.
GDAL_CUBIC_A = -0.5


def keys_cubic(t: np.ndarray, a: float = GDAL_CUBIC_A) -> np.ndarray:
    """The Keys cubic convolution kernel at ``t`` (pixels): 1 at 0, 0 at the other integers, 0 beyond ±2."""
    t = np.abs(np.asarray(t, dtype=np.float64))
    near = ((a + 2) * t - (a + 3)) * t * t + 1
    far = ((a * t - 5 * a) * t + 8 * a) * t - 4 * a
    return np.where(t <= 1, near, np.where(t < 2, far, 0.0))


def _fine_centres(fine: np.ndarray, ratio: int) -> tuple[np.ndarray, np.ndarray]:
    """Fine pixel ``i`` → its base coarse pixel ``floor((i + 0.5) / ratio − 0.5)``, and its offset from that
    pixel's centre (coarse pixels, in [0, 1))."""
    centre = (fine.astype(np.float64) + 0.5) / ratio - 0.5
    base = np.floor(centre).astype(np.int64)
    return base, centre - base


def coarse_span(fine: np.ndarray, ratio: int, size: int) -> tuple[int, int]:
    """The coarse pixels ``[first, stop)`` (inside ``[0, size)``) that the cubic taps of ``fine`` reach."""
    base, _ = _fine_centres(fine, ratio)
    return int(np.clip(base.min() - 1, 0, size - 1)), int(np.clip(base.max() + 2, 0, size - 1)) + 1


def _upsampling_weights(
    fine: np.ndarray, ratio: int, size: int, span: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per fine index: GDAL's 1-D cubic and bilinear weight rows over the coarse pixels ``span``.

    Fine pixel ``i`` has the base coarse pixel ``b`` and offset ``d`` of :func:`_fine_centres`. Cubic: taps
    ``b − 1 … b + 2`` with Keys weights (a = −0.5); bilinear: taps ``b, b + 1`` with weights ``1 − d, d``,
    the taps outside the band (``[0, size)``) dropped and the rest renormalised. ``border`` is where GDAL
    takes the bilinear formula: a cubic tap would fall outside the band (``b − 1 < 0`` or ``b + 2 ≥ size``).

    Returns ``(cubic [n, m], bilinear [n, m], border [n])`` with ``m = span[1] − span[0]``.
    """
    base, delta = _fine_centres(fine, ratio)
    border = (base - 1 < 0) | (base + 2 >= size)
    n, first = fine.size, span[0]
    cubic = np.zeros((n, span[1] - first))
    bilinear = np.zeros((n, span[1] - first))
    rows = np.arange(n)
    for k in range(-1, 3):
        tap = base + k
        inside = ~border
        np.add.at(cubic, (rows[inside], tap[inside] - first), keys_cubic(k - delta[inside]))
    for k, weight in ((0, 1 - delta), (1, delta)):
        tap = base + k
        inside = (tap >= 0) & (tap < size)
        np.add.at(bilinear, (rows[inside], tap[inside] - first), weight[inside])
    bilinear /= bilinear.sum(axis=1, keepdims=True)
    return cubic, bilinear, border


def gdal_cubic_upsample(
    coarse: np.ndarray,
    ratio: int,
    size: tuple[int, int],
    first: tuple[int, int],
    rows: np.ndarray,
    cols: np.ndarray,
) -> np.ndarray:
    """Fine pixels ``rows × cols`` of a band up-sampled by ``ratio`` as GDAL's warper does with ``cubic``.

    ``coarse`` ``[h, w]`` (no NaN) holds the band's pixels from ``first`` (row, col) on, at least the span
    of :func:`coarse_span` on each axis; ``size`` is the band's full size (rows, cols), whose border decides
    the formula: GDAL's 4 × 4 Keys cubic (a = −0.5, pixel centres as ``align_corners=False``) where every
    tap lies inside the band, else its 2 × 2 bilinear with the outside taps dropped (the first and last
    1–2 fine pixels of each axis, by row **or** by column). Returns ``[len(rows), len(cols)]`` float64, not
    rounded (GDAL then rounds to the band's data type: :func:`round_like_gdal`).
    """
    span_y, span_x = coarse_span(rows, ratio, size[0]), coarse_span(cols, ratio, size[1])
    cy, by, border_y = _upsampling_weights(rows, ratio, size[0], span_y)
    cx, bx, border_x = _upsampling_weights(cols, ratio, size[1], span_x)
    block = coarse[
        span_y[0] - first[0] : span_y[1] - first[0], span_x[0] - first[1] : span_x[1] - first[1]
    ].astype(np.float64)
    out = cy @ block @ cx.T
    if border_y.any():
        out[border_y] = by[border_y] @ block @ bx.T
    if border_x.any():
        out[:, border_x] = by @ block @ bx[border_x].T
    return out


def round_like_gdal(values: np.ndarray, dtype: str) -> np.ndarray:
    """Resampled values as GDAL writes them into a band of ``dtype``: ``floor(v + 0.5)`` clamped to the type's
    range for integer types, unchanged for floats."""
    kind = np.dtype(dtype)
    if kind.kind not in "iu":
        return values
    info = np.iinfo(kind)
    return np.clip(np.floor(values + 0.5), info.min, info.max)


def _check_georeferencing(ds: rasterio.DatasetReader, path: str) -> Grid:
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


def _open(path: str) -> rasterio.DatasetReader:
    try:
        with warnings.catch_warnings():
            # A file without georeferencing gets a clear error from _check_georeferencing.
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


@dataclass(frozen=True)
class BandFile:
    """One band of a product: where it is (a GDAL path), its resolution, and how raw values become DN.

    ``DN = (raw + offset) · scale``; raw values in ``nodata`` (and NaN) mark pixels without data.
    """

    band: str
    path: str
    resolution_m: float
    offset: float = 0.0
    scale: float = 1.0
    nodata: float | None = None


def _to_dn(
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


def _has_mask(ds: rasterio.DatasetReader, indexes: Sequence[int]) -> bool:
    """Whether GDAL has a mask for these bands beyond the no-data tag (per-dataset mask band, alpha)."""
    for i in indexes:
        flags = ds.mask_flag_enums[i - 1]
        if MaskFlags.all_valid not in flags and MaskFlags.nodata not in flags:
            return True
    return False


def _read_window(
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


class GeoTiffSource(RasterSource):
    """A multi-band raster of DN; bands named by their descriptions (``B2``, ``B02`` …) or by ``band_names``.

    Args:
        path: the raster (GeoTIFF or anything GDAL reads).
        bands: the model's bands, in the model's order.
        band_names: the file's bands in file order (``--bands``); refused when the file's band descriptions
            are Sentinel-2 band names that say otherwise.
        scale: DN = raw × ``scale`` (``--input-scale``, e.g. 10000 for reflectance). ``None``: raw values are
            DN, and a float raster whose valid values look like reflectance (99th percentile ≤ 2) is refused.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        bands: Sequence[str],
        band_names: Sequence[str] | None = None,
        scale: float | None = None,
    ):
        self.path = str(path)
        self.description = Path(path).name
        self.files = (Path(path),)
        if not Path(path).is_file():
            raise FileNotFoundError(f"input {path} does not exist")
        if scale is not None and (
            isinstance(scale, bool)
            or not isinstance(scale, int | float)
            or not math.isfinite(scale)
            or scale <= 0
        ):
            raise ValueError(f"--input-scale {scale!r}: expected a positive finite number (e.g. 10000)")
        self.scale = 1.0 if scale is None else float(scale)
        self.ds = _open(self.path)
        try:
            self.grid = _check_georeferencing(self.ds, self.path)
            dtypes = set(self.ds.dtypes)
            unsupported = sorted(dtypes - set(SUPPORTED_DTYPES))
            if unsupported:
                raise DataError(
                    f"{self.path}: data type {', '.join(unsupported)} is not supported; expected Sentinel-2 "
                    "L2A "
                    f"digital numbers (reflectance × 10000) stored as one of {list(SUPPORTED_DTYPES)}"
                )
            file_names = self._file_band_names(band_names, bands)
            try:
                idx = match_bands(file_names, bands, where=f"input {self.path}")
            except ValueError as exc:
                raise DataError(f"{exc}; the model needs {list(bands)}") from exc
            self.indexes = [i + 1 for i in idx]
            self.bands = tuple(bands)
            self.nodata = self.ds.nodata
            self.masked = _has_mask(self.ds, self.indexes)
            if scale is None and any(np.dtype(d).kind == "f" for d in self.ds.dtypes):
                self._refuse_reflectance()
        except BaseException:
            self.ds.close()
            raise

    def _refuse_reflectance(self) -> None:
        """Refuse a float raster whose valid values look like reflectance (0–1) rather than DN."""
        grid = self.grid
        values = []
        for row in np.unique(np.linspace(0, max(grid.height - _SAMPLE_SIZE, 0), _SAMPLE_GRID).astype(int)):
            for col in np.unique(np.linspace(0, max(grid.width - _SAMPLE_SIZE, 0), _SAMPLE_GRID).astype(int)):
                dn = self.read(
                    int(col), int(row), min(_SAMPLE_SIZE, grid.width), min(_SAMPLE_SIZE, grid.height)
                )
                values.append(dn[np.isfinite(dn)])
        valid = np.concatenate(values)
        if valid.size == 0:
            return
        p99 = float(np.percentile(valid, 99))
        if p99 <= REFLECTANCE_P99_MAX:
            raise DataError(
                f"input {self.path}: float values whose 99th percentile is {p99:.4g} (<= "
                f"{REFLECTANCE_P99_MAX:g}) look like reflectance (0-1), not digital numbers (DN = "
                "reflectance × 10000, e.g. 200-4000); pass --input-scale 10000 to convert them to DN, or "
                "--input-scale 1 if they really are DN"
            )

    def _file_band_names(self, band_names: Sequence[str] | None, bands: Sequence[str]) -> list[str]:
        count = self.ds.count
        descriptions = list(self.ds.descriptions)
        described = [normalise_band_name(d) if d else None for d in descriptions]
        if band_names is not None:
            if len(band_names) != count:
                raise DataError(
                    f"--bands lists {len(band_names)} names {list(band_names)} but {self.path} has {count} "
                    "bands"
                )
            names = []
            for name in band_names:
                norm = normalise_band_name(name)
                if norm is None:
                    raise DataError(f"--bands: {name!r} is not a Sentinel-2 band name (B2 … B12, B8A)")
                names.append(norm)
            clashes = [
                f"band {i} is described as {descriptions[i - 1]!r} but --bands says {name!r}"
                for i, (name, norm, desc) in enumerate(
                    zip(band_names, names, described, strict=True), start=1
                )
                if desc is not None and desc != norm
            ]
            if clashes:
                raise DataError(
                    f"--bands {','.join(band_names)} contradicts the band descriptions of {self.path} "
                    f"{descriptions}: {'; '.join(clashes)}. Drop --bands to use the descriptions, or fix the "
                    "descriptions if they are wrong (e.g. rio edit-info --bidx N --description B4)"
                )
            return names
        if any(n is None for n in described):
            raise DataError(
                f"{self.path} has {count} band(s) whose descriptions {descriptions} are not all Sentinel-2 "
                "band "
                f"names; the model needs {len(bands)} bands {list(bands)}: name the file's bands in order "
                "with "
                f"--bands (e.g. --bands {','.join(bands)}) or set the band descriptions"
            )
        return [n for n in described if n is not None]

    def read(self, col_off: int, row_off: int, width: int, height: int) -> np.ndarray:
        rows = reflect_indices(row_off, height, self.grid.height)
        cols = reflect_indices(col_off, width, self.grid.width)
        r0, r1, c0, c1 = int(rows.min()), int(rows.max()) + 1, int(cols.min()), int(cols.max()) + 1
        raw, valid = _read_window(
            self.ds, self.path, self.indexes, Window(c0, r0, c1 - c0, r1 - r0), self.masked
        )
        raw = _take(raw, rows, cols, r0, c0)
        if valid is not None:
            valid = _take(valid, rows, cols, r0, c0)
        return _to_dn(raw, self.nodata, scale=self.scale, valid=valid)

    def close(self) -> None:
        self.ds.close()


class BandFilesSource(RasterSource):
    """One file per band (Sentinel-2 products), brought onto the grid of resolution ``resolution_m``.

    Bands at the grid's resolution are read directly. Coarser bands (20 m on a 10 m grid) are up-sampled the
    way the EVOLAND tool receives them (its reader warps every band onto the model's grid with GDAL's
    ``cubic``, i.e. rasterio ``Resampling.cubic``): Keys cubic convolution with a = −0.5 (torch's
    ``bicubic`` has a = −0.75), pixel centres as ``align_corners=False``, GDAL's bilinear formula where a
    cubic tap would fall outside the band (its first and last 1–2 fine pixels), and the result rounded to
    the band file's data type (``floor(raw + 0.5)``, clamped) as GDAL writes it, before the product's
    radiometric offset and scale. It is computed from the coarse pixels the taps reach, so every tile sees
    the values of a whole-image interpolation. A fine pixel of such a band has no data when any of its 4 × 4
    cubic taps (clipped to the band) has none: the taps of a no-data pixel hold a fill value, not data.
    """

    def __init__(
        self,
        files: Sequence[BandFile],
        resolution_m: float,
        description: str,
        local_files: Sequence[Path] = (),
    ) -> None:
        self.description = description
        self.bands = tuple(f.band for f in files)
        self.band_files = list(files)
        self.files = tuple(local_files)
        self.datasets: list[rasterio.DatasetReader] = []
        try:
            for f in files:
                self.datasets.append(_open(f.path))
            grids = [_check_georeferencing(ds, f.path) for ds, f in zip(self.datasets, files, strict=True)]
            reference = [(g, f) for g, f in zip(grids, files, strict=True) if f.resolution_m == resolution_m]
            if not reference:
                raise DataError(f"{description}: no band at {resolution_m:g} m among {list(self.bands)}")
            self.grid, reference_file = reference[0]
            self.masked = [_has_mask(ds, [1]) for ds in self.datasets]
            self.dtypes = [ds.dtypes[0] for ds in self.datasets]
            self.ratios: list[int] = []
            for grid, f in zip(grids, files, strict=True):
                ratio = f.resolution_m / resolution_m
                if ratio < 1 or abs(ratio - round(ratio)) > 1e-6:
                    raise DataError(
                        f"{f.path}: a {f.resolution_m:g} m band cannot be brought onto the {resolution_m:g} "
                        "m grid"
                    )
                same_origin = (
                    abs(grid.transform.c - self.grid.transform.c) < 1e-3 * resolution_m
                    and abs(grid.transform.f - self.grid.transform.f) < 1e-3 * resolution_m
                )
                if not same_origin or grid.crs != self.grid.crs:
                    raise DataError(
                        f"{f.path}: its grid (origin {grid.transform.c}, {grid.transform.f}, {grid.crs}) is "
                        "not "
                        f"aligned with the {resolution_m:g} m grid (origin {self.grid.transform.c}, "
                        f"{self.grid.transform.f}, {self.grid.crs})"
                    )
                self.ratios.append(round(ratio))
                expected = (-(-self.grid.height // round(ratio)), -(-self.grid.width // round(ratio)))
                if (grid.height, grid.width) != expected:
                    raise DataError(
                        f"{f.path}: band {f.band} is {grid.height} x {grid.width} px (rows x cols) at "
                        f"{f.resolution_m:g} m, but {reference_file.path} ({reference_file.band}) is "
                        f"{self.grid.height} x {self.grid.width} px at {resolution_m:g} m, so {f.band} "
                        f"should be {expected[0]} x {expected[1]} px: the bands of a product must cover the "
                        "same extent (a cropped or foreign band file?); replace it with the product's own"
                    )
            self.fill = fill_values_dn(self.bands)
        except BaseException:
            self.close()
            raise

    def _read_dn(
        self, k: int, rows: np.ndarray, cols: np.ndarray, row0: int, col0: int, window: Window
    ) -> np.ndarray:
        """Band ``k``'s DN at ``rows`` x ``cols`` of its grid, read from ``window`` (at ``row0, col0``)."""
        f = self.band_files[k]
        raw, valid = _read_window(self.datasets[k], f.path, [1], window, self.masked[k])
        raw = _take(raw, rows, cols, row0, col0)
        if valid is not None:
            valid = _take(valid, rows, cols, row0, col0)
        return _to_dn(raw, f.nodata, f.offset, f.scale, valid=valid)[0]

    def _read_band(self, k: int, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """Band ``k`` at the fine pixels ``rows × cols`` (inside the grid): ``[len(rows), len(cols)]`` DN."""
        ds, ratio, f = self.datasets[k], self.ratios[k], self.band_files[k]
        r0, r1, c0, c1 = int(rows.min()), int(rows.max()) + 1, int(cols.min()), int(cols.max()) + 1
        if ratio == 1:
            return self._read_dn(k, rows, cols, r0, c0, Window(c0, r0, c1 - c0, r1 - r0))
        # The coarse pixels that the cubic taps of the fine range reach (clipped to the band).
        a0, a1 = coarse_span(rows, ratio, ds.height)
        b0, b1 = coarse_span(cols, ratio, ds.width)
        crow, ccol = np.arange(a0, a1), np.arange(b0, b1)
        coarse = self._read_dn(k, crow, ccol, a0, b0, Window(b0, a0, b1 - b0, a1 - a0))
        invalid = np.isnan(coarse)
        coarse = np.where(invalid, self.fill[k], coarse)
        # GDAL interpolates and rounds the raw values: DN = (raw + offset) · scale is affine, so interpolate
        # the DN and round in raw units.
        fine = gdal_cubic_upsample(coarse, ratio, (ds.height, ds.width), (a0, b0), rows, cols)
        raw = round_like_gdal(fine / f.scale - f.offset, self.dtypes[k])
        out = ((raw + f.offset) * f.scale).astype(np.float32)
        if invalid.any():
            # Cubic taps of fine pixel i: base − 1 … base + 2, base = floor((i + 0.5) / ratio − 0.5).
            row_base, _ = _fine_centres(rows, ratio)
            col_base, _ = _fine_centres(cols, ratio)
            mask = any_in_boxes(
                invalid, row_base - 1 - a0, row_base + 3 - a0, col_base - 1 - b0, col_base + 3 - b0
            )
            out[mask] = np.nan
        return out

    def read(self, col_off: int, row_off: int, width: int, height: int) -> np.ndarray:
        rows = reflect_indices(row_off, height, self.grid.height)
        cols = reflect_indices(col_off, width, self.grid.width)
        out = np.empty((len(self.band_files), height, width), dtype=np.float32)
        for k in range(len(self.band_files)):
            out[k] = self._read_band(k, rows, cols)
        return out

    def close(self) -> None:
        for ds in self.datasets:
            ds.close()


# ----------------------------------------------------------------------------------------------------------
# Sentinel-2 products


class _ProductFiles:
    """The files of a product folder or zip, by path relative to its root, with GDAL paths to open them."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.is_zip = path.is_file() and zipfile.is_zipfile(path)
        if self.is_zip:
            with zipfile.ZipFile(path) as archive:
                self.names = sorted(n for n in archive.namelist() if not n.endswith("/"))
        else:
            self.names = sorted(p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file())

    def find(self, pattern: str) -> list[str]:
        regex = re.compile(pattern)
        return [n for n in self.names if regex.search(n)]

    def gdal_path(self, name: str) -> str:
        return f"/vsizip/{self.path.resolve()}/{name}" if self.is_zip else str(self.path / name)

    def local_files(self, band_files: Sequence[BandFile]) -> tuple[Path, ...]:
        """The files on disk behind ``band_files``: the zip itself, or each band file of the folder."""
        return (self.path,) if self.is_zip else tuple(Path(f.path) for f in band_files)

    def read_bytes(self, name: str) -> bytes:
        if self.is_zip:
            with zipfile.ZipFile(self.path) as archive:
                return archive.read(name)
        return (self.path / name).read_bytes()


def _grid_resolution(bands: Sequence[str]) -> float:
    """The contract's rule: 10 m if any of B2/B3/B4/B8 is among the bands, else 20 m."""
    return source_resolution_m(bands)


def _s2_file_band(band: str) -> str:
    """``B2`` → ``B02``; ``B8A`` → ``B8A`` (Sen2Cor file naming)."""
    return band if band.endswith("A") else f"B{int(band[1:]):02d}"


#: Sen2Cor band_id → band (MTD_MSIL2A.xml numbering).
_SEN2COR_BAND_IDS = ("B1", "B2", "B3", "B4", "B5", "B6", "B7", "B8", "B8A", "B9", "B10", "B11", "B12")


@dataclass(frozen=True)
class SafeMetadata:
    """What a SAFE product's MTD_MSIL2A.xml / MTD_MSIL1C.xml says about the radiometry:
    ``reflectance = (raw + offset[band]) / quantification`` (offsets empty before baseline 04.00)."""

    processing_baseline: str
    quantification: float
    offsets: dict[str, float]


#: The former name (L2A only).
Sen2CorMetadata = SafeMetadata

#: Metadata tags of the quantification value and the per-band offsets, per processing level.
_SAFE_TAGS: dict[str, tuple[str, str]] = {
    "L2A": ("BOA_QUANTIFICATION_VALUE", "BOA_ADD_OFFSET"),
    "L1C": ("QUANTIFICATION_VALUE", "RADIO_ADD_OFFSET"),
}


def parse_safe_metadata(xml_bytes: bytes, where: str, level: str = "L2A") -> SafeMetadata:
    """Processing baseline, quantification value and per-band offsets of an MTD_MSIL2A.xml (``level``
    ``"L2A"``: BOA_QUANTIFICATION_VALUE, BOA_ADD_OFFSET) or an MTD_MSIL1C.xml (``"L1C"``:
    QUANTIFICATION_VALUE, RADIO_ADD_OFFSET)."""
    quantification_tag, offset_tag = _SAFE_TAGS[level]
    try:
        root = ET.fromstring(xml_bytes)
    except ET.ParseError as exc:
        raise DataError(f"{where}: not valid XML ({exc})") from exc

    def local(tag: str) -> str:
        return tag.rsplit("}", 1)[-1]

    baseline = ""
    quantification = 10000.0
    ids: dict[str, str] = {}
    raw_offsets: dict[str, float] = {}
    for element in root.iter():
        name = local(element.tag)
        text = (element.text or "").strip()
        try:
            if name == "PROCESSING_BASELINE" and text:
                baseline = text
            elif name == quantification_tag and text:
                quantification = float(text)
            elif (
                name == "Spectral_Information"
                and "bandId" in element.attrib
                and "physicalBand" in element.attrib
            ):
                ids[element.attrib["bandId"]] = element.attrib["physicalBand"]
            elif name == offset_tag and "band_id" in element.attrib:
                raw_offsets[element.attrib["band_id"]] = float(text)
        except ValueError as exc:
            raise DataError(f"{where}: <{name}> holds {text!r}, expected a number") from exc
    if not (math.isfinite(quantification) and quantification > 0):
        raise DataError(f"{where}: {quantification_tag} is {quantification}, expected a positive number")
    offsets: dict[str, float] = {}
    for band_id, value in raw_offsets.items():
        physical = ids.get(band_id)
        if physical is None and band_id.isdigit() and int(band_id) < len(_SEN2COR_BAND_IDS):
            physical = _SEN2COR_BAND_IDS[int(band_id)]
        norm = normalise_band_name(physical) if physical else None
        if norm is not None:
            offsets[norm] = value
    try:
        major = float(baseline) if baseline else 0.0
    except ValueError:
        major = 0.0
    if major >= 4.0 and not offsets:
        raise DataError(
            f"{where}: processing baseline {baseline} (>= 04.00) but no {offset_tag} values were found; "
            "the product's metadata are incomplete"
        )
    if major < 4.0:
        offsets = {}
    return SafeMetadata(baseline, quantification, offsets)


def parse_sen2cor_metadata(xml_bytes: bytes, where: str) -> SafeMetadata:
    """:func:`parse_safe_metadata` of an MTD_MSIL2A.xml (Sen2Cor L2A)."""
    return parse_safe_metadata(xml_bytes, where, "L2A")


def open_sen2cor(path: Path, bands: Sequence[str]) -> BandFilesSource:
    """A Sen2Cor L2A SAFE folder or zip: ``GRANULE/*/IMG_DATA/R10m/*_B02_10m.jp2``, R20m for 20 m bands.

    DN = (raw + BOA_ADD_OFFSET) · 10000 / BOA_QUANTIFICATION_VALUE (offset −1000 from baseline 04.00); raw 0
    is no data.
    """
    files = _ProductFiles(path)
    mtd = files.find(r"(^|/)MTD_MSIL2A\.xml$")
    if not mtd:
        raise DataError(f"{path}: no MTD_MSIL2A.xml found; expected a Sentinel-2 L2A SAFE product (Sen2Cor)")
    meta = parse_sen2cor_metadata(files.read_bytes(mtd[0]), f"{path}/{mtd[0]}")
    resolution = _grid_resolution(bands)
    band_files = []
    for band in bands:
        native = BAND_RESOLUTION_M[band]
        res_dir = int(native)
        pattern = rf"GRANULE/[^/]+/IMG_DATA/R{res_dir}m/[^/]*_{_s2_file_band(band)}_{res_dir}m\.jp2$"
        found = files.find(pattern)
        if len(found) != 1:
            raise DataError(
                f"{path}: expected one file matching GRANULE/*/IMG_DATA/R{res_dir}m/*_{_s2_file_band(band)}_"
                f"{res_dir}m.jp2 for band {band}, found {len(found)}"
            )
        band_files.append(
            BandFile(
                band,
                files.gdal_path(found[0]),
                native,
                offset=meta.offsets.get(band, 0.0),
                scale=10000.0 / meta.quantification,
                nodata=0,
            )
        )
    return BandFilesSource(band_files, resolution, path.name, files.local_files(band_files))


def open_l1c(path: Path, bands: Sequence[str]) -> BandFilesSource:
    """A Sentinel-2 L1C SAFE folder or zip: ``MTD_MSIL1C.xml`` and ``GRANULE/*/IMG_DATA/*_B02.jp2`` (every
    band at its native resolution in one folder), what the EVOLAND tool reads with ``--l1c``.

    DN = (raw + RADIO_ADD_OFFSET) · 10000 / QUANTIFICATION_VALUE: top-of-atmosphere reflectance × 10000
    (offset −1000 from baseline 04.00; the tool applies −1000 whenever the metadata list offsets); raw 0
    is no data.
    """
    files = _ProductFiles(path)
    mtd = files.find(r"(^|/)MTD_MSIL1C\.xml$")
    if not mtd:
        raise DataError(f"{path}: no MTD_MSIL1C.xml found; expected a Sentinel-2 L1C SAFE product")
    meta = parse_safe_metadata(files.read_bytes(mtd[0]), f"{path}/{mtd[0]}", "L1C")
    band_files = []
    for band in bands:
        name = _s2_file_band(band)
        found = files.find(rf"GRANULE/[^/]+/IMG_DATA/[^/]*_{name}\.jp2$")
        if len(found) != 1:
            raise DataError(
                f"{path}: expected one file matching GRANULE/*/IMG_DATA/*_{name}.jp2 for band {band}, "
                f"found {len(found)}"
            )
        band_files.append(
            BandFile(
                band,
                files.gdal_path(found[0]),
                BAND_RESOLUTION_M[band],
                offset=meta.offsets.get(band, 0.0),
                scale=10000.0 / meta.quantification,
                nodata=0,
            )
        )
    return BandFilesSource(band_files, _grid_resolution(bands), path.name, files.local_files(band_files))


def open_theia(path: Path, bands: Sequence[str]) -> BandFilesSource:
    """A Theia (MAJA) L2A folder or zip: ``*_FRE_B2.tif`` … flat-reflectance DN, no data −10000."""
    files = _ProductFiles(path)
    resolution = _grid_resolution(bands)
    band_files = []
    for band in bands:
        found = files.find(rf"(^|/)[^/]*_FRE_{band}\.tif$")
        if len(found) != 1:
            raise DataError(f"{path}: expected one *_FRE_{band}.tif file for band {band}, found {len(found)}")
        band_files.append(
            BandFile(band, files.gdal_path(found[0]), BAND_RESOLUTION_M[band], nodata=float(NODATA_DN))
        )
    return BandFilesSource(band_files, resolution, path.name, files.local_files(band_files))


def product_kind(path: Path) -> str:
    """``"sen2cor"``, ``"l1c"``, ``"theia"`` or ``"geotiff"`` for a folder, a zip or a raster file."""
    if path.is_dir() or (path.is_file() and zipfile.is_zipfile(path)):
        files = _ProductFiles(path)
        if files.find(r"(^|/)MTD_MSIL2A\.xml$"):
            return "sen2cor"
        if files.find(r"(^|/)MTD_MSIL1C\.xml$"):
            return "l1c"
        if files.find(r"_FRE_B\d+A?\.tif$"):
            return "theia"
        raise DataError(
            f"{path}: neither a Sentinel-2 SAFE product (MTD_MSIL2A.xml for Sen2Cor L2A, MTD_MSIL1C.xml for "
            "L1C) nor a Theia L2A product (*_FRE_B*.tif)"
        )
    return "geotiff"


def open_source(
    path: str | os.PathLike[str],
    bands: Sequence[str],
    band_names: Sequence[str] | None = None,
    input_scale: float | None = None,
) -> RasterSource:
    """Open ``path`` (GeoTIFF, L2A or L1C SAFE folder/zip, Theia folder/zip) presenting ``bands`` in order.

    ``band_names`` names a GeoTIFF's bands in file order (when its band descriptions are not Sentinel-2 band
    names; refused when they contradict them). ``input_scale`` multiplies a GeoTIFF's values into DN (10000
    for reflectance); by default they are DN and a float GeoTIFF of reflectance is refused.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"input {path} does not exist")
    kind = product_kind(path)
    if kind != "geotiff" and band_names is not None:
        raise ValueError(
            f"--bands applies to GeoTIFF input only; {path} is a {kind} product with named bands"
        )
    if kind != "geotiff" and input_scale is not None:
        raise ValueError(
            f"--input-scale applies to GeoTIFF input only; {path} is a {kind} product whose radiometry is "
            "read from the product itself"
        )
    if kind == "sen2cor":
        return open_sen2cor(path, bands)
    if kind == "l1c":
        return open_l1c(path, bands)
    if kind == "theia":
        return open_theia(path, bands)
    return GeoTiffSource(path, bands, band_names, input_scale)
