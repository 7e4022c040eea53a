"""Fixtures shared by the `sisr infer` tests: a tiny exported model and a valid GeoTIFF input."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers.export_helpers import export_tiny, smooth_dn, write_geotiff


@pytest.fixture(scope="package")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The yaml of a tiny ×2 ONNX model in the EVOLAND contract (4 bands)."""
    return export_tiny(tmp_path_factory.mktemp("model"), "tiny").yaml_path


@pytest.fixture
def good_input(tmp_path: Path) -> Path:
    """A valid 4-band, 20 × 24 px DN GeoTIFF."""
    return write_geotiff(tmp_path / "in.tif", smooth_dn(4, 20, 24))
