"""Figures of the metrics: FFT profiles (evaluation), one metric's response panels (metrics benchmark), and
patch panels with one display stretch (matplotlib, saved to files; headless-safe)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from sisrlib.figures.base import pyplot, save_figure


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
    plt = pyplot()
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
    plt = pyplot()
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


def display_channels(bands: Sequence[str]) -> tuple[list[int], str]:
    """Channel indices shown as red, green, blue and their description: B4 B3 B2 (natural colour) when
    present, else the first three bands reversed (false colour, e.g. B7 B6 B5), else the first band in
    grey."""
    if all(b in bands for b in ("B4", "B3", "B2")):
        return [list(bands).index(b) for b in ("B4", "B3", "B2")], "natural colour B4 B3 B2"
    if len(bands) >= 3:
        return [2, 1, 0], f"false colour {bands[2]} {bands[1]} {bands[0]}"
    return [0, 0, 0], f"grey {bands[0]}"


def shared_stretch(
    reference: np.ndarray, channels: Sequence[int], low: float = 2.0, high: float = 98.0
) -> tuple[np.ndarray, np.ndarray]:
    """Per displayed channel, the ``low`` and ``high`` percentiles of ``reference`` ``[N, C, H, W]`` over all
    its patches and pixels (NaN ignored): ``(lo [3], hi [3])``, the one stretch of every panel of a figure."""
    values = np.asarray(reference, dtype=np.float64)[:, list(channels)]
    flat = values.transpose(1, 0, 2, 3).reshape(len(channels), -1)
    return np.nanpercentile(flat, low, axis=1), np.nanpercentile(flat, high, axis=1)


def apply_stretch(image: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """``[3, H, W]`` → ``[H, W, 3]`` in [0, 1]: ``(x − lo) / (hi − lo)`` per channel, clipped; NaN → 0."""
    scale = np.where(hi > lo, hi - lo, 1.0)
    out = (np.asarray(image, dtype=np.float64) - lo[:, None, None]) / scale[:, None, None]
    return np.clip(np.nan_to_num(out, nan=0.0), 0.0, 1.0).transpose(1, 2, 0)


def plot_patch_panels(
    panels: Mapping[str, np.ndarray],
    bands: Sequence[str],
    path: str | Path,
    stretch_from: str = "target",
    title: str = "",
    low: float = 2.0,
    high: float = 98.0,
) -> Path:
    """Patches side by side at full resolution: one row per patch, one column per panel (label → ``[N, C, H,
    W]`` DN; a panel on a coarser grid, e.g. the LR input, is shown with nearest-neighbour pixels).

    Every panel uses ONE display stretch: per displayed band, the ``low``–``high`` % percentiles of the panel
    ``stretch_from`` over all its patches; the stretch (DN) is written in the figure's title, so that a
    colour difference between panels is a difference of the images, not of their stretches. One screen pixel
    per HR pixel at the saved resolution (100 dpi).
    """
    plt = pyplot()
    if stretch_from not in panels:
        raise ValueError(f"stretch_from {stretch_from!r} is not a panel: {list(panels)}")
    channels, description = display_channels(bands)
    lo, hi = shared_stretch(panels[stretch_from], channels, low, high)
    n = min(int(np.asarray(p).shape[0]) for p in panels.values())
    size = max(int(np.asarray(p).shape[-1]) for p in panels.values())
    cols = len(panels)
    inch = size / 100.0
    spacing = {"wspace": 0.05, "hspace": 0.05}
    figsize = (max(cols * inch * 1.1 + 0.4, 6.5), n * inch * 1.1 + 1.3)
    fig, axes = plt.subplots(n, cols, figsize=figsize, squeeze=False, gridspec_kw=spacing)
    for j, (label, stack) in enumerate(panels.items()):
        array = np.asarray(stack)
        for i in range(n):
            image = array[i][channels]
            repeat = size // image.shape[-1]
            if repeat > 1:
                image = image.repeat(repeat, axis=-2).repeat(repeat, axis=-1)
            ax = axes[i][j]
            ax.imshow(apply_stretch(image, lo, hi), interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(label, fontsize=7)
    stretch = ", ".join(f"{bands[c]} {a:.0f}–{b:.0f}" for c, a, b in zip(channels[:3], lo, hi, strict=True))
    head = f"{title}\n" if title else ""
    fig.suptitle(
        f"{head}{description}; one stretch for every panel:\n{low:g}–{high:g} % of the {stretch_from}, DN "
        f"{stretch}",
        fontsize=8,
    )
    fig.subplots_adjust(left=0.02, right=0.98, bottom=0.01, top=1.0 - 0.9 / figsize[1])
    return save_figure(fig, path)
