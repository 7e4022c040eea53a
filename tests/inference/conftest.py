"""Fixtures shared by the `sisr infer` tests: a tiny exported model and a valid GeoTIFF input."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
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


#: ``on_tile(n, action)``: the ONNX model's n-th call of the test (1-based) runs ``action()`` first (raise to
#: fail that tile, send a signal to interrupt the run); otherwise every call predicts as usual.
OnTile = Callable[[int, Callable[[], None]], None]


@pytest.fixture
def on_tile(monkeypatch: pytest.MonkeyPatch) -> OnTile:
    """Makes the n-th tile of the tile loop run an action before the model (see :data:`OnTile`)."""
    from sisrlib.predictors import onnx as predictors

    def install(n: int, action: Callable[[], None]) -> None:
        calls = {"n": 0}
        original = predictors.OnnxPredictor.__call__

        def patched(self: predictors.OnnxPredictor, dn: np.ndarray) -> np.ndarray:
            calls["n"] += 1
            if calls["n"] == n:
                action()
            return original(self, dn)

        monkeypatch.setattr(predictors.OnnxPredictor, "__call__", patched)

    return install
