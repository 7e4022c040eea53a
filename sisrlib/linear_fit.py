"""The per-patch, per-band least-squares line ``y ≈ a·x + b`` over the pixels of ``[B, C, H, W]`` tensors:
what the oracle evaluation fits to split a true radiometric field (``sisrlib.metrics.oracle``) and what the
``affine`` radiometric correction fits between a simulated target and the real input
(``sisrlib.registration.target``)."""

from __future__ import annotations

import torch

#: Floor of the variance a slope is divided by (the flat patches take ``flat_slope`` instead).
VARIANCE_FLOOR = 1e-12


def fit_line(
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    min_variance: float = 0.0,
    flat_slope: float = 0.0,
    slope_bounds: tuple[float, float] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Slope ``a`` and intercept ``b`` (``[B, C, 1, 1]``, in ``x``'s and ``y``'s dtype) minimising
    ``‖y − (a·x + b)‖²`` per patch and band (``x``, ``y``: ``[B, C, H, W]``).

    Where the variance of ``x`` is at most ``min_variance`` the slope is ``flat_slope``; ``slope_bounds``
    (low, high) clamps it; the intercept is that of the final slope, ``mean(y) − a·mean(x)``.
    """
    if x.shape != y.shape:
        raise ValueError(f"fit_line: x {tuple(x.shape)} and y {tuple(y.shape)} differ in shape")
    x_mean = x.mean(dim=(-2, -1), keepdim=True)
    y_mean = y.mean(dim=(-2, -1), keepdim=True)
    dx = x - x_mean
    var = dx.square().mean(dim=(-2, -1), keepdim=True)
    cov = (dx * (y - y_mean)).mean(dim=(-2, -1), keepdim=True)
    floor = max(min_variance, VARIANCE_FLOOR)
    slope = torch.where(var > min_variance, cov / var.clamp_min(floor), torch.full_like(var, flat_slope))
    if slope_bounds is not None:
        slope = slope.clamp(*slope_bounds)
    return slope, y_mean - slope * x_mean


__all__ = ["VARIANCE_FLOOR", "fit_line"]
