"""Gather the evaluation results of every run into the paper's results table, and check the paper's mechanism.

Inputs are the ``metrics.csv`` files written by :mod:`sisrlib.experiments.evaluation` (one row per model:
``model``, ``dataset``, ``variant``, band-averaged ``<metric>`` and per-band ``<metric>_<band>`` columns).
Outputs are the results table in Markdown, CSV and LaTeX; its figures (summary bars, dose-response) are drawn
by :mod:`sisrlib.figures.report`.
"""

from __future__ import annotations

import glob
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from sisrlib.atomic import write_text_atomic
from sisrlib.experiments.evaluation.files import CALIBRATION_FILE, CEILINGS_FILE

#: The variants of the paper, in display order (bicubic is the floor).
VARIANT_ORDER: tuple[str, ...] = ("bicubic", "baseline", "geom", "geomrad")

#: Headline columns of the results table: (column in metrics.csv, display name, higher is better?).
HEADLINE_METRICS: tuple[tuple[str, str, bool], ...] = (
    ("geom_mean", "geom. distortion (LR px)", False),
    ("oracle_geom", "oracle distortion (LR px)", False),
    ("frr", "FRR (%)", True),
    ("fro", "FRO (%)", False),
    ("fru", "FRU (%)", False),
    ("lr_rmse", "LR RMSE (refl.)", False),
    ("lr_bias", "LR bias (refl.)", False),
    ("psnr", "PSNR (dB)", True),
    ("ssim", "SSIM", True),
    ("oracle_psnr", "oracle PSNR (dB)", True),
    ("oracle_ssim", "oracle SSIM", True),
    ("oracle_frr", "oracle FRR (%)", True),
    ("hf_excess_db", "HF above bicubic (dB)", True),
)

#: Thresholds of the acceptance claims on the strong-distortion (s2v1-like) sites.
FRU_MAX = 2.0
FRR_MIN = 15.0
DISTORTION_MAX = 0.30
BASELINE_DISTORTION_MIN = 0.6
#: On the WorldStrat-like pairs (HR in other radiometric units): geom+rad's |LR bias| ≤ geom's / this.
LR_BIAS_DIVISOR = 3.0
#: (metric, what the registration gain is) of the dose-response: gain = geom − baseline (or baseline − geom).
GAINS: tuple[tuple[str, str, bool], ...] = (
    ("geom_mean", "distortion removed (LR px)", False),
    ("oracle_geom", "distortion removed, oracle (LR px)", False),
    ("frr", "FRR gained (points)", True),
    ("oracle_psnr", "oracle PSNR gained (dB)", True),
)


#: How the mechanism table names the ceilings it quotes (``sisrlib.experiments.evaluation.ceilings``).
HR_RADIOMETRY_CEILING = "ceiling: the target in the input's geometry with the HR radiometry"
TRAINING_OFFSET_REFERENCE = "a model keeping exactly the training sites' systematic offset"
TEST_OFFSET_REFERENCE = "the test site's"


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


def gather_calibration(files: Sequence[Path]) -> pd.DataFrame:
    """The ``distortion_calibration.csv`` written beside the ``metrics.csv`` files (what ``geom_mean`` reads
    on known shifts, blurs, gains and added detail, per dataset), concatenated, with ``above_floor_px`` = the
    reading minus the network's floor on the undistorted image; empty when no evaluation wrote one."""
    paths = [f.parent / CALIBRATION_FILE for f in files]
    frames = [pd.read_csv(p) for p in paths if p.is_file()]
    frames = [f for f in frames if not f.empty]
    if not frames:
        return pd.DataFrame(columns=["dataset", "kind", "level", "true_px", "read_px", "read_std_px"])
    table = pd.concat(frames, ignore_index=True)
    floor = table[table["kind"] == "none"].set_index("dataset")["read_px"]
    table["above_floor_px"] = table["read_px"] - table["dataset"].map(floor)
    first = ["dataset", "kind", "level", "true_px", "read_px", "above_floor_px", "read_std_px"]
    return table[[c for c in first if c in table.columns]]


#: Columns of the ceilings table (``gather_ceilings``), after ``dataset`` and ``reference``.
CEILING_COLUMNS: tuple[str, ...] = (
    "offset_px",
    "oracle_psnr",
    "oracle_geom",
    "oracle_offset",
    "geom_mean",
    "psnr",
    "frr",
    "lr_rmse",
)


def gather_ceilings(files: Sequence[Path]) -> pd.DataFrame:
    """The ``ceilings.csv`` written beside the ``metrics.csv`` files (the reference images of
    ``sisrlib.experiments.evaluation.ceilings`` scored on each simulated dataset), concatenated, one row per
    (dataset, reference) with :data:`CEILING_COLUMNS`; empty when no evaluation wrote one (real data)."""
    frames = [pd.read_csv(f.parent / CEILINGS_FILE) for f in files if (f.parent / CEILINGS_FILE).is_file()]
    frames = [f for f in frames if not f.empty]
    columns = ["dataset", "reference", *CEILING_COLUMNS]
    if not frames:
        return pd.DataFrame(columns=columns)
    table = pd.concat(frames, ignore_index=True).drop_duplicates(subset=["dataset", "reference"], keep="last")
    return table[[c for c in columns if c in table.columns]].reset_index(drop=True)


