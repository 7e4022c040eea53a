"""What ``--input`` is, and the source that reads it: a multi-band GeoTIFF, a Sentinel-2 SAFE product
(Sen2Cor L2A or L1C) or a Theia L2A product, folder or zip."""

from __future__ import annotations

import os
import zipfile
from collections.abc import Sequence
from pathlib import Path

from sisrlib.errors import DataError
from sisrlib.inference.geotiff import GeoTiffSource
from sisrlib.inference.products import ProductFiles, open_l1c, open_sen2cor, open_theia
from sisrlib.inference.sources import RasterSource


def product_kind(path: Path) -> str:
    """``"sen2cor"``, ``"l1c"``, ``"theia"`` or ``"geotiff"`` for a folder, a zip or a raster file."""
    if path.is_dir() or (path.is_file() and zipfile.is_zipfile(path)):
        files = ProductFiles(path)
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
