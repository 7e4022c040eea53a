"""Sentinel-2 products as :class:`~sisrlib.inference.sources.RasterSource`: one file per band brought onto
the model's grid (:class:`BandFilesSource`), read from a Sen2Cor L2A SAFE, an L1C SAFE or a Theia L2A product
(folder or zip), with the radiometry (offsets, quantification) their metadata give."""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
from rasterio.windows import Window

from sisrlib.bands import BAND_RESOLUTION_M, NODATA_DN
from sisrlib.errors import DataError
from sisrlib.inference.resampling import coarse_span, fine_centres, gdal_cubic_upsample, round_like_gdal
from sisrlib.inference.sources import (
    RasterSource,
    any_in_boxes,
    check_georeferencing,
    fill_values_dn,
    has_gdal_mask,
    normalise_band_name,
    open_raster,
    read_raster_window,
    reflect_indices,
    take_window,
    to_dn,
)
from sisrlib.predictors.contract import source_resolution_m


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
                self.datasets.append(open_raster(f.path))
            grids = [check_georeferencing(ds, f.path) for ds, f in zip(self.datasets, files, strict=True)]
            reference = [(g, f) for g, f in zip(grids, files, strict=True) if f.resolution_m == resolution_m]
            if not reference:
                raise DataError(f"{description}: no band at {resolution_m:g} m among {list(self.bands)}")
            self.grid, reference_file = reference[0]
            self.masked = [has_gdal_mask(ds, [1]) for ds in self.datasets]
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
        raw, valid = read_raster_window(self.datasets[k], f.path, [1], window, self.masked[k])
        raw = take_window(raw, rows, cols, row0, col0)
        if valid is not None:
            valid = take_window(valid, rows, cols, row0, col0)
        return to_dn(raw, f.nodata, f.offset, f.scale, valid=valid)[0]

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
            row_base, _ = fine_centres(rows, ratio)
            col_base, _ = fine_centres(cols, ratio)
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


class ProductFiles:
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
    files = ProductFiles(path)
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
    files = ProductFiles(path)
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
    files = ProductFiles(path)
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
