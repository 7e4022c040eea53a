"""The figures package: every figure saved atomically (no temporary file left), matplotlib loaded lazily."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from sisrlib.data.sample import Sample
from sisrlib.figures.base import pyplot, save_figure
from sisrlib.figures.data import plot_band_histograms, plot_pair_mosaic, plot_site_layout

BANDS = ("B2", "B3", "B4", "B8")


def sample(seed: int) -> Sample:
    g = torch.Generator().manual_seed(seed)
    return Sample(
        inputs=1000 + 500 * torch.rand(4, 8, 8, generator=g),
        target=1000 + 500 * torch.rand(4, 16, 16, generator=g),
        input_bands=BANDS,
        target_bands=BANDS,
        input_resolution_m=10.0,
        target_resolution_m=5.0,
        true_flow=torch.rand(2, 8, 8, generator=g) - 0.5,
        true_radiometry=torch.rand(4, 8, 8, generator=g),
    )


def test_data_figures_are_saved_atomically(tmp_path: Path) -> None:
    samples = [sample(0), sample(1)]
    figures = {
        "mosaic.jpg": plot_pair_mosaic(samples, ["a", "b"], "mosaic"),
        "histograms.png": plot_band_histograms(samples, "histograms"),
        "layout.png": plot_site_layout(np.full((3, 20, 20), 0.5), 20.0, [("site", (2, 8, 2, 8), "red")], "t"),
    }
    for name, fig in figures.items():
        assert save_figure(fig, tmp_path / name) == tmp_path / name
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(figures), "no temporary file left behind"
    fig = pyplot().figure()
    with pytest.raises(ValueError):
        save_figure(fig, tmp_path / "bad.unknown-format")
    assert not (tmp_path / "bad.unknown-format").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(figures), "a failed save leaves nothing"


def test_figures_load_matplotlib_only_when_drawing() -> None:
    code = (
        "import sys, sisrlib.figures.base, sisrlib.figures.data, sisrlib.figures.metrics, "
        "sisrlib.figures.report; print('matplotlib' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
