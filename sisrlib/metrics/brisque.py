"""BRISQUE (Mittal, Moorthy & Bovik, IEEE TIP 2012), our own implementation of the published method: a
no-reference quality score from natural-scene statistics, lower is better (about 0–100 on natural images).

Per image (one band, values in [0, 1], scaled to [0, 255] as the published model expects), at 2 scales (the
image, then the image halved by MATLAB's ``imresize`` — bicubic with antialiasing, symmetric borders): the
MSCN coefficients ``(x − μ) / (σ + 1)`` (local mean and deviation from a 7 × 7 Gaussian window, σ = 7/6, zero
padding) give 2 features of a generalised Gaussian fit (shape, variance), and the products of neighbouring
MSCN coefficients along 4 directions 4 features each of an asymmetric generalised Gaussian fit (shape, mean,
left and right variances): 36 features. They are scaled to [−1, 1] with the published model's feature ranges
and scored by its support vector regression (RBF kernel, γ = 0.05, ρ = −153.591).

The support vectors are the one thing supplied by the user, nothing is downloaded: the file
``brisque_svm_weights.pt`` (the published LIVE model as piq releases it: ``(coefficients [S], vectors [S,
36])``), read with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F

from sisrlib.errors import DataError

BRISQUE_WEIGHTS_FILE = "brisque_svm_weights.pt"
#: The published model's RBF kernel width and offset.
SVR_GAMMA = 0.05
SVR_RHO = -153.591
#: The published model's feature ranges (min, max) of its 36 features, scaled to [−1, 1] before the SVR.
FEATURE_RANGES: tuple[tuple[float, float], ...] = (
    (0.338, 10.0), (0.017204, 0.806612), (0.236, 1.642), (-0.123884, 0.20293), (0.000155, 0.712298),
    (0.001122, 0.470257), (0.244, 1.641), (-0.123586, 0.179083), (0.000152, 0.710456), (0.000975, 0.470984),
    (0.249, 1.555), (-0.135687, 0.100858), (0.000174, 0.684173), (0.000913, 0.534174), (0.258, 1.561),
    (-0.143408, 0.100486), (0.000179, 0.685696), (0.000888, 0.536508), (0.471, 3.264), (0.012809, 0.703171),
    (0.218, 1.046), (-0.094876, 0.187459), (1.5e-05, 0.442057), (0.001272, 0.40803), (0.222, 1.042),
    (-0.115772, 0.162604), (1.6e-05, 0.444362), (0.001374, 0.40243), (0.227, 0.996), (-0.117188, 0.098323),
    (3e-05, 0.531903), (0.001122, 0.369589), (0.228, 0.99), (-0.12243, 0.098658), (2.8e-05, 0.530092),
    (0.001118, 0.370399),
)  # fmt: skip
#: Neighbour directions of the pairwise products (row, column shifts).
_SHIFTS = ((0, 1), (1, 0), (1, 1), (-1, 1))
#: Smallest image side: 2 scales of a 7 × 7 window.
MIN_SIZE = 16


def _gaussian_window(
    size: int = 7, sigma: float = 7.0 / 6.0, dtype: torch.dtype = torch.float64
) -> torch.Tensor:
    coords = torch.arange(size, dtype=dtype) - (size - 1) / 2.0
    g = torch.exp(-(coords[None, :] ** 2 + coords[:, None] ** 2) / (2.0 * sigma**2))
    return (g / g.sum()).view(1, 1, size, size)


def _shape_grid(x: torch.Tensor) -> torch.Tensor:
    return torch.arange(0.2, 10.0 + 0.0005, 0.001, dtype=x.dtype, device=x.device)


def ggd_fit(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalised Gaussian fit by moment matching of ``[N, H, W]`` → (shape α ``[N]``, variance ``[N]``);
    α from a grid of step 0.001 over [0.2, 10]."""
    alpha = _shape_grid(x)
    table = torch.exp(torch.lgamma(1.0 / alpha) + torch.lgamma(3.0 / alpha) - 2.0 * torch.lgamma(2.0 / alpha))
    variance = x.square().mean(dim=(-2, -1))
    rho = variance / x.abs().mean(dim=(-2, -1)).square()
    return alpha[(rho[:, None] - table[None, :]).abs().argmin(dim=-1)], variance


