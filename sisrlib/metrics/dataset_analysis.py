"""Dataset analysis (spec §6.8): how far apart the LR input and the HR target of a cross-sensor dataset are.

Per site (each testing site of a Sen2Venµs-like dataset on its own, or the whole test split of a
WorldStrat-like one), over at most ``max_batches`` test batches:

* ``prr_<band>``: the possible restoration ratio (%) of the bicubic-upsampled input against the HR target
  (FDA): how much spectrum there is to restore;
* ``rad_bias_<band>``, ``rad_rmse_<band>``: radiometric bias and RMSE (reflectance) of the target downscaled
  to the input grid (MTF 0.4) minus the input;
* ``geom_mean``, ``geom_std``: flow norm (LR px) between the downscaled target and the input, from a flow
  estimator (the pre-trained registration network) on one band, when given;
* on embedded (simulated) sites: ``true_geom_mean``/``true_geom_std`` (norm of the stored true flow) and
  ``epe_true`` (end-point error of the estimated flow against it).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import pandas as pd

from sisrlib.bands import dn_to_reflectance, standardisation
from sisrlib.data.batch import Batch
from sisrlib.data.params import DataParams
from sisrlib.errors import SisrError
from sisrlib.metrics import fda
from sisrlib.metrics.accumulate import MetricMeans, Moments
from sisrlib.metrics.distortion import FlowEstimator, estimate_flow, radiometric_distortion
from sisrlib.metrics.pixel import crop, per_band_row
from sisrlib.registration.flow import flow_norm

LOGGER = logging.getLogger(__name__)


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


def analyse_batches(
    batches: Iterable[Batch],
    params: DatasetAnalysisParams,
    estimator: FlowEstimator | None = None,
) -> dict[str, Any]:
    """One row of the analysis table from the batches of one site (see the module docstring)."""
    from sisrlib.evaluation import bicubic_input, input_band_available

    means = MetricMeans()
    geom, true_geom, epe = Moments(), Moments(), Moments()
    target_acc: fda.ProfileAccumulator | None = None
    input_acc: fda.ProfileAccumulator | None = None
    fda_bands: tuple[str, ...] = ()
    shared: tuple[str, ...] = ()
    patches = 0
    for batch in batches:
        target = dn_to_reflectance(batch.target)
        inputs = dn_to_reflectance(batch.inputs)
        if target_acc is None:
            fda_bands = tuple(b for b in batch.target_bands if input_band_available(batch, b))
            shared = tuple(b for b in batch.target_bands if b in batch.input_bands)
            size = params.fft_size or 2 * target.shape[-1]
            target_acc, input_acc = fda.ProfileAccumulator(size), fda.ProfileAccumulator(size)
        assert input_acc is not None
        n = len(batch)
        patches += n
        if fda_bands:
            target_acc.update(target[:, [batch.target_bands.index(b) for b in fda_bands]])
            input_acc.update(bicubic_input(batch, fda_bands))
        if shared:
            t_idx = [batch.target_bands.index(b) for b in shared]
            i_idx = [batch.input_bands.index(b) for b in shared]
            bias, err = radiometric_distortion(
                target[:, t_idx], inputs[:, i_idx], batch.factor, params.radiometric_mtf
            )
            means.update("rad_bias", bias, n)
            means.update("rad_mse", err.square(), n)
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
    if target_acc is None or input_acc is None:
        raise SisrError("no batch to analyse (empty test split)")
    row: dict[str, Any] = {"patches": patches}
    if fda_bands:
        _, t_prof = target_acc.compute()
        _, i_prof = input_acc.compute()
        t_db, i_db = fda.to_db(t_prof), fda.to_db(i_prof)
        _, _, prr = fda.frr(i_db, t_db, i_db)
        row.update(per_band_row("prr", prr, fda_bands))
    if shared:
        row.update(per_band_row("rad_bias", means.mean("rad_bias"), shared))
        row.update(per_band_row("rad_rmse", means.mean("rad_mse").sqrt(), shared))
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
        from sisrlib.data.sen2venus import DEFAULT_TESTING_SITES

        return list(DEFAULT_TESTING_SITES.get(data.site_list, ()))
    return []


def analyse_dataset(
    params: DatasetAnalysisParams,
    datamodule_factory: Callable[[DataParams, int], Any] | None = None,
    estimator: FlowEstimator | None = None,
) -> pd.DataFrame:
    """The analysis table: one row per site (``site``, ``dataset``, ``patches``, then the columns above)."""
    from sisrlib.evaluation import _default_datamodule, resolve_path, test_batches

    factory = datamodule_factory or _default_datamodule
    if estimator is None and params.registration_checkpoint is not None:
        from sisrlib.training.checkpoint import load_registration

        path = resolve_path(params.registration_checkpoint)
        if not path.is_file():
            raise FileNotFoundError(
                f"registration_checkpoint {path} does not exist; run the registration pre-training (02) first"
            )
        estimator = load_registration(path)
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
