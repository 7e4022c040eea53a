"""``sisr infer`` on bad input: a clear message, exit status 2, no output (nor temporary file) left."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sisrlib.cli import main
from tests.helpers.export_helpers import smooth_dn, write_geotiff
from tests.inference.conftest import OnTile


def _fails(args: list[str], out_dir: Path, capsys: pytest.CaptureFixture[str], *expected: str) -> None:
    before = sorted(p.name for p in out_dir.iterdir())
    out = out_dir / "out.tif"
    assert main(["infer", "--no-progress", "--output", str(out), *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("sisr infer: error:"), err
    for text in expected:
        assert text in err, f"{text!r} not in {err!r}"
    assert not out.exists()
    assert sorted(p.name for p in out_dir.iterdir()) == before, "temporary files were left behind"


def test_band_count_mismatch(model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_geotiff(tmp_path / "three.tif", smooth_dn(3, 20, 20), descriptions=None)
    _fails(["--model", str(model), "--input", str(path)], tmp_path, capsys,
           "3 band(s)", "the model needs 4 bands", "--bands")  # fmt: skip
    _fails(["--model", str(model), "--input", str(path), "--bands", "B2,B3,B4,B8"], tmp_path, capsys,
           "--bands lists 4 names", "has 3 bands")  # fmt: skip


def test_band_names_do_not_match(model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_geotiff(tmp_path / "red.tif", smooth_dn(4, 20, 20), descriptions=("B5", "B6", "B7", "B8A"))
    _fails(["--model", str(model), "--input", str(path)], tmp_path, capsys,
           "band(s) ['B2', 'B3', 'B4', 'B8'] are not available", "B8A")  # fmt: skip
    _fails(["--model", str(model), "--input", str(path), "--bands", "B2,B3,red,B8"], tmp_path, capsys,
           "'red' is not a Sentinel-2 band name")  # fmt: skip


@pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")
def test_no_georeferencing(model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_geotiff(tmp_path / "raw.tif", smooth_dn(4, 20, 20), crs=None)
    _fails(["--model", str(model), "--input", str(path)], tmp_path, capsys, "has no georeferencing")


def test_unsupported_data_type(model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_geotiff(tmp_path / "bytes.tif", np.full((4, 20, 20), 100.0), dtype="uint8")
    _fails(["--model", str(model), "--input", str(path)], tmp_path, capsys,
           "data type uint8 is not supported", "uint16")  # fmt: skip


def test_roi_outside_the_image(
    model: Path, good_input: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _fails(["--model", str(model), "--input", str(good_input), "--roi", "0", "0", "100", "100"], tmp_path,
           capsys, "is not inside the image bounds", "EPSG:32618")  # fmt: skip
    _fails(["--model", str(model), "--input", str(good_input), "--roi-pixels", "10", "10", "20", "5"],
           tmp_path, capsys, "is not inside the image of 24 x 20 input pixels")  # fmt: skip


@pytest.mark.parametrize("size", ["0", "-8", "big", "12.5"])
def test_bad_tile_size(
    model: Path, good_input: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], size: str
) -> None:
    _fails(["--model", str(model), "--input", str(good_input), "--tile-size", size], tmp_path, capsys,
           "--tile-size", "positive whole number of output pixels")  # fmt: skip


def test_missing_model_yaml(good_input: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _fails(["--model", str(tmp_path / "none.yaml"), "--input", str(good_input)], tmp_path, capsys,
           "none.yaml does not exist")  # fmt: skip


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("bands: [B2, B3\nfactor: 2", "not valid YAML"),
        ("- B2\n- B3\n", "expected a mapping"),
        ("bands: [B2, B3, B4, B8]\nfactor: 2.0\nmodel: tiny.onnx\n", "missing ['margin']"),
        (
            "bands: [B2, B3, B4, B8]\nfactor: 2.0\nmargin: 5\nmodel: tiny.onnx\nscale: 1\n",
            "unexpected ['scale']",
        ),
        ("bands: [B2, B3, B4, B13]\nfactor: 2.0\nmargin: 5\nmodel: tiny.onnx\n", "unknown Sentinel-2 band"),
        (
            "bands: [B2, B3, B4, B8]\nfactor: two\nmargin: 5\nmodel: tiny.onnx\n",
            "'factor' must be a positive",
        ),
        (
            "bands: [B2, B3, B4, B8]\nfactor: 2.0\nmargin: -1\nmodel: tiny.onnx\n",
            "'margin' must be a non-neg",
        ),
        ("bands: [B2, B3, B4, B8]\nfactor: 2.0\nmargin: 5\nmodel: gone.onnx\n", "gone.onnx named by 'model'"),
    ],
)
def test_malformed_model_yaml(
    model: Path,
    good_input: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    content: str,
    message: str,
) -> None:
    folder = tmp_path / "models"
    folder.mkdir()
    (folder / "tiny.onnx").write_bytes(model.with_suffix(".onnx").read_bytes())
    bad = folder / "bad.yaml"
    bad.write_text(content)
    _fails(["--model", str(bad), "--input", str(good_input)], tmp_path, capsys, "bad.yaml", message)


def test_unreadable_onnx(good_input: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "models"
    folder.mkdir()
    (folder / "broken.onnx").write_bytes(b"\x00 this is not a protobuf " * 10)
    (folder / "broken.yaml").write_text(
        "bands: [B2, B3, B4, B8]\nfactor: 2.0\nmargin: 5\nmodel: broken.onnx\n"
    )
    _fails(["--model", str(folder / "broken.yaml"), "--input", str(good_input)], tmp_path, capsys,
           "cannot load the ONNX model", "broken.onnx")  # fmt: skip


def test_missing_input_and_output_folder(
    model: Path, good_input: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _fails(["--model", str(model), "--input", str(tmp_path / "nope.tif")], tmp_path, capsys,
           "nope.tif does not exist")  # fmt: skip
    rc = main(["infer", "--no-progress", "--model", str(model), "--input", str(good_input),
               "--output", str(tmp_path / "missing" / "out.tif")])  # fmt: skip
    assert rc == 2
    assert "the folder" in capsys.readouterr().err


def test_error_during_the_tile_loop_leaves_nothing(
    model: Path, good_input: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], on_tile: OnTile
) -> None:
    from sisrlib.errors import SisrError

    def fail() -> None:
        raise SisrError("simulated failure on tile 3")

    on_tile(3, fail)
    _fails(["--model", str(model), "--input", str(good_input), "--tile-size", "16"], tmp_path, capsys,
           "simulated failure on tile 3")  # fmt: skip
