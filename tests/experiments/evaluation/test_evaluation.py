"""Test-set evaluation: tiny trained runs on a fake data module, the metrics table and its outputs."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from sisrlib.cli import main as cli_main
from sisrlib.data.batch import Batch
from sisrlib.errors import SisrError
from sisrlib.experiments.dataset_analysis import DatasetAnalysisParams, analyse_dataset
from sisrlib.experiments.evaluation import runner
from sisrlib.experiments.evaluation.loop import evaluate_predictors
from sisrlib.experiments.evaluation.params import EvaluationParams, RunSpec
from sisrlib.experiments.evaluation.runner import evaluate, evaluate_runs
from sisrlib.experiments.evaluation.runs import dataset_of, resolve_checkpoint
from sisrlib.predictors import BicubicPredictor, Predictor
from sisrlib.training.fit import fit
from tests.helpers.training_fakes import FakeDataModule, tiny_params


def fake_factory(data: Any, seed: int) -> FakeDataModule:
    return FakeDataModule(hr_size=32, factor=2, n=4, batch_size=2, seed=0)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("eval_runs")
    reg = fit(
        tiny_params(
            tmp / "reg", name="registration", training={"mode": "pretrain_registration", "max_steps": 2}
        ),
        FakeDataModule(),
    ).best_checkpoint
    base = fit(tiny_params(tmp / "base", name="fake_baseline"), FakeDataModule()).best_checkpoint
    geom = fit(
        tiny_params(tmp / "geom", name="fake_geom", registration={"checkpoint": str(reg), "geometric": True}),
        FakeDataModule(),
    ).best_checkpoint
    return {"registration": reg, "baseline": base, "geom": geom, "tmp": tmp}


class Oracle(Predictor):
    """Predicts the target itself: the targets of the batches it will be called on, in order (DN)."""

    def __init__(self, batches: list[Batch]) -> None:
        self.targets = iter([b.target for b in batches])
        self.in_bands = self.out_bands = tuple(batches[0].target_bands)
        self.factor, self.margin, self.name = batches[0].factor, 0, "oracle"

    def __call__(self, dn: np.ndarray) -> np.ndarray:
        return next(self.targets).numpy().astype(np.float32)


def fake_batches(n: int = 2) -> list[Batch]:
    dm = fake_factory(None, 0)
    dm.setup("test")
    return list(dm.test_dataloader())[:n]


def test_known_answers_of_the_predictors() -> None:
    params = EvaluationParams(runs=[RunSpec(checkpoint="unused")], output_dir="unused", margin=2)
    bands = ("B2", "B3", "B4", "B8")
    batches = fake_batches()
    rows, extras = evaluate_predictors([Oracle(batches), BicubicPredictor(bands, 2.0)], batches, params)
    oracle, bicubic = rows
    assert math.isinf(oracle["psnr"]) and oracle["rmse"] == 0 and oracle["ssim"] == pytest.approx(1.0)
    assert oracle["frr"] == pytest.approx(100.0) and oracle["fro"] == pytest.approx(0.0, abs=1e-9)
    assert bicubic["frr"] == pytest.approx(0.0, abs=1e-9) and bicubic["fru"] == pytest.approx(0.0, abs=1e-9)
    assert 0 < bicubic["psnr"] < 100 and bicubic["prr"] == oracle["prr"] > 0
    assert set(f"lr_rmse_{b}" for b in bands) <= set(bicubic)
    # the 32 px patches less the 2 px margin, padded to twice the 28 px: 56 / 4 = 14 rings
    assert extras["profiles"][0].shape == (3, 14, 4) and extras["freqs"].shape == (14,)
    assert extras["patches"] == 4 and extras["mosaics"]["target"].shape[0] == 4


@pytest.mark.slow
def test_evaluate_runs_writes_the_table_and_outputs(runs: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "evaluation"
    result = evaluate_runs(
        [str(runs["baseline"]), RunSpec(checkpoint=str(runs["geom"]))],
        out,
        registration_checkpoint=str(runs["registration"]),
        figures_dir=tmp_path / "figures",
        max_test_batches=2,
        datamodule_factory=fake_factory,
        dataset_analysis=True,
        analysis_max_batches=1,
    )
    table = pd.read_csv(out / "metrics.csv")
    assert list(table.columns[:3]) == ["model", "dataset", "variant"]
    assert list(table["model"]) == ["fake_baseline", "bicubic", "fake_geom"]
    assert list(table["variant"]) == ["baseline", "bicubic", "geom"]
    assert set(table["dataset"]) == {"fake"}
    for column in ("psnr", "psnr_B2", "ssim", "lr_rmse", "lr_bias_B8", "frr", "fro", "fru", "fda_noise"):
        assert table[column].notna().all(), column
    for column in ("geom_mean", "geom_std", "target_geom_mean", "epe_true", "true_geom_mean"):
        assert (table[column] >= 0).all(), column
    bicubic = table[table["model"] == "bicubic"].iloc[0]
    assert bicubic["frr"] == pytest.approx(0.0, abs=1e-6)
    run_dir = out / "fake_fake_baseline"
    profiles = np.load(run_dir / "fft_profiles.npy")
    # the runs' validation margin (2 px) off the 32 px patches: the 28 px crop padded to 56, 14 rings
    assert profiles.shape == (3, 14, 4) and np.isnan(profiles[:, 0]).all()
    assert np.load(run_dir / "fft_freqs.npy").shape == (14,)
    for name in ("fft_profiles.png", "target.tif", "pred.tif", "input.tif", "pred.png"):
        assert (run_dir / name).is_file(), name
    assert any((tmp_path / "figures").glob("*fft_profiles.png"))
    assert len(result.models) == 3 and (out / "runs.csv").is_file()
    analysis = pd.read_csv(out / "dataset_analysis.csv")
    assert list(analysis["name"]) == ["fake"] and (analysis["prr"] > 0).all()
    assert not (out / "ceilings.csv").exists(), "no true radiometry in these batches: no ceilings"
    assert not list(out.glob(".*")), "no temporary file left behind"
    assert (out / "metrics.csv").stat().st_mode & 0o044, "outputs keep the usual permissions (not 0600)"


def test_cli_evaluate(runs: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runner, "default_datamodule", fake_factory)
    out = tmp_path / "cli"
    assert (
        cli_main(["evaluate", str(runs["baseline"]), "--output", str(out), "--bicubic", "--max-batches", "1"])
        == 0
    )
    table = pd.read_csv(out / "metrics.csv")
    assert list(table["model"]) == ["fake_baseline", "bicubic"]
    assert "geom_mean" not in table.columns  # no registration network: geometric metrics skipped
    assert cli_main(["evaluate", str(tmp_path / "missing.ckpt")]) == 2


def test_run_resolution_and_names(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        resolve_checkpoint(RunSpec(checkpoint=str(tmp_path / "nothing.ckpt")))
    with pytest.raises(ValueError, match="params_file"):
        EvaluationParams(runs=[RunSpec()], output_dir=str(tmp_path))
    with pytest.raises(ValueError, match="at least one run"):
        EvaluationParams(runs=[], output_dir=str(tmp_path))
    from sisrlib.data.params import DataParams

    data = DataParams(dataset="sen2venus", root="x")
    assert dataset_of("s2v1x2_geomrad", "geomrad", data, 2.0) == "s2v1x2"
    assert dataset_of("03_training_wsx4_baseline", "baseline", data, 4.0) == "wsx4"
    assert dataset_of("tiny", "baseline", data, 2.0) == "sen2venusx2"


def test_glob_of_checkpoints_skips_registration_runs(runs: dict[str, Path], tmp_path: Path) -> None:
    pattern = str(runs["tmp"] / "*" / "run" / "checkpoints" / "best.ckpt")
    params = EvaluationParams(
        runs=[RunSpec(checkpoint=pattern)],
        output_dir=str(tmp_path),
        bicubic=False,
        figures=False,
        max_test_batches=1,
    )
    result = evaluate(params, datamodule_factory=fake_factory)
    assert sorted(result.table["model"]) == ["fake_baseline", "fake_geom"]
    # the geom run's registration network measures the geometric distortion of every row of the dataset
    assert result.table["geom_mean"].notna().all()
    with pytest.raises(FileNotFoundError, match="no super-resolution checkpoint"):
        evaluate(
            EvaluationParams(runs=[RunSpec(checkpoint=str(tmp_path / "*.ckpt"))], output_dir=str(tmp_path)),
            datamodule_factory=fake_factory,
        )


def test_empty_test_split_is_an_error(runs: dict[str, Path], tmp_path: Path) -> None:
    class Empty(FakeDataModule):
        def test_dataloader(self) -> list[Batch]:  # type: ignore[override]
            return []

    params = EvaluationParams(runs=[RunSpec(checkpoint=str(runs["baseline"]))], output_dir=str(tmp_path))
    with pytest.raises(SisrError, match="no batch"):
        evaluate(params, datamodule_factory=lambda data, seed: Empty())


def test_dataset_analysis(runs: dict[str, Path]) -> None:
    from sisrlib.data.params import DataParams

    params = DatasetAnalysisParams(
        data=DataParams(dataset="sen2venus", root="x", testing_sites=["SITE-A", "SITE-B"]),
        max_batches=1,
        registration_checkpoint=str(runs["registration"]),
    )
    table = analyse_dataset(params, datamodule_factory=fake_factory)
    assert list(table["site"]) == ["SITE-A", "SITE-B"]
    for column in ("prr", "prr_B4", "rad_bias", "rad_rmse_B2", "geom_mean", "true_geom_mean", "epe_true"):
        assert table[column].notna().all(), column
    assert (table["prr"] > 0).all() and (table["rad_rmse"] > 0).all()
    # the fake LR input carries +100 DN: the target↓ − input bias is about −0.01 reflectance
    assert table["rad_bias"].iloc[0] == pytest.approx(-0.01, abs=0.003)
