"""Test-set evaluation of trained super-resolution runs (spec §6.5, §6.6): metrics table, FFT profiles,
mosaics.

For every run (a training checkpoint), over its test split (the data section stored in the checkpoint):

* pixel metrics against the **un-registered** HR target (as the reference at test time): PSNR, SSIM, RMSE, TV
  variation, per band, inside a margin of output pixels;
* LR fidelity against the real input: the prediction downscaled (MTF 0.1) vs the input (``lr_rmse``,
  ``lr_bias``);
* geometric distortion (with a registration network, the same one for every row): mean/std of the flow norm in
  LR px between the downscaled prediction (MTF 0.3) and the input (``geom_mean``, ``geom_std``), the same for
  the target (``target_geom_mean``/``target_geom_std``), and on embedded sites the end-point error of the
  target's flow against the stored true flow (``epe_true``) and the true flow's mean norm
  (``true_geom_mean``);
* Frequency Domain Analysis on the whole patches with ``size = 2 × target width``: input = the real input
  bicubic-upsampled, target, prediction → ``frr``, ``arr``, ``prr``, ``fro``, ``fru``, ``fda_noise`` per band;
* **oracle** metrics, on embedded (simulated) sites only (NaN on real data, where the batches carry no true
  flow and radiometry): the HR target brought exactly into the LR sensor's geometry and radiometry with the
  stored truth (``sisrlib.metrics.oracle.oracle_target``) is the reference of ``oracle_psnr``,
  ``oracle_ssim`` (same margin as ``psnr``) and ``oracle_frr`` (FDA with the oracle's profile as the target,
  whole patches as ``frr``); ``oracle_geom`` is the part of the true distortion the prediction keeps, in LR
  px (``sisrlib.metrics.oracle.KeptDistortion``: ``|s*|·mean‖true flow‖``, same LR margin as
  ``geom_mean``) and ``oracle_kept`` the kept fraction ``s*`` itself (0: the input's geometry, 1: the
  target's), both averaged over patches.

The same metrics are computed for a **bicubic** baseline (the bicubic-upsampled input, once per dataset).
Outputs under ``output_dir``: ``metrics.csv`` (one row per model: ``model``, ``dataset``, ``variant``, then
``<metric>_<band>`` columns and band-averaged ``<metric>`` columns), ``runs.csv`` (checkpoint of every row),
and per model a folder with ``fft_profiles.npy`` ``[3 (input, target, pred), rings, bands]`` (mean amplitude),
``fft_profiles_db.npy`` (the same in dB relative to ring 1), ``fft_freqs.npy``, ``fft_profiles.png`` and
mosaics of the first test patches (``target``, ``pred``, ``input``: float32 DN GeoTIFF and PNG). All values
are reflectance unless the name says DN.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from sisrlib.bands import Standardisation, dn_to_reflectance, reflectance_to_dn, standardisation
from sisrlib.data.batch import Batch
from sisrlib.data.params import DataParams
from sisrlib.degradation import upsample
from sisrlib.errors import SisrError
from sisrlib.metrics import fda
from sisrlib.metrics.accumulate import MetricMeans, Moments
from sisrlib.metrics.atomic import atomic_output
from sisrlib.metrics.distortion import FlowEstimator, calibrate_geometric, estimate_flow
from sisrlib.metrics.mosaic import write_mosaic
from sisrlib.metrics.oracle import KeptDistortion, oracle_target
from sisrlib.metrics.pixel import crop, lr_fidelity, lr_margin, per_band_row, psnr, rmse, ssim, tv_variation
from sisrlib.metrics.plots import plot_fft_profiles
from sisrlib.registration.flow import flow_norm

LOGGER = logging.getLogger(__name__)

#: Order of the metric columns in ``metrics.csv`` (per-band metrics get ``<metric>_<band>`` columns too).
PER_BAND_METRICS: tuple[str, ...] = (
    "psnr",
    "ssim",
    "rmse",
    "tv_variation",
    "lr_rmse",
    "lr_bias",
    "frr",
    "arr",
    "prr",
    "fro",
    "fru",
    "fda_noise",
    "oracle_psnr",
    "oracle_ssim",
    "oracle_frr",
)
SCALAR_METRICS: tuple[str, ...] = (
    "geom_mean",
    "geom_std",
    "target_geom_mean",
    "target_geom_std",
    "epe_true",
    "true_geom_mean",
    "oracle_geom",
    "oracle_kept",
    "hf_excess_db",
)
#: Columns that are NaN when the test batches carry no truth (real data).
ORACLE_METRICS: tuple[str, ...] = ("oracle_psnr", "oracle_ssim", "oracle_frr", "oracle_geom", "oracle_kept")
VARIANTS: tuple[str, ...] = ("baseline", "geom", "geomrad", "rad")


@dataclass(frozen=True)
class RunSpec:
    """One trained run to evaluate: its training params file (checkpoint =
    ``<output_dir>/checkpoints/best.ckpt``) or an explicit checkpoint (file, or a run folder holding
    ``checkpoints/best.ckpt``)."""

    params_file: str | None = None
    checkpoint: str | None = None
    #: ``model`` column (default: the run's name).
    label: str | None = None
    #: ``dataset`` column (default: the run name without its variant suffix, else ``<dataset>x<factor>``).
    dataset: str | None = None
    #: ``variant`` column (default: from the registration flags: baseline, geom, geomrad).
    variant: str | None = None
    #: Registration checkpoint for the geometric metrics of this run's dataset (overrides the global one).
    registration_checkpoint: str | None = None


@dataclass(frozen=True)
class EvaluationParams:
    """Parameters of ``notebooks/04_evaluation_fda.ipynb`` and ``sisr evaluate``."""

    runs: list[RunSpec]
    #: Folder of metrics.csv and the per-model outputs (``build/<profile>/evaluation/<name>``).
    output_dir: str
    name: str = "evaluation"
    #: Copies of the figures (FFT profiles, mosaic PNGs) go here when set.
    figures_dir: str | None = None
    #: Registration (pre-training or geom run) checkpoint whose flow network measures the geometric distortion
    #: of every row; null: the ``registration.checkpoint`` of the first run that has one; none: no geom
    #: metrics.
    registration_checkpoint: str | None = None
    max_test_batches: int | None = None
    test_batch_size: int | None = None
    #: Replaces ``data.root`` of every run (evaluate on another copy of the data).
    data_root: str | None = None
    bicubic: bool = True
    #: Output pixels ignored on every side (null: each run's ``training.validation_margin``, at most H/4).
    margin: int | None = None
    #: FFT size of the FDA profiles (null: 2 × the target width, as the reference).
    fft_size: int | None = None
    data_range: float = 1.0
    lr_mtf: float = 0.1
    geometric_mtf: float = 0.3
    mosaic_patches: int = 32
    #: Patches of the full-resolution comparison figure per dataset (``04_<name>_patches_<dataset>.png``:
    #: input, bicubic, every model, oracle target, target side by side, one display stretch); 0: none.
    figure_patches: int = 4
    mosaic_columns: int = 8
    mosaic_crop: int = 32
    seed: int = 42
    #: "cpu", "cuda", or "auto" (cuda when available).
    device: str = "cpu"
    #: Draw the FFT-profile figures (the arrays, tables and mosaics are always written).
    figures: bool = True
    #: Also analyse each dataset's test split (PRR of the input, radiometric and geometric distortion of the
    #: target, spec §6.8) into ``dataset_analysis.csv``.
    dataset_analysis: bool = False
    analysis_max_batches: int | None = 20
    #: Calibrate each dataset's geometric measure (``geom_mean``) on known shifts, blurs and gains of the
    #: first test batch into ``distortion_calibration.csv`` (``metrics.distortion.calibrate_geometric``).
    calibration: bool = False

    def __post_init__(self) -> None:
        if not self.runs:
            raise ValueError("runs: list at least one run (params_file or checkpoint)")
        for k, run in enumerate(self.runs):
            if run.params_file is None and run.checkpoint is None:
                raise ValueError(f"runs[{k}]: give params_file (a training params YAML) or checkpoint")

    def check_inputs(self) -> list[str]:
        """Problems found before anything runs (``python -m sisrlib.pipeline check``): training params files
        that do not exist. Checkpoints are not checked: earlier notebooks of the pipeline write them."""
        problems = []
        for k, run in enumerate(self.runs):
            path = run.params_file
            if path is not None and not _is_glob(path) and not resolve_path(path).is_file():
                problems.append(f"runs[{k}].params_file {path} does not exist")
        return problems


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


# --------------------------------------------------------------------------------------------- predictors
class Predictor:
    """Turns a DN ``Batch`` into a reflectance prediction ``[B, C_t, H, W]`` on the target grid."""

    name = "model"

    def __call__(self, batch: Batch) -> torch.Tensor:  # pragma: no cover - interface
        raise NotImplementedError


class GeneratorPredictor(Predictor):
    """A trained generator (``sisrlib.training.checkpoint.LoadedGenerator``): standardise, predict,
    un-standardise."""

    def __init__(self, loaded: Any, device: torch.device) -> None:
        self.loaded = loaded
        self.device = device
        self.lr_std: Standardisation | None = None
        if loaded.lr_bands:
            self.lr_std = standardisation(loaded.params.training.standardisation, loaded.lr_bands)

    def __call__(self, batch: Batch) -> torch.Tensor:
        ld = self.loaded
        if tuple(batch.input_bands) != tuple(ld.input_bands):
            raise SisrError(
                f"the test data has input bands {batch.input_bands} but the model expects {ld.input_bands}"
            )
        x = ld.standardisation.standardise(dn_to_reflectance(batch.inputs).to(self.device))
        with torch.no_grad():
            if self.lr_std is not None and batch.lr_inputs is not None:
                lr = self.lr_std.standardise(dn_to_reflectance(batch.lr_inputs).to(self.device))
                out = ld.model(x, lr)
            else:
                out = ld.model(x)
        pred: torch.Tensor = ld.target_standardisation.unstandardise(out.float())
        return pred


def bicubic_input(batch: Batch, bands: Sequence[str]) -> torch.Tensor:
    """The real input bicubic-upsampled to the target grid, bands ``bands`` (from ``inputs`` or
    ``lr_inputs``), reflectance ``[B, len(bands), H, W]``."""
    size = batch.target.shape[-2:]
    out = []
    for band in bands:
        if band in batch.input_bands:
            src = batch.inputs[:, [batch.input_bands.index(band)]]
        elif batch.lr_inputs is not None and band in batch.lr_bands:
            src = batch.lr_inputs[:, [batch.lr_bands.index(band)]]
        else:
            raise SisrError(
                f"band {band} of the target is in neither the input bands {batch.input_bands} nor the LR "
                f"bands {batch.lr_bands}"
            )
        factor = size[-1] / src.shape[-1]
        up = upsample(dn_to_reflectance(src), factor)
        out.append(up[..., : size[0], : size[1]])
    return torch.cat(out, dim=1)


def input_band_available(batch: Batch, band: str) -> bool:
    return band in batch.input_bands or (batch.lr_inputs is not None and band in batch.lr_bands)


class BicubicPredictor(Predictor):
    """The bicubic baseline: the real input upsampled to the target grid on the target bands."""

    name = "bicubic"

    def __init__(self, bands: Sequence[str]) -> None:
        self.bands = tuple(bands)

    def __call__(self, batch: Batch) -> torch.Tensor:
        return bicubic_input(batch, self.bands)


# --------------------------------------------------------------------------------------------- accumulation
class _ModelAccumulator:
    def __init__(self, fft_size: int | None) -> None:
        self.means = MetricMeans()
        self.geom = Moments()
        self.oracle_geom = Moments()
        self.oracle_kept = Moments()
        self.profile = fda.ProfileAccumulator(fft_size) if fft_size else None
        self.mosaic: list[torch.Tensor] = []


@dataclass
class _Context:
    bands: tuple[str, ...]
    fda_bands: tuple[str, ...]
    lr_shared: tuple[str, ...]
    margin: int
    factor: float
    reg_channel: int | None
    reg_std: Standardisation | None


@dataclass
class _OracleBatch:
    """The oracle references of one batch (embedded sites): the target in the input's geometry and
    radiometry (reflectance ``[B, C_t, H, W]``) and the kept-distortion measure."""

    target_r: torch.Tensor
    kept: KeptDistortion


def oracle_available(batch: Batch) -> bool:
    """Whether ``batch`` carries the truth the oracle metrics need: true flow and radiometry, and every target
    band among the input bands (the radiometric field lives on the input bands)."""
    return (
        batch.true_flow is not None
        and batch.true_radiometry is not None
        and all(b in batch.input_bands for b in batch.target_bands)
    )


def oracle_batch(batch: Batch, margin_lr: int, mtf: float | None) -> _OracleBatch:
    """The oracle target of ``batch`` (see ``sisrlib.metrics.oracle``) in reflectance, and the kept-distortion
    measure built on the target and the true flow (``margin_lr`` LR px ignored on every side)."""
    assert batch.true_flow is not None and batch.true_radiometry is not None
    idx = [batch.input_bands.index(b) for b in batch.target_bands]
    oracle_dn = oracle_target(
        batch.target.float(), batch.inputs[:, idx].float(), batch.true_flow, batch.true_radiometry[:, idx]
    )
    kept = KeptDistortion(batch.target, batch.true_flow, mtf=mtf, margin_lr=margin_lr)
    return _OracleBatch(dn_to_reflectance(oracle_dn), kept)


def _registration_inputs(
    ctx: _Context, hr: torch.Tensor, inputs_r: torch.Tensor, input_bands: Sequence[str]
) -> tuple[torch.Tensor, torch.Tensor, int]:
    """(HR band ``[B, 1, H, W]``, input ``[B, 1, h, w]``) of the registration band, standardised."""
    assert ctx.reg_channel is not None and ctx.reg_std is not None
    band = input_bands[ctx.reg_channel]
    mean, std = ctx.reg_std.tensors(hr)
    t = ctx.bands.index(band)
    hr_band = (hr[:, t : t + 1] - mean) / std
    in_band = (inputs_r[:, ctx.reg_channel : ctx.reg_channel + 1] - mean) / std
    return hr_band, in_band, t


def _update_model(
    acc: _ModelAccumulator,
    pred: torch.Tensor,
    target_r: torch.Tensor,
    inputs_r: torch.Tensor,
    batch: Batch,
    ctx: _Context,
    params: EvaluationParams,
    estimator: FlowEstimator | None,
    oracle: _OracleBatch | None = None,
) -> None:
    n = pred.shape[0]
    m = ctx.margin
    if pred.shape != target_r.shape:
        raise SisrError(f"prediction {tuple(pred.shape)} and target {tuple(target_r.shape)} differ in shape")
    acc.means.update("psnr", psnr(pred, target_r, params.data_range, m), n)
    acc.means.update("ssim", ssim(pred, target_r, params.data_range, m), n)
    acc.means.update("rmse", rmse(pred, target_r, m), n)
    acc.means.update("tv_variation", tv_variation(pred, target_r, m), n)
    if ctx.lr_shared:
        t_idx = [ctx.bands.index(b) for b in ctx.lr_shared]
        i_idx = [batch.input_bands.index(b) for b in ctx.lr_shared]
        err, bias = lr_fidelity(pred[:, t_idx], inputs_r[:, i_idx], ctx.factor, params.lr_mtf, m)
        acc.means.update("lr_rmse", err, n)
        acc.means.update("lr_bias", bias, n)
    if estimator is not None and ctx.reg_channel is not None:
        hr_band, in_band, _ = _registration_inputs(ctx, pred, inputs_r, batch.input_bands)
        flow = estimate_flow(estimator, hr_band, in_band, ctx.factor, 0, 0, params.geometric_mtf)
        _, lm = lr_margin(m, ctx.factor)
        acc.geom.update(flow_norm(crop(flow, lm)))
    if acc.profile is not None and ctx.fda_bands:
        acc.profile.update(pred[:, [ctx.bands.index(b) for b in ctx.fda_bands]])
    if oracle is not None:
        acc.means.update("oracle_psnr", psnr(pred, oracle.target_r, params.data_range, m), n)
        acc.means.update("oracle_ssim", ssim(pred, oracle.target_r, params.data_range, m), n)
        kept = oracle.kept.fraction(pred)
        acc.oracle_kept.update(kept)
        acc.oracle_geom.update(kept.abs() * oracle.kept.true_mean)


def _fda_rows(
    pred_profile: torch.Tensor,
    target_profile: torch.Tensor,
    input_profile: torch.Tensor,
    bands: Sequence[str],
) -> dict[str, float]:
    p, t, i = fda.to_db(pred_profile), fda.to_db(target_profile), fda.to_db(input_profile)
    frr_v, arr_v, prr_v = fda.frr(p, t, i)
    fro_v, fru_v = fda.fro_fru(p, t, i)
    noise = fda.fda_noise(p, t, i)
    row: dict[str, float] = {}
    for name, values in (
        ("frr", frr_v),
        ("arr", arr_v),
        ("prr", prr_v),
        ("fro", fro_v),
        ("fru", fru_v),
        ("fda_noise", noise),
    ):
        row.update(per_band_row(name, values, bands))
    return row


def _hf_excess(
    freqs: torch.Tensor, pred_profile: torch.Tensor, input_profile: torch.Tensor, bands: Sequence[str]
) -> dict[str, float]:
    """``hf_excess_db_<band>``: the smallest excess (dB) of the prediction's profile over the bicubic input's
    on the rings from 0.5 to 1 Nyquist (> 0: above bicubic everywhere there); ``hf_excess_db``: the smallest
    over the bands (> 0: above bicubic in every band)."""
    rings = (freqs >= 0.5) & (freqs <= 1.0)
    if not bool(rings.any()):
        return {}
    excess = (fda.to_db(pred_profile) - fda.to_db(input_profile))[..., rings.to(pred_profile.device)]
    per_band = excess.min(dim=-1).values
    row = {f"hf_excess_db_{b}": float(per_band[k]) for k, b in enumerate(bands)}
    row["hf_excess_db"] = float(per_band.min())
    return row


# --------------------------------------------------------------------------------------------- run resolution
def resolve_path(path: str | Path) -> Path:
    """``path`` as given if it exists, else relative to the project root (the folder holding ``params/``)."""
    p = Path(path)
    if p.exists() or p.is_absolute():
        return p
    root = Path(__file__).resolve().parents[1]
    candidate = root / p
    return candidate if candidate.exists() else p


def resolve_checkpoint(spec: RunSpec) -> Path:
    """The checkpoint file of a run spec (see ``RunSpec``), with a clear error when it does not exist."""
    if spec.checkpoint is not None:
        p = resolve_path(spec.checkpoint)
        if p.is_dir():
            for candidate in (p / "checkpoints" / "best.ckpt", p / "best.ckpt"):
                if candidate.is_file():
                    return candidate
            raise FileNotFoundError(f"{p} is a folder without checkpoints/best.ckpt or best.ckpt")
        if not p.is_file():
            raise FileNotFoundError(f"checkpoint {p} does not exist; train the run first or fix the path")
        return p
    assert spec.params_file is not None
    from sisrlib.training.params import load_experiment

    params_path = resolve_path(spec.params_file)
    experiment = load_experiment(params_path)
    ckpt = experiment.best_checkpoint
    if not ckpt.is_file():
        raise FileNotFoundError(
            f"run {experiment.name} ({params_path}) has no checkpoint {ckpt}; train it first "
            f"(sisr train {params_path}, or the 03_training notebook)"
        )
    return ckpt


def _is_glob(text: str) -> bool:
    return any(ch in text for ch in "*?[")


def _glob(pattern: str) -> list[Path]:
    import glob

    matches = sorted(glob.glob(pattern))
    if not matches and not Path(pattern).is_absolute():
        root = Path(__file__).resolve().parents[1]
        matches = sorted(glob.glob(str(root / pattern)))
    return [Path(m) for m in matches]


def _is_sr_checkpoint(path: Path) -> bool:
    from sisrlib.training.checkpoint import checkpoint_params, read_checkpoint

    return bool(checkpoint_params(read_checkpoint(path), path).training.mode == "sr")


def expand_runs(specs: Sequence[RunSpec]) -> list[tuple[RunSpec, Path]]:
    """Every (run spec, checkpoint file) to evaluate, glob patterns expanded (see ``RunSpec``)."""
    out: list[tuple[RunSpec, Path]] = []
    for spec in specs:
        pattern = spec.checkpoint if spec.checkpoint is not None else spec.params_file
        assert pattern is not None
        if not _is_glob(pattern):
            out.append((spec, resolve_checkpoint(spec)))
            continue
        matches = _glob(pattern)
        found = 0
        for match in matches:
            single = dataclasses.replace(
                spec,
                checkpoint=str(match) if spec.checkpoint is not None else None,
                params_file=str(match) if spec.checkpoint is None else None,
                label=None,
                dataset=spec.dataset,
                variant=None,
            )
            ckpt = resolve_checkpoint(single)
            if not _is_sr_checkpoint(ckpt):
                LOGGER.info("skipping %s: a registration pre-training checkpoint", ckpt)
                continue
            out.append((single, ckpt))
            found += 1
        if not found:
            raise FileNotFoundError(
                f"no super-resolution checkpoint matches {pattern!r}; train the runs first (03_training)"
            )
    return out


def variant_of(params: Any) -> str:
    """baseline / geom / geomrad / rad from an ExperimentParams' registration flags."""
    reg = params.registration
    if reg.geometric and reg.radiometric:
        return "geomrad"
    if reg.geometric:
        return "geom"
    if reg.radiometric:
        return "rad"
    return "baseline"


