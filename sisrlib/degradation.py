"""Sensor degradation operators: Gaussian PSF, MTF-aware downscaling, high-pass, LR and Wald simulation.

Every function takes batched ``[B, C, H, W]`` tensors, keeps their device and floating dtype, and works in
whatever radiometric unit it is given (DN, reflectance or standardised: the operators are linear).
"Pixels" below are pixels of the grid the tensor lives on; ``factor`` is the ratio of the coarse to the fine
pixel size (2 for 10 m → 20 m).

Pixel-centre convention: coarse pixel ``i`` covers fine pixels ``[f·i, f·i + f)``, so its centre is at fine
coordinate ``f·i + (f − 1)/2``, which is what ``interpolate(..., align_corners=False)`` samples.

**PSF kernels.** Every function that blurs with a Gaussian PSF takes ``kernel`` (:data:`PsfKernel`):

* ``"exact"`` (default): half-width ⌈4σ⌉, so that the sampled kernel's MTF at the coarse Nyquist is the one
  requested (within 1 %);
* ``"reference"``: torchsisr's ``generic_downscale``, a fixed 7 × 7 kernel (half-width 3) with the same σ.
  Where 4σ > 3 the Gaussian is truncated and the effective MTF is higher than requested: at ×4, 0.282 for a
  nominal 0.1, 0.392 for 0.3, 0.454 for 0.4; at ×2 the two nearly agree (0.093, 0.300, 0.400). Choose it to
  compare numbers with the paper (hal-04723225).

An explicit ``half_width`` overrides the choice for ``"exact"``; with ``"reference"`` it must be 3 or None.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Literal, cast, get_args

import torch
import torch.nn.functional as F

#: Which sampled Gaussian PSF: ``"exact"`` (half-width ⌈4σ⌉) or ``"reference"`` (torchsisr's fixed 7 × 7).
PsfKernel = Literal["exact", "reference"]
PSF_KERNELS: tuple[str, ...] = get_args(PsfKernel)
#: Half-width of torchsisr's ``generic_downscale`` kernel (7 × 7).
REFERENCE_HALF_WIDTH = 3


def check_psf_kernel(kernel: str, where: str = "kernel") -> PsfKernel:
    """``kernel`` if it is a :data:`PsfKernel` name, else a ValueError naming ``where`` and the valid ones."""
    if kernel not in PSF_KERNELS:
        raise ValueError(f"{where} must be one of {list(PSF_KERNELS)}, got {kernel!r}")
    return cast(PsfKernel, kernel)


def psf_half_width(sigma: float, kernel: PsfKernel = "exact", half_width: int | None = None) -> int:
    """Half-width (px) of the sampled PSF of standard deviation ``sigma`` px: ``half_width`` when given,
    else ⌈4σ⌉ (at least 1) for ``"exact"`` and 3 (7 × 7) for ``"reference"``."""
    check_psf_kernel(kernel)
    if kernel == "reference":
        if half_width not in (None, REFERENCE_HALF_WIDTH):
            raise ValueError(
                f"kernel='reference' is torchsisr's 7x7 kernel (half_width {REFERENCE_HALF_WIDTH}); got "
                f"half_width={half_width}: pass one or the other"
            )
        return REFERENCE_HALF_WIDTH
    hw = max(1, math.ceil(4.0 * sigma)) if half_width is None else half_width
    if hw < 0:
        raise ValueError(f"half_width must be >= 0, got {hw}")
    return hw


def bicubic_resample_margin(margin_in: int, scale: float) -> int:
    """Margin (output px) after a bicubic resampling by ``scale`` (> 1 up, < 1 down) of an image whose
    ``margin_in`` border pixels are already padding-dependent (0: only the index clamping matters).

    ``interpolate(mode="bicubic", align_corners=False)`` samples output pixel q at the input coordinate
    x = (q + ½)/scale − ½ with the four taps ⌊x⌋−1 … ⌊x⌋+2 (indices clamped at the border). When x is an
    integer only the tap x has a non-zero weight, so q is exact iff x ≥ m; otherwise iff ⌊x⌋ − 1 ≥ m. The
    margin is one more than the last inexact q (the right border is the mirror image when the output size is
    exactly ``scale`` × the input size). E.g. m = 0: 3 px at ×2, 4 px at ×3, 6 px at ×4.
    """
    if margin_in < 0:
        raise ValueError(f"margin_in must be >= 0, got {margin_in}")
    if not scale > 0:
        raise ValueError(f"scale must be > 0, got {scale}")
    s = Fraction(scale).limit_denominator(1_000_000)
    half = Fraction(1, 2)
    last_inexact = -1
    q = 0
    while True:
        x = (q + half) / s - half
        if x >= margin_in + 1:  # ⌊x⌋ − 1 ≥ m from here on
            return last_inexact + 1
        inexact = x < margin_in if x.denominator == 1 else math.floor(x) <= margin_in
        if inexact:
            last_inexact = q
        q += 1


def bicubic_margin(factor: float) -> int:
    """Output pixels on each side of a tile that a bicubic up-sampling by ``factor`` (``align_corners=False``)
    computes from clamped indices, i.e. that depend on what lies beyond the tile: 3 px at ×2, 4 at ×3, 6 at
    ×4 (:func:`bicubic_resample_margin` with no padding-dependent input pixels). The one definition of the
    bicubic baseline's margin."""
    return bicubic_resample_margin(0, factor)


