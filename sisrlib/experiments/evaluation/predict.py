"""From a test batch to a :class:`sisrlib.predictors.Predictor`'s single DN input, and from its DN output to
the reflectance prediction the metrics compare.

Every model is evaluated through the one predictor contract (DN in, DN out, one input): this project's
checkpoints, exported ONNX models in the EVOLAND contract, torchsisr checkpoints and the bicubic baseline.
A mixed 10 m + 20 m model takes its 20 m bands on the 10 m grid: the evaluation brings them there with torch's
bicubic ×2 (``sisrlib.degradation.upsample``, ``align_corners=False``), the resampling of the joint model's
own ``lr_to_hr`` branch, so that a checkpoint and its ONNX export (which holds only the SISR network, as
torchsisr's export) see the same input. (``sisr infer`` resamples products with GDAL's cubic, as the EVOLAND
tool; on test patches the two differ only near the borders.)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from sisrlib.bands import dn_to_reflectance
from sisrlib.data.batch import Batch
from sisrlib.degradation import upsample
from sisrlib.errors import SisrError
from sisrlib.predictors import ModelOptions, Predictor, open_model
from sisrlib.predictors.torch_models import BicubicPredictor


def model_input(batch: Batch, bands: Sequence[str]) -> torch.Tensor:
    """The single DN input ``[B, len(bands), h, w]`` of a predictor taking ``bands``, on the grid of
    ``batch.inputs``: each band from ``inputs``, or from ``lr_inputs`` (20 m) brought to that grid by bicubic
    interpolation (see the module docstring). A clear error names a band the batch lacks."""
    h, w = batch.inputs.shape[-2:]
    lr_up: torch.Tensor | None = None
    out = []
    for band in bands:
        if band in batch.input_bands:
            out.append(batch.inputs[:, [batch.input_bands.index(band)]].float())
        elif batch.lr_inputs is not None and band in batch.lr_bands:
            if lr_up is None:
                lr_up = upsample(batch.lr_inputs.float(), w / batch.lr_inputs.shape[-1])[..., :h, :w]
            out.append(lr_up[:, [batch.lr_bands.index(band)]])
        else:
            raise SisrError(
                f"the model takes band {band} (bands {list(bands)}) but the test data has input bands "
                f"{list(batch.input_bands)} and LR bands {list(batch.lr_bands)}; evaluate it on data that "
                "loads those bands"
            )
    return torch.cat(out, dim=1)


def predict_reflectance(predictor: Predictor, batch: Batch, device: torch.device) -> torch.Tensor:
    """The prediction of ``predictor`` on ``batch`` on the target bands, reflectance ``[B, C_t, H, W]`` on
    ``device`` (torch-backed predictors run there through ``predict_tensor``; others on numpy arrays)."""
    missing = [b for b in batch.target_bands if b not in predictor.out_bands]
    if missing:
        raise SisrError(
            f"{predictor.name}: the model returns bands {list(predictor.out_bands)}, without the target "
            f"bands {missing} of the test data (target bands {list(batch.target_bands)})"
        )
    dn = model_input(batch, predictor.in_bands).to(device)
    tensor_fn: Any = getattr(predictor, "predict_tensor", None)
    if tensor_fn is not None:
        with torch.no_grad():
            out = tensor_fn(dn)
    else:
        out = torch.from_numpy(predictor(np.ascontiguousarray(dn.cpu().numpy(), dtype=np.float32)))
    out = out.to(device)
    if tuple(predictor.out_bands) != tuple(batch.target_bands):
        out = out[:, [predictor.out_bands.index(b) for b in batch.target_bands]]
    return dn_to_reflectance(out.float())


def bicubic_predictor(batch: Batch, device: torch.device) -> BicubicPredictor:
    """The bicubic baseline on the target bands of ``batch`` (its factor)."""
    return BicubicPredictor(tuple(batch.target_bands), batch.factor, device=device.type)


def open_evaluated_model(path: str, device: torch.device, options: ModelOptions | None = None) -> Predictor:
    """:func:`sisrlib.predictors.open_model` on ``device`` with torch's current number of threads (an
    evaluation does not change the threads of the process); ``options``: what a torchsisr checkpoint may
    lack."""
    return open_model(path, device=device.type, threads=max(1, torch.get_num_threads()), options=options)
