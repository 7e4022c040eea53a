"""Figures of the results report (notebook 07): bar charts of the headline metrics, and the registration gain
against the site's true distortion (dose-response). The tables and checks are
:mod:`sisrlib.experiments.report`.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from sisrlib.experiments.report import GAINS, HEADLINE_METRICS, VARIANT_ORDER, dose_response, metric_value
from sisrlib.figures.base import pyplot, save_figure


def plot_summary(table: pd.DataFrame, out_dir: str | Path, stem: str = "results") -> Path:
    """Bar charts of the headline metrics per dataset and variant, saved as ``<stem>_summary.png``."""
    plt = pyplot()
    metrics = [(c, name) for c, name, _ in HEADLINE_METRICS if c in table.columns][:4]
    datasets = sorted(table["dataset"].unique())
    fig, axes = plt.subplots(1, max(len(metrics), 1), figsize=(4 * max(len(metrics), 1), 3.2), squeeze=False)
    width = 0.8 / len(VARIANT_ORDER)
    for ax, (column, name) in zip(axes[0], metrics, strict=False):
        for k, variant in enumerate(VARIANT_ORDER):
            values = [metric_value(table, d, variant, column) for d in datasets]
            ax.bar([i + k * width for i in range(len(datasets))], values, width, label=variant)
        ax.set_xticks([i + 0.4 - width / 2 for i in range(len(datasets))], datasets, rotation=20)
        ax.set_title(name)
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    return save_figure(fig, Path(out_dir) / f"{stem}_summary.png", dpi=120)


def plot_dose_response(table: pd.DataFrame, out_dir: str | Path, stem: str = "results") -> Path | None:
    """The registration gain against the site's true distortion (one point per dataset and variant), one panel
    per gain, saved as ``<stem>_dose_response.png``; None when no dataset has both a true distortion and a
    baseline to compare with (smoke profile, real data)."""
    frame = dose_response(table)
    gains = [w for _, w, _ in GAINS]
    if not frame.empty:
        frame = frame[frame["true_distortion"].notna() & frame[gains].notna().any(axis=1)]
    if frame.empty:
        return None
    plt = pyplot()
    fig, axes = plt.subplots(1, len(gains), figsize=(3.6 * len(gains), 3.4), squeeze=False)
    markers = {"geom": "o", "geomrad": "s"}
    for ax, what in zip(axes[0], gains, strict=True):
        for variant, group in frame.groupby("variant"):
            ax.scatter(
                group["true_distortion"], group[what], marker=markers.get(str(variant), "^"), label=variant
            )
            for _, r in group.iterrows():
                point = (r["true_distortion"], r[what])
                ax.annotate(str(r["dataset"]), point, fontsize=7, xytext=(3, 3), textcoords="offset points")
        ax.axhline(0.0, color="grey", lw=0.8)
        ax.set_xlabel("true distortion of the site (LR px)")
        ax.set_title(what, fontsize=9)
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    fig.suptitle("registration gain over baseline against the site's true distortion")
    fig.tight_layout()
    return save_figure(fig, Path(out_dir) / f"{stem}_dose_response.png")