def psf_sigma(mtf_res: float, mtf: float, res: float = 1.0) -> float:
    """Standard deviation (in units of ``res``) of the Gaussian PSF whose MTF equals ``mtf`` at the Nyquist
    frequency of a grid of pixel size ``mtf_res`` (torchsisr's ``generate_psf_kernel``):
    σ = √(−ln mtf / 2) / (π f_c), f_c = 0.5 / mtf_res."""
    if not 0.0 < mtf < 1.0:
        raise ValueError(f"mtf must lie in (0, 1), got {mtf}")
    if mtf_res <= 0 or res <= 0:
        raise ValueError(f"mtf_res and res must be > 0, got mtf_res={mtf_res}, res={res}")
    f_c = 0.5 / (mtf_res / res)
    return math.sqrt(-math.log(mtf) / 2.0) / (math.pi * f_c)


def psf_kernel(
    mtf_res: float,
    mtf: float,
    res: float = 1.0,
    half_width: int | None = None,
    device: torch.device | None = None,
    dtype: torch.dtype = torch.float32,
    kernel: PsfKernel = "exact",
) -> torch.Tensor:
    """Sampled isotropic Gaussian PSF, ``[2·half_width + 1, 2·half_width + 1]``, summing to 1.

    ``mtf_res``: pixel size of the coarse grid whose Nyquist frequency carries the MTF value, in units of the
    pixel size ``res`` of the grid the kernel is sampled on (for ``res = 1``, ``mtf_res`` is the downscaling
    factor). The half-width is :func:`psf_half_width`: ⌈4σ⌉ for ``kernel="exact"`` so that the sampled
    kernel's MTF matches the requested one, 3 (torchsisr's ``generic_downscale``) for ``"reference"``, or
    ``half_width`` when given (the reference's ``generate_psf_kernel`` default was ⌈mtf_res/res⌉).
    """
    sigma = psf_sigma(mtf_res, mtf, res)
    hw = psf_half_width(sigma, kernel, half_width)
    coords = torch.arange(-hw, hw + 1, device=device, dtype=torch.float64)
    g = torch.exp(-0.5 * (coords / sigma) ** 2)
    k2d = g[:, None] * g[None, :]
    return (k2d / k2d.sum()).to(dtype)


