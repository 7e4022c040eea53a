"""Mosaics of sample patches: a grid of ``[N, C, H, W]`` patches written as a float32 GeoTIFF (DN) and a PNG
quick-look (the reference's ``write_image``)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from sisrlib.atomic import atomic_output

#: Bands used for the natural-colour PNG, when present (red, green, blue).
RGB_BANDS: tuple[str, str, str] = ("B4", "B3", "B2")


def tile(patches: torch.Tensor, columns: int) -> torch.Tensor:
    """``[N, C, H, W]`` → ``[C, rows·H, columns·W]`` grid (row-major, empty cells zero)."""
    if patches.dim() != 4:
        raise ValueError(f"patches must be [N, C, H, W], got {tuple(patches.shape)}")
    n, c, h, w = patches.shape
    columns = max(1, min(columns, n))
    rows = (n + columns - 1) // columns
    grid = torch.zeros(c, rows * h, columns * w, dtype=patches.dtype)
    for k in range(n):
        r, q = divmod(k, columns)
        grid[:, r * h : (r + 1) * h, q * w : (q + 1) * w] = patches[k].detach().cpu()
    return grid


def write_geotiff(image: torch.Tensor, path: str | Path, resolution_m: float = 1.0) -> Path:
    """Write ``[C, H, W]`` as a float32 GeoTIFF with a dummy north-up geotransform of pixel size
    ``resolution_m`` (written to a temporary name, then renamed)."""
    import rasterio
    from rasterio.transform import from_origin

    out = Path(path)
    array = image.detach().cpu().numpy().astype(np.float32)
    with (
        atomic_output(out) as tmp,
        rasterio.open(
            tmp,
            "w",
            driver="GTiff",
            width=array.shape[2],
            height=array.shape[1],
            count=array.shape[0],
            dtype="float32",
            transform=from_origin(0.0, array.shape[1] * resolution_m, resolution_m, resolution_m),
        ) as dst,
    ):
        dst.write(array)
    return out


def quicklook(image: torch.Tensor, bands: Sequence[str], low: float = 2.0, high: float = 98.0) -> np.ndarray:
    """``[C, H, W]`` → ``[H, W, 3]`` uint8: natural colour (B4, B3, B2) when available, else the first band in
    grey; each channel stretched between its ``low`` and ``high`` percentiles."""
    idx = [list(bands).index(b) for b in RGB_BANDS] if all(b in bands for b in RGB_BANDS) else [0, 0, 0]
    rgb = image.detach().cpu().double().numpy()[idx]
    out = np.empty((*rgb.shape[1:], 3), dtype=np.uint8)
    for k in range(3):
        ch = rgb[k]
        lo, hi = np.nanpercentile(ch, low), np.nanpercentile(ch, high)
        scaled = np.clip((ch - lo) / (hi - lo if hi > lo else 1.0), 0.0, 1.0)
        out[..., k] = np.round(255 * np.nan_to_num(scaled)).astype(np.uint8)
    return out


def write_png(image: torch.Tensor, bands: Sequence[str], path: str | Path) -> Path:
    """Quick-look PNG of ``[C, H, W]`` (see ``quicklook``), written atomically."""
    import matplotlib.image

    out = Path(path)
    with atomic_output(out) as tmp:
        matplotlib.image.imsave(tmp, quicklook(image, bands), format="png")
    return out


def write_mosaic(
    patches: torch.Tensor,
    bands: Sequence[str],
    stem: str | Path,
    columns: int = 8,
    resolution_m: float = 1.0,
) -> tuple[Path, Path]:
    """Tile ``[N, C, H, W]`` DN patches and write ``<stem>.tif`` (float32 DN) and ``<stem>.png``."""
    grid = tile(patches, columns)
    s = Path(stem)
    tif = write_geotiff(grid, s.with_suffix(".tif"), resolution_m)
    png = write_png(grid, bands, s.with_suffix(".png"))
    return tif, png
