"""A multi-band GeoTIFF (or any raster GDAL reads) of DN as a raster source: bands named by their
descriptions or ``--bands``, values scaled by ``--input-scale``, reflectance refused."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from rasterio.windows import Window

from sisrlib.bands import match_bands
from sisrlib.errors import DataError
from sisrlib.inference.sources import (
    REFLECTANCE_P99_MAX,
    SUPPORTED_DTYPES,
    RasterSource,
    check_georeferencing,
    has_gdal_mask,
    normalise_band_name,
    open_raster,
    read_raster_window,
    reflect_indices,
    take_window,
    to_dn,
)

#: Sampling of a float raster for the reflectance check: up to ``n × n`` windows of ``size`` pixels.
_SAMPLE_GRID, _SAMPLE_SIZE = 8, 32


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
        self.ds = open_raster(self.path)
        try:
            self.grid = check_georeferencing(self.ds, self.path)
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
            self.masked = has_gdal_mask(self.ds, self.indexes)
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
        raw, valid = read_raster_window(
            self.ds, self.path, self.indexes, Window(c0, r0, c1 - c0, r1 - r0), self.masked
        )
        raw = take_window(raw, rows, cols, r0, c0)
        if valid is not None:
            valid = take_window(valid, rows, cols, r0, c0)
        return to_dn(raw, self.nodata, scale=self.scale, valid=valid)

    def close(self) -> None:
        self.ds.close()