def ceiling_value(ceilings: pd.DataFrame | None, dataset: str, reference: str, column: str) -> float:
    """``column`` of the ceiling ``reference`` on ``dataset``; NaN when absent."""
    if ceilings is None or ceilings.empty:
        return math.nan
    return _cell(ceilings, dataset, "reference", reference, column)


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


def _cell(table: pd.DataFrame, dataset: str, key: str, value: str, column: str) -> float:
    """``column`` of the first row of ``table`` whose ``dataset`` and ``key`` columns are ``dataset`` and
    ``value``; NaN when there is no such row or column."""
    rows = table[(table["dataset"] == dataset) & (table[key] == value)]
    if rows.empty or column not in rows.columns:
        return math.nan
    return float(rows[column].iloc[0])


def metric_value(table: pd.DataFrame, dataset: str, variant: str, column: str) -> float:
    """``column`` of the row (``dataset``, ``variant``) of ``table``; NaN when the row or column is absent."""
    return _cell(table, dataset, "variant", variant, column)


def _check(
    dataset: str,
    claim: str,
    left: float,
    right: float,
    op: str,
    references: Sequence[tuple[str, float]] = (),
) -> MechanismCheck:
    """``left op right``; ``references`` (what, value): what the data allow ``left`` to be (the ceilings),
    written after the numbers when known."""
    if math.isnan(left) or math.isnan(right):
        return MechanismCheck(dataset, claim, False, "missing values")
    holds = {"<": left < right, ">": left > right, "<=": left <= right, ">=": left >= right}[op]
    detail = f"{left:.4g} {op} {right:.4g}"
    known = [f"{what}: {value:.4g}" for what, value in references if not math.isnan(value)]
    if known:
        detail += f" ({'; '.join(known)})"
    return MechanismCheck(dataset, claim, holds, detail)


def strong_distortion(dataset: str) -> bool:
    """Whether a dataset label names strong-distortion (s2v1-like) sites: ``s2v1x2``, ``s2v1x4``."""
    return dataset.startswith("s2v1")


def radiometric_distortion(dataset: str) -> bool:
    """Whether a dataset label names WorldStrat-like pairs (``wsx2``, ``wsx4``), whose HR is stored in other
    radiometric units than the LR."""
    return dataset.startswith("ws")


def registration_gain(table: pd.DataFrame, dataset: str, variant: str, column: str, higher: bool) -> float:
    """What registration brings on ``column``: ``variant − baseline`` (``higher`` is better) or
    ``baseline − variant``; NaN when either is missing."""
    v, b = metric_value(table, dataset, variant, column), metric_value(table, dataset, "baseline", column)
    return v - b if higher else b - v