def dataset_of(name: str, variant: str, data: DataParams, factor: float) -> str:
    """Dataset label: the run name without a trailing ``_<variant>`` (and a leading ``NN_training_``), else
    ``<dataset>x<factor>``."""
    base = re.sub(r"^\d\d_training_", "", name)
    for suffix in (variant, *VARIANTS):
        if base.endswith("_" + suffix) and len(base) > len(suffix) + 1:
            return base[: -len(suffix) - 1]
    return f"{data.dataset}x{factor:g}"


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


DatamoduleFactory = Callable[[DataParams, int], Any]


def _default_datamodule(data: DataParams, seed: int) -> Any:
    import importlib

    build = getattr(importlib.import_module("sisrlib.data"), "build_datamodule", None)
    if build is None:
        raise SisrError("sisrlib.data.build_datamodule is not available in this installation")
    return build(data, seed)


def test_batches(datamodule: Any, max_batches: int | None) -> Iterable[Batch]:
    """The first ``max_batches`` batches of a datamodule's test loader."""
    datamodule.setup("test")
    for k, batch in enumerate(datamodule.test_dataloader()):
        if max_batches is not None and k >= max_batches:
            break
        if not isinstance(batch, Batch):
            raise SisrError(
                f"the test loader yielded {type(batch).__name__}, expected sisrlib.data.batch.Batch"
            )
        yield batch


