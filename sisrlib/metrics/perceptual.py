"""Perceptual test metrics of the predictions, per band: LPIPS, PieAPP, BRISQUE (torchsisr's study metrics).

Our own implementations (:mod:`sisrlib.metrics.lpips`, :mod:`sisrlib.metrics.pieapp`,
:mod:`sisrlib.metrics.brisque`) of the published methods, with the published weights **supplied by the user**:
nothing is downloaded. The files are looked for in ``weights_dir`` (or its ``checkpoints`` sub-folder) when
given, else in the torch hub cache ``$TORCH_HOME/hub/checkpoints``:

* ``lpips``: ``lpips_weights.pt`` (LPIPS linear layers) and ``vgg16-397923af.pth`` (torchvision's VGG16);
* ``pieapp``: ``PieAPPv0.1.pth``;
* ``brisque``: ``brisque_svm_weights.pt`` (the published support vector regression).

Inputs are reflectance ``[B, C, H, W]``, clipped to [0, 1] (the images' data range) and scored band by band
as single-band images; BRISQUE is no-reference and ignores ``ref``. Every score is lower-is-better.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path

import torch

from sisrlib.errors import MissingDependencyError
from sisrlib.metrics.brisque import BRISQUE_WEIGHTS_FILE, brisque_score, load_brisque_svr
from sisrlib.metrics.lpips import LPIPS_WEIGHTS_FILE, VGG16_WEIGHTS_FILE, PerBandLPIPS
from sisrlib.metrics.pieapp import PIEAPP_WEIGHTS_FILE, PieAPPNetwork, load_pieapp, pieapp_score

PERCEPTUAL_METRICS: tuple[str, ...] = ("lpips", "pieapp", "brisque")

#: The weight files of each metric and what they are.
WEIGHT_FILES: dict[str, tuple[tuple[str, str], ...]] = {
    "lpips": (
        (LPIPS_WEIGHTS_FILE, "the LPIPS linear-layer weights piq releases under that name"),
        (VGG16_WEIGHTS_FILE, "torchvision's ImageNet VGG16 state dict"),
    ),
    "pieapp": ((PIEAPP_WEIGHTS_FILE, "the published PieAPP network as piq releases it"),),
    "brisque": ((BRISQUE_WEIGHTS_FILE, "the published BRISQUE support vectors as piq releases them"),),
}


def _check_name(name: str) -> None:
    if name not in PERCEPTUAL_METRICS:
        raise ValueError(f"unknown perceptual metric {name!r}; valid names are {list(PERCEPTUAL_METRICS)}")


def _folders(weights_dir: str | Path | None) -> list[Path]:
    if weights_dir is not None:
        return [Path(weights_dir), Path(weights_dir) / "checkpoints"]
    return [Path(torch.hub.get_dir()) / "checkpoints"]


def weight_paths(name: str, weights_dir: str | Path | None = None) -> tuple[Path, ...] | None:
    """The weight files of metric ``name`` in the first folder holding all of them, or None."""
    _check_name(name)
    files = [f for f, _ in WEIGHT_FILES[name]]
    for folder in _folders(weights_dir):
        paths = tuple(folder / f for f in files)
        if all(p.is_file() for p in paths):
            return paths
    return None


def perceptual_unavailable(
    name: str, weights_dir: str | Path | None = None, option: str | None = None
) -> str | None:
    """None when metric ``name`` can be computed here; else why not: the weight files it needs, what they
    are, where they were looked for and how to supply them (``option``: the params key that sets
    ``weights_dir``, named in the message). ValueError for a name not in ``PERCEPTUAL_METRICS``."""
    if weight_paths(name, weights_dir) is not None:
        return None
    needed = "; ".join(f"{f} ({what})" for f, what in WEIGHT_FILES[name])
    where = ", ".join(str(f) for f in _folders(weights_dir))
    how = f"set {option} to their folder, or copy them" if option else "copy them"
    return (
        f"the perceptual metric {name} needs {needed}; looked in: {where}. Nothing is downloaded at run "
        f"time: {how} into $TORCH_HOME/hub/checkpoints, or leave {name} out of the metrics"
    )


@functools.lru_cache(maxsize=8)
def _lpips(paths: tuple[Path, ...]) -> PerBandLPIPS:
    return PerBandLPIPS(paths[0].parent)


@functools.lru_cache(maxsize=4)
def _pieapp(paths: tuple[Path, ...]) -> PieAPPNetwork:
    return load_pieapp(paths[0])


@functools.lru_cache(maxsize=4)
def _brisque(paths: tuple[Path, ...]) -> tuple[torch.Tensor, torch.Tensor]:
    return load_brisque_svr(paths[0])


def _per_band(
    fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], pred: torch.Tensor, ref: torch.Tensor
) -> torch.Tensor:
    b, c, h, w = pred.shape
    values = fn(pred.reshape(b * c, 1, h, w), ref.reshape(b * c, 1, h, w))
    return values.reshape(b, c)


@torch.no_grad()
def perceptual_scores(
    name: str, pred: torch.Tensor, ref: torch.Tensor | None, weights_dir: str | Path | None = None
) -> torch.Tensor:
    """Metric ``name`` of every band of every image: reflectance ``pred`` and ``ref`` ``[B, C, H, W]``
    (``ref`` unused by BRISQUE, may be None there) → ``[B, C]`` float32 on ``pred``'s device (dimensionless,
    lower is better). Raises ``MissingDependencyError`` (see ``perceptual_unavailable``) when the weights are
    absent, ValueError for a bad name or shape."""
    _check_name(name)
    if pred.dim() != 4:
        raise ValueError(f"{name}: expected pred [B, C, H, W], got {tuple(pred.shape)}")
    if name != "brisque" and (ref is None or ref.shape != pred.shape):
        shape = None if ref is None else tuple(ref.shape)
        raise ValueError(
            f"{name}: pred and ref must have the same shape, got {tuple(pred.shape)} and {shape}"
        )
    paths = weight_paths(name, weights_dir)
    if paths is None:
        raise MissingDependencyError(str(perceptual_unavailable(name, weights_dir)))
    p = pred.float().clamp(0.0, 1.0)
    r = ref.float().clamp(0.0, 1.0) if ref is not None else p
    if name == "lpips":
        lpips = _lpips(paths).to(p.device)
        out = _per_band(lpips.per_image, p, r)
    elif name == "pieapp":
        net = _pieapp(paths).to(p.device)
        out = _per_band(lambda a, b: pieapp_score(net, a, b), p, r)
    else:
        coef, vectors = _brisque(paths)
        out = _per_band(lambda a, _: brisque_score(a, coef, vectors), p, r)
    return out.float().to(pred.device)
