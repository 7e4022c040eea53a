"""Notebook 06's figure: crops of the input, bicubic baseline and super-resolved output side by side."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import rasterio

from sisrlib.figures.base import pyplot, save_figure
from sisrlib.inference.showcase import read_window


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
    with rasterio.open(sr_path) as sr, rasterio.open(input_path) as src:
        factor = round(src.transform.a / sr.transform.a)
        bands = list(sr.descriptions)
        sr_transform, sr_size = sr.transform, (sr.width, sr.height)
        inverse = ~src.transform
    rgb = _display_bands(bands)
    size_out = crop_size * factor
    fig, axes = pyplot().subplots(len(crops), 3, figsize=(9, 3 * len(crops) + 0.4), squeeze=False)
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
    return save_figure(fig, Path(out_path), dpi=100)
