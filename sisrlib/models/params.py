"""Parameters of the generator (``model:`` in a params YAML) and of the discriminator (``adversarial``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class ModelParams:
    """Which super-resolution network to build, and its size.

    The paper's sizes (torchsisr): ESRGAN ×2 and wsx4 with 6 RRDB, s2vx4 with 5 RRDB, latent 64, growth 32.
    The EVOLAND CARN (torchsisr): 3 cascading blocks × 3 EResBlocks, 64 features per factor, groups 4.
    """

    generator: Literal["esrgan", "carn", "bicubic", "linear"] = "esrgan"
    factor: float = 2.0
    # ESRGAN (RRDB) generator
    num_blocks: int = 6
    latent_size: int = 64
    growth_channels: int = 32
    residual_scaling: float = 0.2
    upsampling_base: int = 2
    # Add the input's bicubic interpolation to the output (the network learns the residual over bicubic);
    # off in torchsisr. Needs the same bands in and out.
    bicubic_residual: bool = False
    # CARN
    carn_groups: int = 4
    carn_shared_weights: bool = True
    carn_features_per_factor: int = 64
    carn_cascading_blocks: int = 3
    carn_eres_blocks: int = 3
    kernel_size: int = 3
    # Linear (polyphase) filter: its size in LR px (odd)
    linear_kernel_size: int = 7
    # Joint 10 m + 20 m model: how the 20 m bands are brought to the 10 m grid (null: 10 m bands only).
    lr_to_hr: Literal["bicubic"] | None = None
    lr_to_hr_factor: float = 2.0
    # What ``margin`` reports: the reference's formula (paper/ONNX comparable: ESRGAN 66/110/130, CARN 41)
    # or the exact receptive field (ESRGAN 6 RRDB ×2: 187). See sisrlib.models.esrgan.
    margin_rule: Literal["reference", "receptive_field"] = "reference"

    def __post_init__(self) -> None:
        if not self.factor >= 1.0:
            raise ValueError(f"factor must be >= 1, got {self.factor}")
        if self.upsampling_base < 2:
            raise ValueError(f"upsampling_base must be >= 2, got {self.upsampling_base}")
        for name in (
            "latent_size",
            "growth_channels",
            "carn_groups",
            "carn_features_per_factor",
            "carn_cascading_blocks",
            "carn_eres_blocks",
            "kernel_size",
            "linear_kernel_size",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.num_blocks < 0:
            raise ValueError(f"num_blocks must be >= 0, got {self.num_blocks}")
        if self.kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd, got {self.kernel_size}")
        if self.linear_kernel_size % 2 == 0:
            raise ValueError(f"linear_kernel_size must be odd, got {self.linear_kernel_size}")
        if not self.lr_to_hr_factor > 0:
            raise ValueError(f"lr_to_hr_factor must be > 0, got {self.lr_to_hr_factor}")


@dataclass(frozen=True)
class DiscriminatorParams:
    """Which discriminator the adversarial term uses (torchsisr); paper defaults.

    ``kind``: ``unet`` (Real-ESRGAN U-Net with spectral norm, per-pixel logits) or ``classification`` (small
    ESRGAN-like classifier, one logit per image). ``num_in_ch``: bands fed to it (the adversarial bands).
    ``num_feat``: base features (U-Net) or encoder latent features (classification). ``hpf_mtf``: MTF of the
    optional high-pass pre-filter (null: none; reference classification config: 0.4), at ``hpf_factor``.
    The ``classification_*`` keys size the classifier (reference yaml: 4 extra conv layers, head 512 with 2
    extra layers, pooling 2).
    """

    kind: Literal["unet", "classification"] = "unet"
    num_in_ch: int = 4
    num_feat: int = 32
    skip_connection: bool = False
    hpf_mtf: float | None = None
    hpf_factor: int = 2
    classification_additional_layers: int = 0
    classification_head_features: int = 512
    classification_head_additional_layers: int = 0
    classification_pooling_size: int = 2

    def __post_init__(self) -> None:
        if self.num_in_ch < 1 or self.num_feat < 1:
            raise ValueError(f"num_in_ch and num_feat must be >= 1, got {self.num_in_ch}, {self.num_feat}")
        if self.hpf_mtf is not None and not 0.0 < self.hpf_mtf < 1.0:
            raise ValueError(f"hpf_mtf must lie in (0, 1) or be null, got {self.hpf_mtf}")
        if self.hpf_factor < 2:
            raise ValueError(f"hpf_factor must be >= 2, got {self.hpf_factor}")
