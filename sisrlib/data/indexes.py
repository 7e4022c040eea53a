"""Checks shared by the dataset readers on their tab-separated ``index.csv`` tables."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from sisrlib.errors import DataError


def duplicated_cells(index: pd.DataFrame, columns: Sequence[str]) -> list[tuple[str, str, list[int]]]:
    """``(column, cell, rows)`` of every non-empty cell that appears in more than one row of ``columns``
    (``rows``: 0-based row positions, header excluded), in column order then first row."""
    found: list[tuple[str, str, list[int]]] = []
    for column in columns:
        rows_of: dict[str, list[int]] = {}
        for row, cell in enumerate(index[column].astype(str).tolist()):
            if cell:
                rows_of.setdefault(cell, []).append(row)
        found.extend((column, cell, rows) for cell, rows in rows_of.items() if len(rows) > 1)
    return found


def _rows(rows: Sequence[int], limit: int = 10) -> str:
    listed = ", ".join(str(r) for r in rows[:limit])
    return f"[{listed}{f', … ({len(rows)} rows)' if len(rows) > limit else ''}]"


def check_unique_cells(index: pd.DataFrame, columns: Sequence[str], where: str) -> None:
    """Refuse an index in which one patch file is listed by several rows (the same patch could land in both
    the training and the validation split, or a pair in two splits): a DataError naming the duplicated rows.
    ``where`` starts the message (e.g. ``"site ARM: /data/ARM/index.csv"``)."""
    found = duplicated_cells(index, columns)
    if found:
        shown = "; ".join(f"column {c} cell {cell!r} in rows {_rows(rows)}" for c, cell, rows in found[:5])
        more = f" (and {len(found) - 5} more)" if len(found) > 5 else ""
        raise DataError(
            f"{where}: {len(found)} patch file(s) are listed by several rows: {shown}{more} (rows are "
            "0-based, header excluded). A patch listed twice can land in two splits (training and "
            "validation or test) and counts twice; remove the duplicated rows from the index"
        )