def aggd_fit(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Asymmetric generalised Gaussian fit of ``[N, H, W]`` → (shape α, mean η, left variance, right
    variance), each ``[N]``."""
    alpha = _shape_grid(x)
    table = torch.exp(2.0 * torch.lgamma(2.0 / alpha) - torch.lgamma(1.0 / alpha) - torch.lgamma(3.0 / alpha))
    left, right = x < 0, x > 0
    left_var = (x.square() * left).sum(dim=(-2, -1)) / left.sum(dim=(-2, -1)).clamp_min(1)
    right_var = (x.square() * right).sum(dim=(-2, -1)) / right.sum(dim=(-2, -1)).clamp_min(1)
    gamma_hat = left_var.sqrt() / right_var.sqrt().clamp_min(1e-12)
    r_hat = x.abs().mean(dim=(-2, -1)).square() / x.square().mean(dim=(-2, -1)).clamp_min(1e-12)
    r_norm = r_hat * (gamma_hat**3 + 1.0) * (gamma_hat + 1.0) / (gamma_hat**2 + 1.0).square()
    a = alpha[(r_norm[:, None] - table[None, :]).abs().argmin(dim=-1)]
    eta = (right_var.sqrt() - left_var.sqrt()) * torch.exp(
        torch.lgamma(2.0 / a) - (torch.lgamma(1.0 / a) + torch.lgamma(3.0 / a)) / 2.0
    )
    return a, eta, left_var, right_var


def scale_features(x: torch.Tensor) -> torch.Tensor:
    """The 18 natural-scene statistics of ``[N, 1, H, W]`` (0–255 scale) at one scale → ``[N, 18]``."""
    window = _gaussian_window(dtype=x.dtype).to(x.device)
    mu = F.conv2d(x, window, padding=3)
    sigma = (F.conv2d(x.square(), window, padding=3) - mu.square()).abs().sqrt()
    mscn = ((x - mu) / (sigma + 1.0))[:, 0]
    shape, variance = ggd_fit(mscn)
    features = [shape, variance]
    for shift in _SHIFTS:
        product = mscn * torch.roll(mscn, shifts=shift, dims=(-2, -1))
        features.extend(aggd_fit(product))
    return torch.stack(features, dim=-1)


def _cubic(d: torch.Tensor) -> torch.Tensor:
    """Keys' cubic kernel (a = −0.5), MATLAB's ``imresize`` bicubic."""
    a = d.abs()
    near = (1.5 * a**3 - 2.5 * a**2 + 1.0) * (a <= 1)
    far = (-0.5 * a**3 + 2.5 * a**2 - 4.0 * a + 2.0) * ((a > 1) & (a <= 2))
    return near + far


def _resize_axis(x: torch.Tensor, size: int, dim: int) -> torch.Tensor:
    """MATLAB ``imresize`` (bicubic, antialiased when shrinking, symmetric borders) along ``dim`` to
    ``size``."""
    n = x.shape[dim]
    scale = size / n
    width = 4.0 / scale if scale < 1 else 4.0
    taps = math.ceil(width) + 2
    out = torch.arange(size, dtype=x.dtype, device=x.device)
    centre = (out + 0.5) / scale - 0.5
    first = torch.floor(centre - width / 2.0)
    index = first[:, None] + torch.arange(taps, dtype=x.dtype, device=x.device)[None, :]
    weight = _cubic((centre[:, None] - index) * (scale if scale < 1 else 1.0))
    weight = weight / weight.sum(dim=1, keepdim=True)
    idx = index.long()
    idx = torch.where(idx < 0, -idx - 1, idx)
    idx = torch.where(idx >= n, 2 * n - idx - 1, idx).clamp(0, n - 1)
    gathered = x.index_select(dim, idx.flatten())
    shape = list(x.shape)
    shape[dim : dim + 1] = [size, taps]
    gathered = gathered.reshape(shape)
    view = [1] * len(shape)
    view[dim], view[dim + 1] = size, taps
    return (gathered * weight.view(view)).sum(dim=dim + 1)


def halve(x: torch.Tensor) -> torch.Tensor:
    """``[N, 1, H, W]`` → ``[N, 1, H // 2, W // 2]`` by MATLAB's ``imresize``."""
    return _resize_axis(_resize_axis(x, x.shape[-2] // 2, 2), x.shape[-1] // 2, 3)


def brisque_features(x: torch.Tensor) -> torch.Tensor:
    """The 36 BRISQUE features of single-band images ``[N, 1, H, W]`` in [0, 1] → ``[N, 36]`` (float64)."""
    if x.dim() != 4 or x.shape[1] != 1:
        raise ValueError(f"BRISQUE: expected single-band images [N, 1, H, W], got {tuple(x.shape)}")
    if min(x.shape[-2:]) < MIN_SIZE:
        raise ValueError(
            f"BRISQUE needs images of at least {MIN_SIZE}×{MIN_SIZE} px, got {tuple(x.shape[-2:])}"
        )
    image = x.double() * 255.0
    return torch.cat([scale_features(image), scale_features(halve(image))], dim=-1)


def load_brisque_svr(path: str | Path) -> tuple[torch.Tensor, torch.Tensor]:
    """The published SVR of ``path`` (``brisque_svm_weights.pt``): coefficients ``[S]`` and support vectors
    ``[S, 36]``, float64."""
    path = Path(path)
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise DataError(
            f"{path} could not be read as the BRISQUE model ({type(exc).__name__}: {exc}); supply the "
            f"original {BRISQUE_WEIGHTS_FILE}"
        ) from exc
    ok = (
        isinstance(loaded, list | tuple)
        and len(loaded) == 2
        and all(isinstance(t, torch.Tensor) for t in loaded)
    )
    if ok:
        coef, vectors = (t.detach().double() for t in loaded)
        if vectors.dim() == 2 and vectors.shape[0] != coef.numel() and vectors.shape[1] == coef.numel():
            vectors = vectors.t()
        ok = (
            coef.numel() == vectors.shape[0]
            and vectors.dim() == 2
            and vectors.shape[1] == len(FEATURE_RANGES)
        )
    if not ok:
        raise DataError(
            f"{path} is not a BRISQUE model: expected (coefficients [S], support vectors [S, 36]), the file "
            f"piq releases as {BRISQUE_WEIGHTS_FILE}"
        )
    return coef.flatten(), vectors


def brisque_score(x: torch.Tensor, coef: torch.Tensor, vectors: torch.Tensor) -> torch.Tensor:
    """BRISQUE of single-band images ``[N, 1, H, W]`` in [0, 1] with the SVR (``load_brisque_svr``) → ``[N]``
    (dimensionless, lower is better; float64)."""
    features = brisque_features(x)
    ranges = torch.tensor(FEATURE_RANGES, dtype=features.dtype, device=features.device)
    scaled = -1.0 + 2.0 * (features - ranges[:, 0]) / (ranges[:, 1] - ranges[:, 0])
    v = vectors.to(scaled)
    kernel = torch.exp(-SVR_GAMMA * (scaled[:, None, :] - v[None, :, :]).square().sum(dim=-1))
    return kernel @ coef.to(scaled) - SVR_RHO
