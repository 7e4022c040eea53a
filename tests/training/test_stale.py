"""A finished run is reused only when it was trained from the same params (and registration checkpoint):
otherwise `make paper` after editing a params file would silently keep the old weights."""

from __future__ import annotations

import json
from pathlib import Path

from sisrlib.training.fit import SIGNATURE_FILE, fit, run_signature
from tests.helpers.training_fakes import FakeDataModule, tiny_params

TRAINING = {"max_steps": 2, "val_check_interval": 2, "log_every_n_steps": 1}


def test_same_params_skip_and_execution_settings_do_not_matter(tmp_path: Path) -> None:
    first = fit(tiny_params(tmp_path, training=TRAINING), FakeDataModule(n=4, batch_size=2))
    assert not first.skipped and (first.output_dir / SIGNATURE_FILE).is_file()
    again = fit(
        tiny_params(tmp_path, training={**TRAINING, "num_threads": 1, "devices": 1}), FakeDataModule()
    )
    assert again.skipped and again.global_step == 2


def test_changed_params_set_the_old_run_aside_and_train_again(tmp_path: Path) -> None:
    first = fit(tiny_params(tmp_path, training=TRAINING), FakeDataModule(n=4, batch_size=2))
    before = json.loads((first.output_dir / SIGNATURE_FILE).read_text())
    changed = tiny_params(tmp_path, training={**TRAINING, "lr": 1e-3})
    assert run_signature(changed) != before
    second = fit(changed, FakeDataModule(n=4, batch_size=2))
    assert not second.skipped and second.global_step == 2
    aside = first.output_dir.with_name(first.output_dir.name + ".stale")
    assert json.loads((aside / SIGNATURE_FILE).read_text()) == before
    assert json.loads((second.output_dir / SIGNATURE_FILE).read_text()) == run_signature(changed)


def test_a_run_without_signature_is_stale(tmp_path: Path) -> None:
    first = fit(tiny_params(tmp_path, training=TRAINING), FakeDataModule(n=4, batch_size=2))
    (first.output_dir / SIGNATURE_FILE).unlink()
    second = fit(tiny_params(tmp_path, training=TRAINING), FakeDataModule(n=4, batch_size=2))
    assert not second.skipped


def test_keys_that_came_later_at_their_default_keep_the_run_whether_listed_or_not(tmp_path: Path) -> None:
    first = fit(tiny_params(tmp_path, training=TRAINING), FakeDataModule(n=4, batch_size=2))
    stored = json.loads((first.output_dir / SIGNATURE_FILE).read_text())
    # a signature written before the key existed, and one that lists it at its default: both still match
    stored.setdefault("registration", {})["flow_source"] = "network"
    stored["training"]["losses"]["fft_amplitude_l1"] = 0.0
    (first.output_dir / SIGNATURE_FILE).write_text(json.dumps(stored))
    assert fit(tiny_params(tmp_path, training=TRAINING), FakeDataModule(n=4, batch_size=2)).skipped
    # the same key away from its default is another run
    changed = tiny_params(tmp_path, training={**TRAINING, "losses": {"fft_amplitude_l1": 1.0}})
    assert not fit(changed, FakeDataModule(n=4, batch_size=2)).skipped
