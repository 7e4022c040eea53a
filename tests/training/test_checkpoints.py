"""The checkpoints torchsisr keeps (best total loss with the adversarial term, best BRISQUE, every N steps)
beside ours (best pixel loss, last), epochs as the training length, and the adversarial start convention."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from sisrlib.checkpoint import checkpoint_global_step
from sisrlib.run_params import experiment_from_mapping
from sisrlib.training.fit import fit
from sisrlib.training.module import SISRModule
from tests.helpers.training_fakes import FakeDataModule, tiny_params

ADVERSARIAL = {
    "enabled": True,
    "weight": 0.01,
    "start_step": 0,
    "discriminator": {"kind": "unet", "num_in_ch": 4, "num_feat": 4},
}


def test_checkpoint_names_like_the_reference(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    params = tiny_params(
        tmp_path,
        training={
            "max_steps": 4,
            "val_check_interval": 2,
            "checkpoint_every_n_steps": 2,
            "best_total_checkpoint": True,
            "best_brisque_checkpoint": True,
            "brisque_weights": str(tmp_path / "no-weights"),
            "adversarial": ADVERSARIAL,
            "log_every_n_steps": 1,
        },
    )
    with caplog.at_level(logging.WARNING):
        result = fit(params, FakeDataModule())
    names = sorted(p.name for p in params.checkpoint_dir.iterdir())
    assert names == ["best.ckpt", "best_total.ckpt", "last.ckpt", "step_000002.ckpt", "step_000004.ckpt"]
    assert checkpoint_global_step(params.step_checkpoint(2)) == 2
    assert "no best_brisque.ckpt" in caplog.text and "brisque_svm_weights.pt" in caplog.text
    header = result.metrics_csv.read_text().splitlines()[0].split(",")
    assert "validation/total_loss_with_adversarial" in header and "validation/generator_dra" in header


def test_our_default_keeps_best_and_last_only(tmp_path: Path) -> None:
    params = tiny_params(tmp_path)
    fit(params, FakeDataModule())
    assert sorted(p.name for p in params.checkpoint_dir.iterdir()) == ["best.ckpt", "last.ckpt"]


def test_max_epochs_bounds_the_run_and_a_finished_run_is_skipped(tmp_path: Path) -> None:
    # FakeDataModule: 8 patches in batches of 2 -> 4 steps per epoch
    params = tiny_params(tmp_path, training={"max_steps": -1, "max_epochs": 2, "val_check_interval": 4})
    result = fit(params, FakeDataModule())
    assert result.global_step == 8 and not result.skipped
    again = fit(params, FakeDataModule())
    assert again.skipped and again.global_step == 8


def test_no_step_limit_needs_max_epochs(tmp_path: Path) -> None:
    mapping = tiny_params(tmp_path).to_mapping()
    mapping["training"]["max_steps"] = -1
    with pytest.raises(ValueError, match=r"max_steps is -1 \(no step limit\): set training.max_epochs"):
        experiment_from_mapping(mapping)


@pytest.mark.parametrize(("convention", "first_active"), [("from_start_step", 3), ("after_start_step", 4)])
def test_adversarial_start_convention(tmp_path: Path, convention: str, first_active: int) -> None:
    adversarial = {**ADVERSARIAL, "start_step": 3, "start_convention": convention}
    params = tiny_params(tmp_path, training={"adversarial": adversarial})
    module = SISRModule(params.to_mapping(), ["B2", "B3", "B4", "B8"], ["B2", "B3", "B4", "B8"], 2.0)
    active = [step for step in range(8) if module.adversarial_active(step)]
    assert active[0] == first_active
