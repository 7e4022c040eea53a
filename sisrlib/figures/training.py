"""Figures of notebooks 02 (registration) and 03 (training). Each function returns a matplotlib Figure and,
given ``path``, also saves it there (:func:`sisrlib.figures.base.save_figure`: temporary name, then rename;
the figure stays open for the notebook). Headless runs need no display: matplotlib falls back to its Agg
backend by itself, and notebooks keep their inline backend. matplotlib is imported on the first figure."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from sisrlib.experiments.training_analysis import PredictionExamples, RegistrationEvaluation
from sisrlib.figures.base import pyplot, save_figure

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def save(fig: Figure, path: str | Path | None) -> Figure:
    """Save ``fig`` to ``path`` (if given) atomically, leaving it open; returns it."""
    if path is not None:
        save_figure(fig, path, dpi=110, close=False, bbox_inches="tight")
    return fig


def _stretch(x: np.ndarray, low: float = 2, high: float = 98) -> np.ndarray:
    lo, hi = np.nanpercentile(x, [low, high])
    return np.asarray(np.clip((x - lo) / max(hi - lo, 1e-12), 0, 1))


def plot_flows(evaluation: RegistrationEvaluation, path: str | Path | None = None) -> Figure:
    """True vs estimated flow components (LR px) and the end-point error map of the example patch."""
    ex = evaluation.example
    true, est = ex["true_flow"], ex["estimated_flow"]
    vmax = float(np.abs(true).max()) or 1.0
    fig, axes = pyplot().subplots(1, 5, figsize=(17, 3.6))
    panels = [
        (true[0], "true flow x"), (est[0], "estimated flow x"),
        (true[1], "true flow y"), (est[1], "estimated flow y"),
    ]  # fmt: skip
    for ax, (img, title) in zip(axes[:4], panels, strict=True):
        im = ax.imshow(img, cmap="RdBu_r", vmin=-vmax, vmax=vmax)
        ax.set_title(title)
        ax.axis("off")
    fig.colorbar(im, ax=axes[:4].tolist(), shrink=0.8, label="LR px")
    epe = np.linalg.norm(est - true, axis=0)
    im2 = axes[4].imshow(epe, cmap="magma")
    axes[4].set_title(f"end-point error (mean {epe.mean():.3f} px)")
    axes[4].axis("off")
    fig.colorbar(im2, ax=axes[4], shrink=0.8, label="LR px")
    return save(fig, path)


def plot_epe_vs_amplitude(evaluation: RegistrationEvaluation, path: str | Path | None = None) -> Figure:
    """Per-patch mean EPE against the per-patch mean true flow norm, with the 25 % line."""
    fig, ax = pyplot().subplots(figsize=(5.5, 4.2))
    x, y = evaluation.patch_true_norm, evaluation.patch_epe
    ax.scatter(x, y, s=10, alpha=0.6)
    top = float(max(x.max(initial=0), 1e-3))
    ax.plot([0, top], [0, 0.25 * top], "k--", lw=1, label="25 % of the true flow")
    ax.set_xlabel("mean true flow norm of the patch (LR px)")
    ax.set_ylabel("mean end-point error (LR px)")
    ax.set_title(
        f"EPE {evaluation.mean_epe:.3f} px = {100 * evaluation.ratio:.1f} % of "
        f"{evaluation.mean_true_norm:.3f} px"
    )
    ax.legend()
    return save(fig, path)


def plot_overlays(evaluation: RegistrationEvaluation, path: str | Path | None = None) -> Figure:
    """Colour overlays (magenta: simulated LR, green: real LR) before and after warping by the estimated
    flow."""
    ex = evaluation.example
    real = _stretch(ex["real"])

    def overlay(a: np.ndarray) -> np.ndarray:
        a = _stretch(a)
        return np.stack([a, real, a], axis=-1)

    fig, axes = pyplot().subplots(1, 3, figsize=(12, 4.2))
    axes[0].imshow(overlay(ex["simulated"]))
    axes[0].set_title("before: simulated (magenta) / real (green)")
    axes[1].imshow(overlay(ex["warped"]))
    axes[1].set_title("after warping by the estimated flow")
    diff_before = np.abs(ex["simulated"] - ex["real"])
    diff_after = np.abs(ex["warped"] - ex["real"])
    vmax = float(np.percentile(diff_before, 99))
    axes[2].imshow(np.concatenate([diff_before, diff_after], axis=1), cmap="gray", vmin=0, vmax=vmax)
    axes[2].set_title("|difference|: before | after")
    for ax in axes:
        ax.axis("off")
    return save(fig, path)


def plot_loss_curves(
    metrics_csv: str | Path, keys: Sequence[str] | None = None, path: str | Path | None = None
) -> Figure:
    """Training (thin) and validation (markers) loss curves from a run's CSV log."""
    log = pd.read_csv(metrics_csv)
    if keys is None:
        keys = [k for k in ("training/total_loss", "validation/total_loss") if k in log]
        keys += [
            k for k in log.columns if k.startswith("training/") and k.endswith("_loss") and k not in keys
        ][:4]
    fig, ax = pyplot().subplots(figsize=(7, 4.2))
    for key in keys:
        if key not in log:
            continue
        rows = log.dropna(subset=[key])
        style = {"marker": "o", "lw": 1.5} if key.startswith("validation/") else {"lw": 0.8, "alpha": 0.8}
        ax.plot(rows["step"], rows[key], label=key, **style)
    ax.set_xlabel("training step")
    ax.set_ylabel("loss")
    ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return save(fig, path)


def plot_predictions(
    examples: PredictionExamples, band: int | None = None, path: str | Path | None = None, n: int = 3
) -> Figure:
    """Rows of patches: bicubic input | prediction | target (RGB from B4, B3, B2 when present, else one
    band)."""
    bands = list(examples.bands)
    rgb = [bands.index(b) for b in ("B4", "B3", "B2")] if {"B4", "B3", "B2"} <= set(bands) else None
    rows = min(n, examples.prediction.shape[0])
    fig, axes = pyplot().subplots(rows, 3, figsize=(10, 3.4 * rows), squeeze=False)

    def show(a: np.ndarray) -> np.ndarray:
        if rgb is not None and band is None:
            return np.stack([_stretch(a[i], 1, 99) for i in rgb], axis=-1)
        return _stretch(a[band or 0], 1, 99)

    for r in range(rows):
        for c, (name, arr) in enumerate(
            (("bicubic", examples.bicubic), ("prediction", examples.prediction), ("target", examples.target))
        ):
            axes[r, c].imshow(show(arr[r]), cmap=None if rgb is not None and band is None else "gray")
            axes[r, c].set_title(name)
            axes[r, c].axis("off")
    return save(fig, path)
