"""Per-band losses and metrics of SR training and the relativistic adversarial terms (the LPIPS term is
:class:`sisrlib.metrics.lpips.PerBandLPIPS`).

Per-band functions take ``[B, C, H, W]`` prediction and reference and return a ``[C]`` vector (one value per
band); training averages it over bands. Losses run on standardised tensors, metrics on reflectance.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from sisrlib.registration.pretraining import highpass


def crop(x: torch.Tensor, margin: int) -> torch.Tensor:
    """Remove ``margin`` pixels on every side of ``[..., H, W]`` (a no-op for ``margin <= 0``)."""
    if margin <= 0:
        return x
    h, w = x.shape[-2:]
    if 2 * margin >= min(h, w):
        raise ValueError(
            f"a margin of {margin} px leaves nothing of a {h}×{w} image; use larger patches or a smaller "
            "margin "
            "(training.training_margin / training.validation_margin)"
        )
    return x[..., margin : h - margin, margin : w - margin]


def per_band_mse(pred: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """Mean squared error per band ``[C]``."""
    return ((pred - ref) ** 2).mean(dim=(0, 2, 3))


def per_band_l1(pred: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """Mean absolute error per band ``[C]``."""
    return (pred - ref).abs().mean(dim=(0, 2, 3))


def per_band_highpass_l1(pred: torch.Tensor, ref: torch.Tensor, sigma: float) -> torch.Tensor:
    """Mean absolute difference per band ``[C]`` of the high-pass residuals ``x − G_σ ∗ x`` of ``pred`` and
    ``ref`` ``[B, C, H, W]`` (Gaussian of ``sigma`` output pixels, reflect padding; see
    :func:`sisrlib.registration.pretraining.highpass`)."""
    b, c, h, w = pred.shape
    diff = highpass((pred - ref).reshape(b * c, h, w), sigma)  # the filter is linear
    return diff.abs().reshape(b, c, h, w).mean(dim=(0, 2, 3))


def per_band_fft_amplitude_l1(pred: torch.Tensor, ref: torch.Tensor, min_frequency: float) -> torch.Tensor:
    """Mean absolute difference per band ``[C]`` of the amplitude spectra ``|FFT2(w·x)|`` of ``pred`` and
    ``ref`` ``[B, C, H, W]``, on the frequencies whose radius is at least ``min_frequency`` (relative to the
    image's Nyquist frequency, in [0, 1); 0.5 at ×2 is the LR Nyquist). ``w``: a separable Hann window (it
    removes the leakage of the patch borders); FFT norm "ortho" (amplitudes in the inputs' unit).

    A translation does not change an amplitude spectrum: this term asks for the target's detail *energy*,
    not for where the detail lies. It rewards detail a pixel loss averages away (detail the LR input does not
    determine), whether the target is registered or not.
    """
    h, w = pred.shape[-2:]
    window = torch.outer(
        torch.hann_window(h, periodic=False, dtype=pred.dtype, device=pred.device),
        torch.hann_window(w, periodic=False, dtype=pred.dtype, device=pred.device),
    )
    fy = torch.fft.fftfreq(h, device=pred.device, dtype=pred.dtype).abs() * 2
    fx = torch.fft.rfftfreq(w, device=pred.device, dtype=pred.dtype) * 2
    keep = torch.sqrt(fy[:, None] ** 2 + fx[None, :] ** 2) >= min_frequency
    if not bool(keep.any()):
        raise ValueError(f"no frequency of a {h}×{w} image lies at or above {min_frequency} Nyquist")
    amp_pred = torch.fft.rfft2(pred * window, norm="ortho").abs()
    amp_ref = torch.fft.rfft2(ref * window, norm="ortho").abs()
    return (amp_pred - amp_ref).abs()[..., keep].mean(dim=(0, 2))


def per_band_rmse(pred: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """Root mean squared error per band ``[C]`` (same unit as the inputs)."""
    return torch.sqrt(per_band_mse(pred, ref))


def per_band_bias(pred: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """Mean of ``pred − ref`` per band ``[C]``."""
    return (pred - ref).mean(dim=(0, 2, 3))


def per_band_psnr(pred: torch.Tensor, ref: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """PSNR (dB) per band ``[C]`` with peak ``data_range`` (1 for reflectance)."""
    mse = per_band_mse(pred, ref).clamp_min(1e-12)
    return 10.0 * torch.log10(torch.as_tensor(data_range**2, dtype=mse.dtype, device=mse.device) / mse)


def relativistic_logits(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``D_ra(a, b) = D(a) − mean_batch D(b)`` from discriminator outputs ``a``, ``b`` (any equal shapes)."""
    return a - b.mean(dim=0, keepdim=True)


def dra_bce_generator_loss(d_real: torch.Tensor, d_fake: torch.Tensor) -> torch.Tensor:
    """``½[BCE(D_ra(real, fake), 0) + BCE(D_ra(fake, real), 1)]`` (torchsisr), logits in."""
    real_vs_fake = relativistic_logits(d_real, d_fake)
    fake_vs_real = relativistic_logits(d_fake, d_real)
    return 0.5 * (
        F.binary_cross_entropy_with_logits(real_vs_fake, torch.zeros_like(real_vs_fake))
        + F.binary_cross_entropy_with_logits(fake_vs_real, torch.ones_like(fake_vs_real))
    )


def dra_bce_discriminator_loss(
    d_real: torch.Tensor, d_fake: torch.Tensor, label_smoothing: float = 0.1
) -> torch.Tensor:
    """``½[BCE(D_ra(real, fake*), 1 − smoothing) + BCE(D_ra(fake*, real), 0)]`` (fake* detached by the
    caller)."""
    real_vs_fake = relativistic_logits(d_real, d_fake)
    fake_vs_real = relativistic_logits(d_fake, d_real)
    return 0.5 * (
        F.binary_cross_entropy_with_logits(real_vs_fake, torch.full_like(real_vs_fake, 1.0 - label_smoothing))
        + F.binary_cross_entropy_with_logits(fake_vs_real, torch.zeros_like(fake_vs_real))
    )


def flow_norm_stats(flow: torch.Tensor) -> tuple[float, float]:
    """Mean and standard deviation of the per-pixel norm of ``[B, 2, H, W]`` (pixels)."""
    norm = torch.linalg.vector_norm(flow.float(), dim=1)
    return float(norm.mean()), float(norm.std()) if norm.numel() > 1 else 0.0


def finite_or_raise(value: torch.Tensor, what: str) -> torch.Tensor:
    """Raise a FloatingPointError naming ``what`` if ``value`` holds NaN/inf."""
    if not bool(torch.isfinite(value).all()):
        raise FloatingPointError(f"{what} is not finite ({value}); check the data for NaN/no-data and the lr")
    return value


__all__ = [
    "crop",
    "dra_bce_discriminator_loss",
    "dra_bce_generator_loss",
    "finite_or_raise",
    "flow_norm_stats",
    "per_band_bias",
    "per_band_fft_amplitude_l1",
    "per_band_highpass_l1",
    "per_band_l1",
    "per_band_mse",
    "per_band_psnr",
    "per_band_rmse",
    "relativistic_logits",
]
