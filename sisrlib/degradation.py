"""Sensor degradation operators: Gaussian PSF, MTF-aware downscaling, high-pass, LR and Wald simulation.

Every function takes batched ``[B, C, H, W]`` tensors, keeps their device and floating dtype, and works in
whatever radiometric unit it is given (DN, reflectance or standardised: the operators are linear).
"Pixels" below are pixels of the grid the tensor lives on; ``factor`` is the ratio of the coarse to the fine
pixel size (2 for 10 m → 20 m).

Pixel-centre convention: coarse pixel ``i`` covers fine pixels ``[f·i, f·i + f)``, so its centre is at fine
coordinate ``f·i + (f − 1)/2``, which is what ``interpolate(..., align_corners=False)`` samples.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def psf_sigma(mtf_res: float, mtf: float, res: float = 1.0) -> float:
    """Standard deviation (in units of ``res``) of the Gaussian PSF whose MTF equals ``mtf`` at the Nyquist
    frequency of a grid of pixel size ``mtf_res`` (spec §2.5): σ = √(−ln mtf / 2) / (π f_c), f_c = 0.5 /
    mtf_res."""
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
) -> torch.Tensor:
    """Sampled isotropic Gaussian PSF, ``[2·half_width + 1, 2·half_width + 1]``, summing to 1.

    ``mtf_res``: pixel size of the coarse grid whose Nyquist frequency carries the MTF value, in units of the
    pixel size ``res`` of the grid the kernel is sampled on (for ``res = 1``, ``mtf_res`` is the downscaling
    factor). ``half_width`` defaults to ⌈4σ⌉ so that the sampled kernel's MTF matches the requested one;
    the reference used ⌈mtf_res/res⌉ (or 3 in ``generic_downscale``): pass it explicitly for comparability.
    """
    sigma = psf_sigma(mtf_res, mtf, res)
    hw = max(1, math.ceil(4.0 * sigma)) if half_width is None else half_width
    if hw < 0:
        raise ValueError(f"half_width must be >= 0, got {hw}")
    coords = torch.arange(-hw, hw + 1, device=device, dtype=torch.float64)
    g = torch.exp(-0.5 * (coords / sigma) ** 2)
    kernel = g[:, None] * g[None, :]
    return (kernel / kernel.sum()).to(dtype)


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
    x: torch.Tensor, mtf: float, half_width: int | None = None, padding_mode: str = "reflect"
) -> torch.Tensor:
    """Same-grid Gaussian blur whose MTF at this grid's Nyquist is ``mtf`` (σ = √(−2 ln mtf)/π px).

    ``[B, C, H, W]`` → ``[B, C, H, W]``. Used by the metrics benchmark (spec §6.7, where the reference used a
    7×7 kernel: ``half_width=3``).
    """
    return depthwise_filter(x, psf_kernel(1.0, mtf, 1.0, half_width), padding_mode)


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
) -> torch.Tensor:
    """MTF-aware downscaling (the reference's ``generic_downscale``), ``[B, C, H, W]`` → ``[B, C, H/f, W/f]``.

    Blur by the Gaussian PSF whose MTF at the coarse Nyquist is ``mtf`` (reflect padding), then resample by
    ``1/factor`` with ``mode`` interpolation (no antialias). ``mtf=None`` averages each f×f block instead
    (integer factors only). The output size is ⌊H/f⌋ × ⌊W/f⌋. Values keep their unit.
    """
    _check_4d(x)
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
    blurred = depthwise_filter(x, psf_kernel(factor, mtf, 1.0, half_width))
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


def high_pass(x: torch.Tensor, factor: int, mtf: float = 0.1, half_width: int | None = None) -> torch.Tensor:
    """High-frequency part of ``x``: x − bicubic↑f(mtf_downscale(x, f, mtf)), after cropping the bottom/right
    so that H and W are multiples of f. ``[B, C, H, W]`` → ``[B, C, f·⌊H/f⌋, f·⌊W/f⌋]``, same unit."""
    _check_4d(x)
    h = (x.shape[-2] // factor) * factor
    w = (x.shape[-1] // factor) * factor
    x = x[..., :h, :w]
    return x - upsample(mtf_downscale(x, factor, mtf, half_width), factor)


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
) -> torch.Tensor:
    """Simulate the LR sensor from an HR image: MTF blur, decimation by ``factor``, optional noise
    (the reference's ``simulate_batch`` for one band group). ``[B, C, H, W]`` → ``[B, C, H/f, W/f]``."""
    return add_noise(mtf_downscale(target, factor, mtf, half_width), noise_std, generator)


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
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Wald protocol (the reference's ``wald_batch``): degrade real Sentinel-2 data by 2 so that its own 20 m
    grid becomes the target.

    ``bands_10m`` ``[B, 4, H, W]`` (10 m), ``bands_20m`` ``[B, K, H/2, W/2]`` (20 m, K = 4 or 6).
    Returns ``(target [B, 4 + K, H/2, W/2]`` (10 m bands ↓2 then the 20 m bands, at 20 m),
    ``hr_input [B, 4, H/4, W/4]`` (40 m), ``lr_input [B, K, H/8, W/8]`` (80 m)``)``. With
    ``pad_to_input_size`` every output is mirror-tiled to twice its size first (the reference's
    ``flip_concat``)."""
    _check_4d(bands_10m, "bands_10m")
    _check_4d(bands_20m, "bands_20m")
    if bands_10m.shape[-1] != 2 * bands_20m.shape[-1] or bands_10m.shape[-2] != 2 * bands_20m.shape[-2]:
        raise ValueError(
            f"the 10 m bands {tuple(bands_10m.shape)} must be twice the size of the 20 m bands "
            f"{tuple(bands_20m.shape)}"
        )
    if pad_to_input_size:
        bands_10m, bands_20m = flip_concat(bands_10m), flip_concat(bands_20m)
    target = torch.cat([mtf_downscale(bands_10m, 2, mtf), bands_20m], dim=1)
    hr = simulate_lr(bands_10m, 4, mtf, noise_std_10m, generator)
    lr = simulate_lr(bands_20m, 4, mtf, noise_std_20m, generator)
    return target, hr, lr
