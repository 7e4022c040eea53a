"""Registration of the HR target onto the real LR input inside SR training (torchsisr's "geom" and "rad").

Everything happens on **standardised** tensors with a frozen flow network ``R``:

1. ``sim = simulate_lr(target)``: the HR target degraded to the input grid (Gaussian MTF ``sim_mtf``);
2. ``f = smooth_flow(R(sim[channel], real[channel]))``: flow in **LR pixels** with ``warp(sim, f) ≈ real``,
   low-passed by the reference's 15×15 Gaussian;
3. ``f_HR = upsample_flow(f, s)`` (bicubic ×s, values ×s), ``s`` = target size / input size;
4. geometric: ``target ← warp(target, f_HR)``: the HR reference is resampled onto the input's geometry;
5. radiometric: the residual ``r = real − warp(sim, f)`` is low-passed (15×15 Gaussian, MTF 1e-5) and
   bicubic-upsampled by ``s``, then **added** to the (warped) target, so that the target's low frequencies
   agree
   with the real input. For the 20 m bands of a joint 10 m + 20 m batch, the flow is brought to the 20 m grid
   (``f_lr`` = bicubic↓ of ``f`` with values scaled accordingly) and the residual is upsampled by the 20 m
   factor.

Target bands that the input lacks (no LR counterpart) are warped but get no radiometric correction. With
``radiometric`` but not ``geometric`` the residual is taken against the unwarped ``sim``.

The additive correction fixes the target's offset and low frequencies but not a gain: an HR stored at
``g`` times the LR's units keeps ``g`` times the detail. ``radiometric_model="affine"`` (ours, not
torchsisr's) first fits, per patch and band, the gain ``a`` and offset ``b`` that best map the low-passed
``warp(sim, f)`` onto the low-passed ``real`` (least squares), applies them to the full-resolution target,
then adds the low-passed residual ``real − (a·warp(sim, f) + b)`` as above.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F

from sisrlib.degradation import PsfKernel, depthwise_filter, psf_kernel, simulate_lr, upsample
from sisrlib.flow import smooth_flow, upsample_flow, warp
from sisrlib.linear_fit import fit_line

#: What :func:`register_target` needs of the flow network: ``net(left [B, h, w], right [B, h, w])`` →
#: flow ``[B, 2, h, w]`` (LR px) with ``warp(left, flow) ≈ right`` (e.g. a
#: :class:`~sisrlib.registration.network.FlowEstimator`).
FlowFunction = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

#: MTF of the 15×15 Gaussian low-pass applied to the radiometric residual (σ ≈ 1.53 LR px).
RESIDUAL_MTF = 1e-5
#: Half width of the residual and flow smoothing kernels (15×15).
SMOOTHING_HALF_WIDTH = 7
#: ``additive``: torchsisr's low-frequency residual; ``affine``: a fitted gain and offset first (see above).
RadiometricModel = Literal["additive", "affine"]
#: Bounds of the fitted gain of the ``affine`` model; a patch whose low-passed simulation is flat (variance
#: below :data:`FLAT_VARIANCE`, standardised units²) keeps gain 1.
GAIN_BOUNDS = (0.2, 5.0)
FLAT_VARIANCE = 1e-6


@dataclass
class RegisteredTarget:
    """The registered target ``[B, C_t, H, W]`` (standardised), the flow ``[B, 2, h, w]`` (LR px, smoothed)
    and
    its HR version ``[B, 2, H, W]`` (HR px)."""

    target: torch.Tensor
    flow: torch.Tensor
    flow_hr: torch.Tensor


def registration_band_index(input_bands: Sequence[str], target_bands: Sequence[str], channel: int) -> int:
    """Index in ``target_bands`` of the input band ``input_bands[channel]``, with clear errors."""
    if not 0 <= channel < len(input_bands):
        raise ValueError(
            f"registration.channel {channel} is out of range for the input bands {list(input_bands)} "
            f"(valid: 0..{len(input_bands) - 1})"
        )
    band = input_bands[channel]
    if band not in target_bands:
        raise ValueError(
            f"registration.channel {channel} selects input band {band}, which the target lacks "
            f"(target bands {list(target_bands)}); choose a channel whose band is in both"
        )
    return list(target_bands).index(band)


def low_pass_residual(residual: torch.Tensor) -> torch.Tensor:
    """15×15 Gaussian low-pass (MTF 1e-5 at Nyquist, reflect padding), ``[B, C, h, w]`` → same."""
    kernel = psf_kernel(1.0, RESIDUAL_MTF, 1.0, SMOOTHING_HALF_WIDTH)
    return depthwise_filter(residual, kernel, padding_mode="reflect")


def _resize_flow(flow: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bicubic resampling of a flow to ``size``, values scaled to the new pixel size."""
    scale = size[1] / flow.shape[-1]
    return scale * F.interpolate(flow, size=size, mode="bicubic", align_corners=False)


