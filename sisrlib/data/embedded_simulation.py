"""The simulated LR sensor of the embedded sites (Wald protocol, see :mod:`sisrlib.data.embedded`):
geometric regimes, per-site systematic distortions, and the simulation of one band group of a batch of
patches (warp at HR, Gaussian MTF blur and decimation, gain/offset and a low-frequency field, noise, rounding
to int16 DN). Every random draw comes from a generator seeded by (seed, dataset, site, group); the simulation
runs in float64."""

from __future__ import annotations

import math
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from sisrlib.data.simulation import separable_mtf_downscale
from sisrlib.degradation import PsfKernel
from sisrlib.flow import simulate_flow, upsample_flow, warp

#: LR noise standard deviation per band, DN: the reference's simulation noise levels (reflectance × 10000;
#: B11/B12 from its Wald noise list).
NOISE_STD_DN: dict[str, float] = {
    "B2": 5.78, "B3": 8.0, "B4": 13.58, "B8": 16.22, "B5": 12.3, "B6": 12.9, "B7": 15.44, "B8A": 16.4,
    "B11": 23.78, "B12": 23.06,
}  # fmt: skip


@dataclass(frozen=True)
class Regime:
    """Distortion parameters of a simulated LR sensor (flows in LR pixels, radiometry relative)."""

    name: str
    #: ``simulate_flow`` max_range (LR px): each component of the random part is bounded by 2·max_range.
    flow_max_range: float
    #: Magnitude of the constant offset (LR px); its direction is drawn once per dataset, jittered per site.
    offset_lr_px: float
    flow_max_width: float = 10.0
    #: MTF of the LR sensor at its Nyquist frequency.
    mtf: float = 0.35
    #: Per-dataset gain 1 ± gain_spread and offset ± offset_spread_dn per band, plus a per-site jitter.
    gain_spread: float = 0.05
    offset_spread_dn: float = 30.0
    site_gain_jitter: float = 0.01
    site_offset_jitter_dn: float = 10.0
    #: Amplitude (fraction of the patch's band mean) of the low-frequency radiometric field.
    field_amplitude: float = 0.03
    noise: bool = True


REGIMES: dict[str, Regime] = {
    "strong": Regime("strong", flow_max_range=0.8, offset_lr_px=0.6),
    "weak": Regime("weak", flow_max_range=0.2, offset_lr_px=0.12),
}


def derived_seed(seed: int, *names: str) -> int:
    """A seed derived from ``seed`` and names (stable across runs and platforms)."""
    h = zlib.crc32("/".join(names).encode("utf-8"))
    return (int(seed) * 2_654_435_761 + h) % (2**62)


@dataclass(frozen=True)
class SiteDistortion:
    """The systematic part of a site's distortion: constant offset (LR px) and per-band gain/offset (DN)."""

    offset: tuple[float, float]
    gain: tuple[float, ...]
    bias_dn: tuple[float, ...]


def site_distortion(regime: Regime, seed: int, dataset: str, site: str, n_bands: int) -> SiteDistortion:
    """Per-dataset direction/gains (from ``dataset``) jittered per site (from ``site``)."""
    rng_d = np.random.default_rng(derived_seed(seed, dataset, "sensor"))
    angle = rng_d.uniform(0, 2 * math.pi)
    gain0 = 1.0 + rng_d.uniform(-regime.gain_spread, regime.gain_spread, size=10)
    bias0 = rng_d.uniform(-regime.offset_spread_dn, regime.offset_spread_dn, size=10)
    rng_s = np.random.default_rng(derived_seed(seed, dataset, site, "site"))
    magnitude = regime.offset_lr_px * rng_s.uniform(0.75, 1.25)
    angle = angle + rng_s.uniform(-math.radians(20), math.radians(20))
    gain = gain0[:n_bands] + rng_s.uniform(-regime.site_gain_jitter, regime.site_gain_jitter, size=n_bands)
    bias = bias0[:n_bands] + rng_s.uniform(
        -regime.site_offset_jitter_dn, regime.site_offset_jitter_dn, size=n_bands
    )
    return SiteDistortion(
        (magnitude * math.cos(angle), magnitude * math.sin(angle)),
        tuple(float(g) for g in gain),
        tuple(float(b) for b in bias),
    )


