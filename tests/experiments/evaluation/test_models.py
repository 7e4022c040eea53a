"""Bring your own model: ``sisr evaluate`` and the evaluation params on an exported ONNX model (EVOLAND
contract) give the metrics of its checkpoint; models without test data and foreign files are refused
clearly."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from sisrlib.bands import standardisation
from sisrlib.cli import main as cli_main
from sisrlib.data.batch import Batch
from sisrlib.errors import SisrError
from sisrlib.experiments.evaluation import runner
from sisrlib.experiments.evaluation.conventions import conventions_line, read_conventions
from sisrlib.experiments.evaluation.params import EvaluationParams, RunSpec
from sisrlib.experiments.evaluation.predict import model_input, predict_reflectance
from sisrlib.experiments.evaluation.runner import evaluate
from sisrlib.experiments.evaluation.runs import run_spec
from sisrlib.export import export_checkpoint
from sisrlib.models.dn_model import DNModel
from sisrlib.models.joint import JointSuperResolution
from sisrlib.models.params import ModelParams
from sisrlib.models.registry import build_generator
from sisrlib.predictors.torch_models import TorchPredictor
from sisrlib.training.fit import fit
from tests.helpers.training_fakes import FakeDataModule, tiny_params


def fake_factory(data: Any, seed: int) -> FakeDataModule:
    return FakeDataModule(hr_size=32, factor=2, n=4, batch_size=2, seed=0)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("byom")
    params = tiny_params(tmp / "base", name="fake_baseline")
    ckpt = fit(params, FakeDataModule()).best_checkpoint
    training_yaml = tmp / "03_training_fake_baseline.yaml"
    training_yaml.write_text(yaml.safe_dump(params.to_mapping()))
    (tmp / "export").mkdir()
    pair = export_checkpoint(ckpt, tmp / "export" / "fake.onnx")
    return {"ckpt": ckpt, "yaml": Path(pair.yaml_path), "training": training_yaml, "tmp": tmp}


def _metrics(table: pd.DataFrame) -> dict[str, float]:
    return {c: float(table[c].iloc[0]) for c in table.columns if table[c].dtype.kind == "f"}


def test_onnx_model_gives_the_metrics_of_its_checkpoint(trained: dict[str, Path], tmp_path: Path) -> None:
    common: dict[str, Any] = {"bicubic": False, "figures": False, "max_test_batches": 2}
    ours = evaluate(
        EvaluationParams(
            runs=[RunSpec(checkpoint=str(trained["ckpt"]))], output_dir=str(tmp_path / "a"), **common
        ),
        datamodule_factory=fake_factory,
    )
    onnx = evaluate(
        EvaluationParams(
            runs=[RunSpec(checkpoint=str(trained["yaml"]), data_params=str(trained["training"]))],
            output_dir=str(tmp_path / "b"),
            **common,
        ),
        datamodule_factory=fake_factory,
    )
    a, b = _metrics(ours.table), _metrics(onnx.table)
    assert set(a) == set(b) and "psnr" in a and "frr" in a
    for column, value in a.items():
        assert np.isnan(value) == np.isnan(b[column]), column
        if np.isfinite(value):
            assert b[column] == pytest.approx(value, rel=1e-3, abs=1e-6), column
    assert onnx.table["model"].iloc[0] == "fake" and onnx.table["dataset"].iloc[0] == "fake"
    assert pd.read_csv(tmp_path / "b" / "runs.csv")["checkpoint"].iloc[0] == str(trained["yaml"])


def test_cli_evaluates_an_onnx_model_with_the_data_of_the_params_file(
    trained: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runner, "default_datamodule", fake_factory)
    params = tmp_path / "04_evaluation.yaml"
    params.write_text(
        yaml.safe_dump(
            {
                "runs": [{"params_file": str(trained["training"])}],
                "output_dir": str(tmp_path / "x"),
                "figures": False,
            }
        )
    )
    out = tmp_path / "cli"
    rc = cli_main(["evaluate", str(trained["yaml"]), str(params), "--output", str(out), "--max-batches", "1"])
    assert rc == 0
    table = pd.read_csv(out / "metrics.csv")
    assert list(table["model"]) == ["fake"] and table["psnr"].notna().all()
    assert (out / "conventions.json").is_file()
    # the .onnx file names the same model as its yaml
    assert run_spec(str(trained["yaml"]).replace(".yaml", ".onnx")).checkpoint is not None


def test_cli_writes_figures_under_output_never_into_the_profiles_figures(
    trained: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runner, "default_datamodule", fake_factory)
    params = tmp_path / "04_evaluation.yaml"
    profile_figures = tmp_path / "figures" / "profile"
    params.write_text(
        yaml.safe_dump(
            {
                "runs": [{"params_file": str(trained["training"])}],
                "output_dir": str(tmp_path / "x"),
                "figures_dir": str(profile_figures),
                "mosaic_patches": 1,
                "mosaic_columns": 1,
            }
        )
    )
    out = tmp_path / "cli"
    rc = cli_main(["evaluate", str(trained["yaml"]), str(params), "--output", str(out), "--max-batches", "1"])
    assert rc == 0
    assert list(out.rglob("*fft_profiles.png"))
    assert not profile_figures.exists()


def test_model_without_test_data_is_refused(
    trained: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SisrError, match=r"carries no test data.*data_params"):
        evaluate(
            EvaluationParams(runs=[RunSpec(checkpoint=str(trained["yaml"]))], output_dir=str(tmp_path / "o")),
            datamodule_factory=fake_factory,
        )
    assert cli_main(["evaluate", str(trained["yaml"]), "--output", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "carries no test data" in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()


def test_foreign_file_is_refused_naming_the_expected_kinds(
    trained: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    foreign = tmp_path / "model.bin"
    foreign.write_bytes(b"not a model")
    rc = cli_main(
        ["evaluate", str(foreign), "--data", str(trained["training"]), "--output", str(tmp_path / "o")]
    )
    assert rc == 2
    err = capsys.readouterr().err
    assert "NAME.onnx" in err and "torchsisr" in err and "checkpoint" in err
    assert not (tmp_path / "o").exists()


def test_joint_model_sees_its_20m_bands_as_its_own_branch_would() -> None:
    """A joint 10 m + 20 m generator evaluated through the one DN input (20 m bands brought to the 10 m grid
    by the evaluation, SISR network only, as exported) predicts what the joint model predicts on the two
    grids (its lr_to_hr branch is the same bicubic ×2), to float32 rounding."""
    torch.manual_seed(0)
    hr_bands, lr_bands = ("B2", "B3", "B4", "B8"), ("B5", "B6", "B7", "B8A")
    model = build_generator(
        ModelParams(
            generator="esrgan", factor=2.0, num_blocks=1, latent_size=8, growth_channels=4, lr_to_hr="bicubic"
        ),
        len(hr_bands),
        lr_bands=len(lr_bands),
    ).eval()
    assert isinstance(model, JointSuperResolution)
    stats = standardisation("evoland").select(hr_bands + lr_bands)
    g = torch.Generator().manual_seed(1)
    batch = Batch(
        inputs=1000 + 500 * torch.rand(2, 4, 16, 16, generator=g),
        target=torch.zeros(2, 8, 32, 32),
        input_bands=hr_bands,
        target_bands=hr_bands + lr_bands,
        input_resolution_m=10.0,
        target_resolution_m=5.0,
        lr_inputs=1000 + 500 * torch.rand(2, 4, 8, 8, generator=g),
        lr_bands=lr_bands,
        lr_resolution_m=20.0,
    )
    with torch.no_grad():
        joint = stats.unstandardise(
            model(
                stats.select(hr_bands).standardise(batch.inputs / 1e4),
                stats.select(lr_bands).standardise(batch.lr_inputs / 1e4),
            )  # type: ignore[operator]
        )
    predictor = TorchPredictor(DNModel(model.sisr, stats, stats))
    pred = predict_reflectance(predictor, batch, torch.device("cpu"))
    assert model_input(batch, predictor.in_bands).shape == (2, 8, 16, 16)
    assert torch.allclose(pred, joint, rtol=1e-5, atol=1e-6)


#: torchsisr checkpoints in the reference's exact layout (random weights), beside the repository.
TORCHSISR_FIXTURES = (
    Path(__file__).resolve().parents[3].parent / "shared" / "reference" / "torchsisr-checkpoints"
)


@pytest.mark.skipif(
    not TORCHSISR_FIXTURES.is_dir(), reason="the torchsisr checkpoint fixtures are not available"
)
def test_torchsisr_checkpoint_is_evaluated_with_explicit_options(
    trained: dict[str, Path], tmp_path: Path
) -> None:
    (ckpt,) = sorted((TORCHSISR_FIXTURES / "esrgan_x2_s2v").glob("*.ckpt"))
    spec = RunSpec(
        checkpoint=str(ckpt),
        data_params=str(trained["training"]),
        model_bands=["B2", "B3", "B4", "B8"],
        model_factor=2.0,
        label="torchsisr",
    )
    params = EvaluationParams(
        runs=[spec], output_dir=str(tmp_path / "t"), bicubic=False, figures=False, max_test_batches=1
    )
    result = evaluate(params, datamodule_factory=fake_factory)
    row = result.table.iloc[0]
    assert row["model"] == "torchsisr" and np.isfinite(row["psnr"]) and np.isfinite(row["frr"])
    # alone in a folder (no run configuration beside it) and without the bands option: refused, naming them
    alone = tmp_path / "alone.ckpt"
    shutil.copyfile(ckpt, alone)
    with pytest.raises(SisrError, match="band names"):
        evaluate(
            dataclasses.replace(
                params, runs=[dataclasses.replace(spec, checkpoint=str(alone), model_bands=None)]
            ),
            datamodule_factory=fake_factory,
        )


def test_cli_checkpoint_choice(
    trained: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runner, "default_datamodule", fake_factory)
    folder = trained["ckpt"].parent.parent  # the run folder
    out = tmp_path / "last"
    rc = cli_main(
        ["evaluate", str(folder), "--checkpoint", "last", "--output", str(out), "--max-batches", "1"]
    )
    assert rc == 0
    assert pd.read_csv(out / "runs.csv")["checkpoint"].iloc[0].endswith("checkpoints/last.ckpt")
    assert json.loads((out / "conventions.json").read_text())["checkpoint"] == "last"
    conv = read_conventions(out)
    assert conv is not None and "checkpoint last" in conventions_line(conv)
    assert read_conventions(tmp_path) is None
