"""Optical flows: warping, composition, simulation (core tensor operations, used by registration, the data
simulation and the metrics).

A flow is a ``[B, 2, H, W]`` tensor in pixels of the grid it lives on; channel 0 is the x (column)
displacement, channel 1 the y (row) displacement. ``warp(x, flow)`` samples ``x`` at ``(col + flow_x,
row + flow_y)``: the flow tells, for every output pixel, where to fetch its value in the input.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F

from sisrlib.degradation import depthwise_filter, psf_kernel, upsample


def _check_flow(flow: torch.Tensor) -> None:
    if flow.dim() != 4 or flow.shape[1] != 2:
        raise ValueError(f"a flow must be a [B, 2, H, W] tensor, got shape {tuple(flow.shape)}")


def sampling_grid(flow: torch.Tensor) -> torch.Tensor:
    """``grid_sample`` grid ``[B, H, W, 2]`` (normalised, align_corners=True) for sampling at pixel + flow."""
    _check_flow(flow)
    _, _, h, w = flow.shape
    rows = torch.arange(h, device=flow.device, dtype=flow.dtype).view(1, h, 1)
    cols = torch.arange(w, device=flow.device, dtype=flow.dtype).view(1, 1, w)
    x = cols + flow[:, 0]
    y = rows + flow[:, 1]
    gx = 2.0 * x / max(w - 1, 1) - 1.0
    gy = 2.0 * y / max(h - 1, 1) - 1.0
    return torch.stack([gx, gy], dim=-1)


def warp(x: torch.Tensor, flow: torch.Tensor, mode: str = "bicubic") -> torch.Tensor:
    """Resample ``x`` ``[B, C, H, W]`` at pixel + ``flow`` (``[B, 2, H, W]``, pixels), bicubic,
    reflection padding.

    A flow that is identically zero returns ``x`` itself (bit-exact identity).
    """
    _check_flow(flow)
    if x.shape[0] != flow.shape[0] or x.shape[-2:] != flow.shape[-2:]:
        raise ValueError(f"x {tuple(x.shape)} and flow {tuple(flow.shape)} must share batch and spatial size")
    if not torch.any(flow != 0):
        return x
    grid = sampling_grid(flow.to(x.dtype))
    return F.grid_sample(x, grid, mode=mode, padding_mode="reflection", align_corners=True)


def compose_flows(
    first: torch.Tensor, second: torch.Tensor, mode: Literal["exact", "reference"] = "exact"
) -> torch.Tensor:
    """The flow ``c`` such that ``warp(x, c) == warp(warp(x, first), second)``.

    ``warp(warp(x, a), b)(p) = x(p + b(p) + a(p + b(p)))``, so ``c = second + warp(first, second)``: exact for
    non-constant flows (away from borders, up to interpolation error). ``mode="reference"`` returns the plain
    sum ``first + second`` of the reference implementation (a torchsisr quirk), exact only for constant flows.
    """
    _check_flow(first)
    _check_flow(second)
    if mode == "reference":
        return first + second
    if mode != "exact":
        raise ValueError(f"mode must be 'exact' or 'reference', got {mode!r}")
    return second + warp(first, second)


def flow_norm(flow: torch.Tensor) -> torch.Tensor:
    """Per-pixel displacement magnitude ``[B, H, W]`` (pixels)."""
    _check_flow(flow)
    return torch.linalg.vector_norm(flow, dim=1)


def simulate_flow(
    batch_size: int,
    height: int,
    width: int,
    max_range: float = 2.0,
    max_width: float = 10.0,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Random smooth flows with one soft discontinuity (the reference's ``simulate_warp``).

    Per sample: ``dx = c·cos(2π(x + φx)/Px) + ax·tanh(d/w)``, ``dy = c·cos(2π(y + φy)/Py) + ay·tanh(d/w)``
    with c ~ U(0, 1), φ ~ U(0, W), P ~ W·U(0.9, 1), ax, ay ~ U(−1, 1), d the signed distance to a random line
    (slope ~ U(−10, 10)) and w ~ U(1, max_width); flow = max_range·(dx, dy). Each component is bounded by
    ``2·max_range`` pixels. Returns ``[B, 2, H, W]``; draws come from ``generator`` (CPU) for reproducibility.
    """
    if batch_size < 1 or height < 1 or width < 1:
        raise ValueError(f"invalid flow size {(batch_size, height, width)}")
    if max_width < 1:
        raise ValueError(f"max_width must be >= 1, got {max_width}")

    def uniform(low: float, high: float) -> torch.Tensor:
        u = torch.rand(batch_size, 1, 1, generator=generator, dtype=torch.float64)
        return low + (high - low) * u

    w_f = float(width)
    h_f = float(height)
    ys = torch.arange(height, dtype=torch.float64).view(1, height, 1)
    xs = torch.arange(width, dtype=torch.float64).view(1, 1, width)
    amplitude = uniform(0.0, 1.0)
    phase_x, phase_y = uniform(0.0, w_f), uniform(0.0, h_f)
    period_x, period_y = w_f * uniform(0.9, 1.0), h_f * uniform(0.9, 1.0)
    dx = amplitude * torch.cos(2 * math.pi * (xs + phase_x) / period_x)
    dy = amplitude * torch.cos(2 * math.pi * (ys + phase_y) / period_y)
    slope = uniform(-10.0, 10.0)
    intercept = -slope * w_f * uniform(0.0, 1.0)
    distance = (ys - slope * xs - intercept) / torch.sqrt(1 + slope**2)
    edge_width = uniform(1.0, max_width)
    step = torch.tanh(distance / edge_width)
    dx = dx + uniform(-1.0, 1.0) * step
    dy = dy + uniform(-1.0, 1.0) * step
    flow = max_range * torch.stack([dx, dy], dim=1)
    return flow.to(device=device, dtype=dtype)


def smooth_flow(flow: torch.Tensor, mtf: float = 1e-6, half_width: int = 7) -> torch.Tensor:
    """Low-pass a flow with the reference's 15×15 Gaussian (``generate_psf_kernel(1, 1, 1e-6, 7)``,
    σ ≈ 1.67 px).

    Zero "same" padding as in the reference would bias the flow towards 0 at the borders; reflect padding is
    used instead. ``[B, 2, H, W]`` → same shape, pixels.
    """
    return depthwise_filter(flow, psf_kernel(1.0, mtf, 1.0, half_width), padding_mode="reflect")


def upsample_flow(flow: torch.Tensor, factor: float) -> torch.Tensor:
    """Bring a flow to a grid ``factor`` times finer: bicubic interpolation, values multiplied by ``factor``
    (a displacement of 1 coarse pixel is ``factor`` fine pixels). ``[B, 2, h, w]`` → ``[B, 2, h·f, w·f]``."""
    return factor * upsample(flow, factor)
