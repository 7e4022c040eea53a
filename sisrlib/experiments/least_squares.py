"""The least-squares linear estimator of a run's target: a polyphase filter fitted in closed form.

A reference that needs no training schedule: the :class:`~sisrlib.models.linear.PolyphaseLinear` filter
minimising the squared error between its prediction and the target over every training (and validation)
pair of a run's data, solved from the normal equations in float64. Against the **registered** target (the
HR image warped into the input's geometry by the stored true flow, simulated sites only) it is the linear
counterpart of a geom model; against the **raw** target, of a baseline. It bounds from below what a
least-squares-trained network of any size should reach on the same pairs, and it shows the paper's
mechanism in a model without any non-linearity.

Units: inputs and targets are standardised with the run's ``training.standardisation`` (as in training), so
the filter is a standardised-units :class:`~sisrlib.models.base.SRModel`; :func:`fit_least_squares` returns
it wrapped in a :class:`~sisrlib.models.dn_model.DNModel` (DN in, DN out), ready for ``export_dn_model``.
Only output pixels whose K×K LR neighbourhood lies inside the patch, and that lie more than ``border`` LR px
from its edge (where the warped target reads outside the HR patch), enter the fit.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from sisrlib.bands import Standardisation, dn_to_reflectance, standardisation
from sisrlib.data.batch import Batch
from sisrlib.data.datamodule import build_datamodule
from sisrlib.errors import SisrError
from sisrlib.experiments.evaluation.ceilings import registered_target
from sisrlib.models.dn_model import DNModel
from sisrlib.models.linear import PolyphaseLinear
from sisrlib.run_params import ExperimentParams

__all__ = ["LeastSquaresFit", "TargetKind", "fit_least_squares", "solve_polyphase"]

#: ``registered``: the target warped by the true flow (geom's target); ``raw``: as read (baseline's).
TargetKind = Literal["registered", "raw"]

#: Ridge added to the normal equations, relative to the mean of their diagonal (numerical safety only).
RELATIVE_RIDGE = 1e-9


@dataclass(frozen=True)
class LeastSquaresFit:
    """A fitted filter: ``model`` (DN in, DN out), the number of HR phase rows (LR pixels) it was fitted on,
    and its root-mean-square residual in standardised units, per output band."""

    model: DNModel
    rows: int
    rms_residual: tuple[float, ...]


def _pairs(
    batch: Batch, target: TargetKind, input_std: Standardisation, target_std: Standardisation
) -> tuple[torch.Tensor, torch.Tensor]:
    """Standardised input ``[B, C, h, w]`` and target ``[B, C_t, h·r, w·r]`` of one batch, float64."""
    if target == "registered":
        hr = registered_target(batch, torch.float64, hint="fit against the raw target on real data")
    else:
        hr = batch.target.double()
    x = input_std.standardise(dn_to_reflectance(batch.inputs.double()))
    y = target_std.standardise(dn_to_reflectance(hr))
    return x, y


def solve_polyphase(
    pairs: Iterable[tuple[torch.Tensor, torch.Tensor]], factor: int, kernel_size: int, border: int = 0
) -> tuple[torch.Tensor, torch.Tensor, int, torch.Tensor]:
    """Least-squares K×K polyphase filter from ``(input [B, C, h, w], target [B, C_t, h·r, w·r])`` pairs.

    Returns the convolution weight ``[C_t·r², C, K, K]``, its bias ``[C_t·r²]`` (in the channel order of
    ``pixel_shuffle``), the number of rows (LR positions) fitted and the RMS residual per target band.
    LR positions closer than ``max(border, K // 2)`` px to the patch edge are left out.
    """
    half = kernel_size // 2
    edge = max(border, half)
    gram: torch.Tensor | None = None
    cross = torch.zeros(0)
    sq = torch.zeros(0)
    rows = 0
    for x, y in pairs:
        _, c, h, w = x.shape
        if h <= 2 * edge or w <= 2 * edge:
            raise SisrError(
                f"patches of {h}×{w} LR px are too small for a {kernel_size}×{kernel_size} filter "
                f"{edge} px from their edges"
            )
        d = edge - half  # the rows and columns of the valid neighbourhoods left out besides the filter's
        x = x[..., d : h - d, d : w - d]
        cols = F.unfold(x, kernel_size)  # [B, C·K², (h−2·edge)·(w−2·edge)]
        design = (
            torch.cat([cols, torch.ones_like(cols[:, :1])], dim=1)
            .transpose(1, 2)
            .reshape(-1, c * kernel_size**2 + 1)
        )
        phases = F.pixel_unshuffle(y, factor)[..., edge : h - edge, edge : w - edge]  # [B, C_t·r², h', w']
        response = phases.flatten(2).transpose(1, 2).reshape(-1, phases.shape[1])
        if gram is None:
            gram = torch.zeros(design.shape[1], design.shape[1], dtype=torch.float64)
            cross = torch.zeros(design.shape[1], response.shape[1], dtype=torch.float64)
            sq = torch.zeros(response.shape[1], dtype=torch.float64)
        gram += design.T @ design
        cross += design.T @ response
        sq += (response**2).sum(0)
        rows += design.shape[0]
    if gram is None or rows <= gram.shape[0]:
        raise SisrError(
            f"the least-squares fit needs more than {0 if gram is None else gram.shape[0]} rows, got {rows}"
        )
    ridge = RELATIVE_RIDGE * gram.diagonal().mean() * torch.eye(gram.shape[0], dtype=torch.float64)
    coef = torch.linalg.solve(gram + ridge, cross)  # [C·K² + 1, C_t·r²]
    # residual sum of squares per column: |y|² − 2 cᵀXᵀy + cᵀXᵀXc
    rss = sq - 2 * (coef * cross).sum(0) + (coef * (gram @ coef)).sum(0)
    per_band = (rss.clamp_min(0).view(-1, factor * factor).sum(1) / (rows * factor * factor)).sqrt()
    c_in = (coef.shape[0] - 1) // kernel_size**2
    weight = coef[:-1].T.reshape(-1, c_in, kernel_size, kernel_size)
    return weight, coef[-1], rows, per_band


def fit_least_squares(
    params: ExperimentParams, kernel_size: int = 7, target: TargetKind = "registered", border: int = 4
) -> LeastSquaresFit:
    """Fit the least-squares polyphase filter of ``params``'s run on its training and validation splits.

    ``params``: a super-resolution run's params (data, ``model.factor``, ``training.standardisation``);
    the model section's generator is ignored. ``target``: see :data:`TargetKind`. Raises a
    :class:`SisrError` for a non-integer factor, a registered target without true flow, or too few pixels.
    """
    if target not in ("registered", "raw"):
        raise ValueError(f"target must be 'registered' or 'raw', got {target!r}")
    datamodule = build_datamodule(params.data, params.seed)
    datamodule.setup("fit")
    r = round(datamodule.factor)
    if abs(r - datamodule.factor) > 1e-6:
        raise SisrError(f"the least-squares filter needs an integer factor, got {datamodule.factor}")
    stats = params.training.standardisation
    input_std = standardisation(stats, datamodule.input_bands)
    target_std = standardisation(stats, datamodule.target_bands)
    loaders = (datamodule.train_dataloader(), datamodule.val_dataloader())
    pairs = (_pairs(batch, target, input_std, target_std) for loader in loaders for batch in loader)
    weight, bias, rows, residual = solve_polyphase(pairs, r, kernel_size, border)
    net = PolyphaseLinear(len(input_std.bands), float(r), len(target_std.bands), kernel_size=kernel_size)
    net.conv.weight = nn.Parameter(weight.float())
    net.conv.bias = nn.Parameter(bias.float())
    model = DNModel(net.eval(), input_std, target_std)
    return LeastSquaresFit(model, rows, tuple(float(v) for v in residual))