def low_frequency_field(
    batch: int, channels: int, size: int, generator: torch.Generator, nodes: int = 4
) -> torch.Tensor:
    """Smooth random fields ``[B, C, size, size]`` in [−1, 1]: a ``nodes × nodes`` grid of U(−1, 1) values,
    bicubically interpolated over the patch (at most ~1.5 cycles per patch)."""
    coarse = torch.rand(batch, channels, nodes, nodes, generator=generator, dtype=torch.float64) * 2 - 1
    return F.interpolate(coarse, size=(size, size), mode="bicubic", align_corners=True).clamp(-1.0, 1.0)


@dataclass
class SimulatedGroup:
    """One band group of a batch of patches: everything is float64 torch on CPU."""

    target: torch.Tensor  # [B, C, P, P] HR, stored units
    inputs: torch.Tensor  # [B, C + K, p, p] LR DN (noisy, rounded)
    true_flow: torch.Tensor  # [B, 2, p, p] LR px
    true_radiometry: torch.Tensor  # [B, C + K, p, p] DN


def simulate_group(
    hr_ext: torch.Tensor,
    extra_ext: torch.Tensor | None,
    factor: int,
    margin_lr: int,
    regime: Regime,
    site: SiteDistortion,
    noise_std: Sequence[float],
    generator: torch.Generator,
    target_gain: Sequence[float] | None = None,
    target_offset: Sequence[float] | None = None,
    kernel: PsfKernel = "exact",
) -> SimulatedGroup:
    """Simulate the LR sensor for a batch of HR windows with a margin.

    ``hr_ext`` ``[B, C, P + 2mf, P + 2mf]`` (DN, f = ``factor``, m = ``margin_lr``): the HR bands that get a
    target; ``extra_ext`` ``[B, K, …]``: bands simulated at LR only (B11 B12), or None. The target is the
    central ``P × P`` of ``hr_ext``, converted to ``target_gain · DN + target_offset`` when given (WorldStrat
    units). ``kernel``: the PSF of the LR sensor's MTF blur (:data:`sisrlib.degradation.PsfKernel`).
    """
    b, c, size_ext, _ = hr_ext.shape
    p_ext = size_ext // factor
    p = p_ext - 2 * margin_lr
    mf = margin_lr * factor
    bands = hr_ext if extra_ext is None else torch.cat([hr_ext, extra_ext], dim=1)
    n = bands.shape[1]
    flow_ext = simulate_flow(
        b, p_ext, p_ext, regime.flow_max_range, regime.flow_max_width, generator, dtype=torch.float64
    )
    flow_ext = flow_ext + torch.tensor(site.offset, dtype=torch.float64).view(1, 2, 1, 1)
    # bicubic resampling in float32: per-pixel arithmetic (no reductions), so the result does not depend on
    # the number of threads; 1e-3 DN is far below the rounding to int16 and the truth is computed from this
    # image.
    warped = warp(bands.float(), upsample_flow(flow_ext, factor).float()).double()
    sim = separable_mtf_downscale(warped, factor, regime.mtf, kernel=kernel)[
        ..., margin_lr : margin_lr + p, margin_lr : margin_lr + p
    ]
    flow = flow_ext[..., margin_lr : margin_lr + p, margin_lr : margin_lr + p]
    gain = torch.tensor(site.gain[:n], dtype=torch.float64).view(1, n, 1, 1)
    bias = torch.tensor(site.bias_dn[:n], dtype=torch.float64).view(1, n, 1, 1)
    band_mean = sim.mean(dim=(-2, -1), keepdim=True)
    fld = regime.field_amplitude * band_mean * low_frequency_field(b, n, p, generator)
    clean = gain * sim + bias + fld
    target = hr_ext[..., mf : mf + p * factor, mf : mf + p * factor]
    sim_units = sim.clone()
    if target_gain is not None and target_offset is not None:
        tg = torch.tensor(target_gain, dtype=torch.float64).view(1, c, 1, 1)
        to = torch.tensor(target_offset, dtype=torch.float64).view(1, c, 1, 1)
        target = tg * target + to
        sim_units[:, :c] = tg * sim[:, :c] + to
    target = target.round()
    noisy = clean
    if regime.noise:
        std = torch.tensor(list(noise_std)[:n], dtype=torch.float64).view(1, n, 1, 1)
        noisy = clean + std * torch.randn(clean.shape, generator=generator, dtype=torch.float64)
    inputs = noisy.round().clamp(-9999, 32767)
    return SimulatedGroup(target=target, inputs=inputs, true_flow=flow, true_radiometry=clean - sim_units)
