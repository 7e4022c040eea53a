"""The simulated and Wald batches of SR training (torchsisr's ``simulate_batch``, ``wald_batch`` and
``align_min_max``), on reflectance tensors.

* :func:`align_min_max`: each target band remapped, per patch, onto the min/max of an input band;
* :func:`simulate_inputs`: the inputs replaced by the target degraded to their grids (MTF blur, decimation,
  noise), the input bands without a target kept;
* :func:`wald_batch`: real Sentinel-2 degraded by 4 (10 m → 40 m, 20 m → 80 m) with its own 20 m grid as the
  target (:func:`sisrlib.degradation.wald_degrade`);
* :func:`draw_uniform`: the per-batch random MTF / noise multiplier, from a seeded generator.

Shapes: ``inputs`` ``[B, C, h, w]`` (10 m or single grid), ``lr`` ``[B, K, h/2, w/2]`` (20 m), ``target``
``[B, C_t, H, W]`` (HR). Units: reflectance (DN / 10000); noise σ in reflectance.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch

from sisrlib.degradation import PsfKernel, add_noise, simulate_lr, wald_degrade

#: Smallest target band range (reflectance) :func:`align_min_max` divides by; flatter bands are shifted only.
_FLAT = 1e-8


def draw_uniform(low: float, high: float, generator: torch.Generator) -> float:
    """One value of U(``low``, ``high``) from ``generator`` (``low`` itself when the range is empty)."""
    if high <= low:
        return float(low)
    u = float(torch.rand((), generator=generator))
    return float(low + (high - low) * u)


def noise_vector(
    noise_std: Mapping[str, float] | None, bands: Sequence[str], multiplier: float
) -> torch.Tensor | None:
    """Per-band noise σ ``[len(bands)]`` = ``noise_std[band]`` × ``multiplier`` (0 for bands not listed);
    None when no band gets noise."""
    if not noise_std:
        return None
    values = [float(noise_std.get(b, 0.0)) * multiplier for b in bands]
    if not any(v > 0 for v in values):
        return None
    return torch.tensor(values, dtype=torch.float32)


def align_min_max(target: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Remap every band of ``target`` ``[B, C, H, W]``, per patch, linearly so that its minimum and maximum
    equal those of the same band of ``reference`` ``[B, C, h, w]`` (any grid). A flat target band (range
    below 1e-8) is shifted onto the middle of the reference's range instead."""
    if target.shape[:2] != reference.shape[:2]:
        raise ValueError(
            f"align_min_max: target {tuple(target.shape)} and reference {tuple(reference.shape)} must have "
            "the same batch size and bands"
        )
    t_min = target.amin(dim=(-2, -1), keepdim=True)
    t_max = target.amax(dim=(-2, -1), keepdim=True)
    r_min = reference.amin(dim=(-2, -1), keepdim=True)
    r_max = reference.amax(dim=(-2, -1), keepdim=True)
    span = t_max - t_min
    flat = span < _FLAT
    scale = torch.where(flat, torch.zeros_like(span), (r_max - r_min) / span.clamp_min(_FLAT))
    offset = torch.where(flat, 0.5 * (r_min + r_max), r_min)
    return offset + (target - t_min) * scale


def align_target(
    target: torch.Tensor,
    target_bands: Sequence[str],
    inputs: torch.Tensor,
    input_bands: Sequence[str],
    lr: torch.Tensor | None = None,
    lr_bands: Sequence[str] = (),
) -> torch.Tensor:
    """``target`` with every band that is also an input band (10 m ``inputs`` first, else 20 m ``lr``)
    remapped by :func:`align_min_max` onto that input band; the other bands unchanged."""
    out = target.clone()
    for t, band in enumerate(target_bands):
        if band in input_bands:
            ref = inputs[:, [list(input_bands).index(band)]]
        elif lr is not None and band in lr_bands:
            ref = lr[:, [list(lr_bands).index(band)]]
        else:
            continue
        out[:, t : t + 1] = align_min_max(target[:, t : t + 1], ref)
    return out