def fit_gain_offset(sim: torch.Tensor, real: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per patch and band, the gain ``a`` and offset ``b`` (``[B, C, 1, 1]``) minimising
    ``‖low_pass(real) − (a·low_pass(sim) + b)‖²`` over the patch (``sim``, ``real``: ``[B, C, h, w]``, same
    units); ``a`` clamped to :data:`GAIN_BOUNDS`, 1 on a flat patch."""
    return fit_line(
        low_pass_residual(sim),
        low_pass_residual(real),
        min_variance=FLAT_VARIANCE,
        flat_slope=1.0,
        slope_bounds=GAIN_BOUNDS,
    )


def _radiometric_correction(
    target: torch.Tensor,
    target_bands: Sequence[str],
    real: torch.Tensor,
    real_bands: Sequence[str],
    flow: torch.Tensor | None,
    sim_mtf: float,
    correction: torch.Tensor,
    kernel: PsfKernel = "exact",
    registered: torch.Tensor | None = None,
) -> None:
    """Add into ``correction`` (in place) the upsampled low-passed residual of the bands shared by both;
    with ``registered`` (the warped target: the ``affine`` model) also ``(a − 1)·registered + b`` of the
    fitted gain and offset, the residual then taken against ``a·sim + b``."""
    shared = [b for b in target_bands if b in real_bands]
    if not shared:
        return
    t_idx = [list(target_bands).index(b) for b in shared]
    r_idx = [list(real_bands).index(b) for b in shared]
    factor = target.shape[-1] / real.shape[-1]
    sim = simulate_lr(target[:, t_idx], factor, sim_mtf, kernel=kernel)
    if flow is not None:
        sim = warp(sim, flow)
    lr = real[:, r_idx]
    if registered is not None:
        gain, offset = fit_gain_offset(sim, lr)
        sim = gain * sim + offset
        correction[:, t_idx] += (gain - 1.0) * registered[:, t_idx] + offset
    residual = low_pass_residual(lr - sim)
    correction[:, t_idx] += upsample(residual, factor)


@torch.no_grad()
def register_target(
    net: FlowFunction,
    target: torch.Tensor,
    inputs: torch.Tensor,
    input_bands: Sequence[str],
    target_bands: Sequence[str],
    channel: int,
    geometric: bool = True,
    radiometric: bool = False,
    sim_mtf: float = 0.4,
    lr_inputs: torch.Tensor | None = None,
    lr_bands: Sequence[str] = (),
    kernel: PsfKernel = "exact",
    radiometric_model: RadiometricModel = "additive",
    flow: torch.Tensor | None = None,
) -> RegisteredTarget:
    """Register ``target`` ``[B, C_t, H, W]`` onto ``inputs`` ``[B, C, h, w]`` (both standardised).

    ``channel``: index in ``input_bands`` of the band the flow is estimated on (it must be a target band too).
    ``lr_inputs`` ``[B, K, h', w']`` with ``lr_bands``: optional 20 m bands (radiometric correction of the
    matching target bands). ``kernel``: the PSF of the target's LR simulation (``sim_mtf``;
    :data:`sisrlib.degradation.PsfKernel`). ``radiometric_model``: :data:`RadiometricModel` (see the module
    docstring). ``flow`` ``[B, 2, h, w]`` (LR px, optional): register with this flow instead of the network's
    (a simulated site's true flow: an oracle registration; not smoothed). Runs without gradient.
    """
    if radiometric_model not in ("additive", "affine"):
        raise ValueError(f"radiometric_model must be 'additive' or 'affine', got {radiometric_model!r}")
    if target.dim() != 4 or inputs.dim() != 4:
        raise ValueError(
            f"target {tuple(target.shape)} and inputs {tuple(inputs.shape)} must be [B, C, H, W]"
        )
    if len(input_bands) != inputs.shape[1] or len(target_bands) != target.shape[1]:
        raise ValueError(
            f"band names ({len(input_bands)} input, {len(target_bands)} target) do not match the channels "
            f"({inputs.shape[1]} input, {target.shape[1]} target)"
        )
    factor = target.shape[-1] / inputs.shape[-1]
    t_band = registration_band_index(input_bands, target_bands, channel)
    if flow is None:
        sim_band = simulate_lr(target[:, t_band : t_band + 1], factor, sim_mtf, kernel=kernel)
        flow = smooth_flow(net(sim_band[:, 0], inputs[:, channel]), half_width=SMOOTHING_HALF_WIDTH)
    elif flow.shape != (inputs.shape[0], 2, *inputs.shape[-2:]):
        raise ValueError(
            f"flow {tuple(flow.shape)} does not match the inputs {tuple(inputs.shape)}: expected [B, 2, h, w]"
        )
    else:
        flow = flow.to(inputs)
    flow_hr = upsample_flow(flow, factor)
    if not (geometric or radiometric):
        return RegisteredTarget(target, flow, flow_hr)
    registered = warp(target, flow_hr) if geometric else target
    if radiometric:
        correction = torch.zeros_like(target)
        affine = registered if radiometric_model == "affine" else None
        _radiometric_correction(
            target,
            target_bands,
            inputs,
            input_bands,
            flow if geometric else None,
            sim_mtf,
            correction,
            kernel,
            affine,
        )
        if lr_inputs is not None and lr_bands:
            lr_only = [b for b in lr_bands if b not in input_bands]
            lr_flow = _resize_flow(flow, (lr_inputs.shape[-2], lr_inputs.shape[-1])) if geometric else None
            lr_idx = [list(lr_bands).index(b) for b in lr_only]
            _radiometric_correction(
                target,
                target_bands,
                lr_inputs[:, lr_idx],
                lr_only,
                lr_flow,
                sim_mtf,
                correction,
                kernel,
                affine,
            )
        registered = registered + correction
    return RegisteredTarget(registered, flow, flow_hr)
