"""Per-band pixel metrics of a super-resolved prediction (torchsisr's per-band metric wrappers).

Every function takes batched ``[B, C, H, W]`` tensors in the same radiometric unit (reflectance in the
evaluation), compares band ``c`` of the prediction with band ``c`` of the reference, ignores ``margin`` pixels
on every side of the prediction (**output / HR pixels**; the network's padding-dependent border) and returns
one value per band, ``[C]`` (float, on the inputs' device), pooled over the batch.

* ``psnr``: ``10·log10(data_range² / MSE)`` with the MSE pooled over the batch and pixels of the band (the
  reference applies the loss band by band on ``[B, H, W]``). Identical images give **+inf** (documented, not
  an error); pass ``max_db`` to cap it instead.
* ``ssim``: torchmetrics' SSIM (Gaussian window 11, σ 1.5) per image and band, averaged over the batch.
* ``rmse``: root of the pooled MSE.
* ``lr_fidelity``: the prediction downscaled to the LR grid with ``mtf_downscale`` (MTF 0.1 at the LR Nyquist
  by default, the paper's ``lr_rmse``) against the real LR input: ``(rmse, bias)`` with bias = mean(pred↓ −
  input).
* ``hr_fidelity``: RMSE between the high-pass components (``high_pass``) of prediction and reference.
* ``hf_power_variation``: relative variation (%) of the high-frequency FFT power (FFTHFPowerVariation).
* ``tv_variation``: relative variation (%) of the total variation (PerBandTVVariation).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch
from torchmetrics.functional.image import structural_similarity_index_measure

from sisrlib.degradation import PsfKernel, high_pass, mtf_downscale, upsample

__all__ = [
    "band_columns",
    "crop",
    "hf_power_variation",
    "hr_fidelity",
    "lr_fidelity",
    "lr_margin",
    "mse",
    "per_band_row",
    "psnr",
    "rmse",
    "ssim",
    "tv_variation",
]


def crop(x: torch.Tensor, margin: int) -> torch.Tensor:
    """Remove ``margin`` pixels on every side of ``[..., H, W]``."""
    if margin < 0:
        raise ValueError(f"margin must be >= 0, got {margin}")
    if margin == 0:
        return x
    h, w = x.shape[-2:]
    if 2 * margin >= min(h, w):
        raise ValueError(
            f"a margin of {margin} px leaves nothing of a {h}×{w} image; use a margin < {min(h, w) // 2}"
        )
    return x[..., margin : h - margin, margin : w - margin]


def _check_pair(pred: torch.Tensor, reference: torch.Tensor, what: str = "reference") -> None:
    for name, t in (("prediction", pred), (what, reference)):
        if t.dim() != 4:
            raise ValueError(f"{name} must be a [B, C, H, W] tensor, got shape {tuple(t.shape)}")
        if not t.is_floating_point():
            raise TypeError(f"{name} must be floating point, got {t.dtype}")
    if pred.shape != reference.shape:
        raise ValueError(
            f"prediction {tuple(pred.shape)} and {what} {tuple(reference.shape)} must have the same shape "
            "(same batch, bands in the same order, same grid)"
        )


def _check_finite(*tensors: torch.Tensor) -> None:
    for t in tensors:
        if bool(torch.isnan(t).any()):
            raise ValueError(
                f"a metric input holds {int(torch.isnan(t).sum())} NaN value(s) (no-data?); crop or fill "
                "them first"
            )


def mse(pred: torch.Tensor, reference: torch.Tensor, margin: int = 0) -> torch.Tensor:
    """Mean squared error per band ``[C]``, pooled over batch and pixels (unit² of the inputs)."""
    _check_pair(pred, reference)
    _check_finite(pred, reference)
    diff = crop(pred, margin) - crop(reference, margin)
    return diff.square().mean(dim=(0, 2, 3))


def rmse(pred: torch.Tensor, reference: torch.Tensor, margin: int = 0) -> torch.Tensor:
    """Root mean squared error per band ``[C]`` (unit of the inputs)."""
    return mse(pred, reference, margin).sqrt()


def psnr(
    pred: torch.Tensor,
    reference: torch.Tensor,
    data_range: float,
    margin: int = 0,
    max_db: float | None = None,
) -> torch.Tensor:
    """Peak signal-to-noise ratio per band ``[C]`` in dB: ``10·log10(data_range² / MSE)``.

    ``data_range`` is explicit (1.0 for reflectance as in the reference). A band whose MSE is 0 (identical
    images) gets +inf, or ``max_db`` when given.
    """
    if data_range <= 0:
        raise ValueError(f"data_range must be > 0, got {data_range}")
    err = mse(pred, reference, margin)
    value = 10.0 * torch.log10(data_range**2 / err)  # MSE 0 → +inf (no error raised by torch)
    if max_db is not None:
        value = torch.clamp(value, max=max_db)
    return value


def ssim(pred: torch.Tensor, reference: torch.Tensor, data_range: float, margin: int = 0) -> torch.Tensor:
    """Structural similarity per band ``[C]`` (torchmetrics, Gaussian 11×11 σ 1.5), mean over the batch."""
    _check_pair(pred, reference)
    _check_finite(pred, reference)
    p, r = crop(pred, margin), crop(reference, margin)
    b, c, h, w = p.shape
    if min(h, w) < 11:
        raise ValueError(f"SSIM needs images of at least 11×11 px after the margin, got {h}×{w}")
    values = structural_similarity_index_measure(
        p.reshape(b * c, 1, h, w), r.reshape(b * c, 1, h, w), data_range=data_range, reduction="none"
    )
    assert isinstance(values, torch.Tensor)
    return values.reshape(b, c).mean(dim=0)


def lr_margin(margin: int, factor: float) -> tuple[int, int]:
    """``(hr_margin, lr_margin)``: the output margin rounded up to a multiple of ``factor`` and its LR
    size."""
    f = round(factor)
    if abs(f - factor) > 1e-9 or f < 1:
        raise ValueError(f"the LR comparison needs an integer factor, got {factor}")
    lr = math.ceil(margin / f)
    return lr * f, lr


def lr_fidelity(
    pred: torch.Tensor,
    lr_input: torch.Tensor,
    factor: float,
    mtf: float | None = 0.1,
    margin: int = 0,
    kernel: PsfKernel = "exact",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Agreement of the prediction with the LR input it came from, per band.

    ``pred`` ``[B, C, H, W]`` (HR grid), ``lr_input`` ``[B, C, H/f, W/f]`` (same bands, same unit). The
    prediction is downscaled by ``factor`` with ``mtf_downscale`` (``mtf`` at the LR Nyquist; ``None``: block
    average; ``kernel``: the PSF's support, ``"reference"`` = torchsisr's 7 × 7), then both are cropped by
    ``margin`` output px (rounded up to a multiple of ``factor``). Returns ``(rmse [C], bias [C])``,
    ``bias = mean(pred↓ − input)``, in the unit of the inputs.
    """
    if pred.dim() != 4 or lr_input.dim() != 4:
        raise ValueError(
            f"expected [B, C, H, W] tensors, got {tuple(pred.shape)} and {tuple(lr_input.shape)}"
        )
    down = mtf_downscale(pred, factor, mtf, kernel=kernel)
    if down.shape != lr_input.shape:
        raise ValueError(
            f"the prediction {tuple(pred.shape)} downscaled by {factor} is {tuple(down.shape)}, which "
            f"does not match the LR input {tuple(lr_input.shape)} (check the factor and the bands)"
        )
    _, m = lr_margin(margin, factor)
    _check_finite(down, lr_input)
    diff = crop(down, m) - crop(lr_input, m)
    return diff.square().mean(dim=(0, 2, 3)).sqrt(), diff.mean(dim=(0, 2, 3))


