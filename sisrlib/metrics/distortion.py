"""Geometric and radiometric distortion between an HR image (prediction or target) and the real LR input.

* **Geometric** (spec §4.5, test-time flow metrics): the HR image is downscaled to the LR grid
  (``mtf_downscale``, factor ``f``, MTF 0.3 by default), and a flow estimator ``R(left, right)`` (the frozen
  registration network, or any callable with the same contract) gives the flow such that ``warp(left, flow)``
  matches ``right``, on one band (the registration channel). The mean and standard deviation of the per-pixel
  flow norm, in **LR pixels**, measure how far the HR image's geometry is from the input's. On embedded
  (simulated) sites the stored ``true_flow`` gives the end-point error of the estimated flow.
* **Radiometric**: per-band bias and RMSE between the downscaled HR image and the LR input, in the inputs'
  unit (reflectance in the evaluation).

Tensors are ``[B, C, H, W]`` (HR) and ``[B, C, H/f, W/f]`` (LR); flows ``[B, 2, h, w]`` in LR pixels (channel
0 = x).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch

from sisrlib.degradation import mtf_downscale
from sisrlib.metrics.pixel import crop
from sisrlib.registration.flow import flow_norm

__all__ = [
    "FlowEstimator",
    "FlowStatistics",
    "end_point_error",
    "estimate_flow",
    "geometric_distortion",
    "radiometric_distortion",
]


class FlowEstimator(Protocol):
    """A dense flow estimator: ``(left [B, H, W], right [B, H, W]) -> flow [B, 2, H, W]`` (pixels) such that
    ``warp(left, flow)`` matches ``right`` (e.g. ``sisrlib.training.checkpoint.load_registration(path)``)."""

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
) -> torch.Tensor:
    """Flow ``[B, 2, h, w]`` (LR px) from the downscaled HR ``image`` band ``channel`` to the LR input band
    ``input_channel`` (default: the same index), i.e. ``warp(image↓, flow) ≈ lr_input``."""
    _check_lr_pair(image, lr_input, factor)
    input_channel = channel if input_channel is None else input_channel
    for name, t, ch in (("image", image, channel), ("LR input", lr_input, input_channel)):
        if not 0 <= ch < t.shape[1]:
            raise ValueError(
                f"registration channel {ch} is out of range for the {name} with {t.shape[1]} bands"
            )
    down = mtf_downscale(image[:, channel : channel + 1], factor, mtf)
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
