"""Ceilings on simulated sites: reference images built from the stored truth that show what a family of models
can reach at best, scored by the same evaluation as the models (``ceilings.csv`` beside ``metrics.csv``).

* ``hr_radiometry``: the HR target warped into the input's geometry by the true flow, in the HR sensor's
  radiometry. A model trained against the registered target without radiometric correction (geom) is asked
  for exactly this image: its oracle PSNR is the best such a model reaches, however well it super-resolves,
  since the oracle target is in the LR sensor's radiometry.
* ``training_offset`` and ``test_offset``: the oracle target shifted by a systematic offset (LR px), the mean
  true flow of the training split or of the test split. A model without registration (baseline) can learn
  from its input only the part of the distortion every patch shares; the random part of each patch's flow is
  unpredictable and becomes blur. ``training_offset`` is what such a model produces when it learns all it
  can (the training sites' offset); ``test_offset`` is the most favourable case, a model that knew the test
  site's own offset. Their ``oracle_geom`` and ``geom_mean`` are what these models keep of the distortion.

Reference functions take a test batch and its oracle references and return reflectance ``[B, C_t, H, W]``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

import torch

from sisrlib.bands import dn_to_reflectance
from sisrlib.data.batch import Batch
from sisrlib.errors import SisrError
from sisrlib.experiments.evaluation.oracle import OracleBatch
from sisrlib.flow import upsample_flow, warp

__all__ = [
    "Reference",
    "ceiling_references",
    "hr_radiometry",
    "mean_true_flow",
    "registered_target",
    "systematic_offset",
]

#: A ceiling reference: (test batch, its oracle references) → reflectance ``[B, C_t, H, W]``.
Reference = Callable[[Batch, OracleBatch], torch.Tensor]


def _factor(batch: Batch) -> int:
    factor = round(batch.factor)
    if abs(factor - batch.factor) > 1e-6:
        raise SisrError(f"the ceilings need an integer factor, got {batch.factor}")
    return factor


def registered_target(batch: Batch, dtype: torch.dtype = torch.float32, hint: str = "") -> torch.Tensor:
    """The HR target warped into the input's geometry by the stored true flow (upsampled to HR, bicubic, as
    the simulation warps it), still in the HR sensor's radiometry: DN ``[B, C_t, H, W]`` in ``dtype``. This is
    the target a registration would give with a perfect flow. An error on a batch without a true flow (real
    data), ending with ``hint`` when one is given."""
    if batch.true_flow is None:
        message = (
            "the registered target needs the stored true flow, which only simulated (embedded) sites carry"
        )
        raise SisrError(f"{message}; {hint}" if hint else message)
    flow = upsample_flow(batch.true_flow.to(dtype), _factor(batch))
    return warp(batch.target.to(dtype), flow)


def hr_radiometry(batch: Batch, oracle: OracleBatch) -> torch.Tensor:
    """:func:`registered_target` in reflectance ``[B, C_t, H, W]``: what geom is asked for."""
    del oracle
    return dn_to_reflectance(registered_target(batch))


def systematic_offset(offset: torch.Tensor) -> Reference:
    """The reference that shifts the oracle target by ``offset`` (``[2]``, LR px, the x/y components of a
    flow): the oracle geometry with the site's systematic offset kept."""
    if offset.shape != (2,):
        raise ValueError(f"offset: expected a [2] flow vector (LR px), got shape {tuple(offset.shape)}")

    def reference(batch: Batch, oracle: OracleBatch) -> torch.Tensor:
        target = oracle.target_r.float()
        b, _, h, w = batch.inputs.shape
        flow = (-offset).to(target).view(1, 2, 1, 1).expand(b, 2, h, w)
        return warp(target, upsample_flow(flow, _factor(batch)))

    return reference


def mean_true_flow(batches: Iterable[Batch]) -> torch.Tensor:
    """``[2]``: the mean true flow (LR px) over every pixel of every batch, the site's systematic offset
    when the random part averages out; an error when a batch carries no true flow or there is none."""
    total, count = torch.zeros(2, dtype=torch.float64), 0
    for batch in batches:
        if batch.true_flow is None:
            raise SisrError("a batch carries no true flow: the ceilings need simulated sites")
        flow = batch.true_flow.double().cpu()
        total += flow.sum(dim=(0, 2, 3))
        count += flow.shape[0] * flow.shape[2] * flow.shape[3]
    if count == 0:
        raise SisrError("the split yielded no batch: the ceilings need at least one")
    return (total / count).float()


def ceiling_references(training_offset: torch.Tensor, test_offset: torch.Tensor) -> Mapping[str, Reference]:
    """The ceilings of this module by name, for training and test splits of systematic offsets
    ``training_offset`` and ``test_offset`` (``[2]`` each, LR px)."""
    return {
        "hr_radiometry": hr_radiometry,
        "training_offset": systematic_offset(training_offset),
        "test_offset": systematic_offset(test_offset),
    }