def hr_fidelity(
    pred: torch.Tensor, reference: torch.Tensor, factor: float, mtf: float = 0.1, margin: int = 0
) -> torch.Tensor:
    """RMSE per band ``[C]`` between the high-frequency parts (``high_pass(x, factor, mtf)``) of prediction
    and reference (same grid and unit)."""
    _check_pair(pred, reference)
    f = round(factor)
    return rmse(high_pass(pred, f, mtf), high_pass(reference, f, mtf), margin)


def _hf_power(x: torch.Tensor, support: float) -> torch.Tensor:
    """Sum of the normalised FFT magnitudes outside the central square, per image and band ``[B, C]``."""
    h, w = x.shape[-2:]
    spectrum = torch.fft.fftshift(torch.fft.fft2(x), dim=(-2, -1)).abs() / (h * w)
    divisor = math.ceil(2.0 / support)
    hh, hw = h // divisor, w // divisor
    ch, cw = h // 2, w // 2
    total = spectrum.sum(dim=(-2, -1))
    low = spectrum[..., ch - hh : ch + hh, cw - hw : cw + hw].sum(dim=(-2, -1))
    return total - low


def hf_power_variation(
    pred: torch.Tensor, reference: torch.Tensor, support: float = 0.5, margin: int = 0
) -> torch.Tensor:
    """High-frequency power variation per band ``[C]`` in percent (torchsisr's FFTHFPowerVariation).

    HF power = sum of ``|FFT|/(H·W)`` outside the central square of half-width ``N/⌈2/support⌉`` bins (with
    ``support = 0.5``: frequencies above half the Nyquist frequency), summed over the batch and divided by the
    batch size; result ``100·(P_pred − P_ref)/(P_ref + 1e-6)``. A reference on a coarser grid is
    bicubic-upsampled first.
    """
    if not 0.0 < support <= 1.0:
        raise ValueError(f"support must lie in (0, 1], got {support}")
    if reference.shape[-1] != pred.shape[-1]:
        reference = upsample(reference, pred.shape[-1] / reference.shape[-1])
    _check_pair(pred, reference)
    _check_finite(pred, reference)
    p = _hf_power(crop(pred, margin), support).mean(dim=0)
    r = _hf_power(crop(reference, margin), support).mean(dim=0)
    return 100.0 * (p - r) / (r + 1e-6)


