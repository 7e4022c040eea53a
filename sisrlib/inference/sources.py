"""Raster sources read window by window: a multi-band GeoTIFF, a Sen2Cor L2A SAFE product, a Theia product.

Every source presents the model's bands, in the model's order, on one pixel grid (the model's source
resolution), and reads any window of it as ``[C, h, w]`` float32 **DN** (reflectance × 10000) with NaN where
the input has no data. Windows may extend beyond the image: those positions are filled by mirror reflection
about the image border (``… 2 1 | 0 1 2 … n−1 | n−2 …``), so the value at a position depends on the image
only, never on the window, which keeps tiled inference seamless. Memory: only the window (plus a few pixels)
is read.
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
import torch
import torch.nn.functional as F
from affine import Affine
from rasterio.crs import CRS
from rasterio.errors import NotGeoreferencedWarning, RasterioIOError
from rasterio.windows import Window

from sisrlib.bands import BAND_RESOLUTION_M, BANDS_10M, NODATA_DN, STANDARDISATION, match_bands
from sisrlib.errors import DataError

#: Data types a DN raster may have.
SUPPORTED_DTYPES: tuple[str, ...] = ("uint16", "int16", "uint32", "int32", "float32", "float64")


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


def _to_dn(raw: np.ndarray, nodata: float | None, offset: float = 0.0, scale: float = 1.0) -> np.ndarray:
    """Raw ``[..]`` → float32 DN with NaN where ``raw == nodata`` or NaN."""
    out = raw.astype(np.float32, copy=True)
    invalid = np.isnan(out)
    if nodata is not None and not math.isnan(nodata):
        invalid |= raw == nodata
    if offset:
        out += np.float32(offset)
    if scale != 1.0:
        out *= np.float32(scale)
    out[invalid] = np.nan
    return out


class GeoTiffSource(RasterSource):
    """A multi-band raster of DN; bands named by their descriptions (``B2``, ``B02`` …) or by "
    "``band_names``."""

    def __init__(
        self, path: str | os.PathLike[str], bands: Sequence[str], band_names: Sequence[str] | None = None
    ):
        self.path = str(path)
        self.description = Path(path).name
        if not Path(path).is_file():
            raise FileNotFoundError(f"input {path} does not exist")
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
        except BaseException:
            self.ds.close()
            raise

    def _file_band_names(self, band_names: Sequence[str] | None, bands: Sequence[str]) -> list[str]:
        count = self.ds.count
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
            return names
        descriptions = list(self.ds.descriptions)
        names_or_none = [normalise_band_name(d) if d else None for d in descriptions]
        if any(n is None for n in names_or_none):
            raise DataError(
                f"{self.path} has {count} band(s) whose descriptions {descriptions} are not all Sentinel-2 "
                "band "
                f"names; the model needs {len(bands)} bands {list(bands)}: name the file's bands in order "
                "with "
                f"--bands (e.g. --bands {','.join(bands)}) or set the band descriptions"
            )
        return [n for n in names_or_none if n is not None]

    def read(self, col_off: int, row_off: int, width: int, height: int) -> np.ndarray:
        rows = reflect_indices(row_off, height, self.grid.height)
        cols = reflect_indices(col_off, width, self.grid.width)
        r0, r1, c0, c1 = int(rows.min()), int(rows.max()) + 1, int(cols.min()), int(cols.max()) + 1
        raw = self.ds.read(self.indexes, window=Window(c0, r0, c1 - c0, r1 - r0))
        return _to_dn(_take(raw, rows, cols, r0, c0), self.nodata)

    def close(self) -> None:
        self.ds.close()


