"""Discriminators of the adversarial term (torchsisr).

* ``UNetDiscriminatorSN``: the Real-ESRGAN U-Net discriminator with spectral normalisation, per-pixel logits
  (the paper's: 4 bands in, 32 features, no skip connections, no high-pass pre-filter).
* ``Discriminator``: a small ESRGAN-like classifier, one logit per image (the reference's default adversarial
  config: 7 bands, 64 features, HPF MTF 0.4).

Both optionally feed the discriminator the high-frequency part of their input
(``sisrlib.degradation.high_pass``: x − bicubic↑f(MTF-downscale↓f(x)), which crops H and W to multiples of f),
so that it judges texture rather than radiometry. Inputs are standardised ``[B, C, H, W]`` tensors.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from sisrlib.degradation import high_pass

_SLOPE = 0.2


class _HighPassPreFilter(nn.Module):
    """Optional high-pass pre-filter: identity when ``mtf`` is None."""

    def __init__(self, mtf: float | None, factor: int = 2, half_width: int | None = None) -> None:
        super().__init__()
        if mtf is not None and not 0.0 < mtf < 1.0:
            raise ValueError(f"high-pass pre-filter: mtf must lie in (0, 1) or be null, got {mtf}")
        if factor < 2:
            raise ValueError(f"high-pass pre-filter: factor must be an integer >= 2, got {factor}")
        self.mtf = mtf
        self.factor = int(factor)
        self.half_width = half_width

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mtf is None:
            return x
        return high_pass(x, self.factor, self.mtf, self.half_width)


def _check(x: torch.Tensor, bands: int, owner: str, min_size: int) -> None:
    if x.dim() != 4 or x.shape[1] != bands or min(x.shape[-2:]) < min_size:
        raise ValueError(
            f"{owner}: expected a [B, {bands}, H, W] tensor with H, W >= {min_size}, "
            f"got shape {tuple(x.shape)}"
        )


class UNetDiscriminatorSN(nn.Module):
    """Real-ESRGAN U-Net discriminator: ``[B, num_in_ch, H, W]`` → per-pixel logits ``[B, 1, H', W']``.

    H' = H (or f·⌊H/f⌋ with the high-pass pre-filter). 3×3 conv in → F; three 4×4 stride-2 spectral-normed
    convs F → 2F → 4F → 8F; three stages of bilinear up-sampling (to the size of the matching encoder stage)
    + 3×3 SN conv (8F → 4F → 2F → F), each optionally plus the encoder feature of the same size
    (``skip_connection``); two 3×3 SN convs F → F; 3×3 conv F → 1. LeakyReLU(0.2) after every conv but the
    last.
    """

    def __init__(
        self,
        num_in_ch: int = 4,
        num_feat: int = 32,
        skip_connection: bool = False,
        hpf_mtf: float | None = None,
        hpf_factor: int = 2,
        hpf_half_width: int | None = None,
    ) -> None:
        super().__init__()
        if num_in_ch < 1 or num_feat < 1:
            raise ValueError(
                f"UNetDiscriminatorSN: num_in_ch and num_feat must be >= 1, got {num_in_ch}, {num_feat}"
            )
        self.num_in_ch = num_in_ch
        self.num_feat = num_feat
        self.skip_connection = skip_connection
        self.pre_filter = _HighPassPreFilter(hpf_mtf, hpf_factor, hpf_half_width)
        f = num_feat
        self.conv0 = nn.Conv2d(num_in_ch, f, 3, 1, 1)
        self.down = nn.ModuleList(
            spectral_norm(nn.Conv2d(f * 2**i, f * 2 ** (i + 1), 4, 2, 1, bias=False)) for i in range(3)
        )
        self.up = nn.ModuleList(
            spectral_norm(nn.Conv2d(f * 2 ** (3 - i), f * 2 ** (2 - i), 3, 1, 1, bias=False))
            for i in range(3)
        )
        self.extra = nn.ModuleList(spectral_norm(nn.Conv2d(f, f, 3, 1, 1, bias=False)) for _ in range(2))
        self.last_conv = nn.Conv2d(f, 1, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check(x, self.num_in_ch, type(self).__name__, 8)
        x = self.pre_filter(x)
        skips = [F.leaky_relu(self.conv0(x), _SLOPE)]
        for conv in self.down:
            skips.append(F.leaky_relu(conv(skips[-1]), _SLOPE))
        y = skips[-1]
        for i, conv in enumerate(self.up):
            skip = skips[2 - i]
            y = F.interpolate(y, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            y = F.leaky_relu(conv(y), _SLOPE)
            if self.skip_connection:
                y = y + skip
        for conv in self.extra:
            y = F.leaky_relu(conv(y), _SLOPE)
        return self.last_conv(y)


class Discriminator(nn.Module):
    """Classification discriminator: ``[B, in_features, H, W]`` → one logit per image ``[B, 1]``.

    Encoder: ConvBlocks (3×3 *valid* conv without bias → BatchNorm → LeakyReLU 0.2), in → latent then
    ``nb_additional_latent_layers`` × latent → latent (each shrinks H and W by 2); AdaptiveAvgPool to p×p;
    head Linear(p²·latent → head_latent) + LeakyReLU(``head_negative_slope``, the reference uses PyTorch's
    default 0.01), ``head_nb_additional_latent_layers`` × (Linear + LeakyReLU), Linear(→ 1).
    """

    def __init__(
        self,
        in_features: int = 4,
        latent_features: int = 32,
        nb_additional_latent_layers: int = 0,
        head_latent_features: int = 512,
        head_nb_additional_latent_layers: int = 0,
        pooling_size: int = 2,
        hpf_mtf: float | None = None,
        hpf_factor: int = 2,
        hpf_half_width: int | None = None,
        head_negative_slope: float = 0.01,
    ) -> None:
        super().__init__()
        if min(in_features, latent_features, head_latent_features, pooling_size) < 1:
            raise ValueError("Discriminator: feature counts and pooling_size must be >= 1")
        if nb_additional_latent_layers < 0 or head_nb_additional_latent_layers < 0:
            raise ValueError("Discriminator: numbers of additional layers must be >= 0")
        self.in_features = in_features
        self.pre_filter = _HighPassPreFilter(hpf_mtf, hpf_factor, hpf_half_width)
        layers: list[nn.Module] = []
        for i in range(nb_additional_latent_layers + 1):
            layers += [
                nn.Conv2d(
                    in_features if i == 0 else latent_features, latent_features, 3, padding=0, bias=False
                ),
                nn.BatchNorm2d(latent_features),
                nn.LeakyReLU(_SLOPE),
            ]
        self.encoder = nn.Sequential(*layers)
        self.min_size = 2 * (nb_additional_latent_layers + 1) + 1
        self.pooling = nn.AdaptiveAvgPool2d((pooling_size, pooling_size))
        head: list[nn.Module] = [
            nn.Linear(pooling_size * pooling_size * latent_features, head_latent_features),
            nn.LeakyReLU(head_negative_slope),
        ]
        for _ in range(head_nb_additional_latent_layers):
            head += [nn.Linear(head_latent_features, head_latent_features), nn.LeakyReLU(head_negative_slope)]
        head.append(nn.Linear(head_latent_features, 1))
        self.head = nn.Sequential(*head)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check(x, self.in_features, type(self).__name__, self.min_size)
        x = self.pre_filter(x)
        return self.head(self.pooling(self.encoder(x)).flatten(1))
