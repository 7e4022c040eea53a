"""PieAPP (Prashnani, Cai, Mostofi & Sen, CVPR 2018), our own implementation of the published network: a
full-reference perceptual error learnt from pairwise preferences, lower is better (for identical images the
feature differences vanish and the score is the network's offset).

Both images (one band, values in [0, 1], scaled to [0, 255] and repeated to 3 channels) are cut into 64 × 64
patches with a stride of 27 px (the published "sparse" sampling); 11 3 × 3 convolutions with ReLU and 2 × 2
max-pooling (64, 64 | 64, 128 | 128, 128 | 256, 256 | 256, 512 | 512 channels) give per patch the features of
5 depths (120 832 values) and the last layer's (2 048); the error of a patch is a 2-layer perceptron of the
feature difference (reference − prediction) × 0.01 then an affine map, its weight a 2-layer perceptron of
the last-layer difference; the image's error is the weighted mean over its patches.

The weights are supplied by the user, nothing is downloaded: ``PieAPPv0.1.pth`` (the published model as piq
releases it, a state dict read with ``torch.load(weights_only=True)``).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from sisrlib.errors import DataError

PIEAPP_WEIGHTS_FILE = "PieAPPv0.1.pth"
PATCH = 64
STRIDE = 27
_CHANNELS = (64, 64, 64, 128, 128, 128, 256, 256, 256, 512, 512)
_EPS = 1e-6


class PieAPPNetwork(nn.Module):
    """The PieAPP network (parameter names those of the published state dict: ``conv1`` … ``conv11``,
    ``fc1_score``, ``fc2_score``, ``fc1_weight``, ``fc2_weight``, ``ref_score_subtract``)."""

    def __init__(self) -> None:
        super().__init__()
        channels = 3
        for k, out in enumerate(_CHANNELS, start=1):
            self.add_module(f"conv{k}", nn.Conv2d(channels, out, kernel_size=3, padding=1))
            channels = out
        self.fc1_score = nn.Linear(120832, 512)
        self.fc2_score = nn.Linear(512, 1)
        self.fc1_weight = nn.Linear(2048, 512)
        self.fc2_weight = nn.Linear(512, 1)
        self.ref_score_subtract = nn.Linear(1, 1)

    def _conv(self, k: int, x: torch.Tensor) -> torch.Tensor:
        conv: nn.Module = getattr(self, f"conv{k}")
        return F.relu(conv(x))

    def features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Patches ``[P, 3, 64, 64]`` (0–255) → (features of 5 depths ``[P, 120832]``, last ``[P, 2048]``)."""
        x3 = self._conv(3, F.max_pool2d(self._conv(2, self._conv(1, x)), 2))
        x5 = self._conv(5, F.max_pool2d(self._conv(4, x3), 2))
        x7 = self._conv(7, F.max_pool2d(self._conv(6, x5), 2))
        x9 = self._conv(9, F.max_pool2d(self._conv(8, x7), 2))
        x11 = self._conv(11, F.max_pool2d(self._conv(10, x9), 2)).flatten(1)
        return torch.cat([x3.flatten(1), x5.flatten(1), x7.flatten(1), x9.flatten(1), x11], dim=1), x11

    def patch_errors(
        self, features_diff: torch.Tensor, last_diff: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Per patch (error ``[P]``, weight ``[P]``) from the reference − prediction feature differences."""
        error = self.ref_score_subtract(0.01 * self.fc2_score(F.relu(self.fc1_score(features_diff))))
        weight = self.fc2_weight(F.relu(self.fc1_weight(last_diff))) + _EPS
        return error[:, 0], weight[:, 0]


def load_pieapp(path: str | Path) -> PieAPPNetwork:
    """The network with the published weights of ``path`` (``PieAPPv0.1.pth``), frozen, in eval mode."""
    path = Path(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise DataError(
            f"{path} could not be read as the PieAPP weights ({type(exc).__name__}: {exc}); supply the "
            f"original {PIEAPP_WEIGHTS_FILE}"
        ) from exc
    if not isinstance(state, Mapping):
        raise DataError(
            f"{path} holds a {type(state).__name__}, not a state dict; supply {PIEAPP_WEIGHTS_FILE}"
        )
    state = dict(state)
    w = state.get("ref_score_subtract.weight")
    if isinstance(w, torch.Tensor) and w.dim() == 1:  # the published file stores it as [1]
        state["ref_score_subtract.weight"] = w.view(1, 1)
    net = PieAPPNetwork()
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0] if str(exc) else ""
        raise DataError(f"{path} does not hold the PieAPP network's weights: {first}") from exc
    for p in net.parameters():
        p.requires_grad_(False)
    return net.eval()


def patches(x: torch.Tensor, size: int = PATCH, stride: int = STRIDE) -> torch.Tensor:
    """``[N, C, H, W]`` → ``[N, P, C, size, size]``: the patches at every ``stride`` px inside the image."""
    n, c = x.shape[:2]
    tiles = x.unfold(2, size, stride).unfold(3, size, stride)  # [N, C, py, px, size, size]
    return tiles.permute(0, 2, 3, 1, 4, 5).reshape(n, -1, c, size, size)


@torch.no_grad()
def pieapp_score(net: PieAPPNetwork, pred: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """PieAPP of single-band images ``[N, 1, H, W]`` in [0, 1] (H, W ≥ 64) → ``[N]`` (lower is better)."""
    if pred.shape != ref.shape or pred.dim() != 4 or pred.shape[1] != 1:
        raise ValueError(
            f"PieAPP: expected single-band images [N, 1, H, W] of the same shape, got {tuple(pred.shape)} "
            f"and {tuple(ref.shape)}"
        )
    if min(pred.shape[-2:]) < PATCH:
        raise ValueError(f"PieAPP needs images of at least {PATCH}×{PATCH} px, got {tuple(pred.shape[-2:])}")
    n = pred.shape[0]
    device = next(net.parameters()).device
    scores = []
    for k in range(n):
        p = patches(pred[k : k + 1].float().to(device) * 255.0)[0].expand(-1, 3, -1, -1)
        r = patches(ref[k : k + 1].float().to(device) * 255.0)[0].expand(-1, 3, -1, -1)
        fp, lp = net.features(p.contiguous())
        fr, lr = net.features(r.contiguous())
        error, weight = net.patch_errors(fr - fp, lr - lp)
        scores.append((error * weight).sum() / weight.sum())
    return torch.stack(scores).to(pred.device)
