"""Distortion statistics of datasets with a known truth (the embedded sites) and simple radiometric summaries.

For every pair with a ``true_flow``: the geometric distortion is the per-pixel norm of the true flow (LR px);
the radiometric distortion is measured with the true flow as ``r = inputs − warp(simulate_lr(target_DN),
true_flow)`` (DN, per band; it holds the radiometric field and the LR noise), away from a border of ``border``
LR pixels. ``target_DN`` is the target itself for Sen2Venµs-like sites and the target brought back from its
own units for WorldStrat-like ones. This is the truth-aware version of torchsisr's dataset analysis.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch

from sisrlib.data.sample import Sample
from sisrlib.data.simulation import separable_mtf_downscale
from sisrlib.degradation import PsfKernel
from sisrlib.flow import flow_norm, warp

#: Bands reported in the statistics table, in this order.
TABLE_BANDS: tuple[str, ...] = ("B2", "B3", "B4", "B8", "B5", "B6", "B7", "B8A")


@dataclass
class DistortionStats:
    """Running sums of flow norms and per-band radiometric residuals."""

    patches: int = 0
    n_px: int = 0
    flow_sum: float = 0.0
    flow_sq: float = 0.0
    flow_max: float = 0.0
    band_n: dict[str, int] = field(default_factory=dict)
    band_sum: dict[str, float] = field(default_factory=dict)
    band_sq: dict[str, float] = field(default_factory=dict)

    def add(
        self,
        sample: Sample,
        mtf: float = 0.35,
        border: int = 4,
        target_gain: Sequence[float] | None = None,
        target_offset: Sequence[float] | None = None,
        kernel: PsfKernel = "exact",
    ) -> None:
        if sample.true_flow is None:
            raise ValueError(f"sample {sample.id!r} has no true flow: distortion statistics need the truth")
        flow = sample.true_flow[None].double()
        b = border
        norm = flow_norm(flow)[0, b:-b, b:-b] if b else flow_norm(flow)[0]
        self.patches += 1
        self.n_px += norm.numel()
        self.flow_sum += float(norm.sum())
        self.flow_sq += float((norm**2).sum())
        self.flow_max = max(self.flow_max, float(norm.max()))
        target = sample.target.double()
        if target_gain is not None and target_offset is not None:
            g = torch.tensor(target_gain, dtype=torch.float64).view(-1, 1, 1)
            o = torch.tensor(target_offset, dtype=torch.float64).view(-1, 1, 1)
            target = (target - o) / g
        factor = sample.input_resolution_m / sample.target_resolution_m
        common = [band for band in sample.target_bands if band in sample.input_bands]
        t_idx = [sample.target_bands.index(x) for x in common]
        i_idx = [sample.input_bands.index(x) for x in common]
        sim = separable_mtf_downscale(target[t_idx][None], factor, mtf, kernel=kernel)
        residual = (sample.inputs.double()[i_idx][None] - warp(sim, flow))[0]
        if b:
            residual = residual[:, b:-b, b:-b]
        for k, band in enumerate(common):
            r = residual[k]
            self.band_n[band] = self.band_n.get(band, 0) + r.numel()
            self.band_sum[band] = self.band_sum.get(band, 0.0) + float(r.sum())
            self.band_sq[band] = self.band_sq.get(band, 0.0) + float((r**2).sum())

    def row(self) -> dict[str, float | int]:
        """Flow norm mean/std/max (LR px) and per-band bias/RMSE (DN) as a flat mapping."""
        mean = self.flow_sum / max(self.n_px, 1)
        var = max(self.flow_sq / max(self.n_px, 1) - mean**2, 0.0)
        out: dict[str, float | int] = {
            "patches": self.patches,
            "flow_norm_mean_lr_px": mean,
            "flow_norm_std_lr_px": float(np.sqrt(var)),
            "flow_norm_max_lr_px": self.flow_max,
        }
        for band in TABLE_BANDS:
            n = self.band_n.get(band, 0)
            out[f"bias_{band}_dn"] = self.band_sum[band] / n if n else float("nan")
            out[f"rmse_{band}_dn"] = float(np.sqrt(self.band_sq[band] / n)) if n else float("nan")
        return out


def distortion_statistics(
    samples: Iterable[Sample],
    mtf: float = 0.35,
    border: int = 4,
    target_gain: Sequence[float] | None = None,
    target_offset: Sequence[float] | None = None,
    kernel: PsfKernel = "exact",
) -> dict[str, float | int]:
    """The statistics row of a set of samples (see the module docstring); ``kernel``: the PSF of the LR
    simulation of the target (that of the data's simulated sensor)."""
    stats = DistortionStats()
    for s in samples:
        stats.add(s, mtf, border, target_gain, target_offset, kernel)
    return stats.row()


def to_markdown(table: pd.DataFrame, floatfmt: str = ".2f") -> str:
    """A GitHub-flavoured markdown table (no dependency on ``tabulate``)."""

    def fmt(v: object) -> str:
        if isinstance(v, float):
            return "" if np.isnan(v) else format(v, floatfmt)
        return str(v)

    header = "| " + " | ".join(str(c) for c in table.columns) + " |"
    sep = "| " + " | ".join("---" for _ in table.columns) + " |"
    rows = ["| " + " | ".join(fmt(v) for v in row) + " |" for row in table.itertuples(index=False)]
    return "\n".join([header, sep, *rows]) + "\n"
