"""Fake LPIPS weight files with the real layouts (torchvision's VGG16 state dict, piq's LPIPS weights)."""

from __future__ import annotations

from pathlib import Path

import torch

from sisrlib.metrics.lpips import LPIPS_WEIGHTS_FILE, VGG16_WEIGHTS_FILE

LPIPS_CHANNELS = (64, 128, 256, 512, 512)


#: Parameter shapes of torchvision's ``vgg16().features`` (13 convolutions at these module indices).
VGG16_CONVS = {
    0: (64, 3),
    2: (64, 64),
    5: (128, 64),
    7: (128, 128),
    10: (256, 128),
    12: (256, 256),
    14: (256, 256),
    17: (512, 256),
    19: (512, 512),
    21: (512, 512),
    24: (512, 512),
    26: (512, 512),
    28: (512, 512),
}


def write_fake_weights(folder: Path, seed: int = 0) -> Path:
    """Random files with the layouts of torchvision's VGG16 state dict and piq's LPIPS weights."""
    g = torch.Generator().manual_seed(seed)
    state: dict[str, torch.Tensor] = {}
    for index, (out_c, in_c) in VGG16_CONVS.items():
        std = (2.0 / (9 * in_c)) ** 0.5
        state[f"features.{index}.weight"] = std * torch.randn(out_c, in_c, 3, 3, generator=g)
        state[f"features.{index}.bias"] = 0.01 * torch.randn(out_c, generator=g)
    state["classifier.0.weight"] = torch.randn(16, 8, generator=g)  # ignored
    state["classifier.0.bias"] = torch.randn(16, generator=g)
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(state, folder / VGG16_WEIGHTS_FILE)
    torch.save([torch.rand(1, c, 1, 1, generator=g) for c in LPIPS_CHANNELS], folder / LPIPS_WEIGHTS_FILE)
    return folder
