"""Figures of the data preparation notebook: site layout, LR / HR / true-flow mosaics, LR vs HR histograms.

Every function returns a matplotlib ``Figure`` (the caller saves it with
:func:`sisrlib.figures.base.save_figure` or shows it); nothing here computes data. matplotlib is imported on
the first figure.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from sisrlib.data.sample import Sample
from sisrlib.figures.base import pyplot

if TYPE_CHECKING:
    from matplotlib.figure import Figure

#: Preferred display bands (R, G, B) by availability.
_RGB_CHOICES: tuple[tuple[str, str, str], ...] = (("B4", "B3", "B2"), ("B8A", "B6", "B5"), ("B7", "B6", "B5"))


def rgb_indices(bands: Sequence[str]) -> list[int]:
    """Indices of the display bands: true colour for 10 m bands, B8A/B6/B5 for 20 m bands, else the first."""
    for choice in _RGB_CHOICES:
        if all(b in bands for b in choice):
            return [list(bands).index(b) for b in choice]
    return [min(i, len(bands) - 1) for i in range(3)]


def to_rgb(image: np.ndarray, indices: Sequence[int], low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """``[C, H, W]`` → ``[H, W, 3]`` in [0, 1] with per-channel limits ``low``/``high``."""
    rgb = np.stack([image[i] for i in indices], axis=-1).astype(np.float64)
    return np.clip((rgb - low) / np.maximum(high - low, 1e-9), 0.0, 1.0)


def _limits(images: Sequence[np.ndarray], indices: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    stack = np.concatenate([np.stack([im[i].ravel() for i in indices], axis=-1) for im in images])
    return np.percentile(stack, 2, axis=0), np.percentile(stack, 98, axis=0)


def plot_pair_mosaic(samples: Sequence[Sample], labels: Sequence[str], title: str) -> Figure:
    """One row per sample: LR input, HR target (same display stretch per image kind), true flow (norm, LR px,
    with arrows) and true radiometric field (mean over bands, DN) when the samples carry the truth."""
    if not samples:
        raise ValueError("plot_pair_mosaic: no sample")
    truth = samples[0].true_flow is not None
    ncols = 4 if truth else 2
    fig, axes = pyplot().subplots(
        len(samples), ncols, figsize=(2.6 * ncols, 2.5 * len(samples)), squeeze=False
    )
    in_idx = rgb_indices(samples[0].input_bands)
    t_idx = rgb_indices(samples[0].target_bands)
    lr_lim = _limits([s.inputs.numpy() for s in samples], in_idx)
    hr_lim = _limits([s.target.numpy() for s in samples], t_idx)
    fmax = max(float(s.true_flow.norm(dim=0).max()) for s in samples) if truth else 0.0  # type: ignore[union-attr]
    for r, (s, label) in enumerate(zip(samples, labels, strict=True)):
        ax = axes[r]
        h, w = s.inputs.shape[-2:]
        ax[0].imshow(to_rgb(s.inputs.numpy(), in_idx, *lr_lim), interpolation="nearest")
        ax[0].set_title(f"LR {h}×{w}", fontsize=8)
        ax[0].set_ylabel(label, fontsize=7)
        ax[1].imshow(to_rgb(s.target.numpy(), t_idx, *hr_lim), interpolation="nearest")
        ax[1].set_title(f"HR {s.target.shape[-2]}×{s.target.shape[-1]}", fontsize=8)
        if truth:
            flow = s.true_flow.numpy()  # type: ignore[union-attr]
            norm = np.hypot(flow[0], flow[1])
            im = ax[2].imshow(norm, cmap="magma", vmin=0, vmax=max(fmax, 1e-3))
            step = max(1, h // 8)
            yy, xx = np.mgrid[step // 2 : h : step, step // 2 : w : step]
            ax[2].quiver(
                xx, yy, flow[0][yy, xx], -flow[1][yy, xx], color="cyan", scale=fmax * 12 + 1e-6, width=0.01
            )
            ax[2].set_title(f"true flow |f| mean {norm.mean():.2f} LR px", fontsize=8)
            fig.colorbar(im, ax=ax[2], fraction=0.046)
            rad = s.true_radiometry.numpy().mean(0)  # type: ignore[union-attr]
            lim = float(np.abs(rad).max()) or 1.0
            im = ax[3].imshow(rad, cmap="RdBu_r", vmin=-lim, vmax=lim)
            ax[3].set_title("true radiometry (band mean, DN)", fontsize=8)
            fig.colorbar(im, ax=ax[3], fraction=0.046)
        for a in ax:
            a.set_xticks([])
            a.set_yticks([])
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def plot_band_histograms(
    samples: Sequence[Sample], title: str, target_unit: str = "DN", bins: int = 80
) -> Figure:
    """Per band: histogram of the LR input values and of the HR target values (the bands they share)."""
    if not samples:
        raise ValueError("plot_band_histograms: no sample")
    first = samples[0]
    common = [b for b in first.target_bands if b in first.input_bands]
    fig, axes = pyplot().subplots(1, len(common), figsize=(3.0 * len(common), 2.6), squeeze=False)
    for k, band in enumerate(common):
        i, t = first.input_bands.index(band), first.target_bands.index(band)
        lr = np.concatenate([s.inputs[i].numpy().ravel() for s in samples])
        hr = np.concatenate([s.target[t].numpy().ravel() for s in samples])
        lo = float(min(np.percentile(lr, 0.5), np.percentile(hr, 0.5)))
        hi = float(max(np.percentile(lr, 99.5), np.percentile(hr, 99.5)))
        ax = axes[0, k]
        ax.hist(lr, bins=bins, range=(lo, hi), density=True, histtype="step", label="LR input (DN)")
        ax.hist(
            hr, bins=bins, range=(lo, hi), density=True, histtype="step", label=f"HR target ({target_unit})"
        )
        ax.set_title(band, fontsize=9)
        ax.tick_params(labelsize=7)
        if k == 0:
            ax.legend(fontsize=7)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def plot_site_layout(
    background: np.ndarray,
    pixel_size_m: float,
    regions: Sequence[tuple[str, tuple[int, int, int, int], str]],
    title: str,
) -> Figure:
    """The scene (``[3, H, W]`` RGB in [0, 1]) with labelled regions ``(label, (row0, row1, col0, col1) in
    background pixels, colour)``."""
    from matplotlib.patches import Rectangle

    fig, ax = pyplot().subplots(figsize=(7, 7))
    h, w = background.shape[1:]
    ax.imshow(
        np.transpose(background, (1, 2, 0)), extent=(0, w * pixel_size_m / 1000, h * pixel_size_m / 1000, 0)
    )
    for label, (r0, r1, c0, c1), colour in regions:
        k = pixel_size_m / 1000
        ax.add_patch(Rectangle((c0 * k, r0 * k), (c1 - c0) * k, (r1 - r0) * k, fill=False, ec=colour, lw=1.5))
        ax.text(c0 * k + 0.2, r0 * k + 0.6, label, color=colour, fontsize=7, va="top")
    ax.set_xlabel("km")
    ax.set_ylabel("km")
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig
