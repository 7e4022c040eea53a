"""Figures of an evaluation (``sisrlib.experiments.evaluation``): the FFT profiles per dataset, the
full-resolution comparison of the first test patches, and the paths of the mosaics it wrote.

The functions take the evaluation's result by the attributes they read (:class:`EvaluatedModel`,
:class:`EvaluationOutputs`), so that this module depends on no layer above the figures.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from sisrlib.figures.metrics import plot_fft_profiles, plot_patch_panels
from sisrlib.metrics import fda


class EvaluatedModel(Protocol):
    """What the figures read of one evaluated model (``...evaluation.writers.ModelResult``)."""

    model: str
    dataset: str
    variant: str
    fda_bands: tuple[str, ...]
    freqs: np.ndarray | None
    profiles: np.ndarray | None
    output_dir: Path


class EvaluationOutputs(Protocol):
    """What the figures read of an evaluation (``...evaluation.writers.EvaluationResult``)."""

    @property
    def models(self) -> Sequence[Any]: ...

    @property
    def output_dir(self) -> Path: ...

    @property
    def samples(self) -> Mapping[str, Mapping[str, torch.Tensor]]: ...

    @property
    def sample_bands(self) -> Mapping[str, tuple[str, ...]]: ...


def _safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_") or "model"


def _db(profile: np.ndarray) -> np.ndarray:
    return fda.to_db(torch.from_numpy(np.asarray(profile, dtype=np.float64))).numpy()


def profile_figures(result: EvaluationOutputs, figures_dir: str | Path | None = None) -> list[Path]:
    """One FFT-profile figure per dataset (signal attenuation in dB per band): the target, the bicubic input
    and every model's prediction, written as ``<figures_dir or output_dir>/04_fft_profiles_<dataset>.png``."""
    out = Path(figures_dir) if figures_dir is not None else result.output_dir
    models: list[EvaluatedModel] = list(result.models)
    paths = []
    for dataset in dict.fromkeys(m.dataset for m in models):
        members = [m for m in models if m.dataset == dataset and m.profiles is not None]
        if not members or members[0].freqs is None:
            continue
        first = members[0]
        assert first.profiles is not None and first.freqs is not None
        curves = {"target (HR sensor)": _db(first.profiles[1].T), "bicubic input": _db(first.profiles[0].T)}
        for m in members:
            if m.variant != "bicubic" and m.profiles is not None:
                curves[f"{m.variant or m.model}"] = _db(m.profiles[2].T)
        paths.append(
            plot_fft_profiles(
                first.freqs,
                curves,
                first.fda_bands,
                out / f"04_fft_profiles_{_safe_name(dataset)}.png",
                title=f"{dataset}: signal attenuation",
            )
        )
    return paths


#: Display order of the panels of the comparison figure (models in between, in the order evaluated).
_PANEL_FIRST = ("input", "bicubic")
_PANEL_LAST = ("oracle target", "target")


def patch_figures(
    result: EvaluationOutputs, figures_dir: str | Path | None = None, prefix: str = "04"
) -> list[Path]:
    """One full-resolution comparison figure per dataset, ``<figures_dir or output_dir>/<prefix>_patches_
    <dataset>.png``: one row per patch (the first ``figure_patches`` test patches), columns input (LR,
    nearest-neighbour pixels), bicubic, every model, the oracle target (simulated sites) and the target, all
    with one display stretch (2–98 % of the target per displayed band, written in the title)."""
    out = Path(figures_dir) if figures_dir is not None else result.output_dir
    paths = []
    for dataset, found in result.samples.items():
        if "target" not in found or len(found) < 2:
            continue
        middle = [k for k in found if k not in _PANEL_FIRST + _PANEL_LAST]
        order = [k for k in (*_PANEL_FIRST, *middle, *_PANEL_LAST) if k in found]
        panels = {k: found[k].numpy() for k in order}
        paths.append(
            plot_patch_panels(
                panels,
                result.sample_bands[dataset],
                out / f"{prefix}_patches_{_safe_name(dataset)}.png",
                title=f"{dataset}: first test patches at full resolution",
            )
        )
    return paths


def mosaic_pngs(result: EvaluationOutputs) -> dict[str, Path]:
    """The PNG mosaics written for every model (``<dataset>/<model>`` → ``pred.png``) and the
    targets/inputs."""
    out: dict[str, Path] = {}
    models: list[EvaluatedModel] = list(result.models)
    for m in models:
        for stem in ("target", "input", "pred"):
            path = m.output_dir / f"{stem}.png"
            key = f"{m.dataset}/{stem}" if stem != "pred" else f"{m.dataset}/{m.model}"
            if path.is_file() and key not in out:
                out[key] = path
    return out
