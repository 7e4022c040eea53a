"""What notebook 01 and ``sisr prepare-data`` do: build or open the embedded sites and describe them (figures,
distortion table), or check that the real datasets are where the environment variables say.

Outputs in ``figures_dir`` (embedded mode): ``01_site_layout.jpg``, ``01_mosaic_<dataset>.jpg`` (LR / HR /
true flow / true radiometric field), ``01_histograms_<dataset>.png`` (LR vs HR per band) and
``01_distortion_statistics.{csv,md}`` (one row per site, band group or split: flow norm mean/std/max in LR px,
radiometric bias and RMSE per band in DN, see :mod:`sisrlib.data.statistics`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sisrlib.data.embedded import (
    REGIMES,
    WORLDSTRAT_BLOCKS,
    WORLDSTRAT_HR_GAIN,
    WORLDSTRAT_HR_OFFSET,
    EmbeddedBuild,
    PreparationParams,
    build_embedded,
    load_scene,
    read_marker,
    sen2venus_sites,
)
from sisrlib.data.sample import Sample
from sisrlib.data.sen2venus import (
    S2V1_SITES,
    S2V2_SITES,
    TESTING_SITES,
    Sen2VenusSite,
    available_sites,
    sen2venus_layout,
)
from sisrlib.data.statistics import TABLE_BANDS, DistortionStats, to_markdown
from sisrlib.data.worldstrat import WorldStratDataset
from sisrlib.errors import DataError

GROUPS: dict[str, tuple[bool, bool]] = {"10m": (True, False), "20m": (False, True)}


def real_dataset_problems(variables: Mapping[str, str]) -> list[str]:
    """Every missing environment variable or path of the real datasets (empty list: all present).

    ``variables``: name → ``"sen2venus"`` (a folder holding the site folders of the s2v1, s2v2 and test lists,
    each with an ``index.csv``) or ``"worldstrat"`` (a wsx ``index.csv``, or its folder). Checks existence
    only: it takes well under a second.
    """
    problems = []
    for var, kind in variables.items():
        value = os.environ.get(var, "")
        what = (
            "the folder of the Sen2Venµs v2 site folders"
            if kind == "sen2venus"
            else "a WorldStrat-derived index.csv (wsx2/wsx4, Zenodo 14734095)"
        )
        if not value:
            problems.append(f"environment variable {var} is not set (export {var}=/path/to/{kind}: {what})")
            continue
        path = Path(value)
        if kind == "sen2venus":
            if not path.is_dir():
                problems.append(f"{var}={value}: no such folder ({what})")
                continue
            needed = sorted(set(S2V1_SITES) | set(S2V2_SITES) | set(TESTING_SITES))
            missing = [s for s in needed if not (path / s / "index.csv").is_file()]
            if missing:
                problems.append(f"{var}={value}: missing site folder(s) with an index.csv: {missing}")
        else:
            index = path / "index.csv" if path.is_dir() else path
            if not index.is_file():
                problems.append(f"{var}={value}: no index.csv at {index} ({what})")
    return problems


def check_real_datasets(variables: Mapping[str, str]) -> dict[str, Path]:
    """The paths of the real datasets, or a DataError naming every missing variable and path."""
    problems = real_dataset_problems(variables)
    if problems:
        raise DataError("the real datasets are not available:\n  - " + "\n  - ".join(problems))
    return {var: Path(os.environ[var]) for var in variables}


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


def distortion_table(views: Sequence[DatasetView], mtf: float | None = None) -> pd.DataFrame:
    """One row per view: flow norm statistics (LR px) and radiometric bias/RMSE per band (DN)."""
    rows = []
    for v in views:
        stats = DistortionStats()
        m = mtf if mtf is not None else REGIMES.get(v.regime, REGIMES["strong"]).mtf
        for s in v.samples:
            stats.add(s, m, 4, v.target_gain, v.target_offset)
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
    table.to_csv(csv, index=False, float_format="%.4f")
    md.write_text(to_markdown(compact_table(table)), encoding="utf-8")
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


def layout_figure() -> Any:
    """The scene with the embedded Sen2Venµs-like sites and WorldStrat-like blocks."""
    from sisrlib.plots_data import plot_site_layout

    scene = load_scene()
    tc = scene.bands_10m[[2, 1, 0], ::2, ::2]
    lo, hi = (
        np.percentile(tc, 2, axis=(1, 2), keepdims=True),
        np.percentile(tc, 98, axis=(1, 2), keepdims=True),
    )
    background = np.clip((tc - lo) / (hi - lo), 0, 1)
    colours = {"train": "yellow", "test": "red", "val": "cyan"}
    regions = [
        (f"{s.name} ({s.regime})", s.region, colours[s.role])
        for s in sen2venus_sites()
        if "S2V2" not in s.name
    ]
    h, w = scene.bands_10m.shape[1:]
    bh, bw = h // 4 // 2, w // 4 // 2
    for split, blocks in WORLDSTRAT_BLOCKS.items():
        for br, bc in blocks:
            regions.append(
                (f"ws {split}", (br * bh + 4, (br + 1) * bh - 4, bc * bw + 4, (bc + 1) * bw - 4), "white")
            )
    return plot_site_layout(
        background,
        20.0,
        regions,
        "Embedded sites (yellow: training, red: test; the S2V2 sites cover the S2V1 ground)\n"
        "white: blocks of the WorldStrat-like split",
    )


@dataclass
class PreparationResult:
    """What :func:`prepare` produced."""

    build: EmbeddedBuild | None
    table: pd.DataFrame | None
    figures: list[Path] = field(default_factory=list)
    real_paths: dict[str, Path] = field(default_factory=dict)


def prepare(
    params: PreparationParams, log: Callable[[str], None] | None = None, figures: bool = True
) -> PreparationResult:
    """Run notebook 01's work: build/reuse the embedded sites (or check the real datasets), then write the
    figures and the distortion table to ``params.figures_dir`` (``figures=False``: the table only)."""
    say = log or print
    if params.mode == "real":
        paths = check_real_datasets(params.real_datasets)
        for var, p in paths.items():
            say(f"{var} = {p}")
        return PreparationResult(None, None, real_paths=paths)
    build = build_embedded(params.out_dir, params.seed, params.profile, params.force, log=say)
    say(
        f"embedded sites {'built' if build.built else 'already complete (no-op)'} in {build.out_dir} "
        f"({build.seconds:.1f} s)"
    )
    views = embedded_views(build.out_dir, params.max_statistics_patches)
    table = distortion_table(views)
    out = Path(params.figures_dir)
    written = list(write_table(table, out, "01_distortion_statistics"))
    if figures:
        written += write_figures(views, out, params.mosaic_patches)
    return PreparationResult(build, table, written)


def write_figures(views: Sequence[DatasetView], folder: str | Path, per_view: int = 2) -> list[Path]:
    """Layout, mosaics and histograms of the embedded data into ``folder``."""
    import matplotlib.pyplot as plt

    from sisrlib.plots_data import plot_band_histograms, plot_pair_mosaic

    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    fig = layout_figure()
    paths.append(out / "01_site_layout.jpg")
    fig.savefig(paths[-1], dpi=90, pil_kwargs={"quality": 85})
    plt.close(fig)
    for dataset in dict.fromkeys(v.dataset for v in views):
        parts = [v for v in views if v.dataset == dataset]
        samples, labels = [], []
        for v in parts:
            for s in v.samples[:per_view]:
                samples.append(s)
                labels.append(f"{v.label} ({v.regime})")
        slug = dataset.replace(" ", "").replace("(", "_").replace(")", "")
        fig = plot_pair_mosaic(samples, labels, f"{dataset}: LR input, HR target, true flow, true radiometry")
        paths.append(out / f"01_mosaic_{slug}.jpg")
        fig.savefig(paths[-1], dpi=80, pil_kwargs={"quality": 85})
        plt.close(fig)
        all_samples = [s for v in parts for s in v.samples]
        unit = "other units (SPOT-like)" if dataset.startswith("worldstrat") else "DN"
        fig = plot_band_histograms(all_samples, f"{dataset}: LR vs HR values per band", unit)
        paths.append(out / f"01_histograms_{slug}.png")
        fig.savefig(paths[-1], dpi=90)
        plt.close(fig)
    return paths


def marker_summary(out_dir: str | Path) -> dict[str, Any]:
    """The summary stored in a complete build's marker (patch counts, offsets), or {}."""
    marker = read_marker(out_dir)
    return marker.get("summary", {}) if marker else {}
