"""Dataset analysis: torchsisr's variant (after registration, MTF 0.1, HR px) and the target's BRISQUE."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from sisrlib.data.params import DataParams
from sisrlib.errors import SisrError
from sisrlib.experiments.dataset_analysis import DatasetAnalysisParams, analyse_dataset
from sisrlib.metrics.brisque import BRISQUE_WEIGHTS_FILE
from tests.helpers.training_fakes import FakeDataModule

DATA = DataParams(dataset="worldstrat", root="unused")


def fake_factory(data: Any, seed: int) -> FakeDataModule:
    return FakeDataModule(hr_size=32, factor=2, n=4, batch_size=2, seed=0)


def still(left: torch.Tensor, right: torch.Tensor) -> torch.Tensor:
    """A flow estimator that sees no motion: zero flow ``[B, 2, h, w]``."""
    return torch.zeros(left.shape[0], 2, *left.shape[-2:])


def test_reference_variant_after_registration(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    ours = analyse_dataset(DatasetAnalysisParams(data=DATA, max_batches=2), fake_factory, still)
    params = DatasetAnalysisParams(data=DATA, max_batches=2, variant="reference")
    reference = analyse_dataset(params, fake_factory, still)
    assert list(ours["site"]) == list(reference["site"]) == ["test split"]
    assert {"rad_rmse_B2", "geom_mean"} <= set(ours.columns) and "rad_std_B2" not in ours.columns
    for column in ("prr_B4", "rad_bias_B2", "rad_std_B2", "geom_mean_hr", "geom_std_hr"):
        assert reference[column].notna().all(), column
    assert reference["geom_mean_hr"].item() == 0.0, "no motion: no residual distortion"
    # the radiometric registration removes most of the fake input's +100 DN offset (ours: about −0.01)
    assert abs(reference["rad_bias_B2"].item()) < abs(ours["rad_bias_B2"].item())
    assert not [c for c in ours.columns if c.startswith("brisque")], "no BRISQUE weights: no column"
    with pytest.raises(SisrError, match="registration network"):
        analyse_dataset(params, fake_factory)
    with pytest.raises(ValueError, match="variant"):
        DatasetAnalysisParams(data=DATA, variant="torchsisr")  # type: ignore[arg-type]


def test_target_brisque_when_its_weights_are_present(tmp_path: Path) -> None:
    folder = tmp_path / "weights"
    folder.mkdir()
    torch.save((torch.zeros(1), torch.zeros(1, 36)), folder / BRISQUE_WEIGHTS_FILE)
    params = DatasetAnalysisParams(data=DATA, max_batches=1, perceptual_weights=str(folder))
    table = analyse_dataset(params, fake_factory)
    # a zero SVR scores every image −ρ = 153.591
    assert table["brisque_B2"].item() == pytest.approx(153.591, rel=1e-5)
    off = analyse_dataset(DatasetAnalysisParams(data=DATA, max_batches=1, brisque=False), fake_factory)
    assert "brisque_B2" not in off.columns
