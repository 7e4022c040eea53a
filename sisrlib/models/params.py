"""Parameters of the generator (``model:`` in a params YAML)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class ModelParams:
    """Which super-resolution network to build, and its size.

    The paper's sizes (spec §3.2): ESRGAN ×2 and wsx4 with 6 RRDB, s2vx4 with 5 RRDB, latent 64, growth 32.
    The EVOLAND CARN (spec §3.1): 3 cascading blocks × 3 EResBlocks, 64 features per factor, groups 4.
    """

    generator: Literal["esrgan", "carn", "bicubic"] = "esrgan"
    factor: float = 2.0
    # ESRGAN (RRDB) generator
    num_blocks: int = 6
    latent_size: int = 64
    growth_channels: int = 32
    residual_scaling: float = 0.2
    upsampling_base: int = 2
    # CARN
    carn_groups: int = 4
    carn_shared_weights: bool = True
    carn_features_per_factor: int = 64
    carn_cascading_blocks: int = 3
    carn_eres_blocks: int = 3
    kernel_size: int = 3
    # Joint 10 m + 20 m model: how the 20 m bands are brought to the 10 m grid (null: 10 m bands only).
    lr_to_hr: Literal["bicubic"] | None = None
