"""Sentinel-2 products as inference input: Sen2Cor SAFE (folder and zip, BOA offset), L1C SAFE, Theia L2A;
20 m bands on the 10 m grid as GDAL's cubic (the EVOLAND tool's reader)."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
from affine import Affine
from rasterio.enums import Resampling
from rasterio.vrt import WarpedVRT

from sisrlib.bands import BANDS_10M, BANDS_20M
from sisrlib.cli import main
from sisrlib.inference import open_source
from sisrlib.inference.inputs import product_kind
from sisrlib.inference.products import parse_safe_metadata, parse_sen2cor_metadata
from sisrlib.inference.resampling import keys_cubic
from sisrlib.inference.sources import reflect_indices
from tests.helpers.export_helpers import CRS_UTM, export_tiny

X0, Y0 = 300000.0, 4200000.0
H10, W10 = 40, 48
PHYSICAL = ("B1", "B2", "B3", "B4", "B5", "B6", "B7", "B8", "B8A", "B9", "B10", "B11", "B12")


def _mtd(baseline: str, offset: int) -> str:
    offsets = "".join(f'<BOA_ADD_OFFSET band_id="{i}">{offset}</BOA_ADD_OFFSET>' for i in range(13))
    spectral = "".join(
        f'<Spectral_Information bandId="{i}" physicalBand="{b}"><RESOLUTION>10</RESOLUTION>'
        "</Spectral_Information>"
        for i, b in enumerate(PHYSICAL)
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<n1:Level-2A_User_Product xmlns:n1="https://psd-14.sentinel2.eo.esa.int/PSD/User_Product_Level-2A.xsd">'
        f"<n1:General_Info><Product_Info><PROCESSING_BASELINE>{baseline}</PROCESSING_BASELINE></Product_Info>"
        "<Product_Image_Characteristics><QUANTIFICATION_VALUES_LIST>"
        '<BOA_QUANTIFICATION_VALUE unit="none">10000</BOA_QUANTIFICATION_VALUE></QUANTIFICATION_VALUES_LIST>'
        f"<BOA_ADD_OFFSET_VALUES_LIST>{offsets}</BOA_ADD_OFFSET_VALUES_LIST>"
        f"<Spectral_Information_List>{spectral}</Spectral_Information_List>"
        "</Product_Image_Characteristics></n1:General_Info></n1:Level-2A_User_Product>"
    )


def _raw(band: str, height: int, width: int) -> np.ndarray:
    rng = np.random.default_rng(sum(map(ord, band)))
    yy, xx = np.mgrid[0:height, 0:width]
    raw = 2000 + 500 * np.sin(0.3 * xx + 0.2 * yy) + rng.integers(0, 100, (height, width))
    raw[0:2, 0:3] = 0  # no data
    return raw.astype(np.uint16)


def _write(path: Path, data: np.ndarray, res: float, dtype: str, nodata: float | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with rasterio.open(
        path, "w", driver="GTiff", width=data.shape[1], height=data.shape[0], count=1, dtype=dtype,
        crs=CRS_UTM, transform=Affine(res, 0, X0, 0, -res, Y0), nodata=nodata,
    ) as dst:  # fmt: skip
        dst.write(data.astype(dtype), 1)


def _safe(root: Path, baseline: str = "05.09", offset: int = -1000) -> Path:
    safe = root / "S2B_MSIL2A_20230101T155519_N0509_R054_T18SVF_20230101T180000.SAFE"
    safe.mkdir(parents=True)
    (safe / "MTD_MSIL2A.xml").write_text(_mtd(baseline, offset))
    img = safe / "GRANULE" / "L2A_T18SVF_A030000_20230101T155519" / "IMG_DATA"
    for band in ("B02", "B03", "B04", "B08"):
        _write(img / "R10m" / f"T18SVF_20230101T155519_{band}_10m.jp2", _raw(band, H10, W10), 10, "uint16")
    for band in ("B02", "B05", "B06", "B07", "B8A", "B11", "B12"):
        _write(img / "R20m" / f"T18SVF_20230101T155519_{band}_20m.jp2", _raw(band, H10 // 2, W10 // 2), 20,
               "uint16")  # fmt: skip
    return safe


@pytest.fixture(scope="module")
def safe(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _safe(tmp_path_factory.mktemp("safe"))


def _expected_dn(raw: np.ndarray, offset: float = -1000) -> np.ndarray:
    out = raw.astype(np.float32) + offset
    out[raw == 0] = np.nan
    return out


def test_sen2cor_metadata_offsets() -> None:
    meta = parse_sen2cor_metadata(_mtd("05.09", -1000).encode(), "MTD")
    assert meta.processing_baseline == "05.09" and meta.quantification == 10000
    assert (
        meta.offsets["B2"] == -1000 and meta.offsets["B8A"] == -1000 and len(meta.offsets) == 10
    )  # B1, B9, B10 unused
    assert parse_sen2cor_metadata(_mtd("02.14", -1000).encode(), "MTD").offsets == {}


def test_sen2cor_10m_bands_with_offset_and_nodata(safe: Path) -> None:
    assert product_kind(safe) == "sen2cor"
    with open_source(safe, BANDS_10M) as source:
        assert source.grid.resolution == (10.0, 10.0)
        assert (source.grid.width, source.grid.height) == (W10, H10)
        got = source.read(0, 0, W10, H10)
    for k, band in enumerate(("B02", "B03", "B04", "B08")):
        np.testing.assert_array_equal(got[k], _expected_dn(_raw(band, H10, W10)))


def test_sen2cor_zip_reads_like_the_folder(safe: Path, tmp_path: Path) -> None:
    archive = tmp_path / f"{safe.stem}.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for f in safe.rglob("*"):
            if f.is_file():
                z.write(f, f.relative_to(safe.parent).as_posix())
    with open_source(safe, BANDS_10M) as a, open_source(archive, BANDS_10M) as b:
        np.testing.assert_array_equal(a.read(-3, 5, 20, 20), b.read(-3, 5, 20, 20))


def test_sen2cor_20m_model_reads_the_20m_grid(safe: Path) -> None:
    with open_source(safe, BANDS_20M) as source:
        assert source.grid.resolution == (20.0, 20.0)
        got = source.read(0, 0, W10 // 2, H10 // 2)
    np.testing.assert_array_equal(got[3], _expected_dn(_raw("B8A", H10 // 2, W10 // 2)))


def _gdal_cubic(path: Path, width: int, height: int, nodata: float | None) -> np.ndarray:
    """``path`` warped onto the 10 m grid of the product by GDAL's cubic (rasterio's WarpedVRT), as the
    EVOLAND tool's reader does: ``[height, width]`` raw values of the file's data type."""
    with rasterio.open(path) as src:
        options = {} if nodata is None else {"src_nodata": nodata, "nodata": nodata}
        transform = Affine(10, 0, src.transform.c, 0, -10, src.transform.f)
        with WarpedVRT(src, resampling=Resampling.cubic, crs=src.crs, width=width, height=height,
                       transform=transform, **options) as vrt:  # fmt: skip
            return vrt.read(1)


def test_sen2cor_20m_bands_resampled_to_10m_as_gdal_cubic_and_tile_invariant(safe: Path) -> None:
    bands = (*BANDS_10M, "B5", "B11")
    with open_source(safe, bands) as source:
        assert source.grid.resolution == (10.0, 10.0)
        whole = source.read(-4, -4, W10 + 8, H10 + 8)
        for col, row in [(0, 0), (7, 13), (30, 22), (-4, 25)]:
            part = source.read(col, row, 16, 16)
            np.testing.assert_array_equal(part, whole[:, row + 4 : row + 20, col + 4 : col + 20])
    inside = whole[:, 4:-4, 4:-4]
    # The 20 m no-data pixels (rows 0-1, cols 0-2 at 20 m) cover 4 x 6 pixels at 10 m, and their cubic
    # taps (floor((i + 0.5) / 2 - 0.5) - 1 ... + 2) reach 10 m rows 0-6 and cols 0-8: no data there.
    expected = np.zeros((H10, W10), dtype=bool)
    expected[:7, :9] = True
    assert np.array_equal(np.isnan(inside[4]), expected)
    # Every other pixel is exactly GDAL's cubic resampling (Keys a = -0.5, bilinear within 1-2 px of the
    # band's border, rounded to uint16) of the raw band, plus the BOA offset; never torch's bicubic.
    img = safe / "GRANULE" / "L2A_T18SVF_A030000_20230101T155519" / "IMG_DATA" / "R20m"
    for k, band in ((4, "B05"), (5, "B11")):
        gdal = _gdal_cubic(img / f"T18SVF_20230101T155519_{band}_20m.jp2", W10, H10, 0).astype(np.float32)
        np.testing.assert_array_equal(inside[k][~expected], gdal[~expected] - 1000)
    coarse = _raw("B05", H10 // 2, W10 // 2).astype(np.float32) - 1000
    torch_bicubic = torch.nn.functional.interpolate(
        torch.from_numpy(coarse)[None, None], scale_factor=2, mode="bicubic", align_corners=False
    )[0, 0].numpy()
    assert np.abs(inside[4][~expected] - torch_bicubic[~expected]).max() > 5


def test_sen2cor_end_to_end(safe: Path, tmp_path: Path) -> None:
    model = export_tiny(tmp_path, "x2").yaml_path
    out = tmp_path / "sr.tif"
    assert main(["infer", "--no-progress", "--model", str(model), "--input", str(safe), "--output", str(out),
                 "--tile-size", "32"]) == 0  # fmt: skip
    with rasterio.open(out) as ds:
        data = ds.read()
        assert ds.crs.to_string() == CRS_UTM and ds.transform == Affine(5, 0, X0, 0, -5, Y0)
        assert ds.descriptions == BANDS_10M
    # Raw 0 at rows 0-1, cols 0-2 in every band -> 4 x 6 output pixels of no data, dilated by the model's
    # margin (2·2 + 1 = 5 output px, exported as 6: whole 10 m pixels): their prediction saw the fill value.
    nodata = np.zeros(data.shape[1:], dtype=bool)
    nodata[: 4 + 6, : 6 + 6] = True
    assert np.array_equal((data == -10000).all(axis=0), nodata)
    assert not (data[:, ~nodata] == -10000).any()


def test_theia_product(tmp_path: Path) -> None:
    theia = tmp_path / "SENTINEL2B_20230101-155519-000_L2A_T18SVF_C_V3-1"
    prefix = theia.name
    for band in (*BANDS_10M, *BANDS_20M):
        res = 10 if band in BANDS_10M else 20
        raw = _raw(band, H10 * 10 // res, W10 * 10 // res).astype(np.int16)
        raw[raw == 0] = -10000
        _write(theia / f"{prefix}_FRE_{band}.tif", raw, res, "int16", nodata=-10000)
        _write(theia / f"{prefix}_SRE_{band}.tif", raw, res, "int16", nodata=-10000)
    assert product_kind(theia) == "theia"
    with open_source(theia, BANDS_10M) as source:
        got = source.read(0, 0, W10, H10)
    np.testing.assert_array_equal(got[1], _expected_dn(_raw("B3", H10, W10), offset=0))
    with open_source(theia, BANDS_20M) as source:
        assert source.grid.resolution == (20.0, 20.0)


def test_product_errors(tmp_path: Path, safe: Path, capsys: pytest.CaptureFixture[str]) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match="neither a Sentinel-2 SAFE product"):
        open_source(empty, BANDS_10M)
    with pytest.raises(ValueError, match="--bands applies to GeoTIFF input only"):
        open_source(safe, BANDS_10M, band_names=list(BANDS_10M))
    bad = _safe(tmp_path / "bad")
    for f in bad.rglob("*_B03_10m.jp2"):
        f.unlink()
    with pytest.raises(ValueError, match=r"expected one file matching .*B03_10m.jp2 for band B3, found 0"):
        open_source(bad, BANDS_10M)


# ----------------------------------------------------------------------------------------------------------
# L1C SAFE (what the EVOLAND tool reads with --l1c)

L1C_NAME = "S2B_MSIL1C_20230101T155519_N0509_R054_T18SVF_20230101T180000.SAFE"


def _mtd_l1c(baseline: str, offset: int) -> str:
    offsets = "".join(f'<RADIO_ADD_OFFSET band_id="{i}">{offset}</RADIO_ADD_OFFSET>' for i in range(13))
    spectral = "".join(
        f'<Spectral_Information bandId="{i}" physicalBand="{b}"/>' for i, b in enumerate(PHYSICAL)
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<n1:Level-1C_User_Product xmlns:n1="https://psd-14.sentinel2.eo.esa.int/PSD/User_Product_Level-1C.xsd">'
        f"<n1:General_Info><Product_Info><PROCESSING_BASELINE>{baseline}</PROCESSING_BASELINE></Product_Info>"
        '<Product_Image_Characteristics><QUANTIFICATION_VALUE unit="none">10000</QUANTIFICATION_VALUE>'
        f"<Radiometric_Offset_List>{offsets}</Radiometric_Offset_List>"
        f"<Spectral_Information_List>{spectral}</Spectral_Information_List>"
        "</Product_Image_Characteristics></n1:General_Info></n1:Level-1C_User_Product>"
    )


def _l1c(root: Path, baseline: str = "05.09", offset: int = -1000) -> Path:
    """A real L1C SAFE layout: every band at its native resolution in GRANULE/*/IMG_DATA, plus TCI."""
    safe = root / L1C_NAME
    safe.mkdir(parents=True)
    (safe / "MTD_MSIL1C.xml").write_text(_mtd_l1c(baseline, offset))
    img = safe / "GRANULE" / "L1C_T18SVF_A030000_20230101T155519" / "IMG_DATA"
    for band in (*BANDS_10M, *BANDS_20M, "B11", "B12"):
        name = band if band.endswith("A") else f"B{int(band[1:]):02d}"
        res = 10 if band in BANDS_10M else 20
        _write(img / f"T18SVF_20230101T155519_{name}.jp2", _raw(name, H10 * 10 // res, W10 * 10 // res),
               res, "uint16")  # fmt: skip
    _write(img / "T18SVF_20230101T155519_TCI.jp2", _raw("TCI", H10, W10), 10, "uint16")
    return safe


def test_l1c_metadata_offsets() -> None:
    meta = parse_safe_metadata(_mtd_l1c("05.09", -1000).encode(), "MTD", "L1C")
    assert meta.quantification == 10000 and meta.offsets["B2"] == -1000 and meta.offsets["B12"] == -1000
    assert parse_safe_metadata(_mtd_l1c("02.14", -1000).encode(), "MTD", "L1C").offsets == {}
    with pytest.raises(ValueError, match="no RADIO_ADD_OFFSET values were found"):
        parse_safe_metadata(_mtd("05.09", -1000).encode(), "MTD", "L1C")


def test_l1c_safe_is_read_with_its_offset_and_nodata(tmp_path: Path) -> None:
    safe = _l1c(tmp_path)
    assert product_kind(safe) == "l1c"
    with open_source(safe, BANDS_10M) as source:
        assert source.grid.resolution == (10.0, 10.0)
        assert (source.grid.width, source.grid.height) == (W10, H10)
        got = source.read(0, 0, W10, H10)
    for k, band in enumerate(("B02", "B03", "B04", "B08")):
        np.testing.assert_array_equal(got[k], _expected_dn(_raw(band, H10, W10)))
    with open_source(safe, ("B5", "B11", "B12")) as source:  # a 20 m model reads the 20 m grid
        assert source.grid.resolution == (20.0, 20.0)
        np.testing.assert_array_equal(
            source.read(0, 0, W10 // 2, H10 // 2)[2], _expected_dn(_raw("B12", H10 // 2, W10 // 2))
        )
    # A mixed model: the 20 m bands on the 10 m grid are GDAL's cubic of the raw band, then the offset.
    with open_source(safe, (*BANDS_10M, "B11")) as source:
        mixed = source.read(0, 0, W10, H10)
    img = safe / "GRANULE" / "L1C_T18SVF_A030000_20230101T155519" / "IMG_DATA"
    gdal = _gdal_cubic(img / "T18SVF_20230101T155519_B11.jp2", W10, H10, 0).astype(np.float32) - 1000
    valid = ~np.isnan(mixed[4])
    assert valid.sum() == H10 * W10 - 7 * 9
    np.testing.assert_array_equal(mixed[4][valid], gdal[valid])
    # Before baseline 04.00 there is no offset.
    old = _l1c(tmp_path / "old", baseline="02.14")
    with open_source(old, BANDS_10M) as source:
        np.testing.assert_array_equal(source.read(0, 0, W10, H10)[0], _expected_dn(_raw("B02", H10, W10), 0))


def test_l1c_end_to_end_and_errors(tmp_path: Path) -> None:
    safe = _l1c(tmp_path)
    archive = tmp_path / f"{safe.stem}.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for f in safe.rglob("*"):
            if f.is_file():
                z.write(f, f.relative_to(safe.parent).as_posix())
    assert product_kind(archive) == "l1c"
    model = export_tiny(tmp_path, "x2").yaml_path
    outputs = []
    for product in (safe, archive):
        out = tmp_path / f"{product.suffix.lstrip('.')}_sr.tif"
        assert main(["infer", "--no-progress", "--model", str(model), "--input", str(product), "--output",
                     str(out), "--tile-size", "32"]) == 0  # fmt: skip
        with rasterio.open(out) as ds:
            assert ds.transform == Affine(5, 0, X0, 0, -5, Y0) and ds.descriptions == BANDS_10M
            outputs.append(ds.read())
    np.testing.assert_array_equal(outputs[0], outputs[1])
    for f in safe.rglob("*_B03.jp2"):
        f.unlink()
    with pytest.raises(ValueError, match=r"matching GRANULE/\*/IMG_DATA/\*_B03.jp2 for band B3, found 0"):
        open_source(safe, BANDS_10M)


