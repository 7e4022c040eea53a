"""The random training window of an SR step: an LR window of the inputs and the HR window of the target that
covers exactly the same ground (``training.crop_size``)."""

from __future__ import annotations

import torch

__all__ = ["random_window"]


def random_window(
    inputs: torch.Tensor,
    target: torch.Tensor,
    lr: torch.Tensor | None,
    crop_size: int | None,
    generator: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """One random ``crop_size``² window (LR px) of the inputs ``[B, C, h, w]``, the matching HR window of the
    (registered) target ``[B, C_t, H, W]`` and of the 20 m inputs ``lr`` (optional), drawn from ``generator``;
    everything unchanged when ``crop_size`` is null or not smaller than the patch. An error when the window
    is not a whole number of HR pixels."""
    c = crop_size
    h, w = inputs.shape[-2:]
    if c is None or c >= min(h, w):
        return inputs, target, lr
    factor = target.shape[-1] / w
    hr = round(c * factor)
    if abs(hr - c * factor) > 1e-6:
        raise ValueError(f"training.crop_size {c} LR px × factor {factor} is not a whole number of HR px")
    i = int(torch.randint(0, h - c + 1, (1,), generator=generator))
    j = int(torch.randint(0, w - c + 1, (1,), generator=generator))
    hi, hj = round(i * factor), round(j * factor)
    target = target[..., hi : hi + hr, hj : hj + hr]
    if lr is not None:
        lf = lr.shape[-1] / w
        lc, li, lj = round(c * lf), round(i * lf), round(j * lf)
        lr = lr[..., li : li + lc, lj : lj + lc]
    return inputs[..., i : i + c, j : j + c], target, lr
