"""Validation metrics of SR training beyond the basic RMSE / PSNR / LR fidelity: torchsisr's default metric
set (``training.validation_metrics: reference``), on reflectance tensors.

Every function takes batched ``[B, C, H, W]`` prediction and reference on the same (HR) grid and returns a
dictionary of ``[C]`` vectors (one value per band), named as they are logged.
"""

from __future__ import annotations

import torch

from sisrlib.metrics.pixel import hf_power_variation, hr_fidelity, psnr, rmse, ssim, tv_variation_reference

#: torchsisr's high-gradient threshold (reflectance per pixel): the 75th percentile of the reference's
#: gradient magnitude over its training set (``GradientStrataWrapper``'s ``g_min``).
HIGH_GRADIENT_THRESHOLD = 0.006770164705812931
#: MTF of the high-pass filter of the HR RMSE (as the LR-fidelity metric).
HR_RMSE_MTF = 0.1


def gradient_magnitude(x: torch.Tensor, max_bands: int = 4) -> torch.Tensor:
    """``[B, 1, H, W]`` magnitude of the gradient of ``x`` ``[B, C, H, W]``, the horizontal and vertical
    gradients (central differences inside, one-sided at the edges; per pixel) averaged over the first
    ``max_bands`` bands."""
    first = x[:, :max_bands].float()
    dy, dx = torch.gradient(first, dim=(-2, -1))
    return torch.sqrt(dx.mean(dim=1, keepdim=True) ** 2 + dy.mean(dim=1, keepdim=True) ** 2)


def high_gradient_rmse(
    pred: torch.Tensor,
    reference: torch.Tensor,
    threshold: float = HIGH_GRADIENT_THRESHOLD,
    margin: int = 0,
) -> torch.Tensor:
    """RMSE per band ``[C]`` on the pixels where the reference's gradient magnitude
    (:func:`gradient_magnitude`) is at least ``threshold`` (torchsisr's ``GradientStrataWrapper``), after
    cropping ``margin`` px. NaN for a band when no pixel qualifies."""
    if margin > 0:
        pred = pred[..., margin:-margin, margin:-margin]
        reference = reference[..., margin:-margin, margin:-margin]
    mask = (gradient_magnitude(reference) >= threshold).to(pred.dtype)  # [B, 1, H, W]
    count = mask.sum()
    squared = ((pred - reference) ** 2 * mask).sum(dim=(0, 2, 3))
    if float(count) == 0:
        return torch.full_like(squared, float("nan"))
    return torch.sqrt(squared / count)


def reference_metrics(
    pred: torch.Tensor, reference: torch.Tensor, factor: float, margin: int
) -> dict[str, torch.Tensor]:
    """torchsisr's default validation metrics per band ``[C]`` of ``pred`` against ``reference``
    (reflectance, HR grid): ``ssim``, ``hr_rmse`` (RMSE of the high-pass parts, MTF 0.1 at ×``factor``),
    ``high_gradient_rmse``, ``hf_power_variation`` (%) and ``tv_variation`` (torchsisr's absolute form)."""
    return {
        "ssim": ssim(pred, reference, data_range=1.0, margin=margin),
        "hr_rmse": hr_fidelity(pred, reference, factor, HR_RMSE_MTF, margin=margin),
        "high_gradient_rmse": high_gradient_rmse(pred, reference, margin=margin),
        "hf_power_variation": hf_power_variation(pred, reference, margin=margin),
        "tv_variation": tv_variation_reference(pred, reference, margin=margin),
    }


def wald_metrics(
    pred: torch.Tensor, reference: torch.Tensor, factor: float, margin: int
) -> dict[str, torch.Tensor]:
    """The Wald branch's metrics per band ``[C]`` (20 m grid, reflectance): ``psnr`` and ``hr_rmse``."""
    return {
        "psnr": psnr(pred, reference, data_range=1.0, margin=margin),
        "hr_rmse": hr_fidelity(pred, reference, factor, HR_RMSE_MTF, margin=margin),
    }


def simulated_metrics(pred: torch.Tensor, reference: torch.Tensor, margin: int) -> dict[str, torch.Tensor]:
    """Metrics per band ``[C]`` of the prediction from the simulated input: ``psnr`` and ``rmse``."""
    return {
        "psnr": psnr(pred, reference, data_range=1.0, margin=margin),
        "rmse": rmse(pred, reference, margin=margin),
    }


__all__ = [
    "HIGH_GRADIENT_THRESHOLD",
    "gradient_magnitude",
    "high_gradient_rmse",
    "reference_metrics",
    "simulated_metrics",
    "wald_metrics",
]
