"""Geometric and radiometric distortion between an HR image (prediction or target) and the real LR input.

* **Geometric** (torchsisr's test-time flow metrics): the HR image is downscaled to the LR grid
  (``mtf_downscale``, factor ``f``, MTF 0.3 by default), and a flow estimator ``R(left, right)`` (the frozen
  registration network, or any callable with the same contract) gives the flow such that ``warp(left, flow)``
  matches ``right``, on one band (the registration channel). The mean and standard deviation of the per-pixel
  flow norm, in **LR pixels**, measure how far the HR image's geometry is from the input's. On embedded
  (simulated) sites the stored ``true_flow`` gives the end-point error of the estimated flow.
* **Radiometric**: per-band bias and RMSE between the downscaled HR image and the LR input, in the inputs'
  unit (reflectance in the evaluation).
* **Calibration** (:func:`calibrate_geometric`): what the geometric measure reads on an HR image whose
  distortion is known — a global shift of 0.25 / 0.5 / 1.0 LR px (should read the shift), a blur, a gain and
  offset, or another patch's high-frequency detail added (no displacement: should read 0). A flow estimator
  that reads part of such an error as motion confounds the non-geometric error of a blurry model with
  distortion; the oracle measure of simulated sites (``sisrlib.metrics.oracle.KeptDistortion``) is blind to
  them by construction. :class:`GlobalShiftEstimator` is an independent, classical reference: one
  least-squares translation per image (Lucas–Kanade, Gauss–Newton on normalised images).

Tensors are ``[B, C, H, W]`` (HR) and ``[B, C, H/f, W/f]`` (LR); flows ``[B, 2, h, w]`` in LR pixels (channel
0 = x).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import torch

from sisrlib.degradation import PsfKernel, depthwise_filter, mtf_downscale, psf_kernel, upsample
from sisrlib.flow import flow_norm, warp
from sisrlib.metrics.pixel import crop

__all__ = [
    "CalibrationReading",
    "FlowEstimator",
    "FlowStatistics",
    "GlobalShiftEstimator",
    "calibrate_geometric",
    "end_point_error",
    "estimate_flow",
    "geometric_distortion",
    "radiometric_distortion",
]


class FlowEstimator(Protocol):
    """A dense flow estimator: ``(left [B, H, W], right [B, H, W]) -> flow [B, 2, H, W]`` (pixels) such that
    ``warp(left, flow)`` matches ``right`` (e.g. ``sisrlib.checkpoint.load_registration(path)``)."""

    def __call__(self, left: torch.Tensor, right: torch.Tensor) -> torch.Tensor: ...


@dataclass(frozen=True)
class FlowStatistics:
    """Mean and standard deviation of a per-pixel displacement magnitude (LR pixels), with the flow itself."""

    mean: float
    std: float
    flow: torch.Tensor

    @property
    def count(self) -> int:
        """Number of pixels the statistics were computed on."""
        return int(self.flow.shape[0] * self.flow.shape[-2] * self.flow.shape[-1])


def _check_lr_pair(image: torch.Tensor, lr_input: torch.Tensor, factor: float) -> None:
    if image.dim() != 4 or lr_input.dim() != 4:
        raise ValueError(
            f"expected [B, C, H, W] tensors, got image {tuple(image.shape)} and LR input "
            f"{tuple(lr_input.shape)}"
        )
    expected = (int(image.shape[-2] // factor), int(image.shape[-1] // factor))
    if image.shape[0] != lr_input.shape[0] or expected != tuple(lr_input.shape[-2:]):
        raise ValueError(
            f"the HR image {tuple(image.shape)} downscaled by {factor} gives {expected} px, which does "
            f"not match the LR input {tuple(lr_input.shape)}"
        )
    for name, t in (("HR image", image), ("LR input", lr_input)):
        if bool(torch.isnan(t).any()):
            raise ValueError(f"the {name} holds NaN values (no-data?); crop or fill them before the metric")


def estimate_flow(
    estimator: FlowEstimator,
    image: torch.Tensor,
    lr_input: torch.Tensor,
    factor: float,
    channel: int,
    input_channel: int | None = None,
    mtf: float | None = 0.3,
    kernel: PsfKernel = "exact",
) -> torch.Tensor:
    """Flow ``[B, 2, h, w]`` (LR px) from the downscaled HR ``image`` band ``channel`` (PSF ``kernel``, see
    ``sisrlib.degradation``) to the LR input band ``input_channel`` (default: the same index), i.e.
    ``warp(image↓, flow) ≈ lr_input``."""
    _check_lr_pair(image, lr_input, factor)
    input_channel = channel if input_channel is None else input_channel
    for name, t, ch in (("image", image, channel), ("LR input", lr_input, input_channel)):
        if not 0 <= ch < t.shape[1]:
            raise ValueError(
                f"registration channel {ch} is out of range for the {name} with {t.shape[1]} bands"
            )
    down = mtf_downscale(image[:, channel : channel + 1], factor, mtf, kernel=kernel)
    with torch.no_grad():
        flow = estimator(down[:, 0], lr_input[:, input_channel])
    if flow.dim() != 4 or flow.shape[1] != 2 or flow.shape[-2:] != lr_input.shape[-2:]:
        raise ValueError(
            f"the flow estimator returned shape {tuple(flow.shape)}, expected [B, 2, {lr_input.shape[-2]}, "
            f"{lr_input.shape[-1]}]"
        )
    return flow


def _norm_statistics(norm: torch.Tensor, flow: torch.Tensor) -> FlowStatistics:
    values = norm.flatten().double()
    std = float(values.std(unbiased=False)) if values.numel() > 1 else 0.0
    return FlowStatistics(mean=float(values.mean()), std=std, flow=flow)


def geometric_distortion(
    estimator: FlowEstimator,
    image: torch.Tensor,
    lr_input: torch.Tensor,
    factor: float,
    channel: int,
    input_channel: int | None = None,
    mtf: float | None = 0.3,
    margin: int = 0,
) -> FlowStatistics:
    """Mean and std of the flow norm (LR px) between the downscaled HR image and the LR input (see
    ``estimate_flow``), ignoring ``margin`` **LR** pixels on every side."""
    flow = estimate_flow(estimator, image, lr_input, factor, channel, input_channel, mtf)
    return _norm_statistics(flow_norm(crop(flow, margin)), flow)


def end_point_error(flow: torch.Tensor, true_flow: torch.Tensor, margin: int = 0) -> FlowStatistics:
    """Mean and std of ``‖flow − true_flow‖`` (pixels) over the batch, ignoring ``margin`` px on every
    side."""
    if flow.shape != true_flow.shape:
        raise ValueError(
            f"estimated flow {tuple(flow.shape)} and true flow {tuple(true_flow.shape)} differ in shape"
        )
    diff = crop(flow, margin) - crop(true_flow.to(flow), margin)
    return _norm_statistics(flow_norm(diff), flow)


def radiometric_distortion(
    image: torch.Tensor,
    lr_input: torch.Tensor,
    factor: float,
    mtf: float | None = 0.4,
    margin: int = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-band ``(bias [C], rmse [C])`` of ``mtf_downscale(image, factor, mtf) − lr_input`` (same bands and
    unit), ignoring ``margin`` **LR** pixels on every side."""
    _check_lr_pair(image, lr_input, factor)
    if image.shape[1] != lr_input.shape[1]:
        raise ValueError(
            f"the HR image has {image.shape[1]} bands and the LR input {lr_input.shape[1]}; select "
            "matching bands"
        )
    diff = crop(mtf_downscale(image, factor, mtf), margin) - crop(lr_input, margin)
    return diff.mean(dim=(0, 2, 3)), diff.square().mean(dim=(0, 2, 3)).sqrt()


