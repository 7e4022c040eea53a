"""Flow composition (exact and reference) and the registration pre-training loss."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from sisrlib.flow import compose_flows, warp
from sisrlib.registration.network import FlowEstimator
from sisrlib.registration.pretraining import highpass, penalty, pretraining_loss
from sisrlib.run_params import RegistrationParams

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


class _CountingEstimator(FlowEstimator):
    """A flow network that counts its forward passes."""

    calls = 0

    def forward(self, left: torch.Tensor, right: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return super().forward(left, right)


def test_zero_weight_terms_are_not_evaluated() -> None:
    torch.manual_seed(0)
    net = _CountingEstimator(depth=2, start_filters=4, min_skip_depth=1, features=4)
    src, real = torch.randn(2, 16, 16), torch.randn(2, 16, 16)
    full = pretraining_loss(net, src, real, generator=torch.Generator().manual_seed(3))
    assert net.calls == 4
    net.calls = 0
    w = (1.0, 0.0, 0.0, 5.0)
    part = pretraining_loss(net, src, real, generator=torch.Generator().manual_seed(3), weights=w)
    assert net.calls == 2
    assert part.flow_bias is None and part.flow_consistency is None
    assert part.flow is not None and part.data is not None
    assert set(part.as_dict()) == {
        "registration_flow_loss",
        "registration_data_loss",
        "registration_total_loss",
    }
    # same t, same network: the evaluated terms are those of the full loss
    assert full.flow is not None and full.data is not None
    torch.testing.assert_close(part.flow, full.flow)
    torch.testing.assert_close(part.total, full.flow + 5.0 * full.data)
    part.total.backward()
    assert all(p.grad is not None for p in net.parameters())
    with pytest.raises(ValueError, match="not all 0"):
        pretraining_loss(net, src, real, weights=(0.0, 0.0, 0.0, 0.0))


def test_penalties() -> None:
    a, b = torch.tensor([0.0, 0.5, 3.0]), torch.zeros(3)
    torch.testing.assert_close(penalty(a, b), torch.tensor((0.0 + 0.125 + 2.5) / 3))
    torch.testing.assert_close(penalty(a, b, "l1"), torch.tensor(3.5 / 3))
    torch.testing.assert_close(penalty(a, b, "mse"), torch.tensor(9.25 / 3))
    with pytest.raises(ValueError, match="penalty"):
        penalty(a, b, "huber")  # type: ignore[arg-type]


def test_highpass_removes_offsets_and_slow_fields() -> None:
    y, x = torch.meshgrid(torch.arange(48.0), torch.arange(48.0), indexing="ij")
    slow = 3.0 + 0.5 * torch.cos(2 * math.pi * x / 200) * torch.cos(2 * math.pi * y / 200)
    fine = torch.cos(2 * math.pi * x / 4)
    out = highpass(torch.stack([slow, slow + fine]), 3.0)
    assert out.shape == (2, 48, 48)
    # away from the borders (reflect padding mirrors the slow field's slope there)
    inner = (slice(10, -10), slice(10, -10))
    assert float(out[0][inner].abs().max()) < 5e-3
    torch.testing.assert_close(out[1][inner], fine[inner], atol=5e-3, rtol=0)
    # a constant is removed everywhere
    assert float(highpass(torch.full((1, 20, 20), 7.0), 2.0).abs().max()) < 1e-5
    # a kernel wider than the image is truncated to it
    assert highpass(torch.randn(1, 8, 8), 10.0).shape == (1, 8, 8)
    with pytest.raises(ValueError, match="sigma"):
        highpass(slow[None], 0.0)


def test_data_term_options() -> None:
    torch.manual_seed(0)
    net = FlowEstimator(depth=2, start_filters=4, min_skip_depth=1, features=4)
    src = torch.randn(2, 24, 24)
    real = warp(src[:, None], torch.full((2, 2, 24, 24), 0.3))[:, 0]
    w = (0.0, 0.0, 0.0, 1.0)

    def data(real_: torch.Tensor, **options: object) -> torch.Tensor:
        losses = pretraining_loss(net, src, real_, weights=w, **options)  # type: ignore[arg-type]
        assert losses.data is not None
        return losses.data

    residual = warp(src[:, None], net(src, real))[:, 0] - real
    torch.testing.assert_close(data(real), F.smooth_l1_loss(residual, torch.zeros_like(residual)))
    torch.testing.assert_close(data(real, data_penalty="l1"), residual.abs().mean())
    # high-passed: a band offset between the two images does not change the data term (the network
    # instance-normalises its inputs, so its flow does not change either)
    torch.testing.assert_close(
        data(real + 0.7, data_penalty="l1", data_highpass=3.0),
        data(real, data_penalty="l1", data_highpass=3.0),
    )
    assert float(data(real + 0.7, data_penalty="l1")) > float(data(real, data_penalty="l1")) + 0.3


@pytest.mark.parametrize(
    ("key", "value", "match"),
    [
        ("data_penalty", "huber", "data_penalty"),
        ("flow_penalty", "l2", "flow_penalty"),
        ("data_highpass", 0.0, "data_highpass"),
        ("data_weight", -1.0, "weights"),
    ],
)
def test_registration_params_loss_options_are_validated(key: str, value: object, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        RegistrationParams(**{key: value})  # type: ignore[arg-type]


def test_registration_params_all_zero_weights() -> None:
    zero = {"flow_weight": 0.0, "bias_weight": 0.0, "consistency_weight": 0.0, "data_weight": 0.0}
    with pytest.raises(ValueError, match="not all 0"):
        RegistrationParams(**zero)
    only_data = RegistrationParams(**{**zero, "data_weight": 1.0})
    assert only_data.loss_weights == (0.0, 0.0, 0.0, 1.0)
    assert RegistrationParams().data_penalty == "smooth_l1" and RegistrationParams().data_highpass is None
