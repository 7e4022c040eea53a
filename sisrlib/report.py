"""Gather the evaluation results of every run into the paper's results table, and check the paper's mechanism.

Inputs are the ``metrics.csv`` files written by :mod:`sisrlib.evaluation` (one row per model: ``model``,
``dataset``, ``variant``, then band-averaged ``<metric>`` and per-band ``<metric>_<band>`` columns). Outputs
are the results table in Markdown, CSV and LaTeX, and a summary figure per headline metric.
"""

from __future__ import annotations

import glob
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from sisrlib.metrics.atomic import write_text_atomic

#: The variants of the paper, in display order (bicubic is the floor).
VARIANT_ORDER: tuple[str, ...] = ("bicubic", "baseline", "geom", "geomrad")

#: Headline columns of the results table: (column in metrics.csv, display name, higher is better?).
HEADLINE_METRICS: tuple[tuple[str, str, bool], ...] = (
    ("geom_mean", "geom. distortion (LR px)", False),
    ("frr", "FRR (%)", True),
    ("fro", "FRO (%)", False),
    ("fru", "FRU (%)", False),
    ("lr_rmse", "LR RMSE (refl.)", False),
    ("lr_bias", "LR bias (refl.)", False),
    ("psnr", "PSNR (dB)", True),
    ("ssim", "SSIM", True),
)


@dataclass(frozen=True)
class ReportParams:
    """Parameters of ``notebooks/07_report.ipynb``."""

    #: Glob patterns (relative to the working directory) of the metrics.csv files to gather.
    metrics_files: list[str] = field(default_factory=lambda: ["build/quick/evaluation/*/metrics.csv"])
    #: Folder of the tables and summary figures.
    figures_dir: str = "figures/quick"
    #: Stem of the table files (``<stem>.md``, ``.csv``, ``.tex``).
    table_name: str = "results"
    #: Fail (raise) when the paper's mechanism does not hold on a dataset.
    require_mechanism: bool = False


def find_metrics_files(patterns: Iterable[str]) -> list[Path]:
    """Every file matching one of the glob ``patterns``, sorted; an empty result is an error naming them."""
    files = sorted({Path(p) for pattern in patterns for p in glob.glob(pattern)})
    if not files:
        raise FileNotFoundError(
            f"no metrics.csv matches {list(patterns)}; run the evaluation notebook (04) of this profile first"
        )
    return files


def gather(files: Sequence[Path]) -> pd.DataFrame:
    """Concatenate ``metrics.csv`` files; one row per (dataset, variant), bicubic rows de-duplicated."""
    frames = []
    for f in files:
        df = pd.read_csv(f)
        missing = {"model", "dataset", "variant"} - set(df.columns)
        if missing:
            raise ValueError(f"{f}: missing column(s) {sorted(missing)}; found {list(df.columns)}")
        df["source"] = str(f)
        frames.append(df)
    table = pd.concat(frames, ignore_index=True)
    table = table.drop_duplicates(subset=["dataset", "variant"], keep="last")
    order = {v: i for i, v in enumerate(VARIANT_ORDER)}
    table["_order"] = table["variant"].map(lambda v: order.get(v, len(order)))
    return table.sort_values(["dataset", "_order"]).drop(columns="_order").reset_index(drop=True)


def headline_table(table: pd.DataFrame) -> pd.DataFrame:
    """The results table: dataset, variant and the headline metrics present in ``table``."""
    cols = [c for c, _, _ in HEADLINE_METRICS if c in table.columns]
    out = table[["dataset", "variant", *cols]].copy()
    return out.rename(columns={c: name for c, name, _ in HEADLINE_METRICS})


@dataclass(frozen=True)
class MechanismCheck:
    """One claim of the paper checked on one dataset."""

    dataset: str
    claim: str
    holds: bool
    detail: str


def _value(table: pd.DataFrame, dataset: str, variant: str, column: str) -> float:
    rows = table[(table["dataset"] == dataset) & (table["variant"] == variant)]
    if rows.empty or column not in rows.columns:
        return math.nan
    return float(rows[column].iloc[0])


