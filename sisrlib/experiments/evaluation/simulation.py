"""The "sim" inputs of torchsisr's test step: the LR inputs simulated from the HR target.

Each input band that the target also has is replaced by the target band downscaled to the input's grid
(``sisrlib.degradation.simulate_lr``: Gaussian PSF with MTF ``mtf`` at the LR Nyquist, no noise, as the
paper's configuration); input bands without a target band (e.g. B11/B12) are kept from the real input. The
same for the 20 m ``lr_inputs``. Values stay in DN.
"""

from __future__ import annotations

import dataclasses

import torch

from sisrlib.data.batch import Batch
from sisrlib.degradation import PsfKernel, simulate_lr


def _simulated(
    real: torch.Tensor, bands: tuple[str, ...], batch: Batch, mtf: float, kernel: PsfKernel
) -> torch.Tensor:
    out = real.clone().float()
    shared = [b for b in bands if b in batch.target_bands]
    if not shared:
        return out
    factor = batch.target.shape[-1] / real.shape[-1]
    t_idx = [batch.target_bands.index(b) for b in shared]
    sim = simulate_lr(batch.target[:, t_idx].float(), factor, mtf, kernel=kernel)
    h, w = real.shape[-2:]
    if sim.shape[-2:] != (h, w):
        raise ValueError(
            f"the target {tuple(batch.target.shape)} downscaled by {factor:g} is {tuple(sim.shape)}, which "
            f"does not match the input grid {h}×{w}"
        )
    out[:, [bands.index(b) for b in shared]] = sim
    return out


def simulated_batch(batch: Batch, mtf: float = 0.4, kernel: PsfKernel = "exact") -> Batch:
    """``batch`` with ``inputs`` (and ``lr_inputs``) simulated from ``target`` (see the module docstring)."""
    lr = batch.lr_inputs
    if lr is not None:
        lr = _simulated(lr, tuple(batch.lr_bands), batch, mtf, kernel)
    return dataclasses.replace(
        batch, inputs=_simulated(batch.inputs, tuple(batch.input_bands), batch, mtf, kernel), lr_inputs=lr
    )