def depthwise_filter(x: torch.Tensor, kernel: torch.Tensor, padding_mode: str = "reflect") -> torch.Tensor:
    """Convolve every channel of ``x`` ``[B, C, H, W]`` with ``kernel`` ``[k, k]``, same size out."""
    channels = x.shape[1]
    k = kernel.to(device=x.device, dtype=x.dtype)
    hw = k.shape[-1] // 2
    if hw == 0:
        return x * k.reshape(())
    if padding_mode == "zeros":
        padded = F.pad(x, (hw, hw, hw, hw), mode="constant", value=0.0)
    else:
        if min(x.shape[-2:]) <= hw and padding_mode == "reflect":
            padding_mode = "replicate"
        padded = F.pad(x, (hw, hw, hw, hw), mode=padding_mode)
    weight = k.expand(channels, 1, *k.shape)
    return F.conv2d(padded, weight, groups=channels)


def blur(
    x: torch.Tensor,
    mtf: float,
    half_width: int | None = None,
    padding_mode: str = "reflect",
    kernel: PsfKernel = "exact",
) -> torch.Tensor:
    """Same-grid Gaussian blur whose MTF at this grid's Nyquist is ``mtf`` (σ = √(−2 ln mtf)/π px).

    ``[B, C, H, W]`` → ``[B, C, H, W]``. Used by the metrics benchmark (where torchsisr used a 7×7 kernel:
    ``kernel="reference"``).
    """
    return depthwise_filter(x, psf_kernel(1.0, mtf, 1.0, half_width, kernel=kernel), padding_mode)


def _check_4d(x: torch.Tensor, name: str = "x") -> None:
    if x.dim() != 4:
        raise ValueError(f"{name} must be a [B, C, H, W] tensor, got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be floating point, got {x.dtype}")


