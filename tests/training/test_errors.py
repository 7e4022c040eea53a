"""Bad input is caught before training with messages that say what is wrong and how to fix it."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from sisrlib.cli import main
from sisrlib.errors import MissingDependencyError, SisrError
from sisrlib.params import ParamsError, to_mapping
from sisrlib.run_params import load_experiment, parse_override
from sisrlib.training.fit import fit
from tests.helpers.training_fakes import FakeDataModule, tiny_params


@pytest.fixture(scope="module")
def registration_ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("reg")
    return fit(
        tiny_params(tmp, training={"mode": "pretrain_registration", "max_steps": 1}), FakeDataModule()
    ).best_checkpoint


def _no_run(path: Path) -> None:
    assert not (path / "run" / "checkpoints").exists()


def test_misspelt_key_lists_valid_keys(tmp_path: Path) -> None:
    mapping = to_mapping(tiny_params(tmp_path))
    mapping["training"]["max_step"] = mapping["training"].pop("max_steps")
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(mapping))
    with pytest.raises(ParamsError, match=r"unknown key\(s\) 'max_step'.*valid keys are:.*max_steps"):
        load_experiment(path)
    assert main(["train", str(path)]) == 2


def test_overrides(tmp_path: Path) -> None:
    path = tmp_path / "ok.yaml"
    path.write_text(yaml.safe_dump(to_mapping(tiny_params(tmp_path))))
    params = load_experiment(path, dict([parse_override("training.max_steps=7"), parse_override("seed=1")]))
    assert params.training.max_steps == 7 and params.seed == 1
    with pytest.raises(ValueError, match="key=value"):
        parse_override("training.max_steps")


def test_registration_checkpoint_missing(tmp_path: Path) -> None:
    params = tiny_params(
        tmp_path, registration={"geometric": True, "checkpoint": str(tmp_path / "nope.ckpt")}
    )
    with pytest.raises(SisrError, match=r"nope.ckpt does not exist; run the registration pre-training"):
        fit(params, FakeDataModule())
    _no_run(tmp_path)
    with pytest.raises(SisrError, match="need a pre-trained flow network"):
        fit(tiny_params(tmp_path, registration={"geometric": True}), FakeDataModule())


def test_registration_checkpoint_not_fitting(tmp_path: Path, registration_ckpt: Path) -> None:
    params = tiny_params(
        tmp_path, registration={"geometric": True, "checkpoint": str(registration_ckpt), "start_filters": 8}
    )
    with pytest.raises(
        SisrError, match=r"does not fit the registration network.*'start_filters': 4.*'start_filters': 8"
    ):
        fit(params, FakeDataModule())
    _no_run(tmp_path)


def test_sr_checkpoint_without_registration_is_refused(tmp_path: Path, registration_ckpt: Path) -> None:
    sr = fit(tiny_params(tmp_path / "sr", training={"max_steps": 1}), FakeDataModule()).best_checkpoint
    params = tiny_params(tmp_path, registration={"geometric": True, "checkpoint": str(sr)})
    with pytest.raises(SisrError, match="holds no registration network weights"):
        fit(params, FakeDataModule())


def test_bands_the_dataset_lacks(tmp_path: Path) -> None:
    params = tiny_params(
        tmp_path, training={"adversarial": {"enabled": True, "bands": ["B5", "B6", "B7", "B8A"]}}
    )
    with pytest.raises(SisrError, match=r"adversarial.bands.*lacks \['B5', 'B6', 'B7', 'B8A'\]"):
        fit(params, FakeDataModule())
    params = tiny_params(tmp_path, training={"standardisation": "sen2venusx4"})
    with pytest.raises(SisrError, match=r"'sen2venusx4' has no statistics for the data's band\(s\)"):
        fit(params, FakeDataModule())
    params = tiny_params(tmp_path, registration={"channel": 5})
    with pytest.raises(SisrError, match=r"registration\.channel 5"):
        fit(params, FakeDataModule())
    _no_run(tmp_path)


def test_factor_the_data_does_not_have(tmp_path: Path) -> None:
    params = tiny_params(tmp_path, model={"factor": 4.0})
    with pytest.raises(SisrError, match=r"model.factor is 4.0 but the data .* has a factor of 2.0"):
        fit(params, FakeDataModule())
    _no_run(tmp_path)


def test_lpips_without_weights(tmp_path: Path) -> None:
    empty = tmp_path / "weights"
    empty.mkdir()
    params = tiny_params(tmp_path, training={"losses": {"lpips": 1.0, "lpips_weights": str(empty)}})
    with pytest.raises(
        MissingDependencyError,
        match=r"lpips_weights.pt.*vgg16-397923af.pth.*set training.losses.lpips_weights",
    ):
        fit(params, FakeDataModule())
    _no_run(tmp_path)


def test_resume_from_missing_checkpoint(tmp_path: Path) -> None:
    params = tiny_params(tmp_path, training={"resume_from": str(tmp_path / "gone.ckpt")})
    with pytest.raises(FileNotFoundError, match=r"gone\.ckpt does not exist"):
        fit(params, FakeDataModule())


def test_cli_mode_mismatch(tmp_path: Path) -> None:
    path = tmp_path / "sr.yaml"
    path.write_text(yaml.safe_dump(to_mapping(tiny_params(tmp_path))))
    assert main(["pretrain-registration", str(path)]) == 2
    assert main(["train", str(tmp_path / "missing.yaml")]) == 2


def test_cli_mode_mismatch_names_the_other_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sr = tmp_path / "sr.yaml"
    sr.write_text(yaml.safe_dump(to_mapping(tiny_params(tmp_path))))
    registration = tmp_path / "registration.yaml"
    registration.write_text(
        yaml.safe_dump(to_mapping(tiny_params(tmp_path, training={"mode": "pretrain_registration"})))
    )
    assert main(["pretrain-registration", str(sr)]) == 2
    assert "training.mode is 'sr'" in capsys.readouterr().err
    assert main(["train", str(registration)]) == 2
    assert "use `sisr pretrain-registration`" in capsys.readouterr().err
    _no_run(tmp_path)


@pytest.mark.parametrize(
    ("command", "expected"),
    [("train", "03_training_*.yaml"), ("pretrain-registration", "02_registration_*.yaml")],
)
def test_cli_help_names_the_params_file_of_the_command(
    command: str, expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as stop:
        main([command, "--help"])
    assert stop.value.code == 0
    assert expected in capsys.readouterr().out
