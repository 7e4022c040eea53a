"""LPIPS (Zhang et al. 2018, VGG16 variant) from local weight files: our own VGG16 (no torchvision, no piq).

The two files are supplied by the user, nothing is downloaded: ``lpips_weights.pt`` (the LPIPS linear-layer
weights, the file piq releases under that name) and ``vgg16-397923af.pth`` (torchvision's ImageNet VGG16
state dict), in one folder or in the torch hub cache (``$TORCH_HOME/hub/checkpoints``).

``PerBandLPIPS`` applies it band by band to single-channel reflectance images: it is the training loss's
LPIPS term, the LPIPS test metric (:mod:`sisrlib.metrics.perceptual`) and the benchmark's LPIPS.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

from sisrlib.errors import DataError, MissingDependencyError

LPIPS_WEIGHTS_FILE = "lpips_weights.pt"
VGG16_WEIGHTS_FILE = "vgg16-397923af.pth"

#: Who needs the weights and how to do without them, as the training loss's error message says it.
LOSS_NEEDS = "the LPIPS loss (training.losses.lpips > 0)"
LOSS_OPTION = "training.losses.lpips_weights"
LOSS_ALTERNATIVE = "set training.losses.lpips to 0"


def find_lpips_weights(
    folder: str | Path | None,
    *,
    needed_by: str = LOSS_NEEDS,
    option: str = LOSS_OPTION,
    alternative: str = LOSS_ALTERNATIVE,
) -> tuple[Path, Path]:
    """Paths of the LPIPS and VGG16 weight files, from ``folder`` or else the torch hub cache.

    Raises MissingDependencyError naming the two files, the folders looked in, ``needed_by`` (who needs
    them), the ``option`` that points to a folder and the ``alternative`` (how to do without); the defaults
    are the training loss's.
    """
    candidates: list[Path] = []
    if folder is not None:
        candidates += [Path(folder), Path(folder) / "checkpoints"]
    else:
        candidates.append(Path(torch.hub.get_dir()) / "checkpoints")
    for c in candidates:
        lp, vgg = c / LPIPS_WEIGHTS_FILE, c / VGG16_WEIGHTS_FILE
        if lp.is_file() and vgg.is_file():
            return lp, vgg
    where = ", ".join(str(c) for c in candidates)
    raise MissingDependencyError(
        f"{needed_by} needs {LPIPS_WEIGHTS_FILE} (LPIPS linear-layer weights, "
        f"the file piq releases as {LPIPS_WEIGHTS_FILE}) and {VGG16_WEIGHTS_FILE} (torchvision's ImageNet "
        f"VGG16 state dict) in a local folder; looked in: {where}. Nothing is downloaded at run time: copy "
        f"both files into one folder and set {option} to it (or into $TORCH_HOME/hub/checkpoints), or "
        f"{alternative}"
    )


#: torchvision's VGG16 ``features`` (configuration "D"): output channels of each 3×3 convolution (padding 1,
#: followed by a ReLU), "M" a 2×2 max-pooling of stride 2. Module indices follow torchvision's.
_VGG16_CONFIG: tuple[int | str, ...] = (
    64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M",
)  # fmt: skip
#: Indices in that stack of the ReLU outputs LPIPS compares (relu1_2, relu2_2, relu3_3, relu4_3, relu5_3) and
#: their channel counts.
_LPIPS_INDICES = (3, 8, 15, 22, 29)
_LPIPS_CHANNELS = (64, 128, 256, 512, 512)
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)
_FEATURE_EPS = 1e-10


def vgg16_features() -> nn.Sequential:
    """An untrained VGG16 ``features`` stack whose parameter names (``N.weight`` / ``N.bias``) are those of
    torchvision's ``vgg16().features``, so the ImageNet state dict loads into it."""
    layers: list[nn.Module] = []
    channels = 3
    for item in _VGG16_CONFIG:
        if item == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            assert isinstance(item, int)
            layers += [nn.Conv2d(channels, item, kernel_size=3, padding=1), nn.ReLU()]
            channels = item
    return nn.Sequential(*layers)


def _load_file(path: Path, what: str) -> object:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise DataError(
            f"{path} could not be read as {what} ({type(exc).__name__}: {exc}); supply the original file"
        ) from exc


def load_vgg16_features(path: str | Path) -> nn.Sequential:
    """The VGG16 ``features`` stack with the weights of torchvision's ImageNet state dict file ``path``
    (``features.N.weight`` / ``features.N.bias``; the ``classifier`` keys are ignored)."""
    path = Path(path)
    state = _load_file(path, f"torchvision's VGG16 state dict ({VGG16_WEIGHTS_FILE})")
    if not isinstance(state, Mapping):
        raise DataError(
            f"{path} holds a {type(state).__name__}, not a state dict; expected torchvision's VGG16 ImageNet "
            f"weights ({VGG16_WEIGHTS_FILE})"
        )
    prefix = "features."
    features_state = {k[len(prefix) :]: v for k, v in state.items() if str(k).startswith(prefix)}
    model = vgg16_features()
    try:
        model.load_state_dict(features_state, strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0] if str(exc) else ""
        raise DataError(
            f"{path} does not hold torchvision's VGG16 features (expected keys features.0.weight ... "
            f"features.28.bias with VGG16's shapes): {first}; supply {VGG16_WEIGHTS_FILE}"
        ) from exc
    return model


