"""The generic UNet and the flow network (torchsisr's)."""

from __future__ import annotations

import math

import pytest
import torch

from sisrlib.models.unet import UNet
from sisrlib.registration.network import FlowEstimator, freeze


def test_unet_shapes_channels_and_skips() -> None:
    net = UNet(3, 2, depth=3, start_filters=4, min_skip_depth=1)
    y = net(torch.randn(2, 3, 16, 16))
    assert y.shape == (2, 2, 16, 16)
    # encoder channels start·2^i; decoder stages halve; only stages with index >= min_skip_depth take a skip
    assert [s.conv1.out_channels for s in net.down] == [4, 8, 16]
    assert [s.use_skip for s in net.up] == [False, True]
    assert net.up[1].convs.conv1.in_channels == 2 * 4
    assert net.up[0].convs.conv1.in_channels == 8


def test_unet_reference_configuration_keeps_only_full_resolution_skip() -> None:
    net = UNet(2, 32, depth=4, start_filters=64, min_skip_depth=2)
    assert [s.use_skip for s in net.up] == [False, False, True]
    assert net.head.out_channels == 32
    # Xavier-normal weights, zero biases
    assert all(float(m.bias.abs().max()) == 0.0 for m in net.modules() if isinstance(m, torch.nn.Conv2d))


def test_unet_backpropagates() -> None:
    net = UNet(3, 2, depth=3, start_filters=4, min_skip_depth=1)
    net(torch.randn(1, 3, 8, 8)).sum().backward()
    assert all(p.grad is not None for p in net.parameters())


@pytest.mark.parametrize("size", [(16, 16), (13, 17), (5, 9), (3, 3)])
def test_flow_estimator_any_size_and_bound(size: tuple[int, int]) -> None:
    torch.manual_seed(0)
    net = FlowEstimator(max_range=3.0, depth=3, start_filters=4, min_skip_depth=1, features=4)
    left, right = torch.randn(2, *size) * 100, torch.randn(2, *size)
    flow = net(left, right)
    assert flow.shape == (2, 2, *size)
    assert float(flow.abs().max()) <= 3.0 / math.sqrt(2.0) + 1e-6
    assert torch.isfinite(flow).all()


def test_flow_estimator_is_invariant_to_units() -> None:
    """Instance normalisation: DN, reflectance or standardised inputs give the same flow."""
    torch.manual_seed(0)
    net = FlowEstimator(depth=2, start_filters=4, min_skip_depth=1, features=4)
    a, b = torch.rand(1, 16, 16), torch.rand(1, 16, 16)
    torch.testing.assert_close(net(a, b), net(a * 10000 + 50, b * 10000 - 3), atol=1e-4, rtol=1e-4)


def test_flow_estimator_errors_and_freeze() -> None:
    net = FlowEstimator(depth=2, start_filters=4, min_skip_depth=1, features=4)
    with pytest.raises(ValueError, match=r"single-band \[B, H, W\]"):
        net(torch.rand(1, 1, 8, 8), torch.rand(1, 1, 8, 8))
    with pytest.raises(ValueError, match="same shape"):
        net(torch.rand(1, 8, 8), torch.rand(1, 8, 9))
    with pytest.raises(ValueError, match="max_range"):
        FlowEstimator(max_range=0)
    frozen = freeze(net)
    assert not frozen.training and not any(p.requires_grad for p in frozen.parameters())
