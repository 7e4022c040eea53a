"""The data work of notebook 01 and ``sisr prepare-data``: build or open the embedded sites and describe them
(distortion table; the figures are drawn by :mod:`sisrlib.experiments.data_preparation`), or check that the
real datasets are where the environment variables say.

Outputs in ``figures_dir`` (embedded mode): ``01_site_layout.jpg``, ``01_mosaic_<dataset>.jpg`` (LR / HR /
true flow / true radiometric field), ``01_histograms_<dataset>.png`` (LR vs HR per band) and
``01_distortion_statistics.{csv,md}`` (one row per site, band group or split: flow norm mean/std/max in LR px,
radiometric bias and RMSE per band in DN, see :mod:`sisrlib.data.statistics`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sisrlib.atomic import atomic_output, write_text_atomic
from sisrlib.data.embedded import EmbeddedBuild, build_embedded, read_marker
from sisrlib.data.embedded_layout import (
    WORLDSTRAT_BLOCKS,
    WORLDSTRAT_HR_GAIN,
    WORLDSTRAT_HR_OFFSET,
    sen2venus_sites,
)
from sisrlib.data.embedded_simulation import REGIMES
from sisrlib.data.preparation_params import PreparationParams
from sisrlib.data.real_datasets import check_real_datasets
from sisrlib.data.sample import Sample
from sisrlib.data.sen2venus import Sen2VenusSite, available_sites, sen2venus_layout
from sisrlib.data.statistics import TABLE_BANDS, DistortionStats, to_markdown
from sisrlib.data.worldstrat import WorldStratDataset
from sisrlib.degradation import PsfKernel

GROUPS: dict[str, tuple[bool, bool]] = {"10m": (True, False), "20m": (False, True)}


def _evenly(n: int, k: int | None) -> list[int]:
    if k is None or n <= k:
        return list(range(n))
    return sorted(set(np.linspace(0, n - 1, k).round().astype(int).tolist()))


@dataclass
class DatasetView:
    """Samples of one embedded dataset part, for figures and statistics."""

    dataset: str  # "sen2venus-10m (x2)", ...
    label: str  # site or split
    role: str
    regime: str
    samples: list[Sample] = field(default_factory=list)
    target_gain: Sequence[float] | None = None
    target_offset: Sequence[float] | None = None


def embedded_views(out_dir: str | Path, max_patches: int | None = None) -> list[DatasetView]:
    """Read the embedded data through the real readers: every Sen2Venµs-like site in both band groups and
    every WorldStrat-like split, ``max_patches`` evenly spaced patches of each (None: all)."""
    out = Path(out_dir)
    specs = {s.name: s for s in sen2venus_sites()}
    views = []
    root = out / "sen2venus"
    for group, (l10, l20) in GROUPS.items():
        layout = sen2venus_layout(l10, l20, False)
        for name in available_sites(root):
            site = Sen2VenusSite(root / name, layout)
            spec = specs.get(name)
            view = DatasetView(
                f"sen2venus-{group} (x{layout.factor:g})",
                name,
                spec.role if spec else "?",
                spec.regime if spec else "?",
            )
            view.samples = [site[i] for i in _evenly(len(site), max_patches)]
            views.append(view)
    for factor in (4, 2):
        index = out / "worldstrat" / f"x{factor}" / "index.csv"
        for split in WORLDSTRAT_BLOCKS:
            ds = WorldStratDataset(index, split, min_correlation=-1.0)
            view = DatasetView(
                f"worldstrat (x{factor})", split, split, "strong", target_gain=WORLDSTRAT_HR_GAIN,
                target_offset=WORLDSTRAT_HR_OFFSET,
            )  # fmt: skip
            view.samples = [ds[i] for i in _evenly(len(ds), max_patches)]
            views.append(view)
    return views


def distortion_table(
    views: Sequence[DatasetView], mtf: float | None = None, kernel: PsfKernel = "exact"
) -> pd.DataFrame:
    """One row per view: flow norm statistics (LR px) and radiometric bias/RMSE per band (DN). ``mtf`` (None:
    each view's regime's) and ``kernel``: the simulated LR sensor's, with which the residual is measured."""
    rows = []
    for v in views:
        stats = DistortionStats()
        m = mtf if mtf is not None else REGIMES.get(v.regime, REGIMES["strong"]).mtf
        for s in v.samples:
            stats.add(s, m, 4, v.target_gain, v.target_offset, kernel)
        rows.append(
            {
                "dataset": v.dataset,
                "site_or_split": v.label,
                "role": v.role,
                "regime": v.regime,
                **stats.row(),
            }
        )
    return pd.DataFrame.from_records(rows)


