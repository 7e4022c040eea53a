"""The metric loop: several predictors on the same test batches, their metrics accumulated per band.

For every batch: pixel metrics of the prediction against the **un-registered** HR target (as torchsisr at test
time), LR fidelity against the real input, geometric distortion with a registration network, radial FFT
profiles for the FDA, the oracle metrics on simulated sites, and optionally the perceptual metrics and the
"sim" metrics (predictions from inputs simulated from the target). All values are reflectance.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from sisrlib.bands import Standardisation, dn_to_reflectance, reflectance_to_dn, standardisation
from sisrlib.data.batch import Batch
from sisrlib.errors import SisrError
from sisrlib.experiments.evaluation.batches import bicubic_input, input_band_available
from sisrlib.experiments.evaluation.ceilings import Reference
from sisrlib.experiments.evaluation.oracle import OracleBatch, oracle_available, oracle_batch
from sisrlib.experiments.evaluation.params import EvaluationParams
from sisrlib.experiments.evaluation.perceptual import PerceptualScorer
from sisrlib.experiments.evaluation.predict import predict_reflectance
from sisrlib.experiments.evaluation.rows import fda_rows, hf_excess
from sisrlib.experiments.evaluation.simulation import simulated_batch
from sisrlib.flow import flow_norm
from sisrlib.metrics import fda
from sisrlib.metrics.accumulate import MetricMeans, Moments
from sisrlib.metrics.distortion import FlowEstimator, estimate_flow
from sisrlib.metrics.pixel import (
    crop,
    lr_fidelity,
    lr_margin,
    per_band_row,
    psnr,
    rmse,
    ssim,
    tv_variation,
    tv_variation_reference,
)
from sisrlib.predictors import Predictor

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
    "lpips",
    "pieapp",
    "brisque",
    "sim_psnr",
    "sim_ssim",
    "sim_rmse",
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
    "oracle_offset",
    "hf_excess_db",
)
#: Columns that are NaN when the test batches carry no truth (real data).
ORACLE_METRICS: tuple[str, ...] = (
    "oracle_psnr",
    "oracle_ssim",
    "oracle_frr",
    "oracle_geom",
    "oracle_kept",
    "oracle_offset",
)


@dataclass
class ModelAccumulator:
    """Running metrics of one predictor over the batches."""

    means: MetricMeans = field(default_factory=MetricMeans)
    geom: Moments = field(default_factory=Moments)
    oracle_geom: Moments = field(default_factory=Moments)
    oracle_kept: Moments = field(default_factory=Moments)
    oracle_offset: Moments = field(default_factory=Moments)
    profile: fda.ProfileAccumulator | None = None
    mosaic: list[torch.Tensor] = field(default_factory=list)


@dataclass
class Context:
    """What the first batch fixes for the whole loop."""

    bands: tuple[str, ...]
    fda_bands: tuple[str, ...]
    lr_shared: tuple[str, ...]
    margin: int
    factor: float
    reg_channel: int | None
    reg_std: Standardisation | None
    #: HR pixels cropped on every side before the FFT profiles (``params.fda_margin``).
    fda_crop: int = 0

    def fda_view(self, images: torch.Tensor) -> torch.Tensor:
        """The pixels of ``images`` (``[B, C, H, W]``, HR) the FDA profiles see."""
        return crop(images, self.fda_crop)


def fda_fft_size(height: int, width: int, crop_px: int) -> int:
    """FFT size of the FDA profiles of ``height × width`` HR patches less ``crop_px`` on every side, when the
    params leave it to the data: twice the analysed extent, rounded up to a multiple of 4, as torchsisr pads
    its whole patch (``2·W``). The frequency axis (units of Nyquist) is the same for any size; what the
    padding factor of 2 keeps is where the ring samples fall on the sinc of the window's edges. A crop padded
    to the whole patch's size instead (96 px into 256) samples that sinc at a position that drifts from ring
    to ring, and every profile ripples by several dB."""
    extent = max(height, width) - 2 * crop_px
    if extent < 2:
        raise SisrError(
            f"the FDA crop of {crop_px} HR px per side leaves {extent} px of a {height}×{width} patch; "
            "lower the evaluation margin or set fda_margin: reference"
        )
    return 4 * math.ceil(2 * extent / 4)


def registration_inputs(
    ctx: Context, hr: torch.Tensor, inputs_r: torch.Tensor, input_bands: Sequence[str]
) -> tuple[torch.Tensor, torch.Tensor, int]:
    """(HR band ``[B, 1, H, W]``, input ``[B, 1, h, w]``) of the registration band, standardised."""
    assert ctx.reg_channel is not None and ctx.reg_std is not None
    band = input_bands[ctx.reg_channel]
    mean, std = ctx.reg_std.tensors(hr)
    t = ctx.bands.index(band)
    hr_band = (hr[:, t : t + 1] - mean) / std
    in_band = (inputs_r[:, ctx.reg_channel : ctx.reg_channel + 1] - mean) / std
    return hr_band, in_band, t


def update_model(
    acc: ModelAccumulator,
    pred: torch.Tensor,
    target_r: torch.Tensor,
    inputs_r: torch.Tensor,
    batch: Batch,
    ctx: Context,
    params: EvaluationParams,
    estimator: FlowEstimator | None,
    oracle: OracleBatch | None = None,
) -> None:
    """Add one batch's prediction ``pred`` (reflectance ``[B, C_t, H, W]``) to ``acc``."""
    n = pred.shape[0]
    m = ctx.margin
    if pred.shape != target_r.shape:
        raise SisrError(f"prediction {tuple(pred.shape)} and target {tuple(target_r.shape)} differ in shape")
    acc.means.update("psnr", psnr(pred, target_r, params.data_range, m), n)
    acc.means.update("ssim", ssim(pred, target_r, params.data_range, m), n)
    acc.means.update("rmse", rmse(pred, target_r, m), n)
    tv = tv_variation_reference if params.tv_variation == "reference" else tv_variation
    acc.means.update("tv_variation", tv(pred, target_r, m), n)
    if ctx.lr_shared:
        t_idx = [ctx.bands.index(b) for b in ctx.lr_shared]
        i_idx = [batch.input_bands.index(b) for b in ctx.lr_shared]
        err, bias = lr_fidelity(
            pred[:, t_idx], inputs_r[:, i_idx], ctx.factor, params.lr_mtf, m, kernel=params.psf_kernel
        )
        acc.means.update("lr_rmse", err, n)
        acc.means.update("lr_bias", bias, n)
    if estimator is not None and ctx.reg_channel is not None:
        hr_band, in_band, _ = registration_inputs(ctx, pred, inputs_r, batch.input_bands)
        flow = estimate_flow(
            estimator, hr_band, in_band, ctx.factor, 0, 0, params.geometric_mtf, kernel=params.psf_kernel
        )
        _, lm = lr_margin(m, ctx.factor)
        acc.geom.update(flow_norm(crop(flow, lm)))
    if acc.profile is not None and ctx.fda_bands:
        acc.profile.update(ctx.fda_view(pred[:, [ctx.bands.index(b) for b in ctx.fda_bands]]))
    if oracle is not None:
        acc.means.update("oracle_psnr", psnr(pred, oracle.target_r, params.data_range, m), n)
        acc.means.update("oracle_ssim", ssim(pred, oracle.target_r, params.data_range, m), n)
        kept, translation = oracle.kept.fit(pred)
        acc.oracle_kept.update(kept)
        acc.oracle_offset.update(translation.norm(dim=1))
        acc.oracle_geom.update(oracle.kept.residual_distortion(kept, translation))