class GlobalShiftEstimator:
    """A classical flow estimator: one translation per image pair, by least squares.

    ``(left [B, H, W], right [B, H, W]) -> flow [B, 2, H, W]`` (constant per image, pixels) minimising
    ``Σ (warp(left', d) − right')²`` over ``d`` inside ``margin`` px, where ``'`` is each image's
    normalisation to zero mean and unit variance (blind to gain and offset); Gauss–Newton from ``d = 0``.
    """

    def __init__(self, iterations: int = 15, margin: int = 4) -> None:
        self.iterations = iterations
        self.margin = margin

    @staticmethod
    def _normalise(x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(dim=(-2, -1), keepdim=True)
        std = x.std(dim=(-2, -1), keepdim=True).clamp_min(1e-12)
        return (x - mean) / std

    def __call__(self, left: torch.Tensor, right: torch.Tensor) -> torch.Tensor:
        if left.dim() != 3 or left.shape != right.shape:
            raise ValueError(
                f"expected two [B, H, W] images of the same shape, got {tuple(left.shape)} and "
                f"{tuple(right.shape)}"
            )
        b, h, w = left.shape
        lft = self._normalise(left.double())
        rgt = crop(self._normalise(right.double()), self.margin)
        d = torch.zeros(b, 2, dtype=torch.float64, device=left.device)
        for _ in range(self.iterations):
            flow = d[:, :, None, None].expand(b, 2, h, w).contiguous()
            moved = warp(lft[:, None], flow)[:, 0]
            gy, gx = torch.gradient(moved, dim=(-2, -1))
            gx, gy, e = crop(gx, self.margin), crop(gy, self.margin), rgt - crop(moved, self.margin)
            a11, a12, a22 = (gx * gx).sum((-2, -1)), (gx * gy).sum((-2, -1)), (gy * gy).sum((-2, -1))
            b1, b2 = (gx * e).sum((-2, -1)), (gy * e).sum((-2, -1))
            det = (a11 * a22 - a12 * a12).clamp_min(1e-12)
            step = torch.stack([(a22 * b1 - a12 * b2) / det, (a11 * b2 - a12 * b1) / det], dim=1)
            d = d + step
            if float(step.abs().max()) < 1e-4:
                break
        return d[:, :, None, None].expand(b, 2, h, w).to(left.dtype)


@dataclass(frozen=True)
class CalibrationReading:
    """What the geometric measure read on one known distortion: ``kind`` (``shift``, ``blur``, ``gain``),
    its ``level`` (LR px; MTF at the LR Nyquist; gain), the true displacement (LR px) and the mean / std of
    the flow norm read (LR px)."""

    kind: str
    level: float
    true_px: float
    read_px: float
    read_std_px: float


def calibrate_geometric(
    estimator: FlowEstimator,
    hr: torch.Tensor,
    factor: float,
    shifts: Sequence[float] = (0.25, 0.5, 1.0),
    blurs: Sequence[float] = (0.3, 0.1, 0.03),
    gains: Sequence[float] = (0.9, 1.1, 1.25),
    residuals: Sequence[float] = (0.5, 1.0),
    mtf: float | None = 0.3,
    reference_mtf: float | None = 0.35,
    margin_lr: int = 4,
    normalise: Callable[[torch.Tensor], torch.Tensor] | None = None,
    lr_reference: torch.Tensor | None = None,
) -> list[CalibrationReading]:
    """Feed known distortions of the HR band ``hr`` ``[B, 1, H, W]`` (physical units) to the geometric
    measure (``geometric_distortion``: MTF ``mtf`` downscaling, ``estimator``, flow norm in LR px inside
    ``margin_lr``).

    The LR reference is ``lr_reference`` ``[B, 1, h, w]`` (the real input, in ``hr``'s units), else ``hr``
    downscaled with ``reference_mtf`` (a sensor with the input's MTF and no distortion). Distortions: a global
    shift of ``s`` LR px along x (``warp`` by ``s·factor`` HR px), a Gaussian blur whose MTF at the **HR**
    Nyquist is ``m`` (``blurs``), ``g·hr + (g − 1)·mean(hr)`` (``gains``: a gain and an offset), and ``hr +
    r·d`` (``residuals``) where ``d`` is the detail of *another* patch of the batch beyond the LR sensor (the
    patch minus its ``reference_mtf`` downscaling upsampled back; the image flipped when the batch holds one
    patch): a structured non-geometric error at zero displacement, like a model's hallucinated or misplaced
    detail.
    ``normalise`` maps physical values to the estimator's input (e.g. the registration band's
    standardisation) and is applied to both images after the distortion. Returns one reading per
    distortion, plus ``("none", 0, 0, …)`` first: the reading of the undistorted image.
    """
    if hr.dim() != 4 or hr.shape[1] != 1:
        raise ValueError(f"hr must be one band [B, 1, H, W], got {tuple(hr.shape)}")
    norm = normalise or (lambda t: t)
    ref = lr_reference if lr_reference is not None else mtf_downscale(hr, factor, reference_mtf)
    f = round(factor)
    cases: list[tuple[str, float, float, torch.Tensor]] = [("none", 0.0, 0.0, hr)]
    b, _, h, w = hr.shape
    for s in shifts:
        flow = torch.zeros(b, 2, h, w, dtype=hr.dtype, device=hr.device)
        flow[:, 0] = s * f
        cases.append(("shift", float(s), abs(float(s)), warp(hr, flow)))
    for m in blurs:
        cases.append(("blur", float(m), 0.0, depthwise_filter(hr, psf_kernel(1.0, m, 1.0))))
    mean = hr.mean(dim=(-2, -1), keepdim=True)
    for g in gains:
        cases.append(("gain", float(g), 0.0, g * hr + (g - 1.0) * mean))
    if residuals:
        other = torch.roll(hr, 1, dims=0) if b > 1 else hr.flip(-1)
        detail = other - upsample(mtf_downscale(other, factor, reference_mtf), factor)[..., :h, :w]
        for r in residuals:
            cases.append(("residual", float(r), 0.0, hr + r * detail))
    readings = []
    for kind, level, true_px, image in cases:
        stats = geometric_distortion(estimator, norm(image), norm(ref), factor, 0, 0, mtf, margin_lr)
        readings.append(CalibrationReading(kind, level, true_px, stats.mean, stats.std))
    return readings
