"""Tiled inference of GeoTIFFs: seamless tiles, georeferencing, no-data, predictors, regions."""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
from affine import Affine

from sisrlib.bands import standardisation
from sisrlib.cli import main
from sisrlib.errors import SisrError
from sisrlib.inference import (
    ArraySource,
    open_source,
    parse_tile_size,
    super_resolve_array,
    to_int16_dn,
)
from sisrlib.inference.sources import reflect_indices
from sisrlib.inference.tiling import Region, output_region, plan_tiles
from sisrlib.models.dn_model import DNModel
from sisrlib.predictors import ModelOptions, OnnxPredictor, open_model
from sisrlib.predictors.torch_models import BicubicPredictor, TorchPredictor
from tests.helpers.export_helpers import BANDS, CRS_UTM, ORIGIN, TinySR, export_tiny, smooth_dn, write_geotiff


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("models")
    return {
        "x2": export_tiny(folder, "x2", factor=2).yaml_path,
        "x4": export_tiny(folder, "x4", factor=4).yaml_path,
        "identity": export_tiny(folder, "identity", factor=2, zero=True).yaml_path,
    }


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray]:
    dn = smooth_dn(4, 75, 90, seed=3)
    path = write_geotiff(tmp_path_factory.mktemp("scene") / "scene.tif", dn)
    return path, dn.astype(np.uint16).astype(np.float32)


def _infer(args: list[str]) -> int:
    return main(["infer", "--no-progress", "--threads", "1", *args])


def _read(path: Path) -> tuple[np.ndarray, dict]:
    with rasterio.open(path) as ds:
        return ds.read(), {
            "crs": ds.crs,
            "transform": ds.transform,
            "bounds": ds.bounds,
            "descriptions": ds.descriptions,
            "nodata": ds.nodata,
            "dtype": ds.dtypes[0],
            "compress": ds.compression,
            "tiled": ds.profile.get("tiled"),
        }


def test_reflect_indices_mirror_about_the_borders() -> None:
    assert reflect_indices(-3, 10, 5).tolist() == [3, 2, 1, 0, 1, 2, 3, 4, 3, 2]
    assert reflect_indices(-2, 4, 1).tolist() == [0, 0, 0, 0]


@pytest.mark.parametrize("model", ["x2", "x4"])
@pytest.mark.parametrize("tile_size", [64, 100])
def test_tiles_are_seamless(
    models: dict[str, Path], scene: tuple[Path, np.ndarray], tmp_path: Path, model: str, tile_size: int
) -> None:
    path, dn = scene
    out = tmp_path / "sr.tif"
    assert _infer(["--model", str(models[model]), "--input", str(path), "--output", str(out),
                   "--tile-size", str(tile_size)]) == 0  # fmt: skip
    tiled, meta = _read(out)
    whole = to_int16_dn(super_resolve_array(OnnxPredictor(models[model]), dn))
    assert tiled.shape == whole.shape
    assert np.abs(tiled.astype(int) - whole.astype(int)).max() <= 1
    assert meta["dtype"] == "int16" and meta["nodata"] == -10000
    assert meta["compress"].name.lower() == "deflate" and meta["tiled"]
    assert meta["descriptions"] == BANDS


def test_margin_covers_the_receptive_field(models: dict[str, Path], scene: tuple[Path, np.ndarray]) -> None:
    """Away from the image border, the padded whole-image result equals the bare network on the bare image."""
    _, dn = scene
    predictor = OnnxPredictor(models["x2"])
    padded = super_resolve_array(predictor, dn)
    bare = predictor(dn[None])[0]
    m = predictor.margin
    np.testing.assert_allclose(padded[:, m:-m, m:-m], bare[:, m:-m, m:-m], atol=0.01)


