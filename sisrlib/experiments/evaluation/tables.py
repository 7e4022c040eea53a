"""Tables of an evaluation for notebooks and the command line: band-averaged columns, rounded, and the line
saying which metric conventions they use."""

from __future__ import annotations

import math
from collections.abc import Sequence

import pandas as pd

from sisrlib.experiments.evaluation.loop import PER_BAND_METRICS, SCALAR_METRICS


def format_table(table: pd.DataFrame, columns: Sequence[str] | None = None, digits: int = 3) -> pd.DataFrame:
    """The band-averaged columns (or ``columns``) of a metrics table, rounded, for display in a notebook."""
    if columns is None:
        columns = [c for c in (*PER_BAND_METRICS, *SCALAR_METRICS) if c in table.columns]
    shown = table[["model", "dataset", "variant", *columns]].copy()
    for c in columns:
        shown[c] = shown[c].map(
            lambda v: v if isinstance(v, str) or v is None or math.isnan(v) else round(v, digits)
        )
    return shown