def _simulated(
    real: torch.Tensor,
    bands: Sequence[str],
    target: torch.Tensor,
    target_bands: Sequence[str],
    mtf: float,
    noise: torch.Tensor | None,
    generator: torch.Generator,
    kernel: PsfKernel,
) -> torch.Tensor:
    """``real`` ``[B, K, h, w]`` with each band that has a target band replaced by the target simulated on
    the grid of ``real``, then ``noise`` ``[K]`` added to the simulated bands."""
    shared = [b for b in bands if b in target_bands]
    if not shared:
        return real
    factor = target.shape[-1] / real.shape[-1]
    t_idx = [list(target_bands).index(b) for b in shared]
    sim = simulate_lr(target[:, t_idx], factor, mtf, kernel=kernel)
    if sim.shape[-2:] != real.shape[-2:]:
        raise ValueError(
            f"the target {tuple(target.shape)} simulated by {factor:g} is {tuple(sim.shape)}, which does not "
            f"match the input {tuple(real.shape)}"
        )
    out = real.clone()
    r_idx = [list(bands).index(b) for b in shared]
    if noise is not None:
        sim = add_noise(sim, noise[r_idx].to(sim.device), generator)
    out[:, r_idx] = sim.to(out.dtype)
    return out


def simulate_inputs(
    target: torch.Tensor,
    target_bands: Sequence[str],
    inputs: torch.Tensor,
    input_bands: Sequence[str],
    lr: torch.Tensor | None,
    lr_bands: Sequence[str],
    *,
    mtf: float,
    noise_std: Mapping[str, float] | None,
    multiplier: float,
    generator: torch.Generator,
    kernel: PsfKernel = "exact",
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The batch simulation: ``(inputs_sim [B, C, h, w], lr_sim [B, K, h/2, w/2] or None)``.

    Every input band (10 m ``inputs``, 20 m ``lr``) that has a target band of the same name becomes that
    target band degraded to its grid (:func:`sisrlib.degradation.simulate_lr`: PSF of MTF ``mtf`` at the
    grid's Nyquist, decimation by target size / input size) plus white noise of σ = ``noise_std[band]`` ×
    ``multiplier`` (drawn from ``generator``); the input bands without a target (B11, B12) stay real.
    """
    sim_in = _simulated(
        inputs,
        input_bands,
        target,
        target_bands,
        mtf,
        noise_vector(noise_std, input_bands, multiplier),
        generator,
        kernel,
    )
    sim_lr = None
    if lr is not None:
        sim_lr = _simulated(
            lr,
            lr_bands,
            target,
            target_bands,
            mtf,
            noise_vector(noise_std, lr_bands, multiplier),
            generator,
            kernel,
        )
    return sim_in, sim_lr


def wald_batch(
    inputs: torch.Tensor,
    input_bands: Sequence[str],
    lr: torch.Tensor,
    lr_bands: Sequence[str],
    *,
    mtf: float,
    noise_std: Mapping[str, float] | None,
    multiplier: float,
    generator: torch.Generator,
    pad_to_input_size: bool,
    kernel: PsfKernel = "exact",
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(target [B, C + K, h/2, w/2], hr [B, C, h/4, w/4], lr [B, K, h/8, w/8])`` of the Wald protocol from
    the real 10 m ``inputs`` ``[B, C, h, w]`` and 20 m ``lr`` ``[B, K, h/2, w/2]``: the target holds the
    bands in the order (``input_bands``, ``lr_bands``) at 20 m (10 m bands degraded by 2, 20 m bands as they
    are); the inputs are degraded by 4 with MTF ``mtf`` and noise σ = ``noise_std[band]`` × ``multiplier``.
    With ``pad_to_input_size`` every size is doubled first by mirror tiling."""
    return wald_degrade(
        inputs,
        lr,
        mtf,
        noise_vector(noise_std, input_bands, multiplier),
        noise_vector(noise_std, lr_bands, multiplier),
        generator,
        pad_to_input_size=pad_to_input_size,
        kernel=kernel,
    )


__all__ = [
    "align_min_max",
    "align_target",
    "draw_uniform",
    "noise_vector",
    "simulate_inputs",
    "wald_batch",
]
