"""Optical flows: warp, composition, simulation, upsampling."""

from __future__ import annotations

import pytest
import torch

from sisrlib.flow import (
    compose_flows,
    flow_norm,
    simulate_flow,
    smooth_flow,
    upsample_flow,
    warp,
)


def test_zero_flow_warps_to_identity() -> None:
    x = torch.rand(2, 3, 17, 23)
    assert torch.equal(warp(x, torch.zeros(2, 2, 17, 23)), x)


@pytest.mark.parametrize(("dx", "dy"), [(1, 0), (0, -2), (3, 2), (-1, -1)])
def test_constant_integer_flow_is_an_exact_shift_away_from_borders(dx: int, dy: int) -> None:
    x = torch.rand(2, 3, 24, 30, dtype=torch.float64)
    flow = torch.zeros(2, 2, 24, 30, dtype=torch.float64)
    flow[:, 0], flow[:, 1] = dx, dy
    out = warp(x, flow)
    m = 4  # away from the borders (reflection padding there)
    expected = x[..., m + dy : 24 - m + dy, m + dx : 30 - m + dx]
    assert torch.allclose(out[..., m : 24 - m, m : 30 - m], expected, atol=1e-9)


def test_warp_samples_at_pixel_plus_flow() -> None:
    # a horizontal ramp sampled at col + 0.5 reads ramp + 0.5 (bicubic is exact on linear signals)
    ramp = torch.arange(20, dtype=torch.float64).repeat(1, 1, 12, 1)
    flow = torch.zeros(1, 2, 12, 20, dtype=torch.float64)
    flow[:, 0] = 0.5
    out = warp(ramp, flow)
    assert torch.allclose(out[..., 3:-3, 3:-3], ramp[..., 3:-3, 3:-3] + 0.5, atol=1e-9)


@pytest.mark.parametrize(("max_range", "max_width"), [(0.2, 10.0), (2.0, 10.0), (5.0, 1.0)])
def test_simulated_flows_respect_their_bound(max_range: float, max_width: float) -> None:
    g = torch.Generator().manual_seed(0)
    flow = simulate_flow(64, 32, 40, max_range, max_width, generator=g)
    assert flow.shape == (64, 2, 32, 40) and flow.dtype == torch.float32
    assert float(flow.abs().max()) <= 2 * max_range + 1e-6
    assert float(flow.abs().max()) > 0.5 * max_range  # not degenerate


def test_simulated_flows_are_seeded() -> None:
    a = simulate_flow(4, 16, 16, generator=torch.Generator().manual_seed(7))
    b = simulate_flow(4, 16, 16, generator=torch.Generator().manual_seed(7))
    c = simulate_flow(4, 16, 16, generator=torch.Generator().manual_seed(8))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    assert simulate_flow(2, 8, 8, dtype=torch.float64).dtype == torch.float64
    with pytest.raises(ValueError):
        simulate_flow(0, 8, 8)


def test_composition_of_constant_flows() -> None:
    a = torch.full((1, 2, 16, 16), 2.0)
    b = torch.full((1, 2, 16, 16), 3.0)
    assert torch.allclose(compose_flows(a, b), torch.full_like(a, 5.0))
    assert torch.allclose(compose_flows(a, b, mode="reference"), torch.full_like(a, 5.0))
    with pytest.raises(ValueError, match="mode"):
        compose_flows(a, b, mode="other")  # type: ignore[arg-type]


def test_flow_norm_upsample_and_smooth() -> None:
    flow = torch.zeros(2, 2, 8, 8)
    flow[:, 0], flow[:, 1] = 3.0, 4.0
    assert torch.allclose(flow_norm(flow), torch.full((2, 8, 8), 5.0))
    up = upsample_flow(flow, 2)
    assert up.shape == (2, 2, 16, 16)
    assert torch.allclose(up[:, 0], torch.full((2, 16, 16), 6.0))  # 3 coarse px = 6 fine px
    assert torch.allclose(smooth_flow(flow), flow, atol=1e-5)
    with pytest.raises(ValueError, match=r"\[B, 2, H, W\]"):
        flow_norm(torch.zeros(1, 3, 4, 4))
