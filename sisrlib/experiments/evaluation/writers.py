"""What an evaluation writes: ``metrics.csv``, ``runs.csv``, ``conventions.json`` and per model its FFT
profiles (``.npy``) and mosaics, every file atomically (``sisrlib.atomic``)."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from sisrlib.atomic import atomic_output, write_text_atomic
from sisrlib.experiments.evaluation.loop import PER_BAND_METRICS, SCALAR_METRICS
from sisrlib.figures.metrics import plot_fft_profiles
from sisrlib.figures.mosaic import write_mosaic
from sisrlib.metrics import fda


@dataclass
class ModelResult:
    """Metrics and profiles of one model (a run or the bicubic baseline) on one test split."""

    model: str
    dataset: str
    variant: str
    checkpoint: str
    row: dict[str, Any]
    bands: tuple[str, ...]
    fda_bands: tuple[str, ...]
    freqs: np.ndarray | None
    #: ``[3 (input, target, pred), rings, bands]`` mean amplitude profiles (None without FDA).
    profiles: np.ndarray | None
    output_dir: Path
    figures: list[Path] = field(default_factory=list)
    patches: int = 0


@dataclass
class EvaluationResult:
    """What ``evaluate`` wrote: the table, its path, and every model's result."""

    table: pd.DataFrame
    metrics_csv: Path
    models: list[ModelResult]
    output_dir: Path
    #: Per dataset, the full-resolution patches of the comparison figure (panel label → ``[N, C, H, W]`` DN,
    #: the LR input on its own grid): input, bicubic, every model, oracle target (simulated sites), target.
    samples: dict[str, dict[str, torch.Tensor]] = field(default_factory=dict)
    #: Band names of every dataset's samples.
    sample_bands: dict[str, tuple[str, ...]] = field(default_factory=dict)
    #: The metric conventions used (``sisrlib.experiments.evaluation.conventions``), also in
    #: ``conventions.json``.
    conventions: dict[str, Any] = field(default_factory=dict)


def safe_name(text: str) -> str:
    """``text`` with every run of characters other than letters, digits, ``_ . -`` replaced by ``_``."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_") or "model"


def copy_atomic(source: Path, target: Path) -> Path:
    """Copy a file atomically (temporary name in the target folder, then rename)."""
    with atomic_output(target) as tmp:
        shutil.copyfile(source, tmp)
    return target


def save_npy(path: Path, array: np.ndarray) -> None:
    """``np.save`` atomically."""
    with atomic_output(path) as tmp, open(tmp, "wb") as f:
        np.save(f, array)


def write_csv(frame: pd.DataFrame, path: Path) -> Path:
    """Write a CSV atomically (temporary name, then rename)."""
    with atomic_output(path) as tmp:
        frame.to_csv(tmp, index=False)
    return path


def write_json(mapping: Mapping[str, Any], path: Path) -> Path:
    """Write a JSON mapping atomically (sorted keys, indented)."""
    return write_text_atomic(path, json.dumps(mapping, indent=2, sort_keys=True) + "\n")


def write_model_outputs(
    result: ModelResult,
    mosaics: dict[Any, torch.Tensor],
    index: int,
    figures_dir: Path | None,
    prefix: str,
    columns: int,
    resolution_m: float,
    plot: bool = True,
) -> None:
    """A model's folder: ``fft_profiles.npy`` ``[3, rings, bands]``, ``fft_profiles_db.npy``,
    ``fft_freqs.npy``, ``fft_profiles.png`` (copied to ``figures_dir/<prefix>_fft_profiles.png``), and the
    mosaics ``target``, ``input``, ``pred`` (float32 DN GeoTIFF and PNG)."""
    out = result.output_dir
    out.mkdir(parents=True, exist_ok=True)
    profiles = result.profiles
    if profiles is not None and result.freqs is not None:
        db = np.stack([fda.to_db(torch.from_numpy(p.T)).numpy().T for p in profiles])
        save_npy(out / "fft_profiles.npy", profiles.astype(np.float32))
        save_npy(out / "fft_profiles_db.npy", db.astype(np.float32))
        save_npy(out / "fft_freqs.npy", result.freqs.astype(np.float32))
        curves = {
            "target (HR sensor)": db[1].T,
            "bicubic input (S2)": db[0].T,
            f"prediction ({result.model})": db[2].T,
        }
        if plot:
            fig = plot_fft_profiles(
                result.freqs,
                curves,
                result.fda_bands,
                out / "fft_profiles.png",
                title=f"{result.dataset} — {result.model}",
            )
            result.figures.append(fig)
            if figures_dir is not None:
                result.figures.append(copy_atomic(fig, figures_dir / f"{prefix}_fft_profiles.png"))
    for key, stem in (("target", "target"), ("input", "input"), (index, "pred")):
        if key in mosaics:
            bands = result.fda_bands if key == "input" else result.bands
            _, png = write_mosaic(mosaics[key], bands, out / stem, columns, resolution_m)
            result.figures.append(png)  # the packed mosaics stay in output_dir; figures get patch_figures


def metrics_frame(results: Sequence[ModelResult]) -> pd.DataFrame:
    """The ``metrics.csv`` table: ``model``, ``dataset``, ``variant``, then the metric columns in a fixed
    order."""
    rows = [{"model": r.model, "dataset": r.dataset, "variant": r.variant, **r.row} for r in results]
    frame = pd.DataFrame(rows)
    ordered = ["model", "dataset", "variant"]
    for metric in PER_BAND_METRICS:
        ordered += [c for c in frame.columns if c.startswith(metric + "_") and c not in ordered]
        if metric in frame.columns:
            ordered.append(metric)
    ordered += [c for c in SCALAR_METRICS if c in frame.columns]
    ordered += [c for c in frame.columns if c not in ordered]
    return frame[ordered]


def runs_frame(results: Sequence[ModelResult], registrations: Mapping[str, str | None]) -> pd.DataFrame:
    """The ``runs.csv`` table: the model file, registration checkpoint and patch count of every row."""
    return pd.DataFrame(
        [
            {
                "model": r.model,
                "dataset": r.dataset,
                "variant": r.variant,
                "checkpoint": r.checkpoint,
                "registration_checkpoint": registrations.get(r.dataset) or "",
                "patches": r.patches,
            }
            for r in results
        ]
    )
