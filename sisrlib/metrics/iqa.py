"""Full-reference image-quality metrics written from their published definitions: GMSD, MS-GMSD, HaarPSI.

They need only torch (no piq, no torchvision) and are used by the metrics sensitivity benchmark.

Every function takes a prediction and a reference of the same shape ``[N, C, H, W]`` with values in
``[0, data_range]`` (reflectance in [0, 1] in the benchmark, ``data_range = 1``), ``C = 1`` (grayscale) or
``C = 3`` (RGB, reduced to its luma ``Y = 0.299 R + 0.587 G + 0.114 B`` as in the published codes), and
returns a scalar tensor: the metric of every image, averaged over the batch. Any floating dtype and device
work; the result has the inputs' dtype and device. Borders are zero-padded as MATLAB's ``conv2(..., 'same')``
of the reference implementations.

* ``gmsd``: Gradient Magnitude Similarity Deviation (Xue, Zhang, Mou & Bovik, IEEE TIP 2014). 0 for identical
  images, grows with the distortion (a standard deviation of similarities in [0, 1]).
* ``multi_scale_gmsd``: MS-GMSD (Zhang, Sander & Bermak, ICASSP 2017). 0 for identical images, grows with the
  distortion.
* ``haarpsi``: Haar wavelet-based Perceptual Similarity Index (Reisenhofer, Bosse, Kutyniok & Wiegand, Signal
  Processing: Image Communication 2018). 1 for identical images, falls towards 0 with the distortion.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = [
    "GMSD_C",
    "HAARPSI_ALPHA",
    "HAARPSI_C",
    "MS_GMSD_ALPHA",
    "MS_GMSD_WEIGHTS",
    "gmsd",
    "haarpsi",
    "multi_scale_gmsd",
]

#: GMSD / MS-GMSD stability constant for images in [0, 1] (170 for 8-bit images in the papers).
GMSD_C = 170.0 / 255.0**2
#: MS-GMSD masking coefficient α of the gradient-magnitude similarity (Zhang et al. 2017).
MS_GMSD_ALPHA = 0.5
#: MS-GMSD weights of the 4 scales, finest first (Zhang et al. 2017).
MS_GMSD_WEIGHTS = (0.096, 0.596, 0.289, 0.019)
#: HaarPSI stability constant for images in [0, 1] (C = 30 for 8-bit images in the paper).
HAARPSI_C = 30.0 / 255.0**2
#: HaarPSI slope α of the logistic function (Reisenhofer et al. 2018).
HAARPSI_ALPHA = 4.2

_LUMA = (0.299, 0.587, 0.114)


def _prepare(pred: torch.Tensor, ref: torch.Tensor, data_range: float, name: str) -> tuple[torch.Tensor, ...]:
    """Check shapes, scale to [0, 1] and reduce to one grayscale channel ``[N, 1, H, W]``."""
    if pred.shape != ref.shape:
        raise ValueError(
            f"{name}: pred and ref must have the same shape, got {tuple(pred.shape)} and {tuple(ref.shape)}"
        )
    if pred.dim() != 4:
        raise ValueError(f"{name}: expected [N, C, H, W] tensors, got shape {tuple(pred.shape)}")
    if not (pred.is_floating_point() and ref.is_floating_point()):
        raise ValueError(f"{name}: expected floating-point tensors, got {pred.dtype} and {ref.dtype}")
    if data_range <= 0:
        raise ValueError(f"{name}: data_range must be > 0, got {data_range}")
    channels = pred.shape[1]
    out = []
    for x in (pred, ref):
        x = x / data_range
        if channels == 3:
            luma = torch.tensor(_LUMA, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
            x = (x * luma).sum(dim=1, keepdim=True)
        elif channels != 1:
            raise ValueError(
                f"{name}: expected 1 (grayscale) or 3 (RGB) channels, got {channels}; compare the bands one "
                "at a time ([N, 1, H, W])"
            )
        out.append(x)
    return tuple(out)


def _check_size(x: torch.Tensor, minimum: int, name: str, why: str) -> None:
    h, w = x.shape[-2:]
    if h < minimum or w < minimum:
        raise ValueError(f"{name} needs images of at least {minimum}×{minimum} px ({why}), got {h}×{w}")


def _downsample2(x: torch.Tensor) -> torch.Tensor:
    """2×2 average then every second pixel; an odd last row/column is averaged over its valid pixels."""
    return F.avg_pool2d(x, kernel_size=2, stride=2, ceil_mode=True)


def _gradient_magnitude(x: torch.Tensor) -> torch.Tensor:
    """Prewitt gradient magnitude ``[N, 1, H, W]`` (kernels ``[1, 0, −1]`` along one axis, ``1/3`` along the
    other)."""
    horizontal = (
        torch.tensor([[1.0, 0.0, -1.0], [1.0, 0.0, -1.0], [1.0, 0.0, -1.0]], dtype=x.dtype, device=x.device)
        / 3.0
    )
    kernels = torch.stack([horizontal, horizontal.t()]).unsqueeze(1)  # [2, 1, 3, 3]
    grad = F.conv2d(x, kernels, padding=1)
    return grad.square().sum(dim=1, keepdim=True).sqrt()


def _gms_deviation(x: torch.Tensor, y: torch.Tensor, c: float, alpha: float) -> torch.Tensor:
    """Per-image standard deviation ``[N]`` of the (masked) gradient magnitude similarity map."""
    mx, my = _gradient_magnitude(x), _gradient_magnitude(y)
    cross = mx * my
    gms = (2.0 * cross - alpha * cross + c) / (mx.square() + my.square() - alpha * cross + c)
    return gms.flatten(1).std(dim=1, correction=0)


def gmsd(pred: torch.Tensor, ref: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """Gradient Magnitude Similarity Deviation (Xue et al. 2014), averaged over the batch.

    Both images are averaged 2×2 and sub-sampled by 2, their Prewitt gradient magnitudes ``m`` compared by
    ``GMS = (2 m_p m_r + c) / (m_p² + m_r² + c)`` with ``c = 170/255²`` (images scaled to [0, 1]), and GMSD is
    the (population) standard deviation of the GMS map.

    Args:
        pred: distorted images ``[N, C, H, W]``, ``C`` 1 or 3, values in ``[0, data_range]``; H, W ≥ 4.
        ref: reference images, same shape.
        data_range: the value of white (1 for reflectance).

    Returns:
        Scalar tensor (dimensionless, ≥ 0; 0 for identical images; lower is better).
    """
    x, y = _prepare(pred, ref, data_range, "GMSD")
    _check_size(x, 4, "GMSD", "a 2× down-sampling then 3×3 gradients")
    return _gms_deviation(_downsample2(x), _downsample2(y), GMSD_C, 0.0).mean()


def multi_scale_gmsd(pred: torch.Tensor, ref: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """Multi-scale GMSD (Zhang et al. 2017), averaged over the batch.

    On 4 dyadic scales (the full-resolution image, then 2×2 averaged and sub-sampled by 2 at each scale), the
    GMSD ``g_j`` of the masked similarity ``(2 m_p m_r − α m_p m_r + c) / (m_p² + m_r² − α m_p m_r + c)``
    (``α = 0.5``, ``c = 170/255²``) is computed and combined as ``sqrt(Σ_j w_j g_j²)`` with the published
    weights ``w = (0.096, 0.596, 0.289, 0.019)``.

    Args:
        pred: distorted images ``[N, C, H, W]``, ``C`` 1 or 3, values in ``[0, data_range]``; H, W ≥ 16.
        ref: reference images, same shape.
        data_range: the value of white (1 for reflectance).

    Returns:
        Scalar tensor (dimensionless, ≥ 0; 0 for identical images; lower is better).
    """
    x, y = _prepare(pred, ref, data_range, "MS-GMSD")
    scales = len(MS_GMSD_WEIGHTS)
    _check_size(x, 2**scales, "MS-GMSD", f"{scales} scales, the coarsest at 1/{2 ** (scales - 1)}")
    deviations = []
    for j in range(scales):
        if j > 0:
            x, y = _downsample2(x), _downsample2(y)
        deviations.append(_gms_deviation(x, y, GMSD_C, MS_GMSD_ALPHA))
    weights = torch.tensor(MS_GMSD_WEIGHTS, dtype=x.dtype, device=x.device)
    per_image = (torch.stack(deviations, dim=1).square() * weights).sum(dim=1).sqrt()
    return per_image.mean()


def _haar_coefficients(x: torch.Tensor, scales: int) -> torch.Tensor:
    """Haar wavelet coefficients ``[N, 2·scales, H, W]``: for scale ``k = 1..scales`` the responses to the
    ``2^k × 2^k`` filters ``2^−k·(±1)`` (sign change between the two halves), horizontal edges at channel
    ``k − 1`` and vertical edges at channel ``scales + k − 1``."""
    horizontal, vertical = [], []
    for k in range(1, scales + 1):
        size = 2**k
        kernel = torch.full((size, size), 2.0**-k, dtype=x.dtype, device=x.device)
        kernel[size // 2 :] *= -1.0
        kernels = torch.stack([kernel, kernel.t()]).unsqueeze(1)  # [2, 1, size, size]
        # MATLAB conv2(..., 'same') alignment for an even kernel
        padded = F.pad(x, (size // 2 - 1, size // 2, size // 2 - 1, size // 2))
        coefficients = F.conv2d(padded, kernels)
        horizontal.append(coefficients[:, :1])
        vertical.append(coefficients[:, 1:])
    return torch.cat(horizontal + vertical, dim=1)


def haarpsi(pred: torch.Tensor, ref: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """Haar wavelet-based Perceptual Similarity Index (Reisenhofer et al. 2018), grayscale, batch mean.

    Both images are averaged 2×2 and sub-sampled by 2, then decomposed with Haar wavelet filters at 3 scales
    in 2 orientations (horizontal, vertical). For each orientation ``o`` the local similarity is the mean over
    the **2 finest scales** of ``(2|g_p||g_r| + C) / (g_p² + g_r² + C)`` (``C = 30/255²``, images in [0, 1]),
    the weight map is ``W_o = max(|g_p|, |g_r|)`` of the coarsest (3rd) scale, and

    ``HaarPSI = (l⁻¹(Σ_o Σ_px l(S_o)·W_o / Σ_o Σ_px W_o))²`` with ``l(t) = 1 / (1 + exp(−α t))``,
    ``l⁻¹(t) = log(t / (1 − t)) / α`` and ``α = 4.2``.

    Args:
        pred: distorted images ``[N, C, H, W]``, ``C`` 1 or 3, values in ``[0, data_range]``; H, W ≥ 16.
        ref: reference images, same shape.
        data_range: the value of white (1 for reflectance).

    Returns:
        Scalar tensor in (0, 1] (dimensionless; 1 for identical images; higher is better).
    """
    x, y = _prepare(pred, ref, data_range, "HaarPSI")
    scales = 3
    _check_size(x, 2 ** (scales + 1), "HaarPSI", "a 2× down-sampling then Haar filters of up to 8×8 px")
    cx = _haar_coefficients(_downsample2(x), scales).abs()
    cy = _haar_coefficients(_downsample2(y), scales).abs()
    similarity = []
    weights = []
    for o in range(2):
        fine = [o * scales + k for k in range(scales - 1)]
        coarse = o * scales + scales - 1
        a, b = cx[:, fine], cy[:, fine]
        local = ((2.0 * a * b + HAARPSI_C) / (a.square() + b.square() + HAARPSI_C)).mean(dim=1)
        similarity.append(local)
        weights.append(torch.maximum(cx[:, coarse], cy[:, coarse]))
    sim = torch.stack(similarity, dim=1)  # [N, 2, H, W]
    weight = torch.stack(weights, dim=1)
    # l⁻¹(p / (p + q)) with p = Σ l(S)·W and q = Σ (1 − l(S))·W = Σ l(−S)·W: log(p / q) / α, accurate near 1
    p = (torch.sigmoid(HAARPSI_ALPHA * sim) * weight).sum(dim=(1, 2, 3))
    q = (torch.sigmoid(-HAARPSI_ALPHA * sim) * weight).sum(dim=(1, 2, 3))
    structured = weight.sum(dim=(1, 2, 3)) > 0
    one = torch.ones_like(p)
    # no structure at all in either image (both zero): identical, similarity 1
    logit = torch.where(structured, torch.log(torch.where(structured, p / q, one)) / HAARPSI_ALPHA, one)
    per_image = logit.square()
    return per_image.mean()
