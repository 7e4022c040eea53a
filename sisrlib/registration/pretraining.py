"""Self-supervised pre-training loss of the registration network (torchsisr's).

Given ``src`` (the HR target degraded to the LR grid, i.e. the simulated LR band) and ``real`` (the real LR
band, same grid), draw a random smooth flow ``t`` (``simulate_flow``), warp ``src_t = warp(src, t)`` and
estimate
``f1 = R(src, real)``, ``f1b = R(real, src)``, ``f2 = R(src_t, real)``. All terms are Smooth-L1 (β = 1), equal
weights, in the reference:

* flow: ``SL1(compose(t, f2), f1)``: warping by ``t`` then by ``f2`` must equal warping by ``f1``. The exact
  composition ``compose_flows(t, f2) = f2 + warp(t, f2)`` is the default; ``composition="reference"`` uses the
  reference's plain sum ``t + f2`` ([QUIRK], exact only for constant flows);
* bias: ``SL1(R(src, src), 0)``;
* consistency: ``SL1(compose(f1, f1b), 0)``: warping by ``f1`` then by ``f1b`` must give back ``src``
  (``composition="reference"``: the plain sum ``f1 + f1b``, the reference's);
* data: ``SL1(warp(src, f1), real)``.

``weights`` reweighs the four terms; ``flow_penalty`` (the three flow terms, in pixels) and ``data_penalty``
(the data term, in the units of ``src``/``real``) replace Smooth-L1 by L1 or MSE (see :func:`penalty`);
``data_highpass`` removes the slowly varying part of the data residual (see :func:`highpass`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F

from sisrlib.flow import compose_flows, simulate_flow, warp
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


def highpass(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """``x − G_σ ∗ x`` for ``x`` ``[B, H, W]``: a separable Gaussian low-pass of standard deviation ``sigma``
    pixels (half-width ⌈3σ⌉, reflect padding; the kernel is truncated to the image size) is subtracted.

    On the data residual ``warp(src, f1) − real`` it removes what varies slowly: a per-band offset, a
    low-frequency radiometric field (what the radiometric registration corrects later), which
    otherwise dominate the residual of well-registered images and drown the geometric signal.
    """
    if sigma <= 0:
        raise ValueError(f"sigma must be > 0 pixels, got {sigma}")
    h, w = x.shape[-2:]
    half = max(0, min(math.ceil(3.0 * sigma), h - 1, w - 1))
    if half == 0:
        return x - x
    coords = torch.arange(-half, half + 1, device=x.device, dtype=x.dtype)
    kernel = torch.exp(-0.5 * (coords / sigma) ** 2)
    kernel = kernel / kernel.sum()
    low = F.conv2d(F.pad(x[:, None], (half, half, 0, 0), mode="reflect"), kernel.view(1, 1, 1, -1))
    low = F.conv2d(F.pad(low, (0, 0, half, half), mode="reflect"), kernel.view(1, 1, -1, 1))
    return x - low[:, 0]


@dataclass
class RegistrationLosses:
    """The four pre-training terms (scalars) and their weighted sum (equal weights 1 in the reference).

    A term whose weight is 0 is not evaluated (it would cost a pass of the network for nothing): it is
    ``None``, left out of ``total`` and of :meth:`as_dict`.
    """

    flow: torch.Tensor | None
    flow_bias: torch.Tensor | None
    flow_consistency: torch.Tensor | None
    data: torch.Tensor | None
    #: Weights of (flow, flow_bias, flow_consistency, data) in ``total``.
    weights: tuple[float, float, float, float] = (1.0, 1.0, 1.0, 1.0)

    def terms(self) -> dict[str, torch.Tensor]:
        """Log names (``registration_<term>_loss``) → values of the evaluated terms."""
        named = {
            "registration_flow_loss": self.flow,
            "registration_flow_bias_loss": self.flow_bias,
            "registration_flow_consistency_loss": self.flow_consistency,
            "registration_data_loss": self.data,
        }
        return {k: v for k, v in named.items() if v is not None}

    @property
    def total(self) -> torch.Tensor:
        values = (self.flow, self.flow_bias, self.flow_consistency, self.data)
        parts = [w * v for w, v in zip(self.weights, values, strict=True) if v is not None]
        if not parts:
            raise ValueError("no pre-training term was evaluated: all weights are 0")
        total = parts[0]
        for part in parts[1:]:
            total = total + part
        return total

    def as_dict(self) -> dict[str, torch.Tensor]:
        """Log names (``registration_<term>_loss``) → values, total included (evaluated terms only)."""
        return {**self.terms(), "registration_total_loss": self.total}


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
    data_highpass: float | None = None,
) -> RegistrationLosses:
    """Pre-training losses for one batch.

    ``src`` (simulated LR band) and ``real`` (real LR band): ``[B, H, W]``, same units (standardised in
    training; the network instance-normalises anyway). ``max_range``/``max_width``: parameters of the random
    flow ``t`` (pixels; each component ≤ 2·max_range). ``generator`` draws ``t`` reproducibly (CPU generator).
    ``weights``: of the flow, bias, consistency and data terms in ``total`` (reference: all 1); a term of
    weight 0 is not evaluated (``None``), which saves its network pass. ``flow_penalty``: of the flow, bias
    and consistency terms; ``data_penalty``: of the data term (reference: both ``smooth_l1``).
    ``data_highpass``: σ (pixels) of the Gaussian low-pass removed from the data residual before its penalty
    (:func:`highpass`; None: no filtering, the reference).
    """
    if src.shape != real.shape or src.dim() != 3:
        raise ValueError(
            f"src {tuple(src.shape)} and real {tuple(real.shape)} must be equal [B, H, W] shapes"
        )
    if len(weights) != 4 or min(weights) < 0 or max(weights) <= 0:
        raise ValueError(f"weights must be 4 values >= 0, not all 0, got {weights}")
    w_flow, w_bias, w_consistency, w_data = weights
    b, h, w = src.shape
    f1 = net(src, real)
    flow = bias = consistency = data = None
    if w_flow > 0:
        t = simulate_flow(
            b, h, w, max_range, max_width, generator=generator, device=src.device, dtype=src.dtype
        )
        src_t = warp(src[:, None], t)[:, 0]
        f2 = net(src_t, real)
        flow = penalty(compose_flows(t, f2, mode=composition), f1, flow_penalty)
    zeros = torch.zeros_like(f1)
    if w_bias > 0:
        bias = penalty(net(src, src), zeros, flow_penalty)
    if w_consistency > 0:
        f1b = net(real, src)
        consistency = penalty(compose_flows(f1, f1b, mode=composition), zeros, flow_penalty)
    if w_data > 0:
        residual = warp(src[:, None], f1)[:, 0] - real
        if data_highpass is not None:
            residual = highpass(residual, data_highpass)
        data = penalty(residual, torch.zeros_like(residual), data_penalty)
    return RegistrationLosses(
        flow=flow, flow_bias=bias, flow_consistency=consistency, data=data, weights=weights
    )
