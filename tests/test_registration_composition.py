"""Flow composition (exact and reference) and the registration pre-training loss (spec §4.2, §4.4)."""

from __future__ import annotations

import math

import torch

from sisrlib.registration.flow import compose_flows, warp
from sisrlib.registration.network import FlowEstimator
from sisrlib.registration.pretraining import pretraining_loss

H = W = 96


def _grid() -> tuple[torch.Tensor, torch.Tensor]:
    y, x = torch.meshgrid(
        torch.arange(H, dtype=torch.float64), torch.arange(W, dtype=torch.float64), indexing="ij"
    )
    return x, y


# torch's bicubic ``grid_sample`` (Keys kernel, a = -0.75) is only first-order accurate: resampling a flow
# costs up to ~4 % of its gradient. "Smooth" below means gradients of ~0.02 px/px (periods of a few hundred
# px).


def first_flow(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Smooth non-constant analytic flow ``a`` (px)."""
    return torch.stack(
        [torch.sin(2 * math.pi * y / 400 + 0.3) + 0.005 * x, 0.8 * torch.cos(2 * math.pi * x / 400 + 1.0)]
    )[None]


def second_flow(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Smooth non-constant analytic flow ``b`` (px)."""
    return torch.stack(
        [0.9 * torch.cos(2 * math.pi * (x + y) / 500), 0.7 + 0.5 * torch.sin(2 * math.pi * x / 400)]
    )[None]


def test_exact_composition_matches_analytic_composite() -> None:
    """c(p) = b(p) + a(p + b(p)), exact to 1e-3 px away from the borders."""
    x, y = _grid()
    a, b = first_flow(x, y), second_flow(x, y)
    analytic = b + first_flow(x + b[0, 0], y + b[0, 1])
    composed = compose_flows(a, b)
    inner = (slice(None), slice(None), slice(8, -8), slice(8, -8))
    err = (composed - analytic)[inner].abs().max()
    assert float(err) < 1e-3
    # the reference's plain sum is visibly wrong for such flows
    ref_err = (compose_flows(a, b, mode="reference") - analytic)[inner].abs().max()
    assert float(ref_err) > 0.01


def test_exact_composition_is_the_double_warp() -> None:
    x, y = _grid()
    a, b = first_flow(x, y), second_flow(x, y)
    image = (torch.sin(x / 25) * torch.cos(y / 35))[None, None]
    twice = warp(warp(image, a), b)
    exact = (twice - warp(image, compose_flows(a, b)))[..., 8:-8, 8:-8].abs().max()
    assert float(exact) < 5e-3  # bounded by the interpolation error of warping the image twice


def test_reference_mode_is_plain_sum_and_exact_for_constant_flows() -> None:
    a = torch.full((1, 2, 16, 16), 2.0)
    b = torch.full((1, 2, 16, 16), 3.0)
    torch.testing.assert_close(compose_flows(a, b, mode="reference"), torch.full_like(a, 5.0))
    torch.testing.assert_close(compose_flows(a, b), torch.full_like(a, 5.0))
    x, y = _grid()
    fa, fb = first_flow(x, y), second_flow(x, y)
    torch.testing.assert_close(compose_flows(fa, fb, mode="reference"), fa + fb)


def test_pretraining_loss_terms_and_gradients() -> None:
    torch.manual_seed(0)
    net = FlowEstimator(max_range=4.0, depth=2, start_filters=4, min_skip_depth=1, features=4)
    src, real = torch.randn(2, 16, 16), torch.randn(2, 16, 16)
    g1, g2 = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
    exact = pretraining_loss(net, src, real, generator=g1)
    reference = pretraining_loss(net, src, real, composition="reference", generator=g2)
    logged = exact.as_dict()
    assert set(logged) == {
        "registration_flow_loss",
        "registration_flow_bias_loss",
        "registration_flow_consistency_loss",
        "registration_data_loss",
        "registration_total_loss",
    }
    torch.testing.assert_close(
        exact.total, exact.flow + exact.flow_bias + exact.flow_consistency + exact.data
    )
    # same random flow t: only the flow term depends on the composition
    torch.testing.assert_close(exact.data, reference.data)
    assert float((exact.flow - reference.flow).abs()) > 0
    exact.total.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in net.parameters())


def test_pretraining_loss_weights() -> None:
    net = FlowEstimator(depth=2, start_filters=4, min_skip_depth=1, features=4)
    src, real = torch.randn(1, 16, 16), torch.randn(1, 16, 16)
    w = (0.5, 2.0, 3.0, 20.0)
    losses = pretraining_loss(net, src, real, generator=torch.Generator().manual_seed(5), weights=w)
    expected = 0.5 * losses.flow + 2.0 * losses.flow_bias + 3.0 * losses.flow_consistency + 20.0 * losses.data
    torch.testing.assert_close(losses.total, expected)


def test_pretraining_loss_is_reproducible_with_a_generator() -> None:
    net = FlowEstimator(depth=2, start_filters=4, min_skip_depth=1, features=4)
    src, real = torch.randn(1, 16, 16), torch.randn(1, 16, 16)
    a = pretraining_loss(net, src, real, generator=torch.Generator().manual_seed(5)).total
    b = pretraining_loss(net, src, real, generator=torch.Generator().manual_seed(5)).total
    assert float(a) == float(b)
