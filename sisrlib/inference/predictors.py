"""Predictors: a super-resolution model as a DN-in / DN-out function on one tile.

A predictor maps ``[B, C, h, w]`` float32 DN (reflectance × 10000, no NaN) to ``[B, C, h·f, w·f]`` float32 DN.
Three kinds: an exported ONNX model (ONNX Runtime, configured like the EVOLAND tool), a training checkpoint
(torch), and the bicubic baseline.
"""

from __future__ import annotations

import abc
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from sisrlib.errors import MissingDependencyError, SisrError
from sisrlib.export import (
    ONNX_INPUT_NAME,
    DNModel,
    dn_model_from_checkpoint,
    onnx_runtime_session,
)
from sisrlib.inference.model_card import read_model_yaml

DEVICES: tuple[str, ...] = ("cpu", "cuda")


class Predictor(abc.ABC):
    """A tile predictor in DN units."""

    #: Band names, in channel order (input and output).
    bands: tuple[str, ...]
    #: Super-resolution factor.
    factor: float
    #: Output pixels on every side that depend on padding (receptive field).
    margin: int
    #: Short human-readable description.
    name: str
    #: The model files it was loaded from (yaml and ONNX, or checkpoint); empty for in-memory models.
    files: tuple[Path, ...] = ()

    @abc.abstractmethod
    def __call__(self, dn: np.ndarray) -> np.ndarray:
        """``[B, C, h, w]`` float32 DN → ``[B, C, h·f, w·f]`` float32 DN."""


class OnnxPredictor(Predictor):
    """An exported model run by ONNX Runtime (threads, deterministic compute, CPU or CUDA-first providers)."""

    def __init__(self, yaml_path: str | os.PathLike[str], threads: int = 1, device: str = "cpu") -> None:
        card = read_model_yaml(yaml_path)
        self.card = card
        self.bands = card.bands
        self.factor = card.factor
        self.margin = card.margin
        self.name = f"ONNX {card.onnx_path.name}"
        self.files = (card.yaml_path, card.onnx_path)
        self.session: Any = onnx_runtime_session(card.onnx_path, threads=threads, use_cuda=device == "cuda")
        inputs = self.session.get_inputs()
        if len(inputs) != 1 or inputs[0].name != ONNX_INPUT_NAME:
            raise SisrError(
                f"{card.onnx_path}: expected one input named {ONNX_INPUT_NAME!r}, found "
                f"{[i.name for i in inputs]}"
            )
        shape = inputs[0].shape
        if len(shape) != 4:
            raise SisrError(f"{card.onnx_path}: expected a [b, c, h, w] input, found shape {shape}")
        if isinstance(shape[1], int) and shape[1] != len(card.bands):
            raise SisrError(
                f"{card.onnx_path}: the graph takes {shape[1]} channels but {card.yaml_path} lists "
                f"{len(card.bands)} bands {list(card.bands)}"
            )

    def __call__(self, dn: np.ndarray) -> np.ndarray:
        out = self.session.run(None, {ONNX_INPUT_NAME: np.ascontiguousarray(dn, dtype=np.float32)})[0]
        return np.asarray(out, dtype=np.float32)


class TorchPredictor(Predictor):
    """A :class:`~sisrlib.export.DNModel` (generator + normalisation) run by torch without gradients."""

    def __init__(self, model: DNModel, device: torch.device | str = "cpu") -> None:
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.bands = tuple(model.bands)
        self.factor = model.factor
        self.margin = model.margin
        self.name = f"torch {type(model.model).__name__}"

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike[str], device: str = "cpu") -> TorchPredictor:
        """The generator of a training checkpoint, with the standardisation saved in it."""
        wrapper = dn_model_from_checkpoint(path)
        predictor = cls(wrapper, device)
        predictor.files = (Path(path),)
        return predictor

    def __call__(self, dn: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            x = torch.from_numpy(np.ascontiguousarray(dn, dtype=np.float32)).to(self.device)
            return self.model(x).float().cpu().numpy()


class BicubicPredictor(Predictor):
    """Bicubic interpolation of the DN (``align_corners=False``): the baseline every model must beat."""

    def __init__(self, bands: tuple[str, ...], factor: float, device: str = "cpu") -> None:
        self.bands = bands
        self.factor = float(factor)
        # Bicubic taps reach 2 input pixels on each side.
        self.margin = math.ceil(2 * self.factor)
        self.device = torch.device(device)
        self.name = "bicubic"

    def __call__(self, dn: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            x = torch.from_numpy(np.ascontiguousarray(dn, dtype=np.float32)).to(self.device)
            h, w = x.shape[-2:]
            size = (round(h * self.factor), round(w * self.factor))
            return F.interpolate(x, size=size, mode="bicubic", align_corners=False).cpu().numpy()


def _check_device(device: str) -> None:
    if device not in DEVICES:
        raise ValueError(f"--device {device!r}: expected one of {list(DEVICES)}")
    if device == "cuda" and not torch.cuda.is_available():
        raise MissingDependencyError("--device cuda: torch sees no CUDA device here; use --device cpu")


def load_predictor(
    model: str | os.PathLike[str],
    *,
    device: str = "cpu",
    threads: int = 1,
    bicubic: bool = False,
) -> Predictor:
    """A predictor from an exported model yaml (ONNX Runtime) or a ``.ckpt`` (torch).

    With ``bicubic=True`` the model only supplies band names and factor, and bicubic interpolation is run
    instead. ``threads`` sets ONNX Runtime's intra/inter-op threads, or torch's thread count.
    """
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ValueError(f"--threads {threads!r}: expected a positive number of threads")
    if device not in DEVICES:
        raise ValueError(f"--device {device!r}: expected one of {list(DEVICES)}")
    path = Path(model)
    suffix = path.suffix.lower()
    if suffix == ".onnx":
        sidecar = path.with_suffix(".yaml")
        if not sidecar.is_file():
            raise FileNotFoundError(
                f"--model {path}: pass the sidecar yaml of the ONNX file (expected {sidecar}, which does "
                "not exist)"
            )
        path, suffix = sidecar, ".yaml"
    predictor: Predictor
    if suffix in (".yaml", ".yml"):
        if bicubic:
            card = read_model_yaml(path)
            _check_device(device)
            baseline = BicubicPredictor(card.bands, card.factor, device)
            baseline.files = (card.yaml_path, card.onnx_path)
            return baseline
        # ONNX Runtime needs its own CUDA provider (not torch's): checked when the session is built.
        predictor = OnnxPredictor(path, threads=threads, device=device)
    elif suffix == ".ckpt":
        _check_device(device)
        torch.set_num_threads(threads)
        predictor = TorchPredictor.from_checkpoint(path, device)
        if bicubic:
            baseline = BicubicPredictor(predictor.bands, predictor.factor, device)
            baseline.files = predictor.files
            return baseline
    else:
        raise ValueError(
            f"--model {path}: expected an exported model yaml (NAME.yaml beside NAME.onnx) or a training "
            "checkpoint (.ckpt)"
        )
    return predictor
