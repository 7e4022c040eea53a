"""Training params are checked when loaded, before any run folder exists; bad values and overrides get a
message naming the file and the key; zero training steps and a non-finite loss are errors, not successes."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml

from sisrlib.cli import main
from sisrlib.errors import SisrError
from sisrlib.params import ParamsError, to_mapping
from sisrlib.run_params import LossParams, load_experiment
from sisrlib.training.fit import TrainingDivergedError, _resolve_resume, fit
from sisrlib.training.module import SISRModule
from tests.helpers.fake_data import make_sen2venus_root
from tests.helpers.training_fakes import FakeDataModule, tiny_params


def _write(tmp: Path, **sections: dict[str, Any]) -> Path:
    path = tmp / "params.yaml"
    path.write_text(yaml.safe_dump(to_mapping(tiny_params(tmp)) | {}))
    mapping = yaml.safe_load(path.read_text())
    for section, values in sections.items():
        node = mapping[section]
        for key, value in values.items():
            *parents, leaf = key.split(".")
            target = node
            for p in parents:
                target = target[p]
            target[leaf] = value
    path.write_text(yaml.safe_dump(mapping))
    return path


def _refused(capsys: pytest.CaptureFixture[str], tmp: Path, args: list[str], *fragments: str) -> None:
    """``sisr train`` exits 2 with every fragment in its one-line message and creates no run folder."""
    assert main(["train", *args]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in err, err
    assert not (tmp / "run").exists()


@pytest.mark.parametrize(
    ("key", "value", "fragments"),
    [
        ("losses.mse", -1, ("training.losses.mse must be >= 0", "got -1")),
        ("losses.mse", float("nan"), ("training.losses.mse: expected a finite number", "nan")),
        ("lr", float("inf"), ("training.lr: expected a finite number", "inf")),
        ("lr", 0.0, ("training.lr must be > 0",)),
        ("t_0", 0, ("training.t_0 must be >= 1", "got 0")),
        ("t_mult", 0, ("training.t_mult must be >= 1", "got 0")),
        ("num_threads", 0, ("training.num_threads must be >= 1",)),
        ("accelerator", "tpu", ("training.accelerator must be one of", "'tpu'")),
        ("devices", 0, ("training.devices must be >= 1",)),
        ("precision", "8-bit", ("training.precision must be one of",)),
        ("limit_val_batches", 0, ("training.limit_val_batches must be >= 1",)),
        ("adversarial.t_mult", 0, ("training.adversarial.t_mult must be >= 1",)),
        ("adversarial.label_smoothing", 1.0, ("label_smoothing must lie in [0, 1)",)),
    ],
)
def test_bad_training_values_are_refused_at_load(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], key: str, value: Any, fragments: tuple[str, ...]
) -> None:
    path = _write(tmp_path, training={key: value})
    _refused(capsys, tmp_path, [str(path)], str(path), *fragments)


def test_every_loss_weight_is_checked(tmp_path: Path) -> None:
    """Generic over the section: a weight added later is covered too."""
    weights = LossParams().weights
    assert {"mse", "l1", "lpips"} <= set(weights) and "highpass_sigma" not in weights
    for name in weights:
        path = _write(tmp_path, training={f"losses.{name}": -0.5})
        with pytest.raises(ParamsError, match=rf"training\.losses.*training\.losses\.{name} must be >= 0"):
            load_experiment(path)


def test_all_loss_weights_zero(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    zeros = {f"losses.{name}": 0.0 for name in LossParams().weights}
    path = _write(tmp_path, training=zeros)
    _refused(capsys, tmp_path, [str(path)], "every loss weight is 0", "give at least one weight > 0")
    # the adversarial term alone trains the generator; registration pre-training has no pixel loss
    load_experiment(_write(tmp_path, training={**zeros, "adversarial.enabled": True}))
    load_experiment(_write(tmp_path, training={**zeros, "mode": "pretrain_registration"}))


def test_bad_overrides(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path)
    _refused(capsys, tmp_path, [str(path), "--set", "seed.x=1"], "cannot set 'seed.x'", "seed is a value (3)")
    _refused(
        capsys, tmp_path, [str(path), "--set", "training.lr=[1"], "--set training.lr=[1", "not valid YAML"
    )
    _refused(capsys, tmp_path, [str(path), "--set", "training..lr=1"], "empty part")
    _refused(capsys, tmp_path, [str(path), "--set", "training.lr=.nan"], "expected a finite number")


def test_batch_larger_than_the_training_split(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = make_sen2venus_root(tmp_path / "data", ["ARM", "NARYN", "ES-IC3XG", "MAD-AMBO"], rows=3)
    path = _write(tmp_path)
    args = [str(path), "--set", f"data.root={root}", "--set", "data.validation_ratio=0.5"]
    args += ["--set", "data.train_ratio=0.5", "--set", "data.batch_size=100000"]
    _refused(capsys, tmp_path, args, "data.batch_size 100000 is larger than the training split (3 patches")


def test_no_step_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever lets a run through with no training batch (here: the length check bypassed), zero steps is
    an error, not "trained for 0 steps"."""

    class Empty(FakeDataModule):
        def train_dataloader(self) -> Any:
            return []

    module = sys.modules["sisrlib.training.fit"]  # the package exports the function under the same name
    monkeypatch.setattr(module, "_check_training_split", lambda params, dm: None)
    with pytest.raises(SisrError, match=r"no training step ran \(step 0 → 0"):
        fit(tiny_params(tmp_path), Empty())


def test_non_finite_loss_names_the_step_and_terms_and_keeps_the_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    params = tiny_params(tmp_path, training={"max_steps": 6, "val_check_interval": 2})
    original = SISRModule._pixel_losses

    def poisoned(self: SISRModule, pred: torch.Tensor, target: torch.Tensor, prefix: str) -> Any:
        if prefix == "training" and self.global_step >= 3:
            pred = pred * float("nan")
        return original(self, pred, target, prefix)

    monkeypatch.setattr(SISRModule, "_pixel_losses", poisoned)
    with pytest.raises(
        TrainingDivergedError,
        match=r"training loss at step 3 is not finite.*loss terms: mse_average nan, l1_average nan.*"
        r"stopped at step 3.*last checkpoint .*last.ckpt \(step 2\) is kept.*Lower training.lr",
    ):
        fit(params, FakeDataModule())
    ckpt = torch.load(params.last_checkpoint, map_location="cpu", weights_only=True)
    assert ckpt["global_step"] == 2
    assert all(bool(torch.isfinite(v).all()) for v in ckpt["state_dict"].values())


def test_resume_from_last_takes_the_newest_of_last_and_hpc(tmp_path: Path) -> None:
    params = tiny_params(tmp_path, training={"resume_from": "last"})
    out = Path(params.output_dir)
    assert _resolve_resume(params) is None
    params.checkpoint_dir.mkdir(parents=True)
    torch.save({"global_step": 8}, params.last_checkpoint)
    assert _resolve_resume(params) == params.last_checkpoint
    torch.save({"global_step": 5}, out / "hpc_ckpt_1.ckpt")
    assert _resolve_resume(params) == params.last_checkpoint
    torch.save({"global_step": 11}, out / "hpc_ckpt_2.ckpt")
    assert _resolve_resume(params) == out / "hpc_ckpt_2.ckpt"