def check_mechanism(table: pd.DataFrame) -> list[MechanismCheck]:
    """The paper's headline on every dataset (design.md): geom < baseline in geometric distortion with a
    higher FRR; geom+rad better LR fidelity than geom; bicubic the floor (lowest FRR)."""
    checks: list[MechanismCheck] = []
    for dataset in sorted(table["dataset"].unique()):

        def v(variant: str, column: str, ds: str = dataset) -> float:
            return _value(table, ds, variant, column)

        claims = [
            (
                "geom leaves less geometric distortion than baseline",
                v("geom", "geom_mean"),
                v("baseline", "geom_mean"),
                "<",
            ),
            ("geom has a higher FRR than baseline", v("geom", "frr"), v("baseline", "frr"), ">"),
            ("geom+rad has a lower LR RMSE than geom", v("geomrad", "lr_rmse"), v("geom", "lr_rmse"), "<"),
            (
                "bicubic has the lowest FRR",
                v("bicubic", "frr"),
                min(v("baseline", "frr"), v("geom", "frr"), v("geomrad", "frr")),
                "<",
            ),
        ]
        for claim, left, right, op in claims:
            if math.isnan(left) or math.isnan(right):
                checks.append(MechanismCheck(dataset, claim, False, "missing values"))
                continue
            holds = left < right if op == "<" else left > right
            checks.append(MechanismCheck(dataset, claim, holds, f"{left:.4g} {op} {right:.4g}"))
    return checks


def mechanism_frame(checks: Sequence[MechanismCheck]) -> pd.DataFrame:
    """Checks as a table (dataset, claim, holds, detail)."""
    return pd.DataFrame([c.__dict__ for c in checks], columns=["dataset", "claim", "holds", "detail"])


def to_markdown(table: pd.DataFrame, digits: int = 4) -> str:
    """A GitHub-flavoured Markdown table (numbers with ``digits`` significant digits)."""

    def cell(x: object) -> str:
        if isinstance(x, float):
            return "" if math.isnan(x) else f"{x:.{digits}g}"
        return str(x).replace("|", "\\|")

    header = "| " + " | ".join(str(c) for c in table.columns) + " |"
    rule = "|" + "|".join("---" for _ in table.columns) + "|"
    rows = ["| " + " | ".join(cell(x) for x in row) + " |" for row in table.itertuples(index=False)]
    return "\n".join([header, rule, *rows]) + "\n"


def write_tables(table: pd.DataFrame, out_dir: str | Path, stem: str = "results") -> dict[str, Path]:
    """Write ``table`` as ``<stem>.md``, ``.csv`` and ``.tex`` in ``out_dir``; returns the paths."""
    out = Path(out_dir)
    paths = {"md": out / f"{stem}.md", "csv": out / f"{stem}.csv", "tex": out / f"{stem}.tex"}
    write_text_atomic(paths["md"], to_markdown(table))
    write_text_atomic(paths["csv"], table.to_csv(index=False, float_format="%.6g"))
    write_text_atomic(paths["tex"], table.to_latex(index=False, float_format="%.4g", escape=True))
    return paths


def plot_summary(table: pd.DataFrame, out_dir: str | Path, stem: str = "results") -> Path:
    """Bar charts of the headline metrics per dataset and variant, saved as ``<stem>_summary.png``."""
    import matplotlib.pyplot as plt

    metrics = [(c, name) for c, name, _ in HEADLINE_METRICS if c in table.columns][:4]
    datasets = sorted(table["dataset"].unique())
    fig, axes = plt.subplots(1, max(len(metrics), 1), figsize=(4 * max(len(metrics), 1), 3.2), squeeze=False)
    width = 0.8 / len(VARIANT_ORDER)
    for ax, (column, name) in zip(axes[0], metrics, strict=False):
        for k, variant in enumerate(VARIANT_ORDER):
            values = [_value(table, d, variant, column) for d in datasets]
            ax.bar([i + k * width for i in range(len(datasets))], values, width, label=variant)
        ax.set_xticks([i + 0.4 - width / 2 for i in range(len(datasets))], datasets, rotation=20)
        ax.set_title(name)
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    path = Path(out_dir) / f"{stem}_summary.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
