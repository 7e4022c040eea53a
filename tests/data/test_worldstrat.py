"""WorldStrat-derived reader (wsx2/wsx4) and the builder from the original WorldStrat layout.

The synthetic original tree (``fake_data.make_original_worldstrat``) follows the layout of the WorldStrat code
(``SentinelDownloader``: ``<tile>/L2A/<tile>-<n>-L2A_data.tiff`` and ``<tile>-<n>.metadata`` JSON with a
``delta`` entry; ``hr_dataset/<tile>/<tile>_ps.tiff``; ``stratified_train_val_test_split.csv`` with an unnamed
index column, ``tile`` … ``split``), with small tiles (48 LR px instead of ~158) to keep the test fast.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from sisrlib.data.raster import RasterReader
from sisrlib.data.worldstrat import (
    WorldStratDataset,
    build_worldstrat_dataset,
    main,
    parse_delta_days,
    worldstrat_correlation,
)
from sisrlib.errors import DataError
from tests.helpers.fake_data import make_original_worldstrat, make_worldstrat_index


@pytest.mark.parametrize("factor", [4, 2])
def test_reader_shapes_bands_and_split_filter(tmp_path: Path, factor: int) -> None:
    index = make_worldstrat_index(
        tmp_path,
        ("train", "train", "val", "test", "train"),
        factor=factor,
        correlations=(0.9, 0.1, 0.5, 0.95, 0.2),
    )
    train = WorldStratDataset(index, "train", min_correlation=0.2)
    assert len(train) == 1  # 0.1 and 0.2 are not > 0.2
    assert train.factor == factor
    s = train[0]
    assert s.inputs.shape == (4, 8, 8) and s.target.shape == (4, 8 * factor, 8 * factor)
    assert s.input_bands == s.target_bands == ("B2", "B3", "B4", "B8")
    assert s.inputs.dtype == torch.float32 and s.id == "Landcover-0000"
    assert s.input_resolution_m == 10.0 and s.target_resolution_m == 10.0 / factor
    assert len(WorldStratDataset(index, "train", min_correlation=0.1)) == 2
    assert len(WorldStratDataset(tmp_path, "test")) == 1  # a folder means its index.csv
    # values as stored (the fake HR is in the same range as the LR)
    raw = RasterReader().read(str(tmp_path / "Landcover-0000_hr.tif"))
    assert np.array_equal(s.target.numpy(), raw)


def test_reader_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        WorldStratDataset(tmp_path / "nothing.csv", "train")
    index = make_worldstrat_index(tmp_path, ("train", "test"))
    with pytest.raises(DataError, match=r"no pair with split == 'val'.*splits present: \['test', 'train'\]"):
        WorldStratDataset(index, "val")
    pd.read_csv(index, sep="\t").drop(columns=["correlation"]).to_csv(index, sep="\t", index=False)
    with pytest.raises(DataError, match=r"lacks the column\(s\) \['correlation'\]; present columns"):
        WorldStratDataset(index, "train")


def test_reader_rejects_empty_patches(tmp_path: Path) -> None:
    from sisrlib.data.raster import write_geotiff

    index = make_worldstrat_index(tmp_path, ("train", "train"))
    write_geotiff(tmp_path / "Landcover-0001_lr.tif", np.zeros((4, 8, 8), np.int16))
    ds = WorldStratDataset(index, "train")
    ds[0]
    with pytest.raises(DataError, match=r"Landcover-0001 .*lr_img .*every pixel is 0"):
        ds[1]


def test_correlation_and_delta_parsing() -> None:
    g = torch.Generator().manual_seed(0)
    hr = torch.nn.functional.interpolate(torch.rand(1, 4, 8, 8, generator=g), size=(64, 64), mode="bicubic")[
        0
    ]
    from sisrlib.degradation import mtf_downscale

    lr = mtf_downscale(hr[None].double(), 4, 0.1)[0]
    assert worldstrat_correlation(lr, hr, 4) == pytest.approx(1.0, abs=1e-6)
    assert worldstrat_correlation(-lr * 3 + 7, hr, 4) == pytest.approx(1.0, abs=1e-6)  # |r|, affine-invariant
    assert worldstrat_correlation(torch.rand(4, 16, 16, generator=g), hr, 4) < 0.5
    assert parse_delta_days("3") == 3.0
    assert parse_delta_days(-2) == -2.0
    assert parse_delta_days("1 days 12:00:00") == pytest.approx(1.5)
    with pytest.raises(DataError):
        parse_delta_days("soon")


@pytest.mark.parametrize(("factor", "hr_size"), [(4, 128), (2, 64)])
def test_builder_on_a_synthetic_original_tree(tmp_path: Path, factor: int, hr_size: int) -> None:
    original = make_original_worldstrat(tmp_path / "original", lr_pixels=48)
    out = tmp_path / f"wsx{factor}"
    report = build_worldstrat_dataset(original, out, factor=factor, lr_offset=4, lr_size=32)
    index = pd.read_csv(out / "index.csv", sep="\t")
    # tiles: Landcover-1 (best revisit delta 2), Landcover-2 (|−1|), ASMSpotter-1-1-1 (3); UNHCR-FAR has no
    # revisit within 5 days; "Amnesty POI-9-9-9" is not in the split file; the duplicated split row is
    # dropped.
    assert sorted(index["tile"]) == ["ASMSpotter-1-1-1", "Landcover-1", "Landcover-2"]
    assert report.pairs == 3
    assert report.skipped["UNHCR-FAR"] == "no revisit within max_delta"
    assert report.skipped["Amnesty POI-9-9-9"] == "not in the split file"
    assert {
        "tile",
        "IPCC Class",
        "SMOD",
        "source",
        "joint_class",
        "split",
        "hr_img",
        "lr_img",
        "correlation",
    } <= set(index.columns)
    assert dict(zip(index["tile"], index["split"], strict=True))["Landcover-2"] == "val"
    assert dict(zip(index["tile"], index["revisit"], strict=True))["Landcover-1"] == "Landcover-1-2"
    assert (index["correlation"] > 0.9).all()

    reader = RasterReader()
    row = index.set_index("tile").loc["Landcover-1"]
    lr = reader.read(str(out / row["lr_img"]))
    hr = reader.read(str(out / row["hr_img"]))
    assert lr.dtype == np.int16 and hr.dtype == np.int16
    assert lr.shape == (4, 32, 32) and hr.shape == (4, hr_size, hr_size)
    # LR = bands [1, 2, 3, 7] of the chosen revisit × 10000, rows/cols 4…35
    l2a = reader.read(
        str(original / "lr_dataset_l2a" / "Landcover-1" / "L2A" / "Landcover-1-2-L2A_data.tiff")
    )
    assert np.array_equal(
        lr, np.rint(l2a[[1, 2, 3, 7], 4:36, 4:36].astype(np.float64) * 10000).astype(np.int16)
    )
    # HR bands reordered [2, 1, 0, 3] (blue, green, red, NIR): the fake R G B NIR carry offsets 0, 1000, 2000,
    # 3000
    means = hr.reshape(4, -1).mean(1)
    assert means[0] - means[1] == pytest.approx(1000 + 8000 * _ground_mean_diff(1, 2), abs=150)
    assert means[3] > means[2] + 2500
    # the derived data reads through the reader, split by split
    ds = WorldStratDataset(out / "index.csv", "train", min_correlation=0.2)
    assert len(ds) == 1 and ds.factor == factor
    assert len(WorldStratDataset(out / "index.csv", "test")) == 1


def _ground_mean_diff(a: int, b: int) -> float:
    from tests.helpers.fake_data import _ground

    x = np.linspace(0, 480, 200)
    return float(_ground(x[None], x[:, None], a).mean() - _ground(x[None], x[:, None], b).mean())


def test_builder_script_and_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(DataError, match=r"stratified_train_val_test_split\.csv"):
        build_worldstrat_dataset(tmp_path, tmp_path / "out")
    original = make_original_worldstrat(tmp_path / "original", lr_pixels=48)
    # default crop (10 + 128 LR px) does not fit 48-px tiles: every tile is skipped, clearly
    assert main([str(original), str(tmp_path / "out"), "--factor", "4"]) == 2
    assert "no tile could be used" in capsys.readouterr().err


@pytest.mark.parametrize("bad", ["n/a", "", "nan"])
def test_non_numeric_correlation_is_refused_naming_the_rows(tmp_path: Path, bad: str) -> None:
    """A row whose correlation cannot be read was dropped silently by the filter."""
    index = make_worldstrat_index(tmp_path, ("train", "train", "val", "test"))
    table = pd.read_csv(index, sep="\t", dtype=str, keep_default_na=False)
    table.loc[1, "correlation"] = bad
    table.loc[3, "correlation"] = "high"
    table.to_csv(index, sep="\t", index=False)
    with pytest.raises(DataError) as info:
        WorldStratDataset(index, "train")
    message = str(info.value)
    assert str(index) in message and "2 row(s) is not a finite number" in message
    assert f"row 1 (Landcover-0001_lr.tif): {bad!r}" in message
    assert "row 3 (Landcover-0003_lr.tif): 'high'" in message


def test_duplicated_pairs_are_refused(tmp_path: Path) -> None:
    index = make_worldstrat_index(tmp_path, ("train", "train", "val", "test"))
    table = pd.read_csv(index, sep="\t", dtype=str, keep_default_na=False)
    table.loc[2, "lr_img"] = table.loc[0, "lr_img"]  # a training pair's LR also in validation
    table.to_csv(index, sep="\t", index=False)
    with pytest.raises(DataError, match=r"column lr_img cell 'Landcover-0000_lr.tif' in rows \[0, 2\]"):
        WorldStratDataset(index, "val")


def test_reflectance_scaled_float_pairs_are_refused(tmp_path: Path) -> None:
    from sisrlib.data.raster import write_geotiff

    index = make_worldstrat_index(tmp_path, ("train", "train"))
    lr = RasterReader().read(str(tmp_path / "Landcover-0001_lr.tif")).astype(np.float32) / 10000
    write_geotiff(tmp_path / "Landcover-0001_lr.tif", lr)
    ds = WorldStratDataset(index, "train")
    ds[0]
    with pytest.raises(
        DataError, match=r"Landcover-0001 .*lr_img .*Landcover-0001_lr\.tif.*looks like reflectance"
    ):
        ds[1]


def test_builder_reference_kernel_is_the_7x7_psf(tmp_path: Path) -> None:
    original = make_original_worldstrat(tmp_path / "original", lr_pixels=48)
    for name, kernel, half_width in (
        ("exact", "exact", None),
        ("ref", "reference", None),
        ("hw3", "exact", 3),
    ):
        build_worldstrat_dataset(
            original, tmp_path / name, factor=4, lr_offset=4, lr_size=32, tiles=["Landcover-1"],
            psf_kernel=kernel, psf_half_width=half_width,
        )  # fmt: skip
    hr = {k: (tmp_path / k / "Landcover-1_hr.tif").read_bytes() for k in ("exact", "ref", "hw3")}
    assert hr["ref"] == hr["hw3"] != hr["exact"]
    assert main([str(original), str(tmp_path / "cli"), "--psf-kernel", "reference"]) == 2  # tiles too small
