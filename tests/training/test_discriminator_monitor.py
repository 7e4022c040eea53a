"""The warning for an adversarial term whose discriminator never left chance (DRA-BCE ≈ ln 2)."""

from __future__ import annotations

import logging
import math
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import torch

from sisrlib.training.callbacks import DiscriminatorAtChance
from sisrlib.training.fit import fit
from tests.helpers.training_fakes import FakeDataModule, tiny_params


def _run(monitor: DiscriminatorAtChance, losses: list[float | None]) -> None:
    trainer: Any = SimpleNamespace(callback_metrics={})
    for loss in losses:
        trainer.callback_metrics = {} if loss is None else {DiscriminatorAtChance.METRIC: torch.tensor(loss)}
        monitor.on_train_batch_end(trainer)
    monitor.on_train_end(trainer, None)  # type: ignore[arg-type]


def test_warns_when_the_discriminator_stays_at_chance(caplog: pytest.LogCaptureFixture) -> None:
    chance = math.log(2.0)
    with caplog.at_level(logging.WARNING, logger="sisrlib.training.callbacks"):
        _run(DiscriminatorAtChance("run_a"), [None] * 50 + [chance + 0.001, chance - 0.002] * 100)
    assert len(caplog.records) == 1
    message = caplog.records[0].getMessage()
    assert "run_a" in message and "200 training steps" in message and "hpf_mtf" in message


def test_silent_once_the_discriminator_discriminates(caplog: pytest.LogCaptureFixture) -> None:
    chance = math.log(2.0)
    with caplog.at_level(logging.WARNING, logger="sisrlib.training.callbacks"):
        _run(DiscriminatorAtChance("run_b"), [chance] * 150 + [0.3] + [chance] * 50)
    assert caplog.records == []


def test_silent_when_the_discriminator_trained_too_few_steps(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="sisrlib.training.callbacks"):
        _run(DiscriminatorAtChance("run_c"), [None] * 500 + [math.log(2.0)] * 20)
    assert caplog.records == []


def test_a_real_run_feeds_the_monitor(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In a fit, the monitor reads the loss the module logs: three discriminator steps at chance warn once the
    minimum number of steps is lowered to 1."""
    monkeypatch.setattr(DiscriminatorAtChance.__init__, "__defaults__", (1, 0.01))
    params = tiny_params(
        tmp_path,
        name="gan_tiny",
        training={
            "max_steps": 3,
            "log_every_n_steps": 1,
            "adversarial": {
                "enabled": True,
                "start_step": 0,
                "weight": 0.1,
                "discriminator": {"num_feat": 4},
            },
        },
    )
    with caplog.at_level(logging.WARNING, logger="sisrlib.training.callbacks"):
        fit(params, FakeDataModule())
    warnings = [r.getMessage() for r in caplog.records if "stayed at chance" in r.getMessage()]
    assert len(warnings) == 1 and "gan_tiny" in warnings[0] and "3 training steps" in warnings[0]