def _registration_estimator(
    path: str | None, experiments: Sequence[Any], device: torch.device
) -> tuple[FlowEstimator | None, str | None]:
    """The flow network at ``path``, else at the ``registration.checkpoint`` of the first of ``experiments``
    that has one on disk; ``(None, None)`` when there is none."""
    if path is None:
        for exp in experiments:
            candidate = exp.registration.checkpoint
            if candidate and resolve_path(candidate).is_file():
                path = candidate
                break
    if path is None:
        return None, None
    from sisrlib.training.checkpoint import load_registration

    p = resolve_path(path)
    if not p.is_file():
        raise FileNotFoundError(
            f"registration_checkpoint {p} does not exist; run the registration pre-training (02) first"
        )
    estimator: FlowEstimator = load_registration(p, map_location=device)
    return estimator, str(p)


# --------------------------------------------------------------------------------------------- main loop
def evaluate_predictors(
    predictors: Sequence[Predictor],
    batches: Iterable[Batch],
    params: EvaluationParams,
    estimator: FlowEstimator | None = None,
    registration_channel: int | None = None,
    standardisation_name: str = "evoland",
    device: torch.device | None = None,
    oracle_cache: dict[Any, _OracleBatch] | None = None,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Evaluate several predictors on the same batches.

    ``oracle_cache`` (optional, shared by the calls of one dataset): the oracle references of every batch by
    its patch ids, so that the runs of a dataset compute them once.

    Returns ``(rows, extras)``: one metrics row per predictor (``<metric>_<band>`` and ``<metric>`` keys, no
    ``model``/``dataset``/``variant``), and shared outputs (``freqs``, ``profiles`` ``{predictor index: [3, R,
    C]}``, ``bands``, ``fda_bands``, ``mosaics`` ``{"target"|"input"|index: [N, C, H, W] DN}``, ``patches``).
    """
    device = device or torch.device("cpu")
    accs = [_ModelAccumulator(None) for _ in predictors]
    target_geom, epe, true_geom = Moments(), Moments(), Moments()
    target_profile: fda.ProfileAccumulator | None = None
    input_profile: fda.ProfileAccumulator | None = None
    oracle_profile: fda.ProfileAccumulator | None = None
    #: None until the first batch; then whether every batch so far carried the truth of the oracle metrics.
    with_oracle: bool | None = None
    mosaic_target: list[torch.Tensor] = []
    #: full-resolution patches of the comparison figure (DN): "target", "input" (LR), "oracle", index k.
    samples: dict[Any, list[torch.Tensor]] = {}
    mosaic_input: list[torch.Tensor] = []
    ctx: _Context | None = None
    patches = 0
    for batch in batches:
        batch = batch.to(device)
        inputs_r = dn_to_reflectance(batch.inputs)
        target_r = dn_to_reflectance(batch.target)
        h, w = target_r.shape[-2:]
        if ctx is None:
            bands = tuple(batch.target_bands)
            fda_bands = tuple(b for b in bands if input_band_available(batch, b))
            lr_shared = tuple(b for b in bands if b in batch.input_bands)
            margin = params.margin if params.margin is not None else 0
            if 2 * margin >= min(h, w):
                raise SisrError(f"margin {margin} px leaves nothing of the {h}×{w} px test patches")
            reg_channel = registration_channel
            reg_std = None
            if estimator is not None and reg_channel is not None:
                if not 0 <= reg_channel < len(batch.input_bands):
                    raise SisrError(
                        f"registration channel {reg_channel} not in the input bands {batch.input_bands}"
                    )
                band = batch.input_bands[reg_channel]
                if band not in bands:
                    LOGGER.warning(
                        "registration band %s is not a target band: geometric metrics skipped", band
                    )
                    reg_channel = None
                else:
                    reg_std = standardisation(standardisation_name, [band])
            ctx = _Context(bands, fda_bands, lr_shared, margin, batch.factor, reg_channel, reg_std)
            fft_size = params.fft_size or 2 * w
            with_oracle = oracle_available(batch)
            if fda_bands:
                target_profile = fda.ProfileAccumulator(fft_size)
                input_profile = fda.ProfileAccumulator(fft_size)
                if with_oracle:
                    oracle_profile = fda.ProfileAccumulator(fft_size)
                for acc in accs:
                    acc.profile = fda.ProfileAccumulator(fft_size)
            else:
                LOGGER.warning("no target band is among the input bands: FDA metrics skipped")
        elif tuple(batch.target_bands) != ctx.bands:
            raise SisrError(f"target bands changed between test batches: {batch.target_bands} vs {ctx.bands}")
        n = len(batch)
        patches += n
        if with_oracle and not oracle_available(batch):
            LOGGER.warning("a test batch carries no true flow/radiometry: the oracle metrics are skipped")
            with_oracle, oracle_profile = False, None
        oracle: _OracleBatch | None = None
        if with_oracle:
            lm = lr_margin(ctx.margin, ctx.factor)[1]
            key = None
            if batch.ids and oracle_cache is not None:
                key = (batch.ids, tuple(batch.target.shape), batch.target_bands, lm, params.geometric_mtf)
            if key is not None and oracle_cache is not None and key in oracle_cache:
                oracle = oracle_cache[key]
            else:
                oracle = oracle_batch(batch, lm, params.geometric_mtf)
                if key is not None and oracle_cache is not None:
                    oracle_cache[key] = oracle
            if oracle_profile is not None:
                oracle_profile.update(oracle.target_r[:, [ctx.bands.index(b) for b in ctx.fda_bands]])
        up = bicubic_input(batch, ctx.fda_bands) if ctx.fda_bands else None
        if target_profile is not None and input_profile is not None and up is not None:
            target_profile.update(target_r[:, [ctx.bands.index(b) for b in ctx.fda_bands]])
            input_profile.update(up)
        if estimator is not None and ctx.reg_channel is not None:
            hr_band, in_band, _ = _registration_inputs(ctx, target_r, inputs_r, batch.input_bands)
            flow = estimate_flow(estimator, hr_band, in_band, ctx.factor, 0, 0, params.geometric_mtf)
            _, lm = lr_margin(ctx.margin, ctx.factor)
            target_geom.update(flow_norm(crop(flow, lm)))
            if batch.true_flow is not None:
                true = batch.true_flow.to(flow)
                epe.update(flow_norm(crop(flow - true, lm)))
                true_geom.update(flow_norm(crop(true, lm)))
        take = max(0, params.mosaic_patches - sum(t.shape[0] for t in mosaic_target))
        keep = max(0, params.figure_patches - sum(t.shape[0] for t in samples.get("target", [])))
        if keep:
            samples.setdefault("target", []).append(batch.target[:keep].float().cpu())
            if all(b in batch.input_bands for b in ctx.bands):
                idx = [batch.input_bands.index(b) for b in ctx.bands]
                samples.setdefault("input", []).append(batch.inputs[:keep, idx].float().cpu())
            if oracle is not None:
                samples.setdefault("oracle", []).append(reflectance_to_dn(oracle.target_r[:keep]).cpu())
        mc = min(params.mosaic_crop, min(h, w) // 4)
        if take:
            mosaic_target.append(crop(batch.target[:take].float(), mc).cpu())
            if up is not None:
                mosaic_input.append(crop(reflectance_to_dn(up[:take]), mc).cpu())
        for index, (predictor, acc) in enumerate(zip(predictors, accs, strict=True)):
            pred = predictor(batch).to(device)
            _update_model(acc, pred, target_r, inputs_r, batch, ctx, params, estimator, oracle)
            if take:
                acc.mosaic.append(crop(reflectance_to_dn(pred[:take]), mc).cpu())
            if keep:
                samples.setdefault(index, []).append(reflectance_to_dn(pred[:keep]).cpu())
            del pred
    if ctx is None:
        raise SisrError(
            "the test split yielded no batch; check the testing sites / split of the data section"
        )

    rows: list[dict[str, Any]] = []
    profiles: dict[int, np.ndarray] = {}
    freqs = None
    for k, acc in enumerate(accs):
        row: dict[str, Any] = {}
        for name in PER_BAND_METRICS:
            if name in ORACLE_METRICS and not with_oracle:
                continue
            if name in acc.means.names():
                band_list = ctx.lr_shared if name.startswith("lr_") else ctx.bands
                row.update(per_band_row(name, acc.means.mean(name), band_list))
            elif name == "frr" and acc.profile is not None and target_profile and input_profile:
                freqs_t, p = acc.profile.compute()
                _, t = target_profile.compute()
                _, i = input_profile.compute()
                row.update(_fda_rows(p, t, i, ctx.fda_bands))
                freqs = freqs_t.cpu().numpy()
                profiles[k] = torch.stack([i, t, p]).permute(0, 2, 1).cpu().numpy()
                row.update(_hf_excess(freqs_t, p, i, ctx.fda_bands))
                if oracle_profile is not None:
                    _, o = oracle_profile.compute()
                    oracle_frr = fda.frr(fda.to_db(p), fda.to_db(o), fda.to_db(i))[0]
                    row.update(per_band_row("oracle_frr", oracle_frr, ctx.fda_bands))
        if acc.geom.n:
            row["geom_mean"], row["geom_std"] = acc.geom.mean, acc.geom.std
        if target_geom.n:
            row["target_geom_mean"], row["target_geom_std"] = target_geom.mean, target_geom.std
        if epe.n:
            row["epe_true"], row["true_geom_mean"] = epe.mean, true_geom.mean
        if with_oracle and acc.oracle_geom.n:
            row["oracle_geom"], row["oracle_kept"] = acc.oracle_geom.mean, acc.oracle_kept.mean
        for name in ORACLE_METRICS:
            row.setdefault(name, math.nan)  # real data (no truth): the columns exist, NaN
        rows.append(row)
    mosaics: dict[Any, torch.Tensor] = {}
    if mosaic_target:
        mosaics["target"] = torch.cat(mosaic_target)
    if mosaic_input:
        mosaics["input"] = torch.cat(mosaic_input)
    for k, acc in enumerate(accs):
        if acc.mosaic:
            mosaics[k] = torch.cat(acc.mosaic)
    extras = {
        "samples": {key: torch.cat(parts) for key, parts in samples.items()},
        "freqs": freqs,
        "profiles": profiles,
        "bands": ctx.bands,
        "fda_bands": ctx.fda_bands,
        "mosaics": mosaics,
        "patches": patches,
    }
    return rows, extras


def _safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_") or "model"


def _write_model_outputs(
    result: ModelResult,
    profiles: np.ndarray | None,
    mosaics: dict[Any, torch.Tensor],
    index: int,
    figures_dir: Path | None,
    prefix: str,
    columns: int,
    resolution_m: float,
    plot: bool = True,
) -> None:
    out = result.output_dir
    out.mkdir(parents=True, exist_ok=True)
    if profiles is not None and result.freqs is not None:
        db = np.stack([fda.to_db(torch.from_numpy(p.T)).numpy().T for p in profiles])
        _save_npy(out / "fft_profiles.npy", profiles.astype(np.float32))
        _save_npy(out / "fft_profiles_db.npy", db.astype(np.float32))
        _save_npy(out / "fft_freqs.npy", result.freqs.astype(np.float32))
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
                result.figures.append(_copy(fig, figures_dir / f"{prefix}_fft_profiles.png"))
    for key, stem in (("target", "target"), ("input", "input"), (index, "pred")):
        if key in mosaics:
            bands = result.fda_bands if key == "input" else result.bands
            _, png = write_mosaic(mosaics[key], bands, out / stem, columns, resolution_m)
            result.figures.append(png)  # the packed mosaics stay in output_dir; figures get patch_figures


def _copy(source: Path, target: Path) -> Path:
    """Copy a file atomically (temporary name in the target folder, then rename)."""
    import shutil

    with atomic_output(target) as tmp:
        shutil.copyfile(source, tmp)
    return target


def _save_npy(path: Path, array: np.ndarray) -> None:
    with atomic_output(path) as tmp, open(tmp, "wb") as f:
        np.save(f, array)


def write_csv(frame: pd.DataFrame, path: Path) -> Path:
    """Write a CSV atomically (temporary name, then rename)."""
    with atomic_output(path) as tmp:
        frame.to_csv(tmp, index=False)
    return path


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


def evaluate(
    params: EvaluationParams,
    datamodule_factory: DatamoduleFactory | None = None,
    estimator: FlowEstimator | None = None,
) -> EvaluationResult:
    """Evaluate every run of ``params`` (and the bicubic baseline once per dataset) and write the outputs.

    ``datamodule_factory(data_params, seed)`` builds the test datamodule (default
    ``sisrlib.data.build_datamodule``); ``estimator`` overrides the registration network used for the
    geometric metrics.
    """
    from sisrlib.training.checkpoint import load_generator

    device = resolve_device(params.device)
    factory = datamodule_factory or _default_datamodule
    output_dir = (
        resolve_path(params.output_dir) if Path(params.output_dir).exists() else Path(params.output_dir)
    )
    figures_dir = Path(params.figures_dir) if params.figures_dir else None
    expanded = expand_runs(params.runs)
    loaded = [load_generator(ckpt, map_location=device) for _, ckpt in expanded]
    labels: list[tuple[str, str, str]] = []
    for (spec, _), ld in zip(expanded, loaded, strict=True):
        variant = spec.variant or variant_of(ld.params)
        dataset = spec.dataset or dataset_of(ld.params.name, variant, ld.params.data, ld.factor)
        labels.append((spec.label or ld.params.name, dataset, variant))
    # one registration network per dataset, the same for every row of it
    estimators: dict[str, tuple[FlowEstimator | None, str | None]] = {}
    for dataset in dict.fromkeys(d for _, d, _ in labels):
        members = [k for k, (_, d, _) in enumerate(labels) if d == dataset]
        path = next(
            (
                expanded[k][0].registration_checkpoint
                for k in members
                if expanded[k][0].registration_checkpoint
            ),
            params.registration_checkpoint,
        )
        if estimator is not None:
            estimators[dataset] = (estimator, "given")
        else:
            estimators[dataset] = _registration_estimator(path, [loaded[k].params for k in members], device)
            if estimators[dataset][0] is None:
                LOGGER.warning("%s: no registration checkpoint, the geometric metrics are skipped", dataset)
    results: list[ModelResult] = []
    samples: dict[str, dict[str, torch.Tensor]] = {}
    sample_bands: dict[str, tuple[str, ...]] = {}
    bicubic_done: set[str] = set()
    analyses: list[pd.DataFrame] = []
    calibrations: list[pd.DataFrame] = []
    oracle_caches: dict[str, dict[Any, _OracleBatch]] = {}
    for (_, ckpt), ld, (label, dataset, variant) in zip(expanded, loaded, labels, strict=True):
        exp = ld.params
        data = _test_data(exp.data, params)
        dataset_estimator = estimators[dataset][0]
        predictors: list[Predictor] = [GeneratorPredictor(ld, device)]
        with_bicubic = params.bicubic and dataset not in bicubic_done
        if with_bicubic:
            predictors.append(BicubicPredictor(ld.target_bands))
        eval_params = params
        if params.margin is None:
            eval_params = dataclasses.replace(params, margin=exp.training.validation_margin)
        eval_params, batches = _fit_margin(
            test_batches(factory(data, exp.seed), params.max_test_batches), eval_params
        )
        LOGGER.info("evaluating %s (%s) on %s", label, ckpt, dataset)
        rows, extras = evaluate_predictors(
            predictors,
            batches,
            eval_params,
            estimator=dataset_estimator,
            registration_channel=exp.registration.channel if dataset_estimator is not None else None,
            standardisation_name=exp.training.standardisation,
            device=device,
            oracle_cache=oracle_caches.setdefault(dataset, {}),
        )
        names = [(label, variant, str(ckpt))] + ([("bicubic", "bicubic", "")] if with_bicubic else [])
        found = extras.get("samples", {})
        shown = samples.setdefault(dataset, {})
        sample_bands.setdefault(dataset, tuple(extras["bands"]))
        if "input" in found:
            shown.setdefault("input", found["input"])
        for k, (model, var, _) in enumerate(names):
            if k in found:
                shown[var or model] = found[k]
        for key, panel in (("oracle", "oracle target"), ("target", "target")):
            if key in found:
                shown.setdefault(panel, found[key])
        for k, (model, var, source) in enumerate(names):
            # figures/<profile>/04_<evaluation>_<variant>_{fft_profiles,mosaic}.png (made by notebook 04)
            prefix = "04_" + _safe_name(f"{params.name}_{var or model}")
            result = ModelResult(
                model=model,
                dataset=dataset,
                variant=var,
                checkpoint=source,
                row=rows[k],
                bands=tuple(extras["bands"]),
                fda_bands=tuple(extras["fda_bands"]),
                freqs=extras["freqs"],
                profiles=extras["profiles"].get(k),
                output_dir=output_dir / _safe_name(f"{dataset}_{model}"),
                patches=int(extras["patches"]),
            )
            _write_model_outputs(
                result,
                result.profiles,
                extras["mosaics"],
                k,
                figures_dir,
                prefix,
                params.mosaic_columns,
                1.0,
                plot=params.figures and model != "bicubic",
            )
            results.append(result)
        if with_bicubic:
            bicubic_done.add(dataset)
            if params.dataset_analysis:
                analyses.append(_analyse(exp, data, dataset, dataset_estimator, factory, params))
            if params.calibration and dataset_estimator is not None:
                calibrations.append(
                    calibrate_dataset(
                        next(iter(test_batches(factory(data, exp.seed), 1))),
                        dataset_estimator,
                        exp.registration.channel,
                        exp.training.standardisation,
                        eval_params,
                        device,
                    ).assign(dataset=dataset)
                )
    if analyses:
        write_csv(pd.concat(analyses, ignore_index=True), output_dir / "dataset_analysis.csv")
    if calibrations:
        write_csv(pd.concat(calibrations, ignore_index=True), output_dir / "distortion_calibration.csv")
    table = metrics_frame(results)
    metrics_csv = write_csv(table, output_dir / "metrics.csv")
    runs = pd.DataFrame(
        [
            {
                "model": r.model,
                "dataset": r.dataset,
                "variant": r.variant,
                "checkpoint": r.checkpoint,
                "registration_checkpoint": estimators[r.dataset][1] or "",
                "patches": r.patches,
            }
            for r in results
        ]
    )
    write_csv(runs, output_dir / "runs.csv")
    return EvaluationResult(
        table=table,
        metrics_csv=metrics_csv,
        models=results,
        output_dir=output_dir,
        samples=samples,
        sample_bands=sample_bands,
    )


def _test_data(data: DataParams, params: EvaluationParams) -> DataParams:
    changes: dict[str, Any] = {}
    if params.test_batch_size is not None:
        changes["test_batch_size"] = params.test_batch_size
    if params.data_root is not None:
        changes["root"] = params.data_root
    return dataclasses.replace(data, **changes) if changes else data


def _analyse(
    exp: Any,
    data: DataParams,
    dataset: str,
    estimator: FlowEstimator | None,
    factory: DatamoduleFactory,
    params: EvaluationParams,
) -> pd.DataFrame:
    from sisrlib.metrics.dataset_analysis import DatasetAnalysisParams, analyse_dataset

    analysis = DatasetAnalysisParams(
        data=data,
        max_batches=params.analysis_max_batches,
        registration_channel=exp.registration.channel,
        standardisation=exp.training.standardisation,
        seed=exp.seed,
    )
    table = analyse_dataset(analysis, datamodule_factory=factory, estimator=estimator)
    table.insert(0, "name", dataset)
    return table


def calibrate_dataset(
    batch: Batch,
    estimator: FlowEstimator,
    channel: int,
    standardisation_name: str,
    params: EvaluationParams,
    device: torch.device | None = None,
) -> pd.DataFrame:
    """What the geometric measure of the evaluation reads on known distortions of one test batch's
    registration band (``sisrlib.metrics.distortion.calibrate_geometric``): shifts of 0.25 / 0.5 / 1.0 LR px,
    blurs (MTF 0.3 / 0.1 / 0.03 at the HR Nyquist), gains 0.9 / 1.1 / 1.25. On simulated sites the HR image is
    the oracle target (the input's geometry and radiometry) and the reference the real input, so that ``none``
    reads the network's floor on a perfectly aligned prediction; elsewhere the target and its MTF-0.35
    downscaling. Columns ``kind``, ``level``, ``true_px``, ``read_px``, ``read_std_px`` (LR px)."""
    batch = batch.to(device or torch.device("cpu"))
    if not 0 <= channel < len(batch.input_bands) or batch.input_bands[channel] not in batch.target_bands:
        raise SisrError(
            f"registration channel {channel} is not a target band of {batch.target_bands} (input bands "
            f"{batch.input_bands})"
        )
    band = batch.input_bands[channel]
    t = batch.target_bands.index(band)
    reference = None
    hr = dn_to_reflectance(batch.target[:, t : t + 1].float())
    if oracle_available(batch):
        hr = oracle_batch(batch, 0, params.geometric_mtf).target_r[:, t : t + 1]
        reference = dn_to_reflectance(batch.inputs[:, channel : channel + 1].float())
    std = standardisation(standardisation_name, [band])
    mean, scale = std.tensors(hr)

    def normalise(x: torch.Tensor) -> torch.Tensor:
        return (x - mean) / scale

    _, lm = lr_margin(params.margin or 0, batch.factor)
    readings = calibrate_geometric(
        estimator,
        hr,
        batch.factor,
        mtf=params.geometric_mtf,
        margin_lr=max(lm, 4),
        normalise=normalise,
        lr_reference=reference,
    )
    return pd.DataFrame([dataclasses.asdict(r) for r in readings])


def _fit_margin(
    batches: Iterable[Batch], params: EvaluationParams
) -> tuple[EvaluationParams, Iterable[Batch]]:
    """Clamp the margin to a quarter of the test patch size (small smoke patches), peeking at the first
    batch."""
    iterator = iter(batches)
    try:
        first = next(iterator)
    except StopIteration:
        raise SisrError(
            "the test split yielded no batch; check the testing sites / split of the data section"
        ) from None
    h, w = first.target.shape[-2:]
    margin = params.margin or 0
    limit = min(h, w) // 4
    if margin > limit:
        LOGGER.info("margin %d px reduced to %d px for %dx%d test patches", margin, limit, h, w)
        params = dataclasses.replace(params, margin=limit)

    def chained() -> Iterable[Batch]:
        yield first
        yield from iterator

    return params, chained()


def evaluate_runs(
    runs: Sequence[str | RunSpec],
    output_dir: str | Path,
    registration_checkpoint: str | None = None,
    figures_dir: str | Path | None = None,
    max_test_batches: int | None = None,
    bicubic: bool = True,
    datamodule_factory: DatamoduleFactory | None = None,
    **options: Any,
) -> EvaluationResult:
    """Evaluate several runs (training params files ``*.yaml`` or checkpoints ``*.ckpt``/run folders) and the
    bicubic baseline into one ``metrics.csv`` under ``output_dir``. ``options`` are other ``EvaluationParams``
    fields (``margin``, ``fft_size``, ``device``, ...)."""
    specs = []
    for run in runs:
        if isinstance(run, RunSpec):
            specs.append(run)
        elif str(run).endswith((".yaml", ".yml")):
            specs.append(RunSpec(params_file=str(run)))
        else:
            specs.append(RunSpec(checkpoint=str(run)))
    params = EvaluationParams(
        runs=specs,
        output_dir=str(output_dir),
        registration_checkpoint=registration_checkpoint,
        figures_dir=str(figures_dir) if figures_dir is not None else None,
        max_test_batches=max_test_batches,
        bicubic=bicubic,
        **options,
    )
    return evaluate(params, datamodule_factory=datamodule_factory)


def format_table(table: pd.DataFrame, columns: Sequence[str] | None = None, digits: int = 3) -> pd.DataFrame:
    """The band-averaged columns (or ``columns``) of a metrics table, rounded, for display in a notebook."""
    if columns is None:
        columns = [c for c in (*PER_BAND_METRICS, *SCALAR_METRICS) if c in table.columns]
    shown = table[["model", "dataset", "variant", *columns]].copy()
    for c in columns:
        shown[c] = shown[c].map(
            lambda v: v if isinstance(v, str) or v is None or math.isnan(v) else round(v, digits)
        )
    return shown


def profile_figures(result: EvaluationResult, figures_dir: str | Path | None = None) -> list[Path]:
    """One FFT-profile figure per dataset (signal attenuation in dB per band): the target, the bicubic input
    and every model's prediction, written as ``<figures_dir or output_dir>/04_fft_profiles_<dataset>.png``."""
    out = Path(figures_dir) if figures_dir is not None else result.output_dir
    paths = []
    for dataset in dict.fromkeys(m.dataset for m in result.models):
        members = [m for m in result.models if m.dataset == dataset and m.profiles is not None]
        if not members or members[0].freqs is None:
            continue
        first = members[0]
        assert first.profiles is not None and first.freqs is not None

        def db(profile: np.ndarray) -> np.ndarray:
            return fda.to_db(torch.from_numpy(np.asarray(profile, dtype=np.float64))).numpy()

        curves = {"target (HR sensor)": db(first.profiles[1].T), "bicubic input": db(first.profiles[0].T)}
        for m in members:
            if m.variant != "bicubic" and m.profiles is not None:
                curves[f"{m.variant or m.model}"] = db(m.profiles[2].T)
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
    result: EvaluationResult, figures_dir: str | Path | None = None, prefix: str = "04"
) -> list[Path]:
    """One full-resolution comparison figure per dataset, ``<figures_dir or output_dir>/<prefix>_patches_
    <dataset>.png``: one row per patch (the first ``figure_patches`` test patches), columns input (LR,
    nearest-neighbour pixels), bicubic, every model, the oracle target (simulated sites) and the target, all
    with one display stretch (2–98 % of the target per displayed band, written in the title)."""
    from sisrlib.metrics.plots import plot_patch_panels

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


def mosaic_pngs(result: EvaluationResult) -> dict[str, Path]:
    """The PNG mosaics written for every model (``<dataset>/<model>`` → ``pred.png``) and the
    targets/inputs."""
    out: dict[str, Path] = {}
    for m in result.models:
        for stem in ("target", "input", "pred"):
            path = m.output_dir / f"{stem}.png"
            key = f"{m.dataset}/{stem}" if stem != "pred" else f"{m.dataset}/{m.model}"
            if path.is_file() and key not in out:
                out[key] = path
    return out
