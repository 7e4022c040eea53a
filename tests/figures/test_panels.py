"""The full-resolution comparison figure: one display stretch for every panel, taken from the target."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sisrlib.figures.metrics import apply_stretch, display_channels, plot_patch_panels, shared_stretch

BANDS = ("B2", "B3", "B4", "B8")


def test_one_stretch_from_the_reference_maps_every_panel_alike() -> None:
    rng = np.random.default_rng(0)
    target = rng.uniform(500, 1500, (2, 4, 16, 16))
    channels, description = display_channels(BANDS)
    assert channels == [2, 1, 0] and description == "natural colour B4 B3 B2"
    lo, hi = shared_stretch(target, channels)
    assert np.allclose(lo, [np.percentile(target[:, c], 2) for c in channels])
    assert np.allclose(hi, [np.percentile(target[:, c], 98) for c in channels])
    # a panel brighter by 100 DN is shown brighter, not re-stretched to look the same
    shown = apply_stretch(target[0][channels], lo, hi)
    brighter = apply_stretch(target[0][channels] + 100.0, lo, hi)
    assert shown.shape == (16, 16, 3) and float((brighter - shown).mean()) > 0.05
    assert display_channels(("B5", "B6", "B7", "B8A"))[1] == "false colour B7 B6 B5"


def test_the_figure_is_written_and_names_its_stretch(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    panels = {"input": rng.uniform(0, 1, (2, 4, 8, 8)), "target": rng.uniform(0, 1, (2, 4, 16, 16))}
    path = plot_patch_panels(panels, BANDS, tmp_path / "patches.png")
    assert path.is_file() and path.stat().st_size > 1000
    with pytest.raises(ValueError, match="stretch_from"):
        plot_patch_panels(panels, BANDS, tmp_path / "x.png", stretch_from="oracle target")
