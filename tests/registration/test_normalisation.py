"""The flow network's input normalisation: ours (per image) and torchsisr's (per row, ``reference_rows``).

torchsisr applies ``F.instance_norm`` to ``[B, H, W]`` tensors; PyTorch reads them as ``(N, C, L)``, so each
row is normalised over its W pixels: ``(x − row mean) / sqrt(row biased variance + 1e-5)``.
"""

from __future__ import annotations

import math

import pytest
import torch

from sisrlib.params import ParamsError, from_mapping
from sisrlib.registration.factory import build_flow_estimator
from sisrlib.registration.network import FlowEstimator, normalise_images, normalise_rows
from sisrlib.run_params import RegistrationParams


def _rows_by_definition(x: torch.Tensor) -> torch.Tensor:
    """Each row minus its mean, over sqrt(its biased variance + 1e-5), in float64."""
    x64 = x.double()
    mean = x64.mean(dim=-1, keepdim=True)
    var = ((x64 - mean) ** 2).mean(dim=-1, keepdim=True)  # biased: divided by W
    return (x64 - mean) / torch.sqrt(var + 1e-5)


def test_row_normalisation_hand_example() -> None:
    # row [1, 2, 3, 4]: mean 2.5, biased variance 1.25; row [5, 5, 5, 5]: variance 0, only ε remains
    # (float64: in float32 the constant row comes out at -3e-5, its rounding error over sqrt(ε))
    x = torch.tensor([[[1.0, 2.0, 3.0, 4.0], [5.0, 5.0, 5.0, 5.0]]], dtype=torch.float64)
    s = math.sqrt(1.25 + 1e-5)
    expected = torch.tensor([[[-1.5 / s, -0.5 / s, 0.5 / s, 1.5 / s], [0.0] * 4]], dtype=torch.float64)
    torch.testing.assert_close(normalise_rows(x), expected, atol=1e-9, rtol=0)
    torch.testing.assert_close(normalise_rows(x.float()), expected.float(), atol=1e-4, rtol=0)


def test_row_normalisation_matches_the_definition() -> None:
    torch.manual_seed(0)
    x = torch.randn(3, 5, 7) * 40 + torch.arange(5.0).view(1, 5, 1) * 100  # rows of different offsets
    rows = normalise_rows(x)
    torch.testing.assert_close(rows.double(), _rows_by_definition(x), atol=1e-5, rtol=0)
    # every row is centred; the per-image normalisation instead centres the whole image only
    assert float(rows.mean(dim=-1).abs().max()) < 1e-5
    per_image = normalise_images(x)
    assert float(per_image.mean(dim=(-2, -1)).abs().max()) < 1e-5
    assert float(per_image.mean(dim=-1).abs().max()) > 0.5  # the row offsets survive per-image normalisation


def test_image_normalisation_matches_the_definition() -> None:
    torch.manual_seed(1)
    x = torch.randn(2, 4, 6) * 3 + 7
    x64 = x.double()
    mean = x64.mean(dim=(-2, -1), keepdim=True)
    var = ((x64 - mean) ** 2).mean(dim=(-2, -1), keepdim=True)
    torch.testing.assert_close(
        normalise_images(x).double(), (x64 - mean) / torch.sqrt(var + 1e-5), atol=1e-5, rtol=0
    )


def test_reference_rows_flow_ignores_per_row_offsets() -> None:
    """A per-row offset added to both images is removed by the row normalisation: the flow is unchanged."""
    torch.manual_seed(0)
    net = FlowEstimator(
        depth=2, start_filters=4, min_skip_depth=1, features=4, input_normalisation="reference_rows"
    )
    left, right = torch.rand(2, 16, 16), torch.rand(2, 16, 16)
    ramp = torch.linspace(0.0, 5.0, 16).view(1, 16, 1)  # a vertical intensity ramp
    with torch.no_grad():
        torch.testing.assert_close(net(left + ramp, right + ramp), net(left, right), atol=1e-5, rtol=0)


def test_option_defaults_to_ours_and_reaches_the_network() -> None:
    assert FlowEstimator().input_normalisation == "image"
    assert RegistrationParams().input_normalisation == "image"
    params = RegistrationParams(
        depth=2, start_filters=4, min_skip_depth=1, features=4, input_normalisation="reference_rows"
    )
    net = build_flow_estimator(params)
    assert net.input_normalisation == "reference_rows"
    # the network's forward is the UNet on the row-normalised images
    torch.manual_seed(0)
    left, right = torch.rand(1, 8, 8), torch.rand(1, 8, 8)
    stacked = torch.stack([_rows_by_definition(left), _rows_by_definition(right)], dim=1).float()
    with torch.no_grad():
        y = net.head(torch.nn.functional.leaky_relu(net.unet(stacked), 0.01))
        expected = torch.tanh(y) * (net.max_range / math.sqrt(2.0))
        torch.testing.assert_close(net(left, right), expected, atol=1e-5, rtol=0)


def test_bad_option_is_refused() -> None:
    with pytest.raises(ValueError, match="input_normalisation must be one of"):
        FlowEstimator(input_normalisation="rows")  # type: ignore[arg-type]
    with pytest.raises(ParamsError, match="input_normalisation"):
        from_mapping(RegistrationParams, {"input_normalisation": "rows"}, where="registration")


def test_default_normalisation_keeps_earlier_run_signatures() -> None:
    """Runs trained before the key existed (per-image normalisation) are not made stale by it."""
    from dataclasses import replace
    from pathlib import Path

    from sisrlib.run_params import load_experiment
    from sisrlib.training.fit import run_signature

    params = load_experiment(Path(__file__).resolve().parents[2] / "params/quick/02_registration_s2v1x2.yaml")
    assert "input_normalisation" not in run_signature(params)["registration"]
    rows = replace(params, registration=replace(params.registration, input_normalisation="reference_rows"))
    assert run_signature(rows)["registration"]["input_normalisation"] == "reference_rows"
