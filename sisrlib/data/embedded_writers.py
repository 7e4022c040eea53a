"""The writers of the embedded datasets: one Sen2Venµs-like site (``index.csv`` + ``<SITE>.zip``) and one
WorldStrat-like dataset (``index.csv`` + GeoTIFFs), in the formats of the real datasets (see
:mod:`sisrlib.data.embedded`). GeoTIFFs are uncompressed with no timestamp, zip members have fixed dates and
are stored in sorted order: the same arguments give the same bytes."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from rasterio.transform import Affine

from sisrlib.atomic import atomic_output
from sisrlib.data.embedded_layout import (
    WORLDSTRAT_BLOCKS,
    WORLDSTRAT_HR_GAIN,
    WORLDSTRAT_HR_OFFSET,
    EmbeddedProfile,
    SiteSpec,
    grid_positions,
    worldstrat_positions,
)
from sisrlib.data.embedded_scene import SCENE_10M, SCENE_20M, Scene, window
from sisrlib.data.embedded_simulation import (
    NOISE_STD_DN,
    REGIMES,
    derived_seed,
    simulate_group,
    site_distortion,
)
from sisrlib.data.raster import geotiff_bytes, write_geotiff, write_zip
from sisrlib.data.worldstrat import worldstrat_correlation
from sisrlib.degradation import PsfKernel
from sisrlib.errors import DataError


def _chunks(items: Sequence[Any], n: int) -> Iterator[Sequence[Any]]:
    for i in range(0, len(items), n):
        yield items[i : i + n]


def _t(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(array))


def _i16(x: torch.Tensor) -> np.ndarray:
    return x.numpy().astype(np.int16)


def _f32(x: torch.Tensor) -> np.ndarray:
    return x.numpy().astype(np.float32)


def _shifted(t: Affine, rows: int, cols: int, res: float) -> Affine:
    x = t.c + cols * t.a + rows * t.b
    y = t.f + cols * t.d + rows * t.e
    return Affine(res, 0.0, x, 0.0, -res, y)


def build_sen2venus_site(
    spec: SiteSpec,
    scene: Scene,
    profile: EmbeddedProfile,
    seed: int,
    folder: Path,
    kernel: PsfKernel = "exact",
) -> dict[str, Any]:
    """Write one Sen2Venµs-like site (``index.csv`` + ``<SITE>.zip``) into ``folder``; returns its summary.
    ``kernel``: the PSF of the simulated LR sensor."""
    regime = REGIMES[spec.regime]
    P = profile.hr_patch
    m = profile.margin_lr
    r0, r1, c0, c1 = spec.region
    stride = profile.train_stride if spec.role == "train" else profile.test_stride
    cap = profile.max_train_patches if spec.role == "train" else profile.max_test_patches
    positions = grid_positions(r0, r1, c0, c1, P, stride, cap)
    if not positions:
        raise DataError(f"embedded site {spec.name}: region {spec.region} too small for {P}-px patches")
    dist10 = site_distortion(regime, seed, "sen2venus-10m", spec.name, 4)
    dist20 = site_distortion(regime, seed, "sen2venus-20m", spec.name, 6)
    gen10 = torch.Generator().manual_seed(derived_seed(seed, "sen2venus", spec.name, "10m"))
    gen20 = torch.Generator().manual_seed(derived_seed(seed, "sen2venus", spec.name, "20m"))
    noise10 = [NOISE_STD_DN[b] for b in SCENE_10M]
    noise20 = [NOISE_STD_DN[b] for b in SCENE_20M]
    members: dict[str, bytes] = {}
    records: list[dict[str, Any]] = []
    zip_name = f"{spec.name}.zip"
    crs = scene.epsg
    for chunk_start, chunk in zip(range(0, len(positions), 32), _chunks(positions, 32), strict=True):
        # 10 m group: HR at 10 m (2·row20, 2·col20), LR at 20 m (factor 2)
        e10 = 2 * m
        hr10 = np.stack(
            [window(scene.bands_10m, 2 * r - e10, 2 * c - e10, P + 2 * e10, P + 2 * e10) for r, c in chunk]
        )
        g10 = simulate_group(_t(hr10), None, 2, m, regime, dist10, noise10, gen10, kernel=kernel)
        # 20 m group: HR at 20 m, LR at 80 m (factor 4); B11 B12 simulated at LR only
        e20 = 4 * m
        hr20 = np.stack(
            [window(scene.bands_20m, r - e20, c - e20, P + 2 * e20, P + 2 * e20) for r, c in chunk]
        )
        g20 = simulate_group(
            _t(hr20[:, :4]), _t(hr20[:, 4:]), 4, m, regime, dist20, noise20, gen20, kernel=kernel
        )
        for k, (r, c) in enumerate(chunk):
            row = chunk_start + k
            stem = f"{spec.name}_{row:05d}"
            t10 = _shifted(scene.transform_10m, 2 * r, 2 * c, 10.0)
            t20 = _shifted(scene.transform_20m, r, c, 20.0)
            files = {
                "b2b3b4b8_05m": geotiff_bytes(_i16(g10.target[k]), t10, crs),
                "b2b3b4b8_10m": geotiff_bytes(_i16(g10.inputs[k]), _shifted(t10, 0, 0, 20.0), crs),
                "true_flow_10m": geotiff_bytes(_f32(g10.true_flow[k]), _shifted(t10, 0, 0, 20.0), crs),
                "true_radiometry_10m": geotiff_bytes(
                    _f32(g10.true_radiometry[k]), _shifted(t10, 0, 0, 20.0), crs
                ),
                "b5b6b7b8a_05m": geotiff_bytes(_i16(g20.target[k]), t20, crs),
                "b5b6b7b8a_20m": geotiff_bytes(_i16(g20.inputs[k, :4]), _shifted(t20, 0, 0, 80.0), crs),
                "b11b12_20m": geotiff_bytes(_i16(g20.inputs[k, 4:]), _shifted(t20, 0, 0, 80.0), crs),
                "true_flow_20m": geotiff_bytes(_f32(g20.true_flow[k]), _shifted(t20, 0, 0, 80.0), crs),
                "true_radiometry_20m": geotiff_bytes(
                    _f32(g20.true_radiometry[k]), _shifted(t20, 0, 0, 80.0), crs
                ),
            }
            record: dict[str, Any] = {"id": stem}
            for column, data in files.items():
                member = f"{stem}_{column}.tif"
                members[member] = data
                record[column] = f"{zip_name}/{member}"
            record.update(row_20m=r, col_20m=c, regime=spec.regime)
            records.append(record)
    folder.mkdir(parents=True)
    write_zip(folder / zip_name, members)
    with atomic_output(folder / "index.csv") as tmp:
        pd.DataFrame.from_records(records).to_csv(tmp, sep="\t", index=False)
    return {
        "site": spec.name,
        "role": spec.role,
        "regime": spec.regime,
        "patches": len(records),
        "offset_10m_lr_px": dist10.offset,
        "offset_20m_lr_px": dist20.offset,
    }


def build_worldstrat(
    factor: int,
    scene: Scene,
    profile: EmbeddedProfile,
    seed: int,
    folder: Path,
    regime_name: str = "strong",
    kernel: PsfKernel = "exact",
) -> dict[str, Any]:
    """Write one WorldStrat-like dataset (×2 or ×4) into ``folder``; returns its summary. ``kernel``: the PSF
    of the simulated LR sensor and of the pair-quality score."""
    regime = REGIMES[regime_name]
    P = profile.hr_patch
    m = profile.margin_lr
    e = factor * m
    dataset = f"worldstrat-x{factor}"
    dist = site_distortion(regime, seed, dataset, "all", 4)
    gen = torch.Generator().manual_seed(derived_seed(seed, dataset))
    noise = [NOISE_STD_DN[b] for b in SCENE_10M]
    positions = worldstrat_positions(profile, scene.bands_10m.shape[1:])
    folder.mkdir(parents=True)
    records = []
    crs = scene.epsg
    for chunk in _chunks(positions, 32):
        hr = np.stack([window(scene.bands_10m, r - e, c - e, P + 2 * e, P + 2 * e) for _, _, r, c in chunk])
        g = simulate_group(
            _t(hr),
            None,
            factor,
            m,
            regime,
            dist,
            noise,
            gen,
            WORLDSTRAT_HR_GAIN,
            WORLDSTRAT_HR_OFFSET,
            kernel,
        )
        for k, (pid, split, r, c) in enumerate(chunk):
            t_hr = _shifted(scene.transform_10m, r, c, 10.0)
            t_lr = _shifted(t_hr, 0, 0, 10.0 * factor)
            lr, hr_k = _i16(g.inputs[k]), _i16(g.target[k])
            write_geotiff(folder / f"{pid}_lr.tif", lr, t_lr, crs)
            write_geotiff(folder / f"{pid}_hr.tif", hr_k, t_hr, crs)
            write_geotiff(folder / f"{pid}_true_flow.tif", _f32(g.true_flow[k]), t_lr, crs)
            write_geotiff(folder / f"{pid}_true_radiometry.tif", _f32(g.true_radiometry[k]), t_lr, crs)
            corr = worldstrat_correlation(
                torch.from_numpy(lr.astype(np.float64)), torch.from_numpy(hr_k), factor, kernel=kernel
            )
            records.append(
                {
                    "tile": pid,
                    "split": split,
                    "hr_img": f"{pid}_hr.tif",
                    "lr_img": f"{pid}_lr.tif",
                    "correlation": round(corr, 6),
                    "true_flow": f"{pid}_true_flow.tif",
                    "true_radiometry": f"{pid}_true_radiometry.tif",
                    "row_10m": r,
                    "col_10m": c,
                }
            )
    index = pd.DataFrame.from_records(records)
    with atomic_output(folder / "index.csv") as tmp:
        index.to_csv(tmp, sep="\t", index=False)
    return {
        "dataset": f"wsx{factor}",
        "regime": regime_name,
        "pairs": {s: int((index["split"] == s).sum()) for s in WORLDSTRAT_BLOCKS},
        "offset_lr_px": dist.offset,
        "hr_gain": WORLDSTRAT_HR_GAIN,
        "hr_offset": WORLDSTRAT_HR_OFFSET,
    }