def check_mechanism(table: pd.DataFrame, ceilings: pd.DataFrame | None = None) -> list[MechanismCheck]:
    """The paper's mechanism and the acceptance claims, as checks with the numbers.

    On every dataset: geom < baseline in geometric distortion with a higher FRR; geom+rad a lower LR RMSE
    than geom; bicubic the floor (lowest FRR). On the strong-distortion (s2v1-like) datasets, for geom and
    geom+rad: FRU ≤ 2 %, FRR ≥ 15 %, the spectrum above bicubic's beyond 0.5 Nyquist in every band
    (``hf_excess_db > 0``), residual distortion (``geom_mean`` and ``oracle_geom``) ≤ 0.30 LR px while
    baseline's is ≥ 0.6, and an oracle PSNR above baseline's and bicubic's. For every ``s2v1xN`` with an
    ``s2v2xN``: the registration gain of geom (distortion removed, FRR gained, oracle PSNR gained) is larger
    on the strong sites. On the WorldStrat-like datasets (``ws*``), geom+rad's |LR bias| is at most a third of
    geom's. A dataset or a column that is absent gives no check (smoke profile) or a failed check
    that says "missing values".

    ``ceilings`` (:func:`gather_ceilings`, optional): the details of the claims the data bound quote them:
    geom's oracle PSNR (``hr_radiometry``), baseline's residual distortion (``training_offset``,
    ``test_offset``).
    """
    checks: list[MechanismCheck] = []
    datasets = sorted(table["dataset"].unique())
    for dataset in datasets:

        def v(variant: str, column: str, ds: str = dataset) -> float:
            return metric_value(table, ds, variant, column)

        checks += [
            _check(
                dataset,
                "geom leaves less geometric distortion than baseline",
                v("geom", "geom_mean"),
                v("baseline", "geom_mean"),
                "<",
            ),
            _check(
                dataset, "geom has a higher FRR than baseline", v("geom", "frr"), v("baseline", "frr"), ">"
            ),
            _check(
                dataset,
                "geom+rad has a lower LR RMSE than geom",
                v("geomrad", "lr_rmse"),
                v("geom", "lr_rmse"),
                "<",
            ),
            _check(
                dataset,
                "bicubic has the lowest FRR",
                v("bicubic", "frr"),
                min(v("baseline", "frr"), v("geom", "frr"), v("geomrad", "frr")),
                "<",
            ),
        ]
        if radiometric_distortion(dataset):
            checks.append(
                _check(
                    dataset,
                    f"geom+rad: |LR bias| ≤ |geom's| / {LR_BIAS_DIVISOR:g}",
                    abs(v("geomrad", "lr_bias")),
                    abs(v("geom", "lr_bias")) / LR_BIAS_DIVISOR,
                    "<=",
                )
            )
        if not strong_distortion(dataset):
            continue
        for variant, name in (("geom", "geom"), ("geomrad", "geom+rad")):
            checks += [
                _check(dataset, f"{name}: FRU ≤ {FRU_MAX:g} %", v(variant, "fru"), FRU_MAX, "<="),
                _check(dataset, f"{name}: FRR ≥ {FRR_MIN:g} %", v(variant, "frr"), FRR_MIN, ">="),
                _check(
                    dataset,
                    f"{name}: spectrum above bicubic's beyond 0.5 Nyquist in every band (min dB excess)",
                    v(variant, "hf_excess_db"),
                    0.0,
                    ">",
                ),
                _check(
                    dataset,
                    f"{name}: residual distortion geom_mean ≤ {DISTORTION_MAX:g} LR px",
                    v(variant, "geom_mean"),
                    DISTORTION_MAX,
                    "<=",
                ),
                _check(
                    dataset,
                    f"{name}: residual distortion oracle_geom ≤ {DISTORTION_MAX:g} LR px",
                    v(variant, "oracle_geom"),
                    DISTORTION_MAX,
                    "<=",
                ),
                _check(
                    dataset,
                    f"{name}: oracle PSNR above baseline's",
                    v(variant, "oracle_psnr"),
                    v("baseline", "oracle_psnr"),
                    ">",
                ),
                _check(
                    dataset,
                    f"{name}: oracle PSNR above bicubic's",
                    v(variant, "oracle_psnr"),
                    v("bicubic", "oracle_psnr"),
                    ">",
                    [
                        (
                            HR_RADIOMETRY_CEILING,
                            ceiling_value(ceilings, dataset, "hr_radiometry", "oracle_psnr"),
                        )
                    ]
                    if variant == "geom"
                    else [],
                ),
            ]
        for column in ("geom_mean", "oracle_geom"):
            checks.append(
                _check(
                    dataset,
                    f"baseline: residual distortion {column} ≥ {BASELINE_DISTORTION_MIN:g} LR px",
                    v("baseline", column),
                    BASELINE_DISTORTION_MIN,
                    ">=",
                    [
                        (
                            TRAINING_OFFSET_REFERENCE,
                            ceiling_value(ceilings, dataset, "training_offset", column),
                        ),
                        (TEST_OFFSET_REFERENCE, ceiling_value(ceilings, dataset, "test_offset", column)),
                    ],
                )
            )
    for strong in datasets:
        weak = strong.replace("s2v1", "s2v2", 1)
        if not strong_distortion(strong) or weak not in datasets:
            continue
        for column, what, higher in GAINS:
            checks.append(
                _check(
                    f"{strong} vs {weak}",
                    f"geom's registration gain ({what}) larger on {strong} than on {weak}",
                    registration_gain(table, strong, "geom", column, higher),
                    registration_gain(table, weak, "geom", column, higher),
                    ">",
                )
            )
    return checks


def dose_response(table: pd.DataFrame) -> pd.DataFrame:
    """One row per (dataset, variant ∈ geom, geomrad): the site's true distortion (``true_geom_mean``, LR px,
    the mean norm of the stored true flow; NaN on real data) and the registration gains over baseline
    (``GAINS``)."""
    rows = []
    for dataset in sorted(table["dataset"].unique()):
        true = metric_value(table, dataset, "baseline", "true_geom_mean")
        if math.isnan(true):
            true = metric_value(table, dataset, "bicubic", "true_geom_mean")
        for variant in ("geom", "geomrad"):
            if table[(table["dataset"] == dataset) & (table["variant"] == variant)].empty:
                continue
            row: dict[str, object] = {"dataset": dataset, "variant": variant, "true_distortion": true}
            for column, what, higher in GAINS:
                row[what] = registration_gain(table, dataset, variant, column, higher)
            rows.append(row)
    return pd.DataFrame(rows, columns=["dataset", "variant", "true_distortion", *[w for _, w, _ in GAINS]])


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
