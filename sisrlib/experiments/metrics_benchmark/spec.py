"""``MetricSpec``: one benchmarked metric and what it needs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class MetricSpec:
    """A benchmarked metric: ``fn(pred, ref)`` on ``[N, C, H, W]`` in [0, 1] → scalar; weight files it
    needs (torch hub cache names, ``clip:NAME`` for the CLIP cache); whether it needs the optional packages
    piq and torchvision (``needs_piq``)."""

    name: str
    fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    rgb: bool = False
    weights: tuple[str, ...] = ()
    higher_is_better: bool = True
    needs_piq: bool = False
