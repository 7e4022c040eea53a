"""Dataset analysis (torchsisr's ``analyse_dataset``): how far apart the LR input and the HR target of a
cross-sensor dataset are.

Per site (each testing site of a Sen2Venµs-like dataset on its own, or the whole test split of a
WorldStrat-like one), over at most ``max_batches`` test batches:

* ``prr_<band>``: the possible restoration ratio (%) of the bicubic-upsampled input against the HR target
  (FDA): how much spectrum there is to restore;
* ``rad_bias_<band>``, ``rad_rmse_<band>``: radiometric bias and RMSE (reflectance) of the target downscaled
  to the input grid (MTF 0.4) minus the input;
* ``geom_mean``, ``geom_std``: flow norm (LR px) between the downscaled target and the input, from a flow
  estimator (the pre-trained registration network) on one band, when given;
* on embedded (simulated) sites: ``true_geom_mean``/``true_geom_std`` (norm of the stored true flow) and
  ``epe_true`` (end-point error of the estimated flow against it);
* ``brisque_<band>``: BRISQUE of the target (:mod:`sisrlib.metrics.perceptual`), when its weights are present.

``variant: reference`` is torchsisr's analysis instead: the target is first **registered** onto the input
(geometric and radiometric registration by the flow network,
:func:`sisrlib.registration.target.register_target`), then ``prr_<band>`` of the bicubic input against the
registered target, ``rad_bias_<band>`` / ``rad_std_<band>`` the mean and standard deviation (reflectance) of
the registered target downscaled with MTF 0.1 minus the input (torchsisr's "RMSE" is this standard
deviation), ``geom_mean_hr`` / ``geom_std_hr`` the residual flow norm after registration in **HR** px, and
``brisque_<band>`` of the registered target; the degradations use torchsisr's 7 × 7 PSF kernel. It needs the
registration network.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal, cast, get_args

import pandas as pd
import torch

from sisrlib.bands import dn_to_reflectance, standardisation
from sisrlib.checkpoint import load_registration
from sisrlib.data.batch import Batch
from sisrlib.data.params import DataParams
from sisrlib.data.sen2venus import DEFAULT_TESTING_SITES
from sisrlib.degradation import mtf_downscale
from sisrlib.errors import SisrError
from sisrlib.experiments.evaluation.batches import (
    bicubic_input,
    default_datamodule,
    input_band_available,
    resolve_path,
    test_batches,
)
from sisrlib.flow import flow_norm
from sisrlib.metrics import fda
from sisrlib.metrics.accumulate import MetricMeans, Moments
from sisrlib.metrics.distortion import FlowEstimator, estimate_flow, radiometric_distortion
from sisrlib.metrics.perceptual import perceptual_scores, perceptual_unavailable
from sisrlib.metrics.pixel import crop, per_band_row
from sisrlib.registration.network import FlowEstimator as RegistrationNetwork
from sisrlib.registration.target import register_target

LOGGER = logging.getLogger(__name__)

#: ``"ours"`` (default) or ``"reference"`` (torchsisr's: after registration, MTF 0.1, HR px); see above.
AnalysisVariant = Literal["ours", "reference"]
VARIANTS: tuple[str, ...] = get_args(AnalysisVariant)
#: torchsisr's MTFs of the reference variant: radiometric comparison, registration simulation / flow.
REFERENCE_RADIOMETRIC_MTF = 0.1
REFERENCE_REGISTRATION_MTF = 0.4


@dataclass(frozen=True)
class DatasetAnalysisParams:
    """What to analyse (a ``data`` section as in the training params) and how."""

    data: DataParams
    #: Sites analysed one by one (Sen2Venµs); null: every testing site of ``data``. Ignored for WorldStrat.
    sites: list[str] | None = None
    max_batches: int | None = 20
    #: Registration checkpoint (pre-training run) for the geometric statistics; null: no estimated flow.
    registration_checkpoint: str | None = None
    #: Input band index the flow is estimated on.
    registration_channel: int = 2
    radiometric_mtf: float = 0.4
    geometric_mtf: float = 0.3
    #: LR pixels ignored on every side by the flow statistics.
    flow_margin: int = 2
    fft_size: int | None = None
    standardisation: str = "evoland"
    seed: int = 42
    #: "ours" or "reference" (torchsisr's analysis after registration; needs the registration network).
    variant: AnalysisVariant = "ours"
    #: BRISQUE of the target when its weights are present (``brisque_<band>`` columns).
    brisque: bool = True
    #: Folder of the perceptual weight files (null: the torch hub cache).
    perceptual_weights: str | None = None

    def __post_init__(self) -> None:
        if self.variant not in VARIANTS:
            raise ValueError(f"variant must be one of {VARIANTS}, got {self.variant!r}")


class _SiteSpectra:
    """The target's and the bicubic input's FFT profiles over the batches of one site, and its PRR.

    The first batch fixes the bands: ``bands``, the target bands that have an input
    (``input_band_available``), and ``shared``, those that are input bands too; and the FFT size
    (``fft_size``, else twice the patch)."""

    def __init__(self, fft_size: int | None) -> None:
        self.fft_size = fft_size
        self.bands: tuple[str, ...] = ()
        self.shared: tuple[str, ...] = ()
        self._target: fda.ProfileAccumulator | None = None
        self._input: fda.ProfileAccumulator | None = None

    def update(self, batch: Batch, target: torch.Tensor) -> None:
        """Add ``batch``, whose target (reflectance ``[B, C_t, H, W]``, possibly registered) is ``target``."""
        if self._target is None or self._input is None:
            self.bands = tuple(b for b in batch.target_bands if input_band_available(batch, b))
            self.shared = tuple(b for b in batch.target_bands if b in batch.input_bands)
            size = self.fft_size or 2 * target.shape[-1]
            self._target, self._input = fda.ProfileAccumulator(size), fda.ProfileAccumulator(size)
        if self.bands:
            self._target.update(target[:, [batch.target_bands.index(b) for b in self.bands]])
            self._input.update(bicubic_input(batch, self.bands))

    def prr_row(self) -> dict[str, Any]:
        """``prr_<band>`` columns (the target's high frequencies missing from the bicubic input, %); an
        ``SisrError`` when no batch was added."""
        if self._target is None or self._input is None:
            raise SisrError("no batch to analyse (empty test split)")
        if not self.bands:
            return {}
        t_db, i_db = fda.to_db(self._target.compute()[1]), fda.to_db(self._input.compute()[1])
        return per_band_row("prr", fda.frr(i_db, t_db, i_db)[2], self.bands)


def analyse_batches(
    batches: Iterable[Batch],
    params: DatasetAnalysisParams,
    estimator: FlowEstimator | None = None,
) -> dict[str, Any]:
    """One row of the analysis table from the batches of one site (see the module docstring)."""
    if params.variant == "reference":
        return _analyse_reference(batches, params, estimator)
    with_brisque = _brisque_available(params)
    means = MetricMeans()
    geom, true_geom, epe = Moments(), Moments(), Moments()
    spectra = _SiteSpectra(params.fft_size)
    patches = 0
    target_bands: tuple[str, ...] = ()
    for batch in batches:
        target_bands = batch.target_bands
        target = dn_to_reflectance(batch.target)
        inputs = dn_to_reflectance(batch.inputs)
        spectra.update(batch, target)
        shared = spectra.shared
        n = len(batch)
        patches += n
        if shared:
            t_idx = [batch.target_bands.index(b) for b in shared]
            i_idx = [batch.input_bands.index(b) for b in shared]
            bias, err = radiometric_distortion(
                target[:, t_idx], inputs[:, i_idx], batch.factor, params.radiometric_mtf
            )
            means.update("rad_bias", bias, n)
            means.update("rad_mse", err.square(), n)
        if with_brisque:
            means.update("brisque", _brisque(target, params).mean(dim=0), n)
        channel = params.registration_channel
        flow = None
        if estimator is not None:
            if not 0 <= channel < len(batch.input_bands):
                raise SisrError(
                    f"registration_channel {channel} is not an index of the input bands {batch.input_bands}"
                )
            band = batch.input_bands[channel]
            if band in batch.target_bands:
                stats = standardisation(params.standardisation, [band])
                t = batch.target_bands.index(band)
                flow = estimate_flow(
                    estimator,
                    stats.standardise(target[:, t : t + 1]),
                    stats.standardise(inputs[:, channel : channel + 1]),
                    batch.factor,
                    0,
                    0,
                    params.geometric_mtf,
                )
                geom.update(flow_norm(crop(flow, params.flow_margin)))
        if batch.true_flow is not None:
            true = batch.true_flow.float()
            true_geom.update(flow_norm(crop(true, params.flow_margin)))
            if flow is not None:
                epe.update(flow_norm(crop(flow - true.to(flow), params.flow_margin)))
    prr = spectra.prr_row()
    shared = spectra.shared
    row: dict[str, Any] = {"patches": patches, **prr}
    if shared:
        row.update(per_band_row("rad_bias", means.mean("rad_bias"), shared))
        row.update(per_band_row("rad_rmse", means.mean("rad_mse").sqrt(), shared))
    if with_brisque and target_bands:
        row.update(per_band_row("brisque", means.mean("brisque"), target_bands))
    if geom.n:
        row["geom_mean"], row["geom_std"] = geom.mean, geom.std
    if true_geom.n:
        row["true_geom_mean"], row["true_geom_std"] = true_geom.mean, true_geom.std
    if epe.n:
        row["epe_true"] = epe.mean
    return row


def _testing_sites(data: DataParams) -> list[str]:
    """The testing sites of a Sen2Venµs data section (explicit, or the site list's default)."""
    if data.testing_sites is not None:
        return list(data.testing_sites)
    if data.site_list is not None:
        return list(DEFAULT_TESTING_SITES.get(data.site_list, ()))
    return []


def analyse_dataset(
    params: DatasetAnalysisParams,
    datamodule_factory: Callable[[DataParams, int], Any] | None = None,
    estimator: FlowEstimator | None = None,
) -> pd.DataFrame:
    """The analysis table: one row per site (``site``, ``dataset``, ``patches``, then the columns above)."""
    factory = datamodule_factory or default_datamodule
    if estimator is None and params.registration_checkpoint is not None:
        path = resolve_path(params.registration_checkpoint)
        if not path.is_file():
            raise FileNotFoundError(
                f"registration_checkpoint {path} does not exist; run the registration pre-training (02) first"
            )
        estimator = load_registration(path)
    if params.variant == "reference" and estimator is None:
        raise SisrError(
            "variant: reference analyses the target after registration and needs the registration network: "
            "set registration_checkpoint (the pre-training run, notebook 02) or use variant: ours"
        )
    if params.data.dataset == "sen2venus":
        sites = params.sites if params.sites is not None else _testing_sites(params.data)
        groups = [(site, dataclasses.replace(params.data, testing_sites=[site])) for site in sites]
        if not groups:  # testing sites left to the site list's default: analysed together
            groups = [("testing sites", params.data)]
    else:
        groups = [("test split", params.data)]
    rows = []
    for site, data in groups:
        LOGGER.info("analysing %s", site)
        row = analyse_batches(test_batches(factory(data, params.seed), params.max_batches), params, estimator)
        rows.append({"site": site, "dataset": params.data.dataset, **row})
    return pd.DataFrame(rows)


def _brisque_available(params: DatasetAnalysisParams) -> bool:
    if not params.brisque:
        return False
    reason = perceptual_unavailable("brisque", params.perceptual_weights)
    if reason is not None:
        LOGGER.info("no BRISQUE of the target: %s", reason)
    return reason is None


def _brisque(target: torch.Tensor, params: DatasetAnalysisParams) -> torch.Tensor:
    """BRISQUE ``[B, C]`` of reflectance targets."""
    return perceptual_scores("brisque", target, None, params.perceptual_weights).to(target.dtype)


def _analyse_reference(
    batches: Iterable[Batch], params: DatasetAnalysisParams, estimator: FlowEstimator | None
) -> dict[str, Any]:
    """torchsisr's analysis of one site (``variant: reference``, see the module docstring)."""
    if estimator is None:
        raise SisrError("variant: reference needs the registration network (registration_checkpoint)")
    with_brisque = _brisque_available(params)
    means = MetricMeans()
    geom = Moments()
    spectra = _SiteSpectra(params.fft_size)
    target_bands: tuple[str, ...] = ()
    factor = 1.0
    patches = 0
    channel = params.registration_channel
    for batch in batches:
        if not 0 <= channel < len(batch.input_bands):
            raise SisrError(
                f"registration_channel {channel} is not an index of the input bands {batch.input_bands}"
            )
        factor = batch.factor
        target_bands = batch.target_bands
        t_stats = standardisation(params.standardisation, batch.target_bands)
        i_stats = standardisation(params.standardisation, batch.input_bands)
        inputs = dn_to_reflectance(batch.inputs)
        inputs_std = i_stats.standardise(inputs)
        lr_std = None
        if batch.lr_inputs is not None and batch.lr_bands:
            lr_std = standardisation(params.standardisation, batch.lr_bands).standardise(
                dn_to_reflectance(batch.lr_inputs)
            )
        registered = register_target(
            cast(RegistrationNetwork, estimator),  # only called: any flow estimator works
            t_stats.standardise(dn_to_reflectance(batch.target)),
            inputs_std,
            batch.input_bands,
            batch.target_bands,
            channel,
            geometric=True,
            radiometric=True,
            sim_mtf=REFERENCE_REGISTRATION_MTF,
            lr_inputs=lr_std,
            lr_bands=batch.lr_bands if lr_std is not None else (),
            kernel="reference",
        ).target
        target = t_stats.unstandardise(registered)
        spectra.update(batch, target)
        shared = spectra.shared
        n = len(batch)
        patches += n
        if shared:
            t_idx = [batch.target_bands.index(b) for b in shared]
            i_idx = [batch.input_bands.index(b) for b in shared]
            down = mtf_downscale(target[:, t_idx], factor, REFERENCE_RADIOMETRIC_MTF, kernel="reference")
            diff = down - inputs[:, i_idx]
            means.update("rad_mean", diff.mean(dim=(0, 2, 3)), diff[:, 0].numel())
            means.update("rad_sq", diff.square().mean(dim=(0, 2, 3)), diff[:, 0].numel())
        t = batch.target_bands.index(batch.input_bands[channel])
        flow = estimate_flow(
            estimator,
            registered,
            inputs_std,
            factor,
            t,
            channel,
            REFERENCE_REGISTRATION_MTF,
            kernel="reference",
        )
        geom.update(flow_norm(flow))
        if with_brisque:
            means.update("brisque", _brisque(target, params).mean(dim=0), n)
    prr = spectra.prr_row()
    shared = spectra.shared
    row: dict[str, Any] = {"patches": patches, "variant": "reference", **prr}
    if shared:
        mean = means.mean("rad_mean")
        row.update(per_band_row("rad_bias", mean, shared))
        row.update(
            per_band_row("rad_std", (means.mean("rad_sq") - mean.square()).clamp_min(0).sqrt(), shared)
        )
    if geom.n:
        row["geom_mean_hr"], row["geom_std_hr"] = factor * geom.mean, factor * geom.std
    if with_brisque and target_bands:
        row.update(per_band_row("brisque", means.mean("brisque"), target_bands))
    return row