def _first_context(
    batch: Batch,
    params: EvaluationParams,
    estimator: FlowEstimator | None,
    registration_channel: int | None,
    standardisation_name: str,
) -> Context:
    h, w = batch.target.shape[-2:]
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
            raise SisrError(f"registration channel {reg_channel} not in the input bands {batch.input_bands}")
        band = batch.input_bands[reg_channel]
        if band not in bands:
            LOGGER.warning("registration band %s is not a target band: geometric metrics skipped", band)
            reg_channel = None
        else:
            reg_std = standardisation(standardisation_name, [band])
    fda_crop = margin if params.fda_margin == "cropped" else 0
    return Context(bands, fda_bands, lr_shared, margin, batch.factor, reg_channel, reg_std, fda_crop)


def evaluate_predictors(
    predictors: Sequence[Predictor],
    batches: Iterable[Batch],
    params: EvaluationParams,
    estimator: FlowEstimator | None = None,
    registration_channel: int | None = None,
    standardisation_name: str = "evoland",
    device: torch.device | None = None,
    oracle_cache: dict[Any, OracleBatch] | None = None,
    references: Mapping[str, Reference] | None = None,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Evaluate several predictors (:class:`sisrlib.predictors.Predictor`, DN in, DN out) on the same batches.

    ``oracle_cache`` (optional, shared by the calls of one dataset): the oracle references of every batch by
    its patch ids, so that the runs of a dataset compute them once. ``references`` (optional, simulated sites
    only): images built from the truth (:mod:`sisrlib.experiments.evaluation.ceilings`), scored like the
    predictors; their rows are ``extras["references"]`` by name (none when the batches carry no truth).

    Returns ``(rows, extras)``: one metrics row per predictor (``<metric>_<band>`` and ``<metric>`` keys, no
    ``model``/``dataset``/``variant``), and shared outputs (``freqs``, ``profiles`` ``{predictor index: [3, R,
    C]}``, ``bands``, ``fda_bands``, ``mosaics`` ``{"target"|"input"|index: [N, C, H, W] DN}``, ``patches``,
    ``samples``, ``notes``: what could not be computed and why).
    """
    device = device or torch.device("cpu")
    references = dict(references or {})
    accs = [ModelAccumulator() for _ in predictors]
    sim_accs = [MetricMeans() for _ in predictors]
    ref_accs = {name: ModelAccumulator() for name in references}
    perceptual = PerceptualScorer(params.perceptual, params.perceptual_weights)
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
    ctx: Context | None = None
    patches = 0
    for batch in batches:
        batch = batch.to(device)
        inputs_r = dn_to_reflectance(batch.inputs)
        target_r = dn_to_reflectance(batch.target)
        h, w = target_r.shape[-2:]
        if ctx is None:
            ctx = _first_context(batch, params, estimator, registration_channel, standardisation_name)
            fft_size = params.fft_size or fda_fft_size(h, w, ctx.fda_crop)
            with_oracle = oracle_available(batch)
            if ctx.fda_bands:
                target_profile = fda.ProfileAccumulator(fft_size)
                input_profile = fda.ProfileAccumulator(fft_size)
                if with_oracle:
                    oracle_profile = fda.ProfileAccumulator(fft_size)
                for acc in [*accs, *ref_accs.values()]:
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
        oracle: OracleBatch | None = None
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
                oracle_profile.update(
                    ctx.fda_view(oracle.target_r[:, [ctx.bands.index(b) for b in ctx.fda_bands]])
                )
        up = bicubic_input(batch, ctx.fda_bands) if ctx.fda_bands else None
        if target_profile is not None and input_profile is not None and up is not None:
            target_profile.update(ctx.fda_view(target_r[:, [ctx.bands.index(b) for b in ctx.fda_bands]]))
            input_profile.update(ctx.fda_view(up))
        if estimator is not None and ctx.reg_channel is not None:
            hr_band, in_band, _ = registration_inputs(ctx, target_r, inputs_r, batch.input_bands)
            flow = estimate_flow(
                estimator, hr_band, in_band, ctx.factor, 0, 0, params.geometric_mtf, kernel=params.psf_kernel
            )
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
        sim = simulated_batch(batch, params.sim_mtf, params.psf_kernel) if params.sim else None
        for index, (predictor, acc) in enumerate(zip(predictors, accs, strict=True)):
            pred = predict_reflectance(predictor, batch, device)
            update_model(acc, pred, target_r, inputs_r, batch, ctx, params, estimator, oracle)
            perceptual.update(acc.means, pred, target_r, ctx.margin)
            if take:
                acc.mosaic.append(crop(reflectance_to_dn(pred[:take]), mc).cpu())
            if keep:
                samples.setdefault(index, []).append(reflectance_to_dn(pred[:keep]).cpu())
            del pred
            if sim is not None:
                pred_sim = predict_reflectance(predictor, sim, device)
                m = ctx.margin
                sim_accs[index].update("sim_psnr", psnr(pred_sim, target_r, params.data_range, m), n)
                sim_accs[index].update("sim_ssim", ssim(pred_sim, target_r, params.data_range, m), n)
                sim_accs[index].update("sim_rmse", rmse(pred_sim, target_r, m), n)
                del pred_sim
        if oracle is not None:
            for name, reference in references.items():
                pred = reference(batch, oracle)
                update_model(ref_accs[name], pred, target_r, inputs_r, batch, ctx, params, estimator, oracle)
                del pred
    if ctx is None:
        raise SisrError(
            "the test split yielded no batch; check the testing sites / split of the data section"
        )

    profiles: dict[int, np.ndarray] = {}
    freqs = None

    def row_of(acc: ModelAccumulator, sim_means: MetricMeans, k: int | None) -> dict[str, Any]:
        nonlocal freqs
        assert ctx is not None
        row: dict[str, Any] = {}
        for name in PER_BAND_METRICS:
            if name in ORACLE_METRICS and not with_oracle:
                continue
            if name in acc.means.names():
                band_list = ctx.lr_shared if name.startswith("lr_") else ctx.bands
                row.update(per_band_row(name, acc.means.mean(name), band_list))
            elif name in sim_means.names():
                row.update(per_band_row(name, sim_means.mean(name), ctx.bands))
            elif name == "frr" and acc.profile is not None and target_profile and input_profile:
                freqs_t, p = acc.profile.compute()
                _, t = target_profile.compute()
                _, i = input_profile.compute()
                row.update(fda_rows(p, t, i, ctx.fda_bands, reference_sign=params.fru_sign == "reference"))
                freqs = freqs_t.cpu().numpy()
                if k is not None:
                    profiles[k] = torch.stack([i, t, p]).permute(0, 2, 1).cpu().numpy()
                row.update(hf_excess(freqs_t, p, i, ctx.fda_bands))
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
            row["oracle_offset"] = acc.oracle_offset.mean
        for name in ORACLE_METRICS:
            row.setdefault(name, math.nan)  # real data (no truth): the columns exist, NaN
        for name in perceptual.unavailable:
            row.update(per_band_row(name, [math.nan] * len(ctx.bands), ctx.bands))
        return row

    rows = [row_of(acc, sim_accs[k], k) for k, acc in enumerate(accs)]
    reference_rows = (
        {name: row_of(acc, MetricMeans(), None) for name, acc in ref_accs.items()} if with_oracle else {}
    )
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
        "notes": dict(perceptual.unavailable),
        "references": reference_rows,
    }
    return rows, extras
