"""Calibration of the geometric measure on one test batch, and the margin fitted to the test patches."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable

import pandas as pd
import torch

from sisrlib.bands import dn_to_reflectance, standardisation
from sisrlib.data.batch import Batch
from sisrlib.errors import SisrError
from sisrlib.experiments.evaluation.oracle import oracle_available, oracle_batch
from sisrlib.experiments.evaluation.params import EvaluationParams
from sisrlib.metrics.distortion import FlowEstimator, calibrate_geometric
from sisrlib.metrics.pixel import lr_margin

LOGGER = logging.getLogger(__name__)


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


def fit_margin(
    batches: Iterable[Batch], params: EvaluationParams
) -> tuple[EvaluationParams, Iterable[Batch]]:
    """Clamp the margin to a quarter of the test patch size (small smoke patches), peeking at the first
    batch; returns the params and the batches (the first one included)."""
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
