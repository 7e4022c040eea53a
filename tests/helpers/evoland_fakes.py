"""A fake EVOLAND batch: Sentinel-2 10 m and 20 m inputs (B11/B12 included) with 5 m targets, in DN."""

from __future__ import annotations

import torch

from sisrlib.data.batch import Batch
from sisrlib.degradation import simulate_lr
from tests.helpers.training_fakes import smooth_scene

HR = ("B2", "B3", "B4", "B8")
LR = ("B5", "B6", "B7", "B8A", "B11", "B12")
TARGET = ("B2", "B3", "B4", "B8", "B5", "B6", "B7", "B8A")
EVOLAND = HR + LR


def evoland_batch(n: int = 2, size: int = 16, seed: int = 0) -> Batch:
    """DN batch: 10 m inputs ``[n, 4, size, size]``, 20 m ``[n, 6, size/2, size/2]``, 5 m target
    ``[n, 8, 2·size, 2·size]`` (the 8 bands with a target)."""
    g = torch.Generator().manual_seed(seed)
    target = smooth_scene(n, len(TARGET), 2 * size, g)
    swir = smooth_scene(n, 2, size // 2, g)
    inputs = simulate_lr(target[:, :4], 2, 0.4)
    lr = torch.cat([simulate_lr(target[:, 4:], 4, 0.4), swir], dim=1)
    return Batch(
        inputs=inputs,
        target=target,
        input_bands=HR,
        target_bands=TARGET,
        input_resolution_m=10.0,
        target_resolution_m=5.0,
        lr_inputs=lr,
        lr_bands=LR,
        lr_resolution_m=20.0,
        ids=tuple(str(i) for i in range(n)),
    )
