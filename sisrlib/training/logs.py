"""The CSV logger of a run (``logs/csv/metrics.csv``); it keeps the rows of a resumed run's earlier steps."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from pytorch_lightning.loggers import CSVLogger
from pytorch_lightning.loggers.csv_logs import ExperimentWriter
from pytorch_lightning.loggers.logger import rank_zero_experiment

from sisrlib.atomic import atomic_output


class _AppendingExperimentWriter(ExperimentWriter):
    """Lightning's CSV writer, except that an existing ``metrics.csv`` keeps its rows of the steps before
    ``keep_before`` (rewritten atomically) instead of being deleted; new rows are appended."""

    def __init__(self, log_dir: str, keep_before: int | None) -> None:
        self.keep_before = keep_before
        super().__init__(log_dir=log_dir)

    def _check_log_dir_exists(self) -> None:
        path = Path(self.metrics_file_path)
        if self.keep_before is None or not path.is_file():
            super()._check_log_dir_exists()
            return
        with path.open(newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            header = list(reader.fieldnames or [])
            rows = [r for r in reader if _csv_step(r) < self.keep_before]
        with atomic_output(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=header)
            writer.writeheader()
            writer.writerows(rows)
        self.metrics_keys = sorted(header)
        if header != self.metrics_keys:  # Lightning writes its columns sorted
            self._rewrite_with_new_header(self.metrics_keys)


def _csv_step(row: dict[str, str]) -> float:
    try:
        return float(row.get("step") or "nan")
    except ValueError:
        return float("nan")


class ResumableCSVLogger(CSVLogger):
    """``CSVLogger`` that, for a run resumed at step ``resume_step``, keeps the earlier rows of
    ``metrics.csv`` (Lightning's ``step`` column counts from 0: rows logged after the checkpoint have
    ``step >= resume_step``) and appends."""

    def __init__(self, *args: Any, resume_step: int | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.resume_step = resume_step

    @property
    @rank_zero_experiment
    def experiment(self) -> ExperimentWriter:
        if self._experiment is None:
            self._fs.makedirs(self.root_dir, exist_ok=True)
            self._experiment = _AppendingExperimentWriter(self.log_dir, self.resume_step)
        assert isinstance(self._experiment, ExperimentWriter)
        return self._experiment


__all__ = ["ResumableCSVLogger"]