def mtf_downscale(
    x: torch.Tensor,
    factor: float,
    mtf: float | None = 0.1,
    half_width: int | None = None,
    mode: str = "bicubic",
    kernel: PsfKernel = "exact",
) -> torch.Tensor:
    """MTF-aware downscaling (the reference's ``generic_downscale``), ``[B, C, H, W]`` → ``[B, C, H/f, W/f]``.

    Blur by the Gaussian PSF whose MTF at the coarse Nyquist is ``mtf`` (reflect padding; ``kernel``: see the
    module docstring), then resample by ``1/factor`` with ``mode`` interpolation (no antialias).
    ``mtf=None`` averages each f×f block instead (integer factors only). The output size is ⌊H/f⌋ × ⌊W/f⌋.
    Values keep their unit.
    """
    _check_4d(x)
    check_psf_kernel(kernel)
    if factor <= 0:
        raise ValueError(f"factor must be > 0, got {factor}")
    out_size = (int(x.shape[-2] // factor), int(x.shape[-1] // factor))
    if min(out_size) < 1:
        raise ValueError(f"cannot downscale a {tuple(x.shape[-2:])} image by {factor}")
    if mtf is None:
        f = round(factor)
        if abs(f - factor) > 1e-9:
            raise ValueError(f"area downscaling needs an integer factor, got {factor}")
        return F.avg_pool2d(x[..., : out_size[0] * f, : out_size[1] * f], f)
    blurred = depthwise_filter(x, psf_kernel(factor, mtf, 1.0, half_width, kernel=kernel))
    if mode in ("nearest", "area"):
        return F.interpolate(blurred, size=out_size, mode=mode)
    return F.interpolate(blurred, size=out_size, mode=mode, align_corners=False)


def upsample(x: torch.Tensor, factor: float, mode: str = "bicubic") -> torch.Tensor:
    """Interpolate ``[B, C, h, w]`` to ``[B, C, h·f, w·f]`` (align_corners False: pixel-centre convention)."""
    _check_4d(x)
    size = (round(x.shape[-2] * factor), round(x.shape[-1] * factor))
    if mode == "nearest":
        return F.interpolate(x, size=size, mode=mode)
    return F.interpolate(x, size=size, mode=mode, align_corners=False)


def high_pass(
    x: torch.Tensor,
    factor: int,
    mtf: float = 0.1,
    half_width: int | None = None,
    kernel: PsfKernel = "exact",
) -> torch.Tensor:
    """High-frequency part of ``x``: x − bicubic↑f(mtf_downscale(x, f, mtf)), after cropping the bottom/right
    so that H and W are multiples of f. ``[B, C, H, W]`` → ``[B, C, f·⌊H/f⌋, f·⌊W/f⌋]``, same unit."""
    _check_4d(x)
    h = (x.shape[-2] // factor) * factor
    w = (x.shape[-1] // factor) * factor
    x = x[..., :h, :w]
    return x - upsample(mtf_downscale(x, factor, mtf, half_width, kernel=kernel), factor)


def add_noise(
    x: torch.Tensor, noise_std: float | torch.Tensor | None, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Add white Gaussian noise of std ``noise_std`` (a float or a ``[C]`` tensor, in the unit of ``x``)."""
    if noise_std is None:
        return x
    std = torch.as_tensor(noise_std, device=x.device, dtype=x.dtype)
    if std.dim() == 1:
        std = std.view(1, -1, 1, 1)
    noise = torch.randn(
        x.shape, generator=generator, device=x.device if generator is None else generator.device
    )
    return x + noise.to(device=x.device, dtype=x.dtype) * std


def simulate_lr(
    target: torch.Tensor,
    factor: float,
    mtf: float = 0.4,
    noise_std: float | torch.Tensor | None = None,
    generator: torch.Generator | None = None,
    half_width: int | None = None,
    kernel: PsfKernel = "exact",
) -> torch.Tensor:
    """Simulate the LR sensor from an HR image: MTF blur, decimation by ``factor``, optional noise
    (the reference's ``simulate_batch`` for one band group). ``[B, C, H, W]`` → ``[B, C, H/f, W/f]``."""
    return add_noise(mtf_downscale(target, factor, mtf, half_width, kernel=kernel), noise_std, generator)


def flip_concat(x: torch.Tensor) -> torch.Tensor:
    """Mirror-tile ``[B, C, H, W]`` to ``[B, C, 2H, 2W]`` (x | flip_x over flip_y | flip_xy)."""
    top = torch.cat([x, x.flip(-1)], dim=-1)
    return torch.cat([top, top.flip(-2)], dim=-2)


def wald_degrade(
    bands_10m: torch.Tensor,
    bands_20m: torch.Tensor,
    mtf: float = 0.4,
    noise_std_10m: float | torch.Tensor | None = None,
    noise_std_20m: float | torch.Tensor | None = None,
    generator: torch.Generator | None = None,
    pad_to_input_size: bool = False,
    kernel: PsfKernel = "exact",
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Wald protocol (the reference's ``wald_batch``): degrade real Sentinel-2 data by 2 so that its own 20 m
    grid becomes the target.

    ``bands_10m`` ``[B, 4, H, W]`` (10 m), ``bands_20m`` ``[B, K, H/2, W/2]`` (20 m, K = 4 or 6).
    Returns ``(target [B, 4 + K, H/2, W/2]`` (10 m bands ↓2 then the 20 m bands, at 20 m),
    ``hr_input [B, 4, H/4, W/4]`` (40 m), ``lr_input [B, K, H/8, W/8]`` (80 m)``)``. With
    ``pad_to_input_size`` every output is mirror-tiled to twice its size first (the reference's
    ``flip_concat``). ``kernel``: the PSF of the three downscalings (module docstring)."""
    _check_4d(bands_10m, "bands_10m")
    _check_4d(bands_20m, "bands_20m")
    if bands_10m.shape[-1] != 2 * bands_20m.shape[-1] or bands_10m.shape[-2] != 2 * bands_20m.shape[-2]:
        raise ValueError(
            f"the 10 m bands {tuple(bands_10m.shape)} must be twice the size of the 20 m bands "
            f"{tuple(bands_20m.shape)}"
        )
    if pad_to_input_size:
        bands_10m, bands_20m = flip_concat(bands_10m), flip_concat(bands_20m)
    target = torch.cat([mtf_downscale(bands_10m, 2, mtf, kernel=kernel), bands_20m], dim=1)
    hr = simulate_lr(bands_10m, 4, mtf, noise_std_10m, generator, kernel=kernel)
    lr = simulate_lr(bands_20m, 4, mtf, noise_std_20m, generator, kernel=kernel)
    return target, hr, lr
