"""The oracle references of a test batch on simulated (embedded) sites, where the batches carry the true flow
and radiometry: the HR target brought exactly into the LR sensor's geometry and radiometry
(``sisrlib.metrics.oracle.oracle_target``) and the kept-distortion measure."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from sisrlib.bands import dn_to_reflectance
from sisrlib.data.batch import Batch
from sisrlib.metrics.oracle import REFINE_ITERATIONS, KeptDistortion, oracle_target


@dataclass
class OracleBatch:
    """The oracle references of one batch: the target in the input's geometry and radiometry (reflectance
    ``[B, C_t, H, W]``) and the kept-distortion measure."""

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


def oracle_batch(batch: Batch, margin_lr: int, mtf: float | None) -> OracleBatch:
    """The oracle target of ``batch`` (see ``sisrlib.metrics.oracle``) in reflectance, and the kept-distortion
    measure built on the target and the true flow (``margin_lr`` LR px ignored on every side), fitting the
    fraction of the true flow and a constant translation (``REFINE_ITERATIONS`` Gauss–Newton steps)."""
    assert batch.true_flow is not None and batch.true_radiometry is not None
    idx = [batch.input_bands.index(b) for b in batch.target_bands]
    oracle_dn = oracle_target(
        batch.target.float(), batch.inputs[:, idx].float(), batch.true_flow, batch.true_radiometry[:, idx]
    )
    kept = KeptDistortion(
        batch.target, batch.true_flow, mtf=mtf, margin_lr=margin_lr, iterations=REFINE_ITERATIONS
    )
    return OracleBatch(dn_to_reflectance(oracle_dn), kept)
