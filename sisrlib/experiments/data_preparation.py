"""Notebook 01 and ``sisr prepare-data --params``: the data work of
:func:`sisrlib.data.preparation.prepare_data` (build or reuse the embedded sites, the distortion table; or
check the real datasets), then the figures of the embedded data in ``figures_dir``: ``01_site_layout.jpg``
(the scene with the sites and blocks), ``01_mosaic_<dataset>.jpg`` (LR / HR / true flow / true radiometric
field) and ``01_histograms_<dataset>.png`` (LR vs HR values per band)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sisrlib.data.embedded_layout import WORLDSTRAT_BLOCKS, sen2venus_sites
from sisrlib.data.embedded_scene import load_scene
from sisrlib.data.preparation import DatasetView, PreparationResult, prepare_data
from sisrlib.data.preparation_params import PreparationParams
from sisrlib.figures.base import save_figure
from sisrlib.figures.data import plot_band_histograms, plot_pair_mosaic, plot_site_layout


def layout_figure() -> Any:
    """The scene with the embedded Sen2Venµs-like sites and WorldStrat-like blocks (a matplotlib figure)."""
    scene = load_scene()
    tc = scene.bands_10m[[2, 1, 0], ::2, ::2]
    lo, hi = (
        np.percentile(tc, 2, axis=(1, 2), keepdims=True),
        np.percentile(tc, 98, axis=(1, 2), keepdims=True),
    )
    background = np.clip((tc - lo) / (hi - lo), 0, 1)
    colours = {"train": "yellow", "test": "red", "val": "cyan"}
    regions = [
        (f"{s.name} ({s.regime})", s.region, colours[s.role])
        for s in sen2venus_sites()
        if "S2V2" not in s.name
    ]
    h, w = scene.bands_10m.shape[1:]
    bh, bw = h // 4 // 2, w // 4 // 2
    for split, blocks in WORLDSTRAT_BLOCKS.items():
        for br, bc in blocks:
            regions.append(
                (f"ws {split}", (br * bh + 4, (br + 1) * bh - 4, bc * bw + 4, (bc + 1) * bw - 4), "white")
            )
    return plot_site_layout(
        background,
        20.0,
        regions,
        "Embedded sites (yellow: training, red: test; the S2V2 sites cover the S2V1 ground)\n"
        "white: blocks of the WorldStrat-like split",
    )


def write_figures(views: Sequence[DatasetView], folder: str | Path, per_view: int = 2) -> list[Path]:
    """Layout, mosaics (``per_view`` patches of each view) and histograms of the embedded data into
    ``folder``; returns the files written."""
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    paths = [save_figure(layout_figure(), out / "01_site_layout.jpg", dpi=90, pil_kwargs={"quality": 85})]
    for dataset in dict.fromkeys(v.dataset for v in views):
        parts = [v for v in views if v.dataset == dataset]
        samples, labels = [], []
        for v in parts:
            for s in v.samples[:per_view]:
                samples.append(s)
                labels.append(f"{v.label} ({v.regime})")
        slug = dataset.replace(" ", "").replace("(", "_").replace(")", "")
        fig = plot_pair_mosaic(samples, labels, f"{dataset}: LR input, HR target, true flow, true radiometry")
        paths.append(save_figure(fig, out / f"01_mosaic_{slug}.jpg", dpi=80, pil_kwargs={"quality": 85}))
        all_samples = [s for v in parts for s in v.samples]
        unit = "other units (SPOT-like)" if dataset.startswith("worldstrat") else "DN"
        fig = plot_band_histograms(all_samples, f"{dataset}: LR vs HR values per band", unit)
        paths.append(save_figure(fig, out / f"01_histograms_{slug}.png", dpi=90))
    return paths


def prepare(
    params: PreparationParams, log: Callable[[str], None] | None = None, figures: bool = True
) -> PreparationResult:
    """Run notebook 01's work: :func:`~sisrlib.data.preparation.prepare_data`, then (embedded mode,
    ``figures``) the figures in ``params.figures_dir``; their paths are appended to ``result.figures``."""
    result = prepare_data(params, log)
    if figures and result.build is not None:
        result.figures += write_figures(result.views, params.figures_dir, params.mosaic_patches)
    return result
