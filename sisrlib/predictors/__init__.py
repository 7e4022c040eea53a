"""Predictors: one model interface for inference and evaluation (DN in, DN out; the EVOLAND contract).

* :mod:`~sisrlib.predictors.base`: the :class:`Predictor` contract and :class:`ModelOptions` (numpy only);
* :mod:`~sisrlib.predictors.contract`: the EVOLAND contract's names, sidecar yaml and margin rule;
* :mod:`~sisrlib.predictors.onnx`: exported models run by ONNX Runtime (no torch);
* :mod:`~sisrlib.predictors.loading`: :func:`open_model`, the kind told from the file;
* :mod:`~sisrlib.predictors.torch_models`: :class:`TorchPredictor`, :class:`BicubicPredictor` (torch);
* :mod:`~sisrlib.predictors.checkpoints`: this project's and torchsisr's checkpoints (torch).

Importing this package pulls no torch: the torch-backed modules are imported by name.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from sisrlib.predictors.base import DEVICES, ModelOptions, Predictor
from sisrlib.predictors.contract import ModelCard, read_model_yaml
from sisrlib.predictors.loading import open_model
from sisrlib.predictors.onnx import OnnxPredictor, onnx_runtime_session

__all__ = [
    "DEVICES",
    "BicubicPredictor",
    "ModelCard",
    "ModelOptions",
    "OnnxPredictor",
    "Predictor",
    "TorchPredictor",
    "onnx_runtime_session",
    "open_model",
    "read_model_yaml",
]

if TYPE_CHECKING:
    from sisrlib.predictors.torch_models import BicubicPredictor, TorchPredictor

#: Names served from the torch-backed module on first access (``from sisrlib.predictors import
#: TorchPredictor`` imports torch then, ``import sisrlib.predictors`` does not).
_TORCH_NAMES = {
    "BicubicPredictor": "sisrlib.predictors.torch_models",
    "TorchPredictor": "sisrlib.predictors.torch_models",
}


def __getattr__(name: str) -> Any:
    if name in _TORCH_NAMES:
        return getattr(importlib.import_module(_TORCH_NAMES[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