def _total_variation(x: torch.Tensor) -> torch.Tensor:
    """Anisotropic total variation (sum of absolute neighbour differences) per image and band ``[B, C]``."""
    dv = (x[..., 1:, :] - x[..., :-1, :]).abs().sum(dim=(-2, -1))
    dh = (x[..., :, 1:] - x[..., :, :-1]).abs().sum(dim=(-2, -1))
    return dv + dh


def tv_variation(pred: torch.Tensor, reference: torch.Tensor, margin: int = 0) -> torch.Tensor:
    """Relative total-variation change per band ``[C]`` in percent: ``100·(TV_pred − TV_ref)/TV_ref`` (batch
    means; PerBandTVVariation of the reference, relative form)."""
    _check_pair(pred, reference)
    _check_finite(pred, reference)
    tp = _total_variation(crop(pred, margin)).mean(dim=0)
    tr = _total_variation(crop(reference, margin)).mean(dim=0)
    return 100.0 * (tp - tr) / tr


def tv_variation_reference(pred: torch.Tensor, reference: torch.Tensor, margin: int = 0) -> torch.Tensor:
    """torchsisr's TV variation per band ``[C]`` (PerBandTVVariation, absolute form): with TV the anisotropic
    total variation of each image summed over the batch (torchmetrics' ``TotalVariation``, reduction
    ``sum``), ``|TV_pred − TV_ref| / TV_ref`` divided by the batch size ``B`` (a ratio, not a percentage;
    ≥ 0; ``B`` times smaller than the per-patch ratio on a batch of ``B`` identical ratios)."""
    _check_pair(pred, reference)
    _check_finite(pred, reference)
    tp = _total_variation(crop(pred, margin)).sum(dim=0)
    tr = _total_variation(crop(reference, margin)).sum(dim=0)
    return (tp - tr).abs() / tr / pred.shape[0]


def band_columns(metric: str, bands: Sequence[str]) -> list[str]:
    """Column names of a per-band metric: ``<metric>_<band>`` for every band, then the band average
    ``<metric>``."""
    return [f"{metric}_{band}" for band in bands] + [metric]


def per_band_row(
    metric: str, values: torch.Tensor | Sequence[float], bands: Sequence[str]
) -> dict[str, float]:
    """``{<metric>_<band>: value, ..., <metric>: mean over bands}`` from a ``[C]`` tensor or sequence.

    The band average ignores NaN values (a band where the metric is undefined); it is NaN only if every band
    is.
    """
    raw = values.detach().cpu().tolist() if isinstance(values, torch.Tensor) else values
    vals = [float(v) for v in raw]
    if len(vals) != len(bands):
        raise ValueError(f"{metric}: {len(vals)} values for {len(bands)} bands {list(bands)}")
    row = {f"{metric}_{band}": v for band, v in zip(bands, vals, strict=True)}
    finite = [v for v in vals if not math.isnan(v)]
    row[metric] = sum(finite) / len(finite) if finite else math.nan
    return row


def merge_rows(*rows: Mapping[str, float]) -> dict[str, float]:
    """Union of several metric rows (later keys win)."""
    out: dict[str, float] = {}
    for row in rows:
        out.update(row)
    return out