def load_lpips_weights(path: str | Path) -> list[torch.Tensor]:
    """The 5 LPIPS linear-layer weight vectors of ``path`` (the file piq releases as ``lpips_weights.pt``: a
    sequence of 5 tensors of 64, 128, 256, 512 and 512 per-channel weights), each as ``[1, C, 1, 1]``
    float32."""
    path = Path(path)
    loaded = _load_file(path, f"LPIPS linear-layer weights ({LPIPS_WEIGHTS_FILE})")
    expected = ", ".join(f"[1, {c}, 1, 1]" for c in _LPIPS_CHANNELS)
    problem = None
    if not isinstance(loaded, list | tuple) or len(loaded) != len(_LPIPS_CHANNELS):
        problem = f"a {type(loaded).__name__}" + (
            f" of {len(loaded)} items" if isinstance(loaded, list | tuple) else ""
        )
    else:
        for k, (w, channels) in enumerate(zip(loaded, _LPIPS_CHANNELS, strict=True)):
            if not isinstance(w, torch.Tensor):
                problem = f"item {k} is a {type(w).__name__}, not a tensor"
            elif w.numel() != channels or sorted(w.shape)[:-1] != [1] * (w.dim() - 1):
                problem = f"item {k} has shape {list(w.shape)}, expected {channels} weights"
            if problem:
                break
    if problem is not None:
        raise DataError(
            f"{path} is not an LPIPS linear-layer weights file: {problem}; expected a list of 5 tensors of "
            f"shapes {expected} (relu1_2 … relu5_3 of VGG16), the file piq releases as {LPIPS_WEIGHTS_FILE}"
        )
    assert isinstance(loaded, list | tuple)
    return [w.detach().to(torch.float32).reshape(1, -1, 1, 1) for w in loaded]


class PerBandLPIPS(nn.Module):
    """LPIPS (VGG16 variant, the weights piq uses) applied band by band on single-channel images.

    Our own implementation (no torchvision, no piq): each band ``[B, 1, H, W]`` is normalised with the
    ImageNet mean / std of the 3 RGB channels (the single band is broadcast to the 3 channels, as in the
    reference); the ReLU outputs relu1_2, relu2_2, relu3_3, relu4_3 and relu5_3 of torchvision's VGG16 are
    unit-normalised along channels; their squared difference is weighted per channel by the LPIPS linear
    weights, averaged over pixels and summed over channels and layers. The VGG is frozen (no gradient to its
    weights, eval mode); gradients flow to the inputs.

    ``forward(pred, ref)`` ``[B, C, H, W]`` (H, W ≥ 16) → ``[C]``: per band, the LPIPS of each image averaged
    over the batch.
    """

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, folder: str | Path | None = None) -> None:
        super().__init__()
        lp_path, vgg_path = find_lpips_weights(folder)
        # only the layers up to relu5_3 are evaluated
        vgg = load_vgg16_features(vgg_path)
        self.features = nn.Sequential(*list(vgg)[: _LPIPS_INDICES[-1] + 1])
        for p in self.features.parameters():
            p.requires_grad_(False)
        self.features.eval()
        for k, w in enumerate(load_lpips_weights(lp_path)):
            self.register_buffer(f"lin{k}", w, persistent=False)
        self.register_buffer("mean", torch.tensor(_IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(_IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def train(self, mode: bool = True) -> PerBandLPIPS:
        super().train(mode)
        self.features.eval()  # the VGG stays frozen in eval mode
        return self

    def _layer_outputs(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Unit-normalised LPIPS feature maps of ``x`` ``[N, 1, H, W]`` (ImageNet-normalised first)."""
        x = (x - self.mean) / self.std
        outputs = []
        for index, module in enumerate(self.features):
            x = module(x)
            if index in _LPIPS_INDICES:
                norm = x.square().sum(dim=1, keepdim=True).sqrt()
                outputs.append(x / (norm + _FEATURE_EPS))
        return outputs

    def per_image(self, pred: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
        """LPIPS of every single-band image pair ``[N, 1, H, W]`` → ``[N]``."""
        n = pred.shape[0]
        features = self._layer_outputs(torch.cat([pred, ref]))
        total = pred.new_zeros(n)
        for k, f in enumerate(features):
            weight: torch.Tensor = getattr(self, f"lin{k}")
            diff = (f[:n] - f[n:]).square() * weight.to(f.dtype)
            total = total + diff.mean(dim=(2, 3)).sum(dim=1)
        return total

    def forward(self, pred: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
        if pred.shape != ref.shape or pred.dim() != 4:
            raise ValueError(
                f"LPIPS: pred and ref must be [B, C, H, W] of the same shape, got {tuple(pred.shape)} and "
                f"{tuple(ref.shape)}"
            )
        b, c, h, w = pred.shape
        values = self.per_image(pred.reshape(b * c, 1, h, w), ref.reshape(b * c, 1, h, w))
        return values.view(b, c).mean(dim=0)


__all__ = [
    "LPIPS_WEIGHTS_FILE",
    "VGG16_WEIGHTS_FILE",
    "PerBandLPIPS",
    "find_lpips_weights",
    "load_lpips_weights",
    "load_vgg16_features",
    "vgg16_features",
]
