"""``sisr infer`` on hostile input: outputs that would replace a model or an input, silent garbage (broken
models, reflectance read as DN, masks, fills, ±inf), no-data halos, raw tracebacks, leftovers and memory.

Each failure case checks a clear message, exit status 2 (143 on SIGTERM) and that nothing is left behind.
"""

from __future__ import annotations

import hashlib
import os
import signal
import socket
import subprocess
from pathlib import Path

import numpy as np
import onnx
import pytest
import rasterio
from affine import Affine
from onnx import numpy_helper
from rasterio.shutil import copy as raster_copy

from sisrlib.bands import BANDS_10M, standardisation
from sisrlib.cli import main
from sisrlib.errors import SisrError
from sisrlib.inference import (
    ArraySource,
    super_resolve,
    super_resolve_array,
    to_int16_dn,
)
from sisrlib.inference.engine import output_nodata
from sisrlib.inference.memory import estimate_peak_memory
from sisrlib.inference.tiling import Region
from sisrlib.models.dn_model import DNModel
from sisrlib.predictors import OnnxPredictor
from sisrlib.predictors.torch_models import TorchPredictor
from tests.helpers.export_helpers import BANDS, CRS_UTM, TinySR, smooth_dn, write_geotiff
from tests.inference.conftest import OnTile

X0, Y0 = 300000.0, 4200000.0


def _infer(*args: str) -> int:
    return main(["infer", "--no-progress", "--threads", "1", *args])


def _read(path: Path) -> np.ndarray:
    with rasterio.open(path) as ds:
        return ds.read()


def _digest(paths: list[Path]) -> list[str]:
    return [hashlib.sha256(p.read_bytes()).hexdigest() for p in paths]


def _fails(
    args: list[str],
    folder: Path,
    capsys: pytest.CaptureFixture[str],
    *expected: str,
    output: Path | None = None,
) -> str:
    """Run ``sisr infer`` expecting exit 2, the ``expected`` texts in the message and no new file."""
    before = sorted(p.name for p in folder.iterdir())
    out = output or folder / "out.tif"
    assert _infer("--output", str(out), *args) == 2
    err = capsys.readouterr().err
    assert err.startswith("sisr infer: error:"), err
    assert "Traceback" not in err
    for text in expected:
        assert text in err, f"{text!r} not in {err!r}"
    if output is None:
        assert not out.exists()
    assert sorted(p.name for p in folder.iterdir()) == before, "files were left behind"
    return err


# ---------------------------------------------------------------------------------------------------------
# Outputs never replace the model or the input, and are checked before any work