def test_theia_int16_band_resampled_as_gdal_cubic(tmp_path: Path) -> None:
    """Odd sizes, negative DN, windows across the borders: GDAL's cubic (rasterio WarpedVRT), exactly."""
    theia = tmp_path / "SENTINEL2B_20230101-155519-000_L2A_T18SVF_C_V3-1"
    rng = np.random.default_rng(3)
    h20, w20 = 23, 31
    b2 = rng.normal(1500, 900, (2 * h20, 2 * w20)).astype(np.int16)
    b5 = rng.normal(300, 900, (h20, w20)).astype(np.int16)  # many negative values, cubic overshoot
    _write(theia / f"{theia.name}_FRE_B2.tif", b2, 10, "int16", nodata=-10000)
    _write(theia / f"{theia.name}_FRE_B5.tif", b5, 20, "int16", nodata=-10000)
    expected = _gdal_cubic(theia / f"{theia.name}_FRE_B5.tif", 2 * w20, 2 * h20, -10000).astype(np.float32)
    with open_source(theia, ("B2", "B5")) as source:
        whole = source.read(0, 0, 2 * w20, 2 * h20)
        np.testing.assert_array_equal(whole[0], b2)
        np.testing.assert_array_equal(whole[1], expected)
        for col, row in [(5, 3), (-3, -2), (2 * w20 - 9, 2 * h20 - 7)]:
            part = source.read(col, row, 12, 10)
            rows = reflect_indices(row, 10, 2 * h20)
            cols = reflect_indices(col, 12, 2 * w20)
            np.testing.assert_array_equal(part, whole[:, rows][:, :, cols])


def test_keys_kernel_is_gdal_cubic_not_torch_bicubic() -> None:
    assert keys_cubic(np.array([0.0, 1.0, 2.0, 2.5])).tolist() == [1.0, 0.0, 0.0, 0.0]
    # Offset 0.25 (a 10 m pixel centre between 20 m centres): a = -0.5 gives these weights; a = -0.75 others.
    weights = keys_cubic(np.array([1.25, 0.25, 0.75, 1.75]))
    np.testing.assert_allclose(weights, [-0.0703125, 0.8671875, 0.2265625, -0.0234375])
    assert weights.sum() == pytest.approx(1.0)
    assert keys_cubic(np.array([1.25]), a=-0.75)[0] == pytest.approx(-0.10546875)
