"""Names of the files an evaluation writes beside ``metrics.csv`` that the report gathers (no heavy import, so
that the report reads them without loading the evaluation)."""

from __future__ import annotations

__all__ = ["CALIBRATION_FILE", "CEILINGS_FILE"]

#: The calibration of the geometric measure (``sisrlib.experiments.evaluation.calibration``).
CALIBRATION_FILE = "distortion_calibration.csv"
#: The ceilings of simulated sites (``sisrlib.experiments.evaluation.ceilings``): one row per (dataset,
#: reference), the metrics columns.
CEILINGS_FILE = "ceilings.csv"