def test_output_equal_to_the_model_or_the_input_is_refused(
    model: Path, good_input: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    onnx_path = model.with_suffix(".onnx")
    protected = [model, onnx_path, good_input]
    digests = _digest(protected)
    base = ["--model", str(model), "--input", str(good_input)]
    for target in (model, onnx_path):
        _fails(base, model.parent, capsys, f"--output {target} is the model file", output=target)
    _fails(["--model", str(onnx_path), "--input", str(good_input)], model.parent, capsys,
           "is the model file", output=model)  # fmt: skip
    _fails(base, tmp_path, capsys, f"--output {good_input} is the input file", output=good_input)
    link = tmp_path / "link.tif"
    link.symlink_to(model)
    _fails(base, tmp_path, capsys, "is the model file", output=link)
    assert _digest(protected) == digests


def test_output_equal_to_a_checkpoint_is_refused_before_loading(
    good_input: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ckpt = tmp_path / "model.ckpt"
    ckpt.write_bytes(b"not even a checkpoint")  # refused before it is read
    _fails(["--model", str(ckpt), "--input", str(good_input)], tmp_path, capsys,
           "is the model file", output=ckpt)  # fmt: skip
    assert ckpt.read_bytes() == b"not even a checkpoint"


def test_output_folder_is_refused_before_any_work(
    model: Path, good_input: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "results"
    folder.mkdir()
    _fails(["--model", str(model), "--input", str(good_input)], tmp_path, capsys,
           f"--output {folder} is a folder", "NAME_sr.tif", output=folder)  # fmt: skip
    assert list(folder.iterdir()) == []


# ---------------------------------------------------------------------------------------------------------
# Silent garbage


def _nan_weights_onnx(model: Path, folder: Path) -> Path:
    """A copy of the exported pair whose largest weight tensor holds a NaN."""
    graph = onnx.load(str(model.with_suffix(".onnx")))
    weights = max(graph.graph.initializer, key=lambda t: int(np.prod(t.dims)))
    values = numpy_helper.to_array(weights).copy()
    values.flat[0] = np.nan
    weights.CopyFrom(numpy_helper.from_array(values, weights.name))
    onnx.save(graph, str(folder / "nan.onnx"))
    (folder / "nan.yaml").write_text(model.read_text().replace(model.with_suffix(".onnx").name, "nan.onnx"))
    return folder / "nan.yaml"


def test_model_with_nan_weights_fails_naming_the_model(
    model: Path, good_input: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = _nan_weights_onnx(model, tmp_path)
    _fails(["--model", str(broken), "--input", str(good_input)], tmp_path, capsys,
           "nan.onnx", "output values are not finite", "NaN or inf weights")  # fmt: skip
    generator = TinySR()
    with np.errstate(all="ignore"):
        generator.head.weight.data[0, 0, 0, 0] = float("nan")
    predictor = TorchPredictor(DNModel(generator, standardisation("evoland", BANDS)))
    with rasterio.open(good_input) as ds:
        dn = ds.read().astype(np.float32)
    with pytest.raises(SisrError, match="not finite"):
        super_resolve_array(predictor, dn)


def test_reflectance_geotiff_is_refused_or_scaled(
    model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dn = np.rint(smooth_dn(4, 20, 24))
    reflectance = write_geotiff(tmp_path / "refl.tif", dn / 10000.0, dtype="float32")
    err = _fails(["--model", str(model), "--input", str(reflectance)], tmp_path, capsys,
                 "refl.tif", "99th percentile", "look like reflectance", "--input-scale 10000")  # fmt: skip
    assert "0.3" in err or "0.2" in err  # the percentile found
    scaled = tmp_path / "scaled.tif"
    assert _infer("--model", str(model), "--input", str(reflectance), "--output", str(scaled),
                  "--input-scale", "10000") == 0  # fmt: skip
    as_dn = tmp_path / "dn.tif"
    assert _infer("--model", str(model), "--input", str(write_geotiff(tmp_path / "dn_in.tif", dn)),
                  "--output", str(as_dn)) == 0  # fmt: skip
    assert np.abs(_read(scaled).astype(int) - _read(as_dn).astype(int)).max() <= 1
    for bad in ("0", "-3", "nan", "inf", "ten"):
        _fails(["--model", str(model), "--input", str(reflectance), "--input-scale", bad], tmp_path, capsys,
               "--input-scale", "positive finite number")  # fmt: skip


def test_internal_mask_band_is_no_data(model: Path, tmp_path: Path) -> None:
    dn = smooth_dn(4, 32, 32, seed=4)
    path = write_geotiff(tmp_path / "masked.tif", dn)
    mask = np.full((32, 32), 255, dtype=np.uint8)
    mask[5:9, 10:20] = 0
    with rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True), rasterio.open(path, "r+") as ds:
        ds.write_mask(mask)
    assert not path.with_name(path.name + ".msk").exists()  # internal, not a sidecar
    out = tmp_path / "sr.tif"
    assert _infer("--model", str(model), "--input", str(path), "--output", str(out), "--keep-filled") == 0
    expected = np.zeros((64, 64), dtype=bool)
    expected[10:18, 20:40] = True
    assert np.array_equal((_read(out) == -10000).all(axis=0), expected)


def test_minus_10000_fill_without_a_nodata_tag_is_no_data(model: Path, tmp_path: Path) -> None:
    dn = smooth_dn(4, 24, 24, seed=5)
    dn[:, 3:6, 4:8] = -10000  # the Sentinel-2 fill, no tag
    dn[1, 20, 20] = -32768  # below the fill: no data too
    dn[2, 15, 15] = -200  # a dark pixel after the BOA offset stays valid
    path = write_geotiff(tmp_path / "fill.tif", dn, dtype="int16", nodata=None)
    out = tmp_path / "sr.tif"
    assert _infer("--model", str(model), "--input", str(path), "--output", str(out), "--keep-filled") == 0
    expected = np.zeros((48, 48), dtype=bool)
    expected[6:12, 8:16] = True
    expected[40:42, 40:42] = True
    data = _read(out)
    assert np.array_equal((data == -10000).all(axis=0), expected)
    assert not (data[:, ~expected] == -10000).any()
    assert (data[:, ~expected] > -10000).all()


@pytest.mark.parametrize("keep_filled", [False, True])
def test_nonfinite_pixels_are_no_data_and_tiling_stays_seamless(
    model: Path, tmp_path: Path, keep_filled: bool
) -> None:
    dn = smooth_dn(4, 40, 36, seed=6)
    dn[0, 7, 9] = np.inf
    dn[3, 25, 30] = -np.inf
    dn[:, 12:15, 0:3] = np.nan  # at the image border (mirrored into the padding)
    dn[2, 33, 17] = np.inf
    path = write_geotiff(tmp_path / "inf.tif", dn, dtype="float32")
    predictor = OnnxPredictor(model)
    whole = to_int16_dn(super_resolve_array(predictor, dn, keep_filled=keep_filled))
    holes = ~np.isfinite(dn).all(axis=0)
    expected = output_nodata(holes, Region(0, 0, 72, 80), Region(0, 0, 36, 40), 2,
                             0 if keep_filled else predictor.margin)  # fmt: skip
    assert np.array_equal((whole == -10000).all(axis=0), expected)
    for tile in ("8", "16", "30", "1000"):
        out = tmp_path / f"sr_{tile}.tif"
        extra = ["--keep-filled"] if keep_filled else []
        assert _infer("--model", str(model), "--input", str(path), "--output", str(out),
                      "--tile-size", tile, *extra) == 0  # fmt: skip
        tiled = _read(out)
        assert np.array_equal(tiled == -10000, whole == -10000), tile
        assert np.abs(tiled.astype(int) - whole.astype(int)).max() <= 1, tile


def test_halo_outside_equals_the_no_hole_result(model: Path) -> None:
    """Outside the holes dilated by the margin, the output equals the output without holes (1 DN)."""
    dn = smooth_dn(4, 40, 40, seed=7)
    holed = dn.copy()
    holed[:, 10:13, 15:20] = np.nan
    holed[1, 30, 8] = np.nan
    predictor = OnnxPredictor(model)
    clean = to_int16_dn(super_resolve_array(predictor, dn)).astype(int)
    got = to_int16_dn(super_resolve_array(predictor, holed)).astype(int)
    m = predictor.margin
    halo = np.zeros((80, 80), dtype=bool)
    halo[20 - m : 26 + m, 30 - m : 40 + m] = True
    halo[60 - m : 62 + m, 16 - m : 18 + m] = True
    assert np.array_equal((got == -10000).all(axis=0), halo)
    assert not (got[:, ~halo] == -10000).any()
    assert np.abs(got[:, ~halo] - clean[:, ~halo]).max() <= 1
    # With --keep-filled the ring keeps the filled prediction, which differs from the no-hole result.
    kept = to_int16_dn(super_resolve_array(predictor, holed, keep_filled=True)).astype(int)
    ring = halo & ~(kept == -10000).all(axis=0)
    assert ring.any() and np.abs(kept[:, ring] - clean[:, ring]).max() > 1


def test_halo_covers_every_pixel_the_hole_reaches() -> None:
    """The halo rule in 1-D terms: output ``p`` is masked iff a hole footprint lies within ``halo`` of it."""
    invalid = np.zeros((9, 9), dtype=bool)
    invalid[4, 4] = True
    for factor, halo in ((2, 0), (2, 3), (3, 4), (4, 9)):
        mask = output_nodata(invalid, Region(0, 0, 9 * factor, 9 * factor), Region(0, 0, 9, 9), factor, halo)
        p = np.arange(9 * factor)
        near = (p >= 4 * factor - halo) & (p <= 4 * factor + factor - 1 + halo)
        assert np.array_equal(mask, near[:, None] & near[None, :]), (factor, halo)


# ---------------------------------------------------------------------------------------------------------
# Clear messages instead of tracebacks


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (("factor: 2.0", "factor: .inf"), ["'factor' must be a positive finite number", "found inf"]),
        (("margin: 6", "margin: 100000"), ["estimated peak memory", "margin 100000", "check the model"]),
    ],
)
def test_absurd_model_yaml_values(
    model: Path,
    good_input: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    change: tuple[str, str],
    expected: list[str],
) -> None:
    text = model.read_text()
    assert change[0] in text, text
    (tmp_path / "tiny.onnx").write_bytes(model.with_suffix(".onnx").read_bytes())
    (tmp_path / "bad.yaml").write_text(text.replace(*change))
    _fails(["--model", str(tmp_path / "bad.yaml"), "--input", str(good_input)], tmp_path, capsys, *expected)


def test_truncated_geotiff(model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plain = write_geotiff(tmp_path / "plain.tif", smooth_dn(4, 64, 64))
    # IFD first (as in a COG): the header opens, the pixel data are cut.
    path = tmp_path / "cut.tif"
    raster_copy(plain, path, driver="GTiff", COPY_SRC_OVERVIEWS="YES")
    with open(path, "r+b") as f:
        f.truncate(path.stat().st_size // 2)
    _fails(["--model", str(model), "--input", str(path), "--tile-size", "32"], tmp_path, capsys,
           "cut.tif: cannot read the window", "truncated or corrupt")  # fmt: skip
    # IFD last (GDAL's default): the file does not open.
    with open(plain, "r+b") as f:
        f.truncate(plain.stat().st_size // 2)
    _fails(["--model", str(model), "--input", str(plain)], tmp_path, capsys, "cannot open", "plain.tif")


def _theia(folder: Path, narrow: str | None = None) -> Path:
    """A Theia L2A folder of the 10 m bands, 20 x 24 px; ``narrow`` is one pixel narrower."""
    rng = np.random.default_rng(0)
    for band in BANDS_10M:
        width = 23 if band == narrow else 24
        data = rng.integers(200, 3000, (20, width)).astype(np.int16)
        path = folder / f"{folder.name}_FRE_{band}.tif"
        path.parent.mkdir(parents=True, exist_ok=True)
        with rasterio.open(
            path, "w", driver="GTiff", width=width, height=20, count=1, dtype="int16", crs=CRS_UTM,
            transform=Affine(10, 0, X0, 0, -10, Y0), nodata=-10000,
        ) as dst:  # fmt: skip
            dst.write(data, 1)
    return folder


@pytest.mark.parametrize("narrow", ["B2", "B4"])
def test_theia_band_with_another_extent(
    model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], narrow: str
) -> None:
    theia = _theia(tmp_path / "SENTINEL2B_20230101-155519-000_L2A_T18SVF_C_V3-1", narrow)
    err = _fails(["--model", str(model), "--input", str(theia)], tmp_path, capsys,
                 "must cover the same extent", "20 x 23 px", "20 x 24")  # fmt: skip
    assert f"_FRE_{narrow}.tif" in err


def test_output_equal_to_a_product_band_file_is_refused(
    model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    theia = _theia(tmp_path / "SENTINEL2B_20230101-155519-000_L2A_T18SVF_C_V3-1")
    band = next(theia.glob("*_FRE_B3.tif"))
    _fails(["--model", str(model), "--input", str(theia)], theia, capsys, "is the input file", output=band)
    _fails(["--model", str(model), "--input", str(theia), "--input-scale", "10000"], tmp_path, capsys,
           "--input-scale applies to GeoTIFF input only")  # fmt: skip


def test_bands_option_contradicting_the_descriptions(
    model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_geotiff(
        tmp_path / "named.tif", smooth_dn(4, 20, 20), descriptions=("B02", "B03", "B04", "B08")
    )
    _fails(["--model", str(model), "--input", str(path), "--bands", "B4,B3,B2,B8"], tmp_path, capsys,
           "contradicts the band descriptions", "band 1 is described as 'B02' but --bands says 'B4'",
           "band 3 is described as 'B04' but --bands says 'B2'", "Drop --bands")  # fmt: skip
    out = tmp_path / "ok.tif"
    assert (
        _infer("--model", str(model), "--input", str(path), "--output", str(out), "--bands", "B2,B3,B4,B8")
        == 0
    )
    # Descriptions that are not band names are overridden by --bands, as before.
    other = write_geotiff(
        tmp_path / "other.tif", smooth_dn(4, 20, 20), descriptions=("blue", "green", "red", "nir")
    )
    assert (
        _infer("--model", str(model), "--input", str(other), "--output", str(out), "--bands", "B2,B3,B4,B8")
        == 0
    )


# ---------------------------------------------------------------------------------------------------------
# Leftovers and memory


def test_sigterm_removes_the_temporary_and_exits_non_zero(
    model: Path, good_input: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], on_tile: OnTile
) -> None:
    on_tile(2, lambda: os.kill(os.getpid(), signal.SIGTERM))
    before = sorted(p.name for p in tmp_path.iterdir())
    out = tmp_path / "out.tif"
    rc = _infer("--model", str(model), "--input", str(good_input), "--output", str(out), "--tile-size", "16")
    assert rc == 143
    assert "terminated by SIGTERM" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL


def test_stale_temporaries_of_a_killed_run_are_removed(model: Path, good_input: Path, tmp_path: Path) -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    host = socket.gethostname()
    # Temporaries of sisrlib.atomic.atomic_output: .<stem>.tmp-<host>-<pid>.<random><suffix>
    stale = tmp_path / f".out.tmp-{host}-{dead.pid}.k2j4.tif"
    live = tmp_path / f".out.tmp-{host}-{os.getppid()}.a1b2.tif"
    remote = tmp_path / f".out.tmp-elsewhere-{dead.pid}.c3d4.tif"
    other = tmp_path / f".other.tmp-{host}-{dead.pid}.e5f6.tif"
    for path in (stale, live, remote, other):
        path.write_bytes(b"partial")
    out = tmp_path / "out.tif"
    assert _infer("--model", str(model), "--input", str(good_input), "--output", str(out)) == 0
    assert not stale.exists()
    assert live.exists() and remote.exists() and other.exists()


def test_memory_estimate_bounds_the_settings(
    model: Path, good_input: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Tiles are clipped to the image: a huge tile size on a small image is fine.
    out = tmp_path / "sr.tif"
    assert _infer("--model", str(model), "--input", str(good_input), "--output", str(out),
                  "--tile-size", "100000") == 0  # fmt: skip
    out.unlink()
    _fails(["--model", str(model), "--input", str(good_input), "--max-memory", "0.01"], tmp_path, capsys,
           "estimated peak memory", "bound 0.0 GiB (--max-memory)", "lower --tile-size")  # fmt: skip
    _fails(["--model", str(model), "--input", str(good_input), "--max-memory", "-1"], tmp_path, capsys,
           "--max-memory", "positive finite number")  # fmt: skip
    small = estimate_peak_memory(512, 512, 4, 2, 5)
    assert small < 2 * 1024**3
    assert estimate_peak_memory(2048, 2048, 4, 2, 5) > 4 * small
    assert estimate_peak_memory(512, 512, 4, 2, 100000) > 1024**4


def test_library_refuses_a_huge_tile_before_writing(tmp_path: Path) -> None:
    dn = smooth_dn(4, 64, 64)
    predictor = TorchPredictor(DNModel(TinySR(), standardisation("evoland", BANDS)))
    source = ArraySource(dn, BANDS, grid=None)
    source.grid = type(source.grid)(64, 64, Affine(10, 0, X0, 0, -10, Y0), source.grid.crs)
    with pytest.raises(SisrError, match="estimated peak memory"):
        super_resolve(predictor, source, tmp_path / "sr.tif", tile_size=128, progress=False, max_memory=1024)
    assert list(tmp_path.iterdir()) == []
