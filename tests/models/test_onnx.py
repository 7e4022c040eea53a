"""Generators export to ONNX with dynamic batch/height/width and give the same numbers in onnxruntime."""

from __future__ import annotations

import io
import warnings

import numpy as np
import onnxruntime as ort
import pytest
import torch

from sisrlib.models.base import SRModel
from sisrlib.models.bicubic import BicubicInterpolation
from sisrlib.models.carn import CARN
from sisrlib.models.esrgan import ESRGANGenerator
from sisrlib.models.linear import PolyphaseLinear


@pytest.mark.parametrize(
    "model",
    [
        ESRGANGenerator(4, 3.0, num_blocks=1, latent_size=8, growth_channels=4),
        ESRGANGenerator(4, 2.0, num_blocks=1, latent_size=8, growth_channels=4),
        CARN(4, 2.0, groups=2, features_per_factor=2, n_cascading=1, n_eres=2),
        BicubicInterpolation(4, 4.0),
        ESRGANGenerator(4, 3.0, num_blocks=1, latent_size=8, growth_channels=4, bicubic_residual=True),
        PolyphaseLinear(4, 2.0, kernel_size=7),
    ],
    ids=["esrgan_x3", "esrgan_x2", "carn_x2", "bicubic_x4", "esrgan_x3_bicubic_residual", "linear_x2"],
)
def test_onnx_export_dynamic_axes(model: SRModel) -> None:
    torch.manual_seed(0)
    model.eval()
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            (torch.randn(1, 4, 16, 16),),
            buffer,
            input_names=["input"],
            output_names=["output"],
            dynamic_axes={"input": {0: "b", 2: "h", 3: "w"}, "output": {0: "b", 2: "H", 3: "W"}},
            dynamo=False,
        )
    session = ort.InferenceSession(buffer.getvalue(), providers=["CPUExecutionProvider"])
    x = torch.randn(2, 4, 12, 20)
    (y,) = session.run(None, {"input": x.numpy()})
    with torch.no_grad():
        expected = model(x).numpy()
    assert y.shape == expected.shape == (2, 4, round(12 * model.factor), round(20 * model.factor))
    np.testing.assert_allclose(y, expected, atol=1e-5, rtol=1e-4)
