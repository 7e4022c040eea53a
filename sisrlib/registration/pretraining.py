"""Self-supervised pre-training loss of the registration network (spec §4.4).

Given ``src`` (the HR target degraded to the LR grid, i.e. the simulated LR band) and ``real`` (the real LR
band, same grid), draw a random smooth flow ``t`` (``simulate_flow``), warp ``src_t = warp(src, t)`` and
estimate
``f1 = R(src, real)``, ``f1b = R(real, src)``, ``f2 = R(src_t, real)``. All terms are Smooth-L1 (β = 1), equal
weights, in the reference:

* flow: ``SL1(compose(t, f2), f1)``: warping by ``t`` then by ``f2`` must equal warping by ``f1``. The exact
  composition ``compose_flows(t, f2) = f2 + warp(t, f2)`` is the default; ``composition="reference"`` uses the
  reference's plain sum ``t + f2`` ([QUIRK], exact only for constant flows);
* bias: ``SL1(R(src, src), 0)``;
* consistency: ``SL1(f1 + f1b, 0)``;
* data: ``SL1(warp(src, f1), real)``.

``weights`` reweighs the four terms; ``flow_penalty`` (the three flow terms, in pixels) and ``data_penalty``
(the data term, in the units of ``src``/``real``) replace Smooth-L1 by L1 or MSE (see :func:`penalty`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F

from sisrlib.registration.flow import compose_flows, simulate_flow, warp
from sisrlib.registration.network import FlowEstimator

Composition = Literal["exact", "reference"]
#: Element-wise penalty of a pre-training term, averaged over all elements.
Penalty = Literal["smooth_l1", "l1", "mse"]
PENALTIES: tuple[Penalty, ...] = ("smooth_l1", "l1", "mse")


def penalty(pred: torch.Tensor, target: torch.Tensor, kind: Penalty = "smooth_l1") -> torch.Tensor:
    """Mean penalty of ``pred − target``: ``smooth_l1`` (β = 1, the reference), ``l1`` or ``mse``.

    Smooth-L1 is quadratic below 1: on residuals much smaller than 1 (sub-pixel flow errors, small
    standardised differences) it behaves as ``0.5·MSE`` and its gradient vanishes with the residual, whereas
    L1 keeps a unit-size gradient until the residual is 0.
    """
    if kind == "smooth_l1":
        return F.smooth_l1_loss(pred, target)
    if kind == "l1":
        return F.l1_loss(pred, target)
    if kind == "mse":
        return F.mse_loss(pred, target)
    raise ValueError(f"penalty must be one of {PENALTIES}, got {kind!r}")


@dataclass
class RegistrationLosses:
    """The four pre-training terms (scalars) and their weighted sum (equal weights 1 in the reference)."""

    flow: torch.Tensor
    flow_bias: torch.Tensor
    flow_consistency: torch.Tensor
    data: torch.Tensor
    #: Weights of (flow, flow_bias, flow_consistency, data) in ``total``.
    weights: tuple[float, float, float, float] = (1.0, 1.0, 1.0, 1.0)

    @property
    def total(self) -> torch.Tensor:
        w = self.weights
        return w[0] * self.flow + w[1] * self.flow_bias + w[2] * self.flow_consistency + w[3] * self.data

    def as_dict(self) -> dict[str, torch.Tensor]:
        """Log names (``registration_<term>_loss``) → values, total included."""
        return {
            "registration_flow_loss": self.flow,
            "registration_flow_bias_loss": self.flow_bias,
            "registration_flow_consistency_loss": self.flow_consistency,
            "registration_data_loss": self.data,
            "registration_total_loss": self.total,
        }


def pretraining_loss(
    net: FlowEstimator,
    src: torch.Tensor,
    real: torch.Tensor,
    max_range: float = 2.0,
    max_width: float = 10.0,
    composition: Composition = "exact",
    generator: torch.Generator | None = None,
    weights: tuple[float, float, float, float] = (1.0, 1.0, 1.0, 1.0),
    flow_penalty: Penalty = "smooth_l1",
    data_penalty: Penalty = "smooth_l1",
) -> RegistrationLosses:
    """Pre-training losses for one batch.

    ``src`` (simulated LR band) and ``real`` (real LR band): ``[B, H, W]``, same units (standardised in
    training;
    the network instance-normalises anyway). ``max_range``/``max_width``: parameters of the random flow ``t``
    (pixels; each component ≤ 2·max_range). ``generator`` draws ``t`` reproducibly (CPU generator).
    ``weights``: of the flow, bias, consistency and data terms in ``total`` (reference: all 1).
    ``flow_penalty``: of the flow, bias and consistency terms; ``data_penalty``: of the data term (reference:
    both ``smooth_l1``).
    """
    if src.shape != real.shape or src.dim() != 3:
        raise ValueError(
            f"src {tuple(src.shape)} and real {tuple(real.shape)} must be equal [B, H, W] shapes"
        )
    b, h, w = src.shape
    t = simulate_flow(b, h, w, max_range, max_width, generator=generator, device=src.device, dtype=src.dtype)
    src_t = warp(src[:, None], t)[:, 0]
    f1 = net(src, real)
    f1b = net(real, src)
    f2 = net(src_t, real)
    composite = compose_flows(t, f2, mode=composition)
    zeros = torch.zeros_like(f1)
    return RegistrationLosses(
        flow=penalty(composite, f1, flow_penalty),
        flow_bias=penalty(net(src, src), zeros, flow_penalty),
        flow_consistency=penalty(f1 + f1b, zeros, flow_penalty),
        data=penalty(warp(src[:, None], f1)[:, 0], real, data_penalty),
        weights=weights,
    )