def write_table(table: pd.DataFrame, folder: str | Path, stem: str) -> tuple[Path, Path]:
    """``<stem>.csv`` and ``<stem>.md`` in ``folder``."""
    f = Path(folder)
    f.mkdir(parents=True, exist_ok=True)
    csv, md = f / f"{stem}.csv", f / f"{stem}.md"
    with atomic_output(csv) as tmp:
        table.to_csv(tmp, index=False, float_format="%.4f")
    write_text_atomic(md, to_markdown(compact_table(table)))
    return csv, md


def compact_table(table: pd.DataFrame) -> pd.DataFrame:
    """The statistics table for reading: flow ``mean ± std`` and one ``bias / RMSE`` column per band."""
    out = table[["dataset", "site_or_split", "role", "regime", "patches"]].copy()
    out["flow norm (LR px)"] = [
        f"{m:.2f} ± {s:.2f}"
        for m, s in zip(table.flow_norm_mean_lr_px, table.flow_norm_std_lr_px, strict=True)
    ]
    for band in TABLE_BANDS:
        bias, rmse = table[f"bias_{band}_dn"], table[f"rmse_{band}_dn"]
        out[f"{band} bias / RMSE (DN)"] = [
            "" if np.isnan(b) else f"{b:.0f} / {r:.0f}" for b, r in zip(bias, rmse, strict=True)
        ]
    return out


@dataclass
class PreparationResult:
    """What :func:`prepare_data` produced: the build, the distortion table, the files written (the table's;
    figures are added by :func:`sisrlib.experiments.data_preparation.prepare`), the views the table was
    computed from, and in real mode the dataset paths."""

    build: EmbeddedBuild | None
    table: pd.DataFrame | None
    figures: list[Path] = field(default_factory=list)
    real_paths: dict[str, Path] = field(default_factory=dict)
    views: list[DatasetView] = field(default_factory=list)


def prepare_data(params: PreparationParams, log: Callable[[str], None] | None = None) -> PreparationResult:
    """Notebook 01's data work: build/reuse the embedded sites (or check the real datasets), then write the
    distortion table to ``params.figures_dir`` (the figures: :mod:`sisrlib.experiments.data_preparation`)."""
    say = log or print
    if params.mode == "real":
        paths = check_real_datasets(params.real_datasets)
        for var, p in paths.items():
            say(f"{var} = {p}")
        return PreparationResult(None, None, real_paths=paths)
    build = build_embedded(
        params.out_dir, params.seed, params.profile, params.force, log=say, psf_kernel=params.psf_kernel
    )
    say(
        f"embedded sites {'built' if build.built else 'already complete (no-op)'} in {build.out_dir} "
        f"({build.seconds:.1f} s)"
    )
    views = embedded_views(build.out_dir, params.max_statistics_patches)
    table = distortion_table(views, kernel=params.psf_kernel)
    out = Path(params.figures_dir)
    written = list(write_table(table, out, "01_distortion_statistics"))
    return PreparationResult(build, table, written, views=views)


def marker_summary(out_dir: str | Path) -> dict[str, Any]:
    """The summary stored in a complete build's marker (patch counts, offsets), or {}."""
    marker = read_marker(out_dir)
    return marker.get("summary", {}) if marker else {}
