"""The benchmark's summary (normalised response of every metric to every distortion) and its output files."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sisrlib.atomic import write_text_atomic
from sisrlib.experiments.evaluation.writers import write_csv
from sisrlib.experiments.metrics_benchmark.params import DISTORTIONS, BenchmarkParams
from sisrlib.figures.metrics import plot_benchmark_metric


def summarise(table: pd.DataFrame) -> pd.DataFrame:
    """Normalised response of every metric to every distortion (and to blur).

    For a distortion: the range (max − min) of the metric along that distortion's grid without blur (MTF
    "none", else the sharpest MTF benchmarked); for blur: the range across MTF levels at zero distortion of
    the first panel. Each metric's ranges are divided by its largest, so 1 marks the distortion it responds to
    most and 0 one it ignores; the sign column tells the direction (+: the metric increases with the
    distortion).
    """
    rows = []
    for metric, frame in table.groupby("metric", sort=False):
        mtf_levels = list(dict.fromkeys(frame["mtf"]))
        sharp = "none" if "none" in mtf_levels else mtf_levels[-1]
        ranges: dict[str, float] = {}
        signs: dict[str, str] = {}
        for distortion in DISTORTIONS:
            curve = frame[(frame["distortion"] == distortion) & (frame["mtf"] == sharp)].sort_values("level")
            vals = curve["value"].to_numpy(dtype=float)
            finite = vals[np.isfinite(vals)]
            ranges[distortion] = float(finite.max() - finite.min()) if finite.size else math.nan
            signs[distortion] = _sign(finite)
        first = next(iter(DISTORTIONS))
        at_zero = frame[frame["distortion"] == first]
        at_zero = at_zero[at_zero["level"] == at_zero["level"].min()]
        # blur increases as the MTF decreases: order from sharp (none, high MTF) to blurred
        order = sorted(at_zero["mtf"], key=lambda m: -math.inf if m == "none" else -float(m))
        blur_vals = np.array([float(at_zero[at_zero["mtf"] == m]["value"].iloc[0]) for m in order])
        finite = blur_vals[np.isfinite(blur_vals)]
        ranges["blur"] = float(finite.max() - finite.min()) if finite.size > 1 else math.nan
        signs["blur"] = _sign(finite)
        top = max((v for v in ranges.values() if not math.isnan(v)), default=math.nan)
        row: dict[str, Any] = {"metric": metric}
        for name, value in ranges.items():
            row[name] = value / top if top and not math.isnan(top) and top > 0 else 0.0
        for name, sign in signs.items():
            row[f"{name}_sign"] = sign
        rows.append(row)
    return pd.DataFrame(rows)


def _sign(values: np.ndarray) -> str:
    if values.size < 2 or values[-1] == values[0]:
        return "0"
    return "+" if values[-1] > values[0] else "-"


def summary_markdown(summary: pd.DataFrame, digits: int = 2) -> str:
    """The summary as a Markdown table (normalised response with its direction, e.g. ``+0.83``)."""
    names = [*DISTORTIONS, "blur"]
    lines = ["| metric | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for _, row in summary.iterrows():
        cells = []
        for name in names:
            value = row[name]
            sign = row[f"{name}_sign"]
            if isinstance(value, float) and math.isnan(value):
                cells.append("n/a")
            else:
                cells.append(f"{'' if sign == '0' else sign}{value:.{digits}f}")
        lines.append(f"| {row['metric']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_outputs(
    table: pd.DataFrame, params: BenchmarkParams, figures: bool = True
) -> tuple[pd.DataFrame, list[Path]]:
    """Write ``benchmark.csv``, ``summary.csv``, ``summary.md`` and one figure per metric; returns the
    summary."""
    out = Path(params.output_dir)
    files = [write_csv(table, out / "benchmark.csv")]
    summary = summarise(table)
    files.append(write_csv(summary, out / "summary.csv"))
    md = out / "summary.md"
    write_text_atomic(md, summary_markdown(summary))
    files.append(md)
    if figures:
        fig_dir = Path(params.figures_dir) if params.figures_dir else out / "figures"
        fig_dir.mkdir(parents=True, exist_ok=True)
        files.append(write_csv(summary, fig_dir / "05_benchmark_summary.csv"))
        write_text_atomic(fig_dir / "05_benchmark_summary.md", summary_markdown(summary))
        files.append(fig_dir / "05_benchmark_summary.md")
        for metric, frame in table.groupby("metric", sort=False):
            panels: dict[str, tuple[str, Sequence[float], dict[str, Sequence[float]]]] = {}
            for distortion, label in DISTORTIONS.items():
                part = frame[frame["distortion"] == distortion]
                levels = sorted(part["level"].unique())
                curves = {}
                for mtf in dict.fromkeys(part["mtf"]):
                    curve = part[part["mtf"] == mtf].sort_values("level")
                    curves[str(mtf)] = curve["value"].tolist()
                panels[distortion] = (label, levels, curves)
            files.append(plot_benchmark_metric(str(metric), panels, fig_dir / f"05_benchmark_{metric}.png"))
    return summary, files