def test_torch_and_bicubic_predictors_tile_seamlessly(scene: tuple[Path, np.ndarray]) -> None:
    _, dn = scene
    torch_predictor = TorchPredictor(DNModel(TinySR(), standardisation("evoland", BANDS)))
    for predictor in (torch_predictor, BicubicPredictor(BANDS, 2.0)):
        whole = super_resolve_array(predictor, dn)
        source = ArraySource(dn, BANDS)
        tiles = plan_tiles(Region(0, 0, 180, 150), 64)
        from sisrlib.inference.engine import predict_tile

        for tile in tiles:
            part = predict_tile(predictor, source, tile, 2, -(-predictor.margin // 2))
            expected = whole[:, tile.row : tile.row + tile.height, tile.col : tile.col + tile.width]
            assert np.abs(part - expected).max() < 0.5


def test_bicubic_option_writes_the_bicubic_baseline(
    models: dict[str, Path], scene: tuple[Path, np.ndarray], tmp_path: Path
) -> None:
    path, dn = scene
    out = tmp_path / "bicubic.tif"
    assert (
        _infer(["--model", str(models["x2"]), "--input", str(path), "--output", str(out), "--bicubic"]) == 0
    )
    got, _ = _read(out)
    expected = torch.nn.functional.interpolate(
        torch.from_numpy(dn)[None], scale_factor=2, mode="bicubic", align_corners=False
    )[0].numpy()
    # Same values as whole-image bicubic except at the image border (mirror vs edge padding).
    assert np.abs(got[:, 4:-4, 4:-4] - np.rint(expected[:, 4:-4, 4:-4])).max() <= 1


def test_georeferencing_full_image(
    models: dict[str, Path], scene: tuple[Path, np.ndarray], tmp_path: Path
) -> None:
    path, _ = scene
    out = tmp_path / "sr.tif"
    assert _infer(["--model", str(models["x2"]), "--input", str(path), "--output", str(out)]) == 0
    _, meta = _read(out)
    with rasterio.open(path) as src:
        assert meta["crs"] == src.crs
        assert meta["transform"] == src.transform @ Affine.scale(0.5)
        assert tuple(meta["bounds"]) == pytest.approx(tuple(src.bounds))


def test_georeferencing_roi_and_bright_pixel(models: dict[str, Path], tmp_path: Path) -> None:
    dn = np.full((4, 40, 50), 1000.0, dtype=np.float32)
    row, col = 17, 23
    dn[:, row, col] = 9000.0
    path = write_geotiff(tmp_path / "bright.tif", dn)
    x0, y0 = ORIGIN
    roi = (x0 + 100.0, y0 - 300.0, x0 + 350.0, y0 - 80.0)  # left bottom right top, 10 m input pixels
    out = tmp_path / "roi.tif"
    assert _infer(["--model", str(models["identity"]), "--input", str(path), "--output", str(out),
                   "--roi", *map(str, roi), "--tile-size", "16"]) == 0  # fmt: skip
    data, meta = _read(out)
    assert tuple(meta["bounds"]) == pytest.approx(roi)
    assert meta["crs"] == rasterio.crs.CRS.from_string(CRS_UTM)
    assert meta["transform"].a == 5.0 and meta["transform"].e == -5.0
    # The bright input pixel lands under the same map coordinates in the output.
    bright = np.argwhere(data[0] > 5000)
    assert len(bright) == 4  # one 10 m pixel = 2 x 2 output pixels (identity network = nearest up-sampling)
    left, top = x0 + col * 10.0, y0 - row * 10.0
    for r, c in bright:
        x, y = meta["transform"] @ (c + 0.5, r + 0.5)
        assert left < x < left + 10.0 and top - 10.0 < y < top


def test_roi_pixels(models: dict[str, Path], scene: tuple[Path, np.ndarray], tmp_path: Path) -> None:
    path, dn = scene
    out = tmp_path / "roi.tif"
    assert _infer(["--model", str(models["x2"]), "--input", str(path), "--output", str(out),
                   "--roi-pixels", "10", "5", "30", "20", "--tile-size", "64"]) == 0  # fmt: skip
    data, meta = _read(out)
    assert data.shape == (4, 40, 60)
    with rasterio.open(path) as src:
        left, top = src.transform @ (10, 5)
        right, bottom = src.transform @ (40, 25)
    assert tuple(meta["bounds"]) == pytest.approx((left, bottom, right, top))
    whole = to_int16_dn(super_resolve_array(OnnxPredictor(models["x2"]), dn))
    assert np.abs(data.astype(int) - whole[:, 10:50, 20:80].astype(int)).max() <= 1


def test_nodata_is_propagated_and_does_not_poison(models: dict[str, Path], tmp_path: Path) -> None:
    dn = smooth_dn(4, 48, 48, seed=1)
    dn[:, 10:14, 20:30] = 0  # no data (declared nodata 0)
    dn[2, 30, 5] = 0  # one band only: the pixel has no data in the output
    path = write_geotiff(tmp_path / "holes.tif", dn, nodata=0)
    out = tmp_path / "sr.tif"
    # --keep-filled: only the holes' own output pixels are no data.
    assert _infer(["--model", str(models["x2"]), "--input", str(path), "--output", str(out),
                   "--tile-size", "32", "--keep-filled"]) == 0  # fmt: skip
    data, _ = _read(out)
    expected_mask = np.zeros((96, 96), dtype=bool)
    expected_mask[20:28, 40:60] = True
    expected_mask[60:62, 10:12] = True
    assert np.array_equal((data == -10000).all(axis=0), expected_mask)
    assert not (data[:, ~expected_mask] == -10000).any()
    assert (data[:, ~expected_mask] > 0).all()  # filled holes do not produce NaN or absurd values nearby
    float_dn = dn.astype(np.uint16).astype(np.float32)
    float_dn[float_dn == 0] = np.nan
    predictor = OnnxPredictor(models["x2"])
    whole = to_int16_dn(super_resolve_array(predictor, float_dn, keep_filled=True))
    assert np.abs(data.astype(int) - whole.astype(int)).max() <= 1
    # Default: the holes dilated by the model's margin (5 output px) are no data too.
    assert _infer(["--model", str(models["x2"]), "--input", str(path), "--output", str(out),
                   "--tile-size", "32"]) == 0  # fmt: skip
    data, _ = _read(out)
    m = predictor.margin
    halo = np.zeros((96, 96), dtype=bool)
    halo[20 - m : 28 + m, 40 - m : 60 + m] = True
    halo[60 - m : 62 + m, 10 - m : 12 + m] = True
    assert np.array_equal((data == -10000).all(axis=0), halo)
    whole = to_int16_dn(super_resolve_array(predictor, float_dn))
    assert np.abs(data.astype(int) - whole.astype(int)).max() <= 1


def test_nan_float_input_and_band_mapping(models: dict[str, Path], tmp_path: Path) -> None:
    dn = smooth_dn(5, 30, 30, seed=2)
    dn[1, 3, 4] = np.nan
    # File order B8, B4, B3, B2, B5 without descriptions: mapped with --bands, reordered to the model's order.
    path = write_geotiff(tmp_path / "float.tif", dn[[3, 2, 1, 0, 4]], descriptions=None, dtype="float32")
    out = tmp_path / "sr.tif"
    assert _infer(["--model", str(models["x2"]), "--input", str(path), "--output", str(out),
                   "--bands", "B08,B04,B03,B02,B05"]) == 0  # fmt: skip
    data, _ = _read(out)
    assert (data[:, 6:8, 8:10] == -10000).all()
    whole = to_int16_dn(super_resolve_array(OnnxPredictor(models["x2"]), dn[:4]))
    assert np.abs(data.astype(int) - whole.astype(int)).max() <= 1


def test_output_region_snaps_and_validates() -> None:
    from sisrlib.inference.sources import Grid

    grid = Grid(100, 80, Affine(10, 0, 1000, 0, -10, 5000), rasterio.crs.CRS.from_epsg(32631))
    assert output_region(grid, 2) == Region(0, 0, 200, 160)
    assert output_region(grid, 2, roi_pixels=(1, 2, 3, 4)) == Region(2, 4, 6, 8)
    assert output_region(grid, 2, roi=(1015, 4900, 1100, 4985)) == Region(3, 3, 17, 17)
    with pytest.raises(ValueError, match="not inside the image bounds"):
        output_region(grid, 2, roi=(900, 4900, 1100, 4985))
    with pytest.raises(ValueError, match="not inside the image"):
        output_region(grid, 2, roi_pixels=(90, 0, 20, 10))
    assert len(plan_tiles(Region(0, 0, 130, 64), 64)) == 3 * 1


@pytest.mark.parametrize("value", ["0", "-64", "abc", "64.5", ""])
def test_tile_size_must_be_a_positive_integer(value: str) -> None:
    with pytest.raises(ValueError, match="positive whole number of output pixels"):
        parse_tile_size(value)


def test_open_model_dispatch(models: dict[str, Path], tmp_path: Path) -> None:
    onnx_path = models["x2"].with_suffix(".onnx")
    assert isinstance(open_model(onnx_path), OnnxPredictor)
    assert isinstance(open_model(models["x2"]), OnnxPredictor)
    junk = tmp_path / "m.pt"
    junk.write_bytes(b"not a model")
    with pytest.raises(SisrError, match=r"exported model NAME\.yaml.*training checkpoint.*torchsisr"):
        open_model(junk)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        open_model(tmp_path / "missing.ckpt")
    with pytest.raises(ValueError, match="threads"):
        open_model(models["x2"], threads=0)
    with pytest.raises(SisrError, match="contradicts the yaml"):
        open_model(models["x2"], options=ModelOptions(factor=4.0))
    with pytest.raises(SisrError, match="normalisation inside the graph"):
        open_model(models["x2"], options=ModelOptions(standardisation="evoland"))


def test_source_band_checks(scene: tuple[Path, np.ndarray]) -> None:
    path, dn = scene
    with open_source(path, ("B4", "B2")) as source:
        np.testing.assert_array_equal(source.read(0, 0, 90, 75), dn[[2, 0]])
        # Reads beyond the border are mirrored.
        np.testing.assert_array_equal(source.read(-2, 0, 3, 1)[0, 0], dn[2, 0, [2, 1, 0]])


def test_rounding_and_the_tools_truncation() -> None:
    """Default: nearest DN (half to even); ``truncate``: toward zero, as the EVOLAND tool's int16 cast."""
    values = np.array([1.7, -1.7, 2.5, 3.5, 0.4, np.nan, 40000.0, -20000.0], dtype=np.float32)
    assert to_int16_dn(values).tolist() == [2, -2, 2, 4, 0, -10000, 32767, -9999]
    assert to_int16_dn(values, truncate=True).tolist() == [1, -1, 2, 3, 0, -10000, 32767, -9999]


def test_cli_truncate_differs_from_rounding_by_at_most_1_dn(
    models: dict[str, Path], scene: tuple[Path, np.ndarray], tmp_path: Path
) -> None:
    path, _ = scene
    outputs = {}
    for label, extra in (("round", []), ("truncate", ["--truncate"])):
        out = tmp_path / f"{label}.tif"
        assert main(["infer", "--no-progress", "--model", str(models["x2"]), "--input", str(path), "--output",
                     str(out), *extra]) == 0  # fmt: skip
        with rasterio.open(out) as ds:
            outputs[label] = ds.read().astype(np.int32)
            assert ds.tags()["rounding"] == ("truncate" if extra else "nearest")
    diff = outputs["round"] - outputs["truncate"]
    assert set(np.unique(diff).tolist()) <= {0, 1}  # positive DN: rint(v) - trunc(v) is 0 or 1
    assert 0.2 < (diff == 1).mean() < 0.8


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread niceness is Linux's")
def test_the_reader_and_writer_threads_yield_to_the_model() -> None:
    """lower_thread_priority renices the calling thread only (the model's threads keep their priority)."""
    from sisrlib.inference.engine import BACKGROUND_NICENESS, lower_thread_priority

    before = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    seen: list[int] = []

    def background() -> None:
        lower_thread_priority()
        seen.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))

    thread = threading.Thread(target=background)
    thread.start()
    thread.join()
    assert seen == [max(before, BACKGROUND_NICENESS)]
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == before
