"""Tiny fake datasets in the real on-disk formats, generated with a fixed seed (the torchgeo convention).

* :func:`make_sen2venus_site`: a Sen2Venµs v2 site folder (tab-separated ``index.csv``, cells pointing into
  ``<SITE>.zip``), values ``5000 + 10000·U(0, 1)`` DN as int16 like the reference's fake data;
* :func:`make_worldstrat_index`: a WorldStrat-derived folder (``index.csv`` with ``split``, ``hr_img``,
  ``lr_img``, ``correlation``; ``<id>_lr.tif`` / ``<id>_hr.tif``);
* :func:`make_original_worldstrat`: an original WorldStrat tree
  (``lr_dataset_l2a/<tile>/L2A/<tile>-<n>-L2A_data.tiff`` and ``<tile>-<n>.metadata``,
  ``hr_dataset/<tile>/<tile>_ps.tiff``, ``stratified_train_val_test_split.csv``) whose LR and HR images
  sample the same smooth synthetic ground, so that the builder's correlation is high.

Run ``python tests/fake_data.py OUT_DIR`` to write one of each for inspection.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from rasterio.transform import Affine

from sisrlib.data.raster import geotiff_bytes, write_geotiff, write_zip

SEED = 20240607

#: Real Sen2Venµs patch sizes (10 m input, 20 m input, 5 m target).
REAL_SIZES = (128, 64, 256)
#: Small sizes with the same ratios, for fast tests.
SMALL_SIZES = (16, 8, 32)


def _values(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    return (5000 + 10000 * rng.random(shape)).astype(np.int16)


def make_sen2venus_site(
    root: str | Path,
    name: str,
    rows: int = 3,
    sizes: tuple[int, int, int] = SMALL_SIZES,
    seed: int = SEED,
    truth: bool = False,
) -> Path:
    """Write a fake Sen2Venµs site ``root/name`` with ``rows`` patches (all five band-group columns, plus
    ``true_flow_*``/``true_radiometry_*`` with ``truth``). Returns the site folder."""
    s10, s20, s05 = sizes
    rng = np.random.default_rng([seed, sum(name.encode())])
    folder = Path(root) / name
    folder.mkdir(parents=True, exist_ok=True)
    zip_name = f"{name}.zip"
    members: dict[str, bytes] = {}
    records = []
    for i in range(rows):
        arrays = {
            "b2b3b4b8_10m": _values(rng, (4, s10, s10)),
            "b5b6b7b8a_20m": _values(rng, (4, s20, s20)),
            "b11b12_20m": _values(rng, (2, s20, s20)),
            "b2b3b4b8_05m": _values(rng, (4, s05, s05)),
            "b5b6b7b8a_05m": _values(rng, (4, s05, s05)),
        }
        if truth:
            arrays["true_flow_10m"] = rng.normal(size=(2, s10, s10)).astype(np.float32)
            arrays["true_radiometry_10m"] = rng.normal(size=(4, s10, s10)).astype(np.float32)
            arrays["true_flow_20m"] = rng.normal(size=(2, s20, s20)).astype(np.float32)
            arrays["true_radiometry_20m"] = rng.normal(size=(6, s20, s20)).astype(np.float32)
        record = {"tile": f"T{i:03d}", "date": "2018-06-01"}
        for column, array in arrays.items():
            member = f"{name}_{i:04d}_{column}.tif"
            members[member] = geotiff_bytes(array, Affine(10, 0, 0, 0, -10, 0), 32631)
            record[column] = f"{zip_name}/{member}"
        records.append(record)
    write_zip(folder / zip_name, members)
    pd.DataFrame.from_records(records).to_csv(folder / "index.csv", sep="\t", index=False)
    return folder


def make_sen2venus_root(
    root: str | Path, sites: Sequence[str], rows: int = 3, sizes: tuple[int, int, int] = SMALL_SIZES
) -> Path:
    """Several fake sites under ``root``."""
    for k, name in enumerate(sites):
        make_sen2venus_site(root, name, rows, sizes, seed=SEED + k)
    return Path(root)


def make_worldstrat_index(
    folder: str | Path,
    splits: Sequence[str] = ("train", "train", "train", "val", "test", "test"),
    factor: int = 4,
    lr_size: int = 8,
    correlations: Sequence[float] | None = None,
    seed: int = SEED,
) -> Path:
    """A fake WorldStrat-derived dataset; returns the path of its ``index.csv``."""
    rng = np.random.default_rng(seed)
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    corr = list(correlations) if correlations is not None else [0.9] * len(splits)
    records = []
    for i, (split, c) in enumerate(zip(splits, corr, strict=True)):
        pid = f"Landcover-{i:04d}"
        write_geotiff(out / f"{pid}_lr.tif", _values(rng, (4, lr_size, lr_size)), Affine(10, 0, 0, 0, -10, 0))
        hr = _values(rng, (4, lr_size * factor, lr_size * factor))
        write_geotiff(out / f"{pid}_hr.tif", hr, Affine(10 / factor, 0, 0, 0, -10 / factor, 0))
        records.append(
            {"tile": pid, "IPCC Class": "Agriculture", "split": split, "hr_img": f"{pid}_hr.tif",
             "lr_img": f"{pid}_lr.tif", "correlation": c}
        )  # fmt: skip
    index = out / "index.csv"
    pd.DataFrame.from_records(records).to_csv(index, sep="\t", index=False)
    return index


def _ground(x_m: np.ndarray, y_m: np.ndarray, band: int) -> np.ndarray:
    """A smooth synthetic reflectance field (metres → reflectance in ~[0.05, 0.35])."""
    return (
        0.2
        + 0.05 * np.sin(2 * np.pi * x_m / 300.0 + band)
        + 0.05 * np.cos(2 * np.pi * y_m / 220.0 - band)
        + 0.03 * np.sin(2 * np.pi * (x_m + y_m) / 150.0)
    )


def make_original_worldstrat(
    root: str | Path,
    lr_pixels: int = 48,
    tiles: Sequence[tuple[str, str, Sequence[float]]] = (
        ("Landcover-1", "train", (7.0, 2.0)),
        ("Landcover-2", "val", (-1.0,)),
        ("ASMSpotter-1-1-1", "test", (3.0, -4.5)),
        ("UNHCR-FAR", "train", (9.0, 12.0)),
    ),
    extra_tile_not_in_split: str | None = "Amnesty POI-9-9-9",
) -> Path:
    """A fake original WorldStrat tree (see the module docstring) with tiles ``(tile, split, deltas in days of
    its revisits)``. LR: 12-band float32 L2A reflectance at 10 m, ``lr_pixels`` px; HR: ``_ps.tiff`` uint16
    R G B NIR at 1.5 m over the same ground (band k of the HR is offset by 1000·k to check the reordering)."""
    out = Path(root)
    hr_pixels = round(lr_pixels * 10 / 1.5)
    split_rows = []
    all_tiles = list(tiles) + (
        [(extra_tile_not_in_split, "train", (1.0,))] if extra_tile_not_in_split else []
    )
    for k, (tile, split, deltas) in enumerate(all_tiles):
        l2a = out / "lr_dataset_l2a" / tile / "L2A"
        l2a.mkdir(parents=True, exist_ok=True)
        xs = (np.arange(lr_pixels) + 0.5) * 10.0
        for n, delta in enumerate(deltas, start=1):
            stack = np.zeros((12, lr_pixels, lr_pixels), np.float32)
            for b in range(12):
                stack[b] = _ground(xs[None, :] + 37 * k, xs[:, None], b % 4) * (1 + 0.02 * n)
            write_geotiff(l2a / f"{tile}-{n}-L2A_data.tiff", stack, Affine(10, 0, 0, 0, -10, 0))
            meta = {"cloud_cover": 0.0, "target_date": "2019-05-01", "delta": str(delta), "area": 2.5,
                    "datetime": "2019-05-01 10:00:00"}  # fmt: skip
            (l2a / f"{tile}-{n}.metadata").write_text(json.dumps(meta), encoding="utf-8")
        hr_dir = out / "hr_dataset" / tile
        hr_dir.mkdir(parents=True, exist_ok=True)
        xh = (np.arange(hr_pixels) + 0.5) * 1.5
        ps = np.zeros((4, hr_pixels, hr_pixels), np.uint16)
        # stored R G B NIR: band index in the L2A sense 3, 2, 1, 7 → ground bands 3, 2, 1, 3
        for j, ground_band in enumerate((3, 2, 1, 7)):
            ps[j] = np.rint(_ground(xh[None, :] + 37 * k, xh[:, None], ground_band % 4) * 8000 + 1000 * j)
        write_geotiff(hr_dir / f"{tile}_ps.tiff", ps, Affine(1.5, 0, 0, 0, -1.5, 0))
        if tile != extra_tile_not_in_split:
            split_rows.append(
                {"tile": tile, "IPCC Class": "Settlement", "SMOD": 11, "source": tile.split("-")[0],
                 "joint_class": "x/y/11", "split": split}
            )  # fmt: skip
    split_rows.append(dict(split_rows[0]))  # a duplicated tile row, as dropped by the builder
    pd.DataFrame.from_records(split_rows).to_csv(out / "stratified_train_val_test_split.csv")
    return out


if __name__ == "__main__":  # pragma: no cover
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "fake_data")
    make_sen2venus_root(target / "sen2venus", ["ARM", "ES-IC3XG", "MAD-AMBO"])
    make_worldstrat_index(target / "wsx4")
    make_original_worldstrat(target / "worldstrat_original")
    print(f"wrote fake datasets under {target}")
