"""Notebook 08's figures: one per band group of the EVOLAND model's super-resolution of the real scene (input,
bicubic, super-resolved, one row per band, grey levels)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from sisrlib.figures.base import pyplot, save_figure
from sisrlib.inference.showcase import read_window


def plot_band_group(
    input_crop: np.ndarray,
    bicubic_path: str | os.PathLike[str],
    sr_path: str | os.PathLike[str],
    output_bands: Sequence[str],
    group: Sequence[str],
    offset: tuple[int, int],
    out_path: str | os.PathLike[str],
    title: str = "",
) -> Path:
    """The crop of ``group``'s bands: input ``input_crop`` (``[len(output_bands), c, c]`` DN on the 10 m
    grid, the 20 m bands already brought there), bicubic and super-resolved (``bicubic_path``, ``sr_path``:
    GeoTIFFs of ``output_bands`` on the 5 m grid; ``offset`` = (col, row) of the crop in them, ``2·c`` px),
    one row per band. Each row has one stretch for its three panels (2–98 % of the input crop, DN, written
    beside it). Saved as PNG to ``out_path`` (returned)."""
    c = input_crop.shape[-1]
    col, row = offset
    bicubic = read_window(bicubic_path, col, row, 2 * c, 2 * c)
    sr = read_window(sr_path, col, row, 2 * c, 2 * c)
    plt = pyplot()
    fig, axes = plt.subplots(len(group), 3, figsize=(9, 3 * len(group) + 0.4), squeeze=False)
    for i, band in enumerate(group):
        k = list(output_bands).index(band)
        low, high = np.nanpercentile(input_crop[k], 2), np.nanpercentile(input_crop[k], 98)
        for j, (name, image) in enumerate(
            (("input (10 m grid)", input_crop[k]), ("bicubic", bicubic[k]), ("super-resolved", sr[k]))
        ):
            ax = axes[i, j]
            ax.imshow(
                np.clip((image - low) / max(high - low, 1e-6), 0, 1), cmap="gray", interpolation="nearest"
            )
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(name)
        axes[i, 0].set_ylabel(f"{band} (DN {low:.0f}–{high:.0f})")
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return save_figure(fig, Path(out_path), dpi=100)


__all__ = ["plot_band_group"]