class BandFilesSource(RasterSource):
    """One file per band (Sentinel-2 products), brought onto the grid of resolution ``resolution_m``.

    Bands at the grid's resolution are read directly. Coarser bands (20 m on a 10 m grid) are up-sampled by
    bicubic interpolation (``align_corners=False``, edge-clamped at the image border), computed on the window
    plus two coarse pixels of context so that every tile sees the same values as a whole-image interpolation;
    their no-data mask is up-sampled by nearest neighbour.
    """

    def __init__(self, files: Sequence[BandFile], resolution_m: float, description: str) -> None:
        self.description = description
        self.bands = tuple(f.band for f in files)
        self.files = list(files)
        self.datasets: list[rasterio.DatasetReader] = []
        try:
            for f in files:
                self.datasets.append(_open(f.path))
            grids = [_check_georeferencing(ds, f.path) for ds, f in zip(self.datasets, files, strict=True)]
            reference = [g for g, f in zip(grids, files, strict=True) if f.resolution_m == resolution_m]
            if not reference:
                raise DataError(f"{description}: no band at {resolution_m:g} m among {list(self.bands)}")
            self.grid = reference[0]
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
            self.fill = fill_values_dn(self.bands)
        except BaseException:
            self.close()
            raise

    def _read_band(self, k: int, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        f, ds, ratio = self.files[k], self.datasets[k], self.ratios[k]
        r0, r1, c0, c1 = int(rows.min()), int(rows.max()) + 1, int(cols.min()), int(cols.max()) + 1
        if ratio == 1:
            raw = ds.read(1, window=Window(c0, r0, c1 - c0, r1 - r0))[None]
            return _to_dn(_take(raw, rows, cols, r0, c0), f.nodata, f.offset, f.scale)[0]
        # Coarse pixels covering the fine range [r0, r1) x [c0, c1), plus 2 coarse pixels of bicubic context.
        cr0, cr1 = r0 // ratio - 2, (r1 - 1) // ratio + 3
        cc0, cc1 = c0 // ratio - 2, (c1 - 1) // ratio + 3
        crow = np.clip(np.arange(cr0, cr1), 0, ds.height - 1)
        ccol = np.clip(np.arange(cc0, cc1), 0, ds.width - 1)
        a0, a1, b0, b1 = int(crow.min()), int(crow.max()) + 1, int(ccol.min()), int(ccol.max()) + 1
        raw = ds.read(1, window=Window(b0, a0, b1 - b0, a1 - a0))[None]
        coarse = _to_dn(_take(raw, crow, ccol, a0, b0), f.nodata, f.offset, f.scale)[0]
        invalid = np.isnan(coarse)
        coarse = np.where(invalid, self.fill[k], coarse)
        fine = F.interpolate(
            torch.from_numpy(np.ascontiguousarray(coarse))[None, None],
            scale_factor=ratio,
            mode="bicubic",
            align_corners=False,
        )[0, 0].numpy()
        # fine[i] is the fine pixel cr0·ratio + i.
        ri = rows - cr0 * ratio
        ci = cols - cc0 * ratio
        out = fine[ri][:, ci]
        mask = invalid[rows // ratio - cr0][:, cols // ratio - cc0]
        out[mask] = np.nan
        return out

    def read(self, col_off: int, row_off: int, width: int, height: int) -> np.ndarray:
        rows = reflect_indices(row_off, height, self.grid.height)
        cols = reflect_indices(col_off, width, self.grid.width)
        out = np.empty((len(self.files), height, width), dtype=np.float32)
        for k in range(len(self.files)):
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

    def read_bytes(self, name: str) -> bytes:
        if self.is_zip:
            with zipfile.ZipFile(self.path) as archive:
                return archive.read(name)
        return (self.path / name).read_bytes()


def _grid_resolution(bands: Sequence[str]) -> float:
    """The contract's rule: 10 m if any of B2/B3/B4/B8 is among the bands, else 20 m."""
    return 10.0 if any(b in BANDS_10M for b in bands) else 20.0


def _s2_file_band(band: str) -> str:
    """``B2`` → ``B02``; ``B8A`` → ``B8A`` (Sen2Cor file naming)."""
    return band if band.endswith("A") else f"B{int(band[1:]):02d}"


#: Sen2Cor band_id → band (MTD_MSIL2A.xml numbering).
_SEN2COR_BAND_IDS = ("B1", "B2", "B3", "B4", "B5", "B6", "B7", "B8", "B8A", "B9", "B10", "B11", "B12")


@dataclass(frozen=True)
class Sen2CorMetadata:
    """What MTD_MSIL2A.xml says about the radiometry: ``reflectance = (raw + offset[band]) / "
    "quantification``."""

    processing_baseline: str
    quantification: float
    offsets: dict[str, float]


def parse_sen2cor_metadata(xml_bytes: bytes, where: str) -> Sen2CorMetadata:
    """Processing baseline, BOA quantification value and per-band BOA_ADD_OFFSET of an MTD_MSIL2A.xml."""
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
        if name == "PROCESSING_BASELINE" and text:
            baseline = text
        elif name == "BOA_QUANTIFICATION_VALUE" and text:
            quantification = float(text)
        elif (
            name == "Spectral_Information" and "bandId" in element.attrib and "physicalBand" in element.attrib
        ):
            ids[element.attrib["bandId"]] = element.attrib["physicalBand"]
        elif name == "BOA_ADD_OFFSET" and "band_id" in element.attrib:
            raw_offsets[element.attrib["band_id"]] = float(text)
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
            f"{where}: processing baseline {baseline} (>= 04.00) but no BOA_ADD_OFFSET values were found; "
            "the product's metadata are incomplete"
        )
    if major < 4.0:
        offsets = {}
    return Sen2CorMetadata(baseline, quantification, offsets)


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
    return BandFilesSource(band_files, resolution, path.name)


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
    return BandFilesSource(band_files, resolution, path.name)


def product_kind(path: Path) -> str:
    """``"sen2cor"``, ``"theia"`` or ``"geotiff"`` for a folder, a zip or a raster file."""
    if path.is_dir() or (path.is_file() and zipfile.is_zipfile(path)):
        files = _ProductFiles(path)
        if files.find(r"(^|/)MTD_MSIL2A\.xml$"):
            return "sen2cor"
        if files.find(r"_FRE_B\d+A?\.tif$"):
            return "theia"
        raise DataError(
            f"{path}: neither a Sen2Cor L2A product (MTD_MSIL2A.xml) nor a Theia L2A product (*_FRE_B*.tif)"
        )
    return "geotiff"


def open_source(
    path: str | os.PathLike[str], bands: Sequence[str], band_names: Sequence[str] | None = None
) -> RasterSource:
    """Open ``path`` (GeoTIFF, SAFE folder/zip, Theia folder/zip) presenting ``bands`` in that order.

    ``band_names`` names a GeoTIFF's bands in file order (overriding its band descriptions).
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"input {path} does not exist")
    kind = product_kind(path)
    if kind != "geotiff" and band_names is not None:
        raise ValueError(
            f"--bands applies to GeoTIFF input only; {path} is a {kind} product with named bands"
        )
    if kind == "sen2cor":
        return open_sen2cor(path, bands)
    if kind == "theia":
        return open_theia(path, bands)
    return GeoTiffSource(path, bands, band_names)
