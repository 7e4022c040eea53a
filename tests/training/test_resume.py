"""An interrupted run resumes exactly: same weights as an uninterrupted run (CPU), and one metrics.csv holding
every step (the rows logged after the checkpoint are replaced by the resumed run's)."""

from __future__ import annotations

import csv
import itertools
from pathlib import Path
from typing import Any

import pytest
import torch

from sisrlib.run_params import ExperimentParams
from sisrlib.training.fit import fit
from sisrlib.training.module import SISRModule
from tests.helpers.fake_data import make_sen2venus_root
from tests.helpers.training_fakes import sen2venus_run_params

pytestmark = pytest.mark.slow  # training loops

#: 3 training sites × 6 patches, 0.75 of them for training: 14 patches, 7 batches of 2 per epoch.
SITES = ["ARM", "NARYN", "ALSACE", "ES-IC3XG", "MAD-AMBO"]
STEPS = 12


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_sen2venus_root(tmp_path_factory.mktemp("s2v"), SITES, rows=6)


def _params(tmp: Path, root: Path, max_steps: int = STEPS) -> ExperimentParams:
    return sen2venus_run_params(
        tmp, root, max_steps=max_steps, val_check_interval=4, log_every_n_steps=1, resume_from="last"
    )


def _weights(path: Path) -> dict[str, torch.Tensor]:
    state: dict[str, torch.Tensor] = torch.load(path, map_location="cpu", weights_only=True)["state_dict"]
    return state


def _losses(metrics_csv: Path, column: str = "training/total_loss") -> dict[int, str]:
    """``column`` by step (as written: exact decimal text)."""
    with metrics_csv.open(newline="") as f:
        rows = list(csv.DictReader(f))
    out: dict[int, str] = {}
    for row in rows:
        if row.get(column):
            step = int(row["step"])
            assert step not in out, f"{column} at step {step} logged twice in {metrics_csv}"
            out[step] = row[column]
    return out


def _same_logs(a: Path, b: Path) -> None:
    for column in ("training/total_loss", "validation/total_loss", "lr-Adam"):
        assert _losses(a, column) == _losses(b, column), column
    assert sorted(_losses(a)) == list(range(STEPS))
    assert sorted(_losses(a, "validation/total_loss")) == [3, 7, 11]  # every 4 steps (0-based step column)


@pytest.fixture(scope="module")
def uninterrupted(root: Path, tmp_path_factory: pytest.TempPathFactory) -> Any:
    result = fit(_params(tmp_path_factory.mktemp("whole"), root))
    assert result.global_step == STEPS
    return result


def _same_weights(a: Path, b: Path) -> None:
    wa, wb = _weights(a), _weights(b)
    assert wa.keys() == wb.keys()
    different = [k for k in wa if not torch.equal(wa[k], wb[k])]
    assert not different, f"weights differ after resuming: {different[:5]}"


def test_crash_after_a_checkpoint_resumes_to_the_same_weights_and_log(
    root: Path, tmp_path: Path, uninterrupted: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Killed at step 10 (mid-epoch 2; last checkpoint at step 8, the log flushed up to step 10), rerun."""
    params = _params(tmp_path, root)
    original = SISRModule.training_step

    def crashing(self: SISRModule, batch: Any, batch_idx: int) -> Any:
        if self.global_step == 10:
            raise RuntimeError("simulated kill")
        return original(self, batch, batch_idx)

    monkeypatch.setattr(SISRModule, "training_step", crashing)
    with pytest.raises(RuntimeError, match="simulated kill"):
        fit(params)
    monkeypatch.setattr(SISRModule, "training_step", original)
    assert torch.load(params.last_checkpoint, weights_only=True)["global_step"] == 8
    assert max(_losses(Path(params.output_dir) / "logs/csv/metrics.csv")) == 9  # rows 8, 9 follow it
    result = fit(params)
    assert result.global_step == STEPS
    _same_weights(result.last_checkpoint, uninterrupted.last_checkpoint)
    _same_logs(result.metrics_csv, uninterrupted.metrics_csv)


def test_stop_at_an_epoch_end_and_continue(root: Path, tmp_path: Path, uninterrupted: Any) -> None:
    """max_steps 7 (one whole epoch), then max_steps 12: the second epoch's permutation is the same."""
    first = fit(_params(tmp_path, root, max_steps=7))
    assert first.global_step == 7
    result = fit(_params(tmp_path, root))
    assert result.global_step == STEPS and not result.skipped
    _same_weights(result.last_checkpoint, uninterrupted.last_checkpoint)
    _same_logs(result.metrics_csv, uninterrupted.metrics_csv)


def _epochs(loader: Any, n: int) -> list[list[list[int]]]:
    """``n`` epochs of ``loader`` as Lightning takes them: ``len(loader)`` batches, no further ``next``."""
    return [[b.tolist() for b in itertools.islice(iter(loader), len(loader))] for _ in range(n)]


@pytest.mark.parametrize("stop", [0, 2, 3])  # batches of epoch 1 trained before the checkpoint (3: all)
def test_resumable_loader_replays_the_plain_loader(stop: int) -> None:
    """Uninterrupted, the loader yields what ``DataLoader(shuffle=True, generator=seeded)`` yields (so the
    runs trained before it existed keep their numbers); restored from a state taken after ``stop`` batches
    of the second epoch, it yields the rest of that epoch, then the same later epochs."""
    from torch.utils.data import DataLoader

    from sisrlib.data.datamodule import ResumableDataLoader

    def make(cls: Any) -> Any:
        return cls(
            list(range(10)),
            batch_size=3,
            shuffle=True,
            drop_last=True,
            generator=torch.Generator().manual_seed(5),
        )

    plain = _epochs(make(DataLoader), 4)
    assert _epochs(make(ResumableDataLoader), 4) == plain
    first = make(ResumableDataLoader)
    _epochs(first, 1)
    epoch1 = iter(first)
    for _ in range(stop):
        next(epoch1)
    state = first.state_dict()
    assert state["batches_done"] == stop
    resumed = make(ResumableDataLoader)
    resumed.load_state_dict(state)
    # Lightning takes the rest of a resumed epoch; when nothing is left, it asks once and gets StopIteration
    rest = iter(resumed)
    taken = itertools.islice(rest, 3 - stop) if stop < 3 else rest
    assert [b.tolist() for b in taken] == plain[1][stop:]
    assert _epochs(resumed, 2) == plain[2:]
