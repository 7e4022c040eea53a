"""Notebook helpers of stages 02/03: registration accuracy, prediction examples, distortion, figures."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sisrlib.checkpoint import load_generator, load_registration
from sisrlib.experiments.training_analysis import (
    distortion_summary,
    evaluate_registration,
    prediction_examples,
)
from sisrlib.figures import training as plots
from sisrlib.training.fit import fit
from tests.helpers.training_fakes import FakeDataModule, tiny_params


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("runs")
    reg = fit(
        tiny_params(tmp / "reg", training={"mode": "pretrain_registration", "max_steps": 1}), FakeDataModule()
    )
    sr = fit(
        tiny_params(
            tmp / "sr",
            registration={"checkpoint": str(reg.best_checkpoint), "geometric": True},
            training={"max_steps": 1, "log_every_n_steps": 1},
        ),
        FakeDataModule(),
    )
    return {"reg": reg.best_checkpoint, "sr": sr.best_checkpoint, "csv": sr.metrics_csv, "tmp": tmp}


def test_evaluate_registration_and_figures(runs: dict[str, Path]) -> None:
    params = tiny_params(runs["tmp"] / "reg")
    ev = evaluate_registration(load_registration(runs["reg"]), params, FakeDataModule())
    assert ev.n_patches == 4 and ev.mean_true_norm > 0 and ev.mean_epe > 0
    assert np.isclose(ev.ratio, ev.mean_epe / ev.mean_true_norm)
    assert ev.example["estimated_flow"].shape == (2, 16, 16)
    out = runs["tmp"] / "figures"
    plots.plot_flows(ev, out / "flows.png")
    plots.plot_epe_vs_amplitude(ev, out / "epe.png")
    plots.plot_overlays(ev, out / "overlays.png")
    assert all((out / f).is_file() for f in ("flows.png", "epe.png", "overlays.png"))


def test_predictions_distortion_and_figures(runs: dict[str, Path]) -> None:
    gen = load_generator(runs["sr"])
    ex = prediction_examples(gen, FakeDataModule(), n=3)
    assert ex.prediction.shape == ex.target.shape == ex.bicubic.shape == (3, 4, 32, 32)
    summary = distortion_summary(gen, load_registration(runs["reg"]), FakeDataModule(), channel=2, margin=2)
    values = summary.as_dict()
    assert values["n_patches"] == 4
    assert all(
        np.isfinite(values[k]) and values[k] >= 0 for k in ("pred_flow", "target_flow", "lr_rmse", "lr_bias")
    )
    out = runs["tmp"] / "figures"
    plots.plot_predictions(ex, path=out / "pred.png")
    plots.plot_loss_curves(runs["csv"], path=out / "loss.png")
    assert (out / "pred.png").is_file() and (out / "loss.png").is_file()
