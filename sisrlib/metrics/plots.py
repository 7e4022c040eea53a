"""Figures of the evaluation and of the metrics benchmark (matplotlib, saved to files; headless-safe)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sisrlib.metrics.atomic import atomic_output


def _pyplot() -> Any:
    """``matplotlib.pyplot`` (matplotlib falls back to the Agg backend by itself when there is no display)."""
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig: Any, path: str | Path) -> Path:
    """Save ``fig`` atomically (temporary name, then rename) and close it."""
    try:
        with atomic_output(path) as tmp:
            fig.savefig(tmp, dpi=100)
    finally:
        _pyplot().close(fig)
    return Path(path)


def plot_fft_profiles(
    freqs: np.ndarray,
    profiles_db: Mapping[str, np.ndarray],
    bands: Sequence[str],
    path: str | Path,
    title: str | None = None,
) -> Path:
    """One panel per band: signal attenuation (dB relative to ring 1) against frequency (relative to Nyquist),
    one curve per entry of ``profiles_db`` (label → ``[C, R]`` dB profile, e.g. target, bicubic input,
    predictions)."""
    plt = _pyplot()
    n = len(bands)
    cols = min(n, 4)
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 3.0 * rows), squeeze=False, sharey=True)
    for k, band in enumerate(bands):
        ax = axes[k // cols][k % cols]
        for label, prof in profiles_db.items():
            ax.plot(freqs[1:], np.asarray(prof)[k, 1:], label=label, lw=1.2)
        ax.set_title(band)
        ax.set_xlabel("frequency (relative to Nyquist)")
        ax.grid(alpha=0.3)
        if k % cols == 0:
            ax.set_ylabel("signal attenuation (dB)")
    for k in range(n, rows * cols):
        axes[k // cols][k % cols].axis("off")
    axes[0][0].legend(fontsize=7)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return save_figure(fig, path)


def plot_benchmark_metric(
    metric: str,
    panels: Mapping[str, tuple[str, Sequence[float], Mapping[str, Sequence[float]]]],
    path: str | Path,
) -> Path:
    """Four panels (one per distortion: title → (x label, levels, {MTF label: metric values})), one curve per
    MTF."""
    plt = _pyplot()
    fig, axes = plt.subplots(2, 2, figsize=(9.0, 6.5), squeeze=False)
    for ax, (name, (xlabel, levels, curves)) in zip(axes.flat, panels.items(), strict=False):
        for label, values in curves.items():
            ax.plot(list(levels), list(values), marker=".", lw=1.0, label=label)
        ax.set_title(name)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(panels) :]:
        ax.axis("off")
    axes[0][0].legend(title="MTF", fontsize=7)
    fig.suptitle(metric)
    fig.tight_layout()
    return save_figure(fig, path)
