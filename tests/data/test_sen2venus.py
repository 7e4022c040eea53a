"""Sen2Venµs v2 reader: configurations, shapes, band order, units, truth columns, errors, cache."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from rasterio.io import MemoryFile
from rasterio.transform import Affine

from sisrlib.data.raster import RasterReader, decode_simple_tiff, geotiff_bytes, write_zip
from sisrlib.data.sample import collate_batch
from sisrlib.data.sen2venus import (
    S2V1_SITES,
    S2V2_SITES,
    SITE_LISTS,
    TESTING_SITES,
    Sen2VenusSite,
    available_sites,
    check_sites,
    open_sites,
    sen2venus_layout,
    subsample,
)
from sisrlib.errors import DataError
from tests.helpers.fake_data import REAL_SIZES, SMALL_SIZES, make_sen2venus_site

# (load_10m, load_20m, load_b11b12) -> input bands, lr bands, target bands, factor, input/lr/target size
# ratios
CONFIGS = {
    (True, False, False): (("B2", "B3", "B4", "B8"), (), ("B2", "B3", "B4", "B8"), 2.0),
    (False, True, False): (("B5", "B6", "B7", "B8A"), (), ("B5", "B6", "B7", "B8A"), 4.0),
    (False, True, True): (("B5", "B6", "B7", "B8A", "B11", "B12"), (), ("B5", "B6", "B7", "B8A"), 4.0),
    (True, True, False): (
        ("B2", "B3", "B4", "B8"),
        ("B5", "B6", "B7", "B8A"),
        ("B2", "B3", "B4", "B8", "B5", "B6", "B7", "B8A"),
        2.0,
    ),
    (True, True, True): (
        ("B2", "B3", "B4", "B8"),
        ("B5", "B6", "B7", "B8A", "B11", "B12"),
        ("B2", "B3", "B4", "B8", "B5", "B6", "B7", "B8A"),
        2.0,
    ),
}


def test_site_lists_of_the_paper() -> None:
    assert len(S2V1_SITES) == 20 and len(set(S2V1_SITES)) == 20
    assert len(S2V2_SITES) == 8
    assert TESTING_SITES == ("ES-IC3XG", "MAD-AMBO")
    assert not set(TESTING_SITES) & (set(S2V1_SITES) | set(S2V2_SITES))
    assert SITE_LISTS["s2v1"] == S2V1_SITES and SITE_LISTS["s2v2"] == S2V2_SITES


@pytest.mark.parametrize("config", list(CONFIGS))
def test_every_configuration_has_the_documented_shapes_bands_and_units(tmp_path: Path, config: tuple) -> None:
    """Real patch sizes: 10 m 128 px, 20 m 64 px, 5 m target 256 px (torchsisr's)."""
    folder = make_sen2venus_site(tmp_path, "ARM", rows=2, sizes=REAL_SIZES)
    inputs_b, lr_b, target_b, factor = CONFIGS[config]
    layout = sen2venus_layout(*config)
    assert (layout.input_bands, layout.lr_bands, layout.target_bands, layout.factor) == (
        inputs_b, lr_b, target_b, factor
    )  # fmt: skip
    site = Sen2VenusSite(folder, layout)
    assert len(site) == 2
    s = site[1]
    in_size = 128 if config[0] else 64
    assert s.inputs.shape == (len(inputs_b), in_size, in_size)
    assert s.target.shape == (len(target_b), 256, 256)
    assert s.inputs.dtype == torch.float32 and s.target.dtype == torch.float32
    if lr_b:
        assert s.lr_inputs is not None and s.lr_inputs.shape == (len(lr_b), 64, 64)
        assert s.lr_resolution_m == 20.0
    else:
        assert s.lr_inputs is None
    assert s.input_bands == inputs_b and s.target_bands == target_b
    assert s.target_resolution_m == 5.0 and s.input_resolution_m == (10.0 if config[0] else 20.0)
    assert s.id == "ARM:1"
    # DN as stored: fake values are 5000 + 10000·U(0, 1)
    assert float(s.inputs.min()) >= 5000 and float(s.target.max()) < 15001
    assert s.true_flow is None and s.true_radiometry is None


def test_band_order_follows_the_columns(tmp_path: Path) -> None:
    folder = make_sen2venus_site(tmp_path, "ARM", rows=1)
    reader = RasterReader()
    index = pd.read_csv(folder / "index.csv", sep="\t")
    site = Sen2VenusSite(folder, sen2venus_layout(True, True, True))
    s = site[0]

    def raw(col: str) -> np.ndarray:
        return reader.read(f"/vsizip/{folder}/{index[col][0]}")

    assert np.array_equal(s.inputs.numpy(), raw("b2b3b4b8_10m"))
    assert s.lr_inputs is not None
    assert np.array_equal(s.lr_inputs.numpy(), np.concatenate([raw("b5b6b7b8a_20m"), raw("b11b12_20m")]))
    assert np.array_equal(s.target.numpy(), np.concatenate([raw("b2b3b4b8_05m"), raw("b5b6b7b8a_05m")]))


@pytest.mark.parametrize("config", [(False, False, False), (True, False, True), (False, False, True)])
def test_unsupported_configurations_are_clear_errors(config: tuple) -> None:
    with pytest.raises(DataError, match="unsupported Sen2Venµs configuration"):
        sen2venus_layout(*config)


@pytest.mark.parametrize(("config", "group"), [((True, False, False), "10m"), ((False, True, True), "20m")])
def test_truth_columns_are_read_for_the_input_group(tmp_path: Path, config: tuple, group: str) -> None:
    folder = make_sen2venus_site(tmp_path, "EMB", rows=2, truth=True)
    site = Sen2VenusSite(folder, sen2venus_layout(*config))
    s = site[0]
    h = SMALL_SIZES[0] if group == "10m" else SMALL_SIZES[1]
    assert s.true_flow is not None and s.true_flow.shape == (2, h, h)
    assert s.true_radiometry is not None and s.true_radiometry.shape == (s.inputs.shape[0], h, h)
    assert Sen2VenusSite(folder, sen2venus_layout(*config), load_truth=False)[0].true_flow is None
    batch = collate_batch([site[0], site[1]])
    assert batch.true_flow is not None and batch.true_flow.shape == (2, 2, h, h)


def test_reader_fast_path_equals_gdal(tmp_path: Path) -> None:
    folder = make_sen2venus_site(tmp_path, "ARM", rows=2, truth=True)
    layout = sen2venus_layout(True, True, True)
    fast = Sen2VenusSite(folder, layout)[1]
    gdal = Sen2VenusSite(folder, layout, reader=RasterReader(fast=False))[1]
    for name in ("inputs", "target", "lr_inputs", "true_flow"):
        assert torch.equal(getattr(fast, name), getattr(gdal, name)), name


@pytest.mark.parametrize("interleave", ["pixel", "band"])
@pytest.mark.parametrize("dtype", ["int16", "uint16", "float32", "uint8"])
def test_simple_tiff_decoder_reads_gdal_files(interleave: str, dtype: str) -> None:
    array = (np.random.default_rng(0).random((3, 9, 13)) * 200).astype(dtype)
    profile = {"driver": "GTiff", "width": 13, "height": 9, "count": 3, "dtype": dtype,
               "interleave": interleave,
               "transform": Affine(10, 0, 0, 0, -10, 0), "crs": "EPSG:32631"}  # fmt: skip
    with MemoryFile() as mem:
        with mem.open(**profile) as ds:
            ds.write(array)
        data = bytes(mem.read())
    decoded = decode_simple_tiff(data)
    assert decoded is not None and decoded.dtype == array.dtype and np.array_equal(decoded, array)
    # compressed: not decoded here (GDAL reads it)
    with MemoryFile() as mem:
        with mem.open(**profile, compress="deflate") as ds:
            ds.write(array)
        assert decode_simple_tiff(bytes(mem.read())) is None


def test_geotiff_writer_round_trips_through_rasterio() -> None:
    array = np.random.default_rng(1).normal(size=(6, 7, 5)).astype(np.float32)
    t = Affine(20.0, 0.0, 435740.0, 0.0, -20.0, 4179460.0)
    data = geotiff_bytes(array, t, 32618, nodata=-10000)
    with MemoryFile(data) as mem, mem.open() as ds:
        assert np.array_equal(ds.read(), array)
        assert ds.transform == t and ds.crs.to_epsg() == 32618 and ds.nodata == -10000
    assert geotiff_bytes(array, t, 32618) == geotiff_bytes(array.copy(), t, 32618)


def test_available_sites_and_unknown_site(tmp_path: Path) -> None:
    for name in ("ARM", "ALSACE"):
        make_sen2venus_site(tmp_path, name, rows=1)
    (tmp_path / "not_a_site").mkdir()
    assert available_sites(tmp_path) == ["ALSACE", "ARM"]
    with pytest.raises(DataError, match=r"unknown Sen2Venµs site\(s\) \['NARYN'\].*'ALSACE', 'ARM'"):
        check_sites(tmp_path, ["ARM", "NARYN"])
    with pytest.raises(DataError, match="not a folder"):
        available_sites(tmp_path / "missing")


def test_missing_index_csv(tmp_path: Path) -> None:
    (tmp_path / "ARM").mkdir()
    with pytest.raises(DataError, match=r"site ARM: missing .*index\.csv"):
        Sen2VenusSite(tmp_path / "ARM", sen2venus_layout(True, False, False))


def test_missing_column_is_named_with_the_present_ones(tmp_path: Path) -> None:
    folder = make_sen2venus_site(tmp_path, "ARM", rows=1)
    index = pd.read_csv(folder / "index.csv", sep="\t").drop(columns=["b5b6b7b8a_05m"])
    index.to_csv(folder / "index.csv", sep="\t", index=False)
    with pytest.raises(
        DataError, match=r"lacks the column\(s\) \['b5b6b7b8a_05m'\].*present columns are \['tile'"
    ):
        Sen2VenusSite(folder, sen2venus_layout(False, True, False))
    Sen2VenusSite(folder, sen2venus_layout(True, False, False))  # the 10 m configuration does not need it


@pytest.mark.parametrize("fast", [True, False])
def test_cell_pointing_to_a_missing_zip_member(tmp_path: Path, fast: bool) -> None:
    folder = make_sen2venus_site(tmp_path, "ARM", rows=2)
    index = pd.read_csv(folder / "index.csv", sep="\t")
    index.loc[1, "b2b3b4b8_10m"] = "ARM.zip/ARM_9999_b2b3b4b8_10m.tif"
    index.to_csv(folder / "index.csv", sep="\t", index=False)
    site = Sen2VenusSite(folder, sen2venus_layout(True, False, False), reader=RasterReader(fast=fast))
    site[0]
    with pytest.raises(
        DataError, match=r"site ARM, row 1, column b2b3b4b8_10m, file ARM\.zip/ARM_9999.*has no member"
    ):
        site[1]


@pytest.mark.parametrize("fast", [True, False])
def test_missing_and_corrupted_zip(tmp_path: Path, fast: bool) -> None:
    folder = make_sen2venus_site(tmp_path, "ARM", rows=1)
    layout = sen2venus_layout(True, False, False)
    zip_path = folder / "ARM.zip"
    data = zip_path.read_bytes()
    zip_path.write_bytes(data[: len(data) // 3])  # truncated: central directory lost
    with pytest.raises(DataError, match=r"site ARM, row 0.*corrupted or not a zip"):
        Sen2VenusSite(folder, layout, reader=RasterReader(fast=fast))[0]
    zip_path.unlink()
    with pytest.raises(DataError, match=r"zip archive .*ARM\.zip does not exist"):
        Sen2VenusSite(folder, layout, reader=RasterReader(fast=fast))[0]


@pytest.mark.parametrize(
    ("value", "message"),
    [(-10000, "every pixel is no-data"), (0, "every pixel is 0"), (None, "values are no-data")],
)
def test_empty_patches_are_rejected(tmp_path: Path, value: int | None, message: str) -> None:
    folder = make_sen2venus_site(tmp_path, "ARM", rows=2)
    index = pd.read_csv(folder / "index.csv", sep="\t")
    reader = RasterReader()
    members = {}
    with zipfile.ZipFile(folder / "ARM.zip") as z:
        for name in z.namelist():
            members[name] = z.read(name)
    target = index.loc[1, "b2b3b4b8_05m"].split("/", 1)[1]
    array = reader.read(f"/vsizip/{folder}/{index.loc[1, 'b2b3b4b8_05m']}")
    if value is None:
        array[:, :2, :2] = -10000
    else:
        array[:] = value
    members[target] = geotiff_bytes(array)
    write_zip(folder / "ARM.zip", members)
    site = Sen2VenusSite(folder, sen2venus_layout(True, False, False))
    site[0]
    with pytest.raises(DataError, match=rf"site ARM, row 1, column b2b3b4b8_05m, file ARM\.zip/.*{message}"):
        site[1]


def test_cache_keeps_decoded_patches(tmp_path: Path) -> None:
    folder = make_sen2venus_site(tmp_path, "ARM", rows=3)
    site = Sen2VenusSite(folder, sen2venus_layout(True, False, False), cache=True)
    first = site[2]
    (folder / "ARM.zip").unlink()  # a second read would fail
    assert site[2] is first
    with pytest.raises(DataError):
        site[0]


def test_subsample_is_seeded_and_capped(tmp_path: Path) -> None:
    assert subsample(5, None, 0) == [0, 1, 2, 3, 4]
    assert subsample(5, 10, 0) == [0, 1, 2, 3, 4]
    a, b, c = subsample(100, 10, 1), subsample(100, 10, 1), subsample(100, 10, 2)
    assert a == b and a != c and len(set(a)) == 10 and a == sorted(a)
    state = torch.random.get_rng_state()
    subsample(100, 10, 3)
    assert torch.equal(state, torch.random.get_rng_state())  # the global random state is not used
    for name in ("ARM", "NARYN"):
        make_sen2venus_site(tmp_path, name, rows=6)
    sites = open_sites(tmp_path, ["ARM", "NARYN"], sen2venus_layout(True, False, False), 4, seed=0)
    assert [len(s) for s in sites] == [4, 4]
    again = open_sites(tmp_path, ["ARM", "NARYN"], sen2venus_layout(True, False, False), 4, seed=0)
    assert [s.rows for s in sites] == [s.rows for s in again]


def test_duplicated_index_rows_are_refused_naming_the_file_and_the_rows(tmp_path: Path) -> None:
    """A patch listed twice could land in both the training and the validation split."""
    folder = make_sen2venus_site(tmp_path, "ARM", rows=4)
    index = pd.read_csv(folder / "index.csv", sep="\t")
    pd.concat([index, index.iloc[[1]]], ignore_index=True).to_csv(folder / "index.csv", sep="\t", index=False)
    layout = sen2venus_layout(True, False, False)
    with pytest.raises(DataError) as info:
        Sen2VenusSite(folder, layout)
    message = str(info.value)
    assert str(folder / "index.csv") in message
    assert "column b2b3b4b8_10m" in message and "in rows [1, 4]" in message
    assert index.loc[1, "b2b3b4b8_10m"] in message and "remove the duplicated rows" in message
    # one column shared by two rows is enough (the same input patch twice), whatever the other columns hold
    index.loc[3, "b2b3b4b8_05m"] = index.loc[0, "b2b3b4b8_05m"]
    index.to_csv(folder / "index.csv", sep="\t", index=False)
    with pytest.raises(DataError, match=r"column b2b3b4b8_05m cell .* in rows \[0, 3\]"):
        Sen2VenusSite(folder, layout)
    # a column the configuration does not read is not checked
    assert len(Sen2VenusSite(folder, sen2venus_layout(False, True, False))) == 4


def _replace_patch(folder: Path, row: int, column: str, array: np.ndarray) -> str:
    index = pd.read_csv(folder / "index.csv", sep="\t")
    with zipfile.ZipFile(folder / f"{folder.name}.zip") as z:
        members = {name: z.read(name) for name in z.namelist()}
    member = index.loc[row, column].split("/", 1)[1]
    members[member] = geotiff_bytes(array)
    write_zip(folder / f"{folder.name}.zip", members)
    return member


def test_reflectance_scaled_float_patches_are_refused(tmp_path: Path) -> None:
    folder = make_sen2venus_site(tmp_path, "ARM", rows=3)
    reader = RasterReader()
    index = pd.read_csv(folder / "index.csv", sep="\t")
    dn = reader.read(f"/vsizip/{folder}/{index.loc[1, 'b2b3b4b8_10m']}").astype(np.float32)
    member = _replace_patch(folder, 1, "b2b3b4b8_10m", dn / 10000)
    site = Sen2VenusSite(folder, sen2venus_layout(True, False, False))
    site[0]
    with pytest.raises(DataError) as info:
        site[1]
    message = str(info.value)
    assert f"site ARM, row 1, column b2b3b4b8_10m, file ARM.zip/{member}" in message
    low, high = float((dn / 10000).min()), float((dn / 10000).max())
    assert f"[{low:.4g}, {high:.4g}]" in message and "looks like reflectance" in message
    assert "in DN" in message and "multiply by 10000" in message
    # float patches in DN are read as they are
    _replace_patch(folder, 1, "b2b3b4b8_10m", dn)
    assert torch.equal(site[1].inputs, torch.from_numpy(dn))
