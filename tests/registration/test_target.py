"""Registration of the HR target onto the LR input (torchsisr's "geom" and "rad")."""

from __future__ import annotations

import math

import pytest
import torch

from sisrlib.degradation import simulate_lr, upsample
from sisrlib.flow import upsample_flow, warp
from sisrlib.registration.network import FlowEstimator
from sisrlib.registration.target import register_target

BANDS = ("B2", "B3", "B4", "B8")


class OracleFlow(FlowEstimator):
    """A 'network' returning a known flow, recording what it was given."""

    def __init__(self, flow: torch.Tensor) -> None:
        super().__init__(depth=1, start_filters=1, min_skip_depth=1, features=1)
        self.flow = flow
        self.calls: list[tuple[torch.Tensor, torch.Tensor]] = []

    def forward(self, left: torch.Tensor, right: torch.Tensor) -> torch.Tensor:
        self.calls.append((left, right))
        return self.flow


def scene(size: int, bands: int = 4, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return upsample(torch.randn(1, bands, size // 8, size // 8, generator=g), 8)


def smooth_flow_field(size: int) -> torch.Tensor:
    y, x = torch.meshgrid(
        torch.arange(size, dtype=torch.float32), torch.arange(size, dtype=torch.float32), indexing="ij"
    )
    return torch.stack(
        [0.8 + 0.4 * torch.sin(2 * math.pi * y / 200), -0.6 + 0.3 * torch.cos(2 * math.pi * x / 200)]
    )[None]


def interior(x: torch.Tensor, m: int = 6) -> torch.Tensor:
    return x[..., m:-m, m:-m]


def test_geometric_registration_with_known_flow_recovers_the_input_geometry() -> None:
    target = scene(96)
    flow = smooth_flow_field(48)
    real = warp(simulate_lr(target, 2, 0.4), flow)
    net = OracleFlow(flow)
    out = register_target(net, target, real, BANDS, BANDS, channel=2, geometric=True)
    # the flow is estimated on the registration channel: R(sim band, real band)
    left, right = net.calls[0]
    torch.testing.assert_close(right, real[:, 2])
    torch.testing.assert_close(left, simulate_lr(target[:, 2:3], 2, 0.4)[:, 0])
    # the (smoothed) known flow is recovered, and brought to HR pixels
    torch.testing.assert_close(interior(out.flow, 8), interior(flow, 8), atol=2e-3, rtol=0)
    assert out.flow_hr.shape == (1, 2, 96, 96)
    assert abs(float(out.flow_hr[0, 0].mean()) - 2 * float(flow[0, 0].mean())) < 0.02
    before = (simulate_lr(target, 2, 0.4) - real).abs()
    after = (simulate_lr(out.target, 2, 0.4) - real).abs()
    assert float(interior(after).mean()) < 0.1 * float(interior(before).mean())


def test_radiometric_registration_removes_a_low_frequency_field() -> None:
    target = scene(96, seed=1)
    flow = smooth_flow_field(48)
    _y, x = torch.meshgrid(torch.arange(48.0), torch.arange(48.0), indexing="ij")
    field = (0.3 + 0.2 * torch.sin(2 * math.pi * x / 96) + torch.tensor([0.0, 0.1, -0.2, 0.3]).view(4, 1, 1))[
        None
    ]
    real = warp(simulate_lr(target, 2, 0.4), flow) + field
    net = OracleFlow(flow)
    geom = register_target(net, target, real, BANDS, BANDS, 2, geometric=True, radiometric=False)
    both = register_target(net, target, real, BANDS, BANDS, 2, geometric=True, radiometric=True)
    bias_geom = interior(simulate_lr(geom.target, 2, 0.4) - real).mean(dim=(-1, -2))
    bias_both = interior(simulate_lr(both.target, 2, 0.4) - real).mean(dim=(-1, -2))
    err_geom = interior(simulate_lr(geom.target, 2, 0.4) - real).abs().mean()
    err_both = interior(simulate_lr(both.target, 2, 0.4) - real).abs().mean()
    assert float(err_both) < 0.1 * float(err_geom)
    assert float(bias_both.abs().max()) < 0.05 * float(bias_geom.abs().max())
    # the correction is low-frequency: the target's high frequencies are those of the warped target
    hp = both.target - upsample(simulate_lr(both.target, 2, 0.4), 2)
    hp_geom = geom.target - upsample(simulate_lr(geom.target, 2, 0.4), 2)
    assert float(interior(hp - hp_geom, 12).abs().max()) < 0.05


def test_the_affine_radiometric_model_removes_a_gain_the_additive_one_keeps() -> None:
    """HR stored at g times the LR's units plus an offset (per band): the additive correction fixes the low
    frequencies but keeps the detail at 1/g of the input's; the affine model brings the detail to the input's
    units too, and on an exact affine relation recovers the target in the input's units."""
    truth = scene(96, seed=3)  # the scene in the LR sensor's units
    gain = torch.tensor([0.8, 0.7, 0.75, 0.55]).view(1, 4, 1, 1)
    offset = torch.tensor([0.3, -0.2, 0.1, 0.4]).view(1, 4, 1, 1)
    target = gain * truth + offset  # the HR sensor's units
    flow = smooth_flow_field(48)
    real = warp(simulate_lr(truth, 2, 0.4), flow)
    net = OracleFlow(flow)
    expected = warp(truth, upsample_flow(flow, 2))
    additive = register_target(net, target, real, BANDS, BANDS, 2, geometric=True, radiometric=True)
    affine = register_target(
        net, target, real, BANDS, BANDS, 2, geometric=True, radiometric=True, radiometric_model="affine"
    )

    def detail(x: torch.Tensor) -> torch.Tensor:
        return interior(x - upsample(simulate_lr(x, 2, 0.4), 2), 12).std(dim=(-1, -2))

    # additive: the detail keeps more than half of the gain's deficit (0.84, 0.77, 0.81, 0.65 here)
    kept = detail(additive.target) / detail(expected)
    assert bool((kept < 1.0 - (1.0 - gain.view(1, 4)) / 2).all()), kept
    torch.testing.assert_close(detail(affine.target) / detail(expected), torch.ones(1, 4), atol=0.01, rtol=0)
    assert float(interior(affine.target - expected, 12).abs().mean()) < 0.01 * float(
        interior(additive.target - expected, 12).abs().mean()
    )
    with pytest.raises(ValueError, match="radiometric_model must be 'additive' or 'affine'"):
        register_target(net, target, real, BANDS, BANDS, 2, radiometric=True, radiometric_model="gain")


def test_radiometric_only_and_no_registration() -> None:
    target = scene(32, seed=2)
    real = simulate_lr(target, 2, 0.4) + 0.5
    net = OracleFlow(torch.zeros(1, 2, 16, 16))
    none = register_target(net, target, real, BANDS, BANDS, 2, geometric=False, radiometric=False)
    assert none.target is target
    rad = register_target(net, target, real, BANDS, BANDS, 2, geometric=False, radiometric=True)
    torch.testing.assert_close(rad.target - target, torch.full_like(target, 0.5), atol=1e-4, rtol=0)


def test_joint_10m_20m_radiometric_branch() -> None:
    """8-band target at 5 m, 10 m input ×2 and 20 m input ×4: both groups get their own correction."""
    target = scene(64, bands=8, seed=3)
    t_bands = (*BANDS, "B5", "B6", "B7", "B8A")
    real10 = simulate_lr(target[:, :4], 2, 0.4) + 0.2
    real20 = simulate_lr(target[:, 4:], 4, 0.4) - 0.4
    net = OracleFlow(torch.zeros(1, 2, 32, 32))
    out = register_target(
        net,
        target,
        real10,
        BANDS,
        t_bands,
        2,
        geometric=True,
        radiometric=True,
        lr_inputs=real20,
        lr_bands=("B5", "B6", "B7", "B8A"),
    )
    torch.testing.assert_close(
        out.target[:, :4] - target[:, :4], torch.full_like(target[:, :4], 0.2), atol=1e-4, rtol=0
    )
    torch.testing.assert_close(
        out.target[:, 4:] - target[:, 4:], torch.full_like(target[:, 4:], -0.4), atol=1e-4, rtol=0
    )


def test_register_target_errors() -> None:
    target, real = scene(32), torch.zeros(1, 4, 16, 16)
    net = OracleFlow(torch.zeros(1, 2, 16, 16))
    with pytest.raises(ValueError, match="out of range"):
        register_target(net, target, real, BANDS, BANDS, channel=7)
    with pytest.raises(ValueError, match="which the target lacks"):
        register_target(net, target, real, BANDS, ("B5", "B6", "B7", "B8A"), channel=0)
    with pytest.raises(ValueError, match="band names"):
        register_target(net, target, real, BANDS[:3], BANDS, channel=0)


def test_the_simulation_kernel_reaches_the_network_and_the_residual() -> None:
    """``kernel="reference"``: the target's LR simulation uses torchsisr's 7 × 7 PSF, both for the band the
    flow is estimated on and for the radiometric residual (×4, where the two kernels differ)."""
    target = scene(64, seed=3)
    real = simulate_lr(target, 4, 0.4, kernel="reference") + 0.25
    for kernel in ("exact", "reference"):
        net = OracleFlow(torch.zeros(1, 2, 16, 16))
        out = register_target(
            net, target, real, BANDS, BANDS, 2, geometric=False, radiometric=True, kernel=kernel
        )
        torch.testing.assert_close(net.calls[0][0], simulate_lr(target[:, 2:3], 4, 0.4, kernel=kernel)[:, 0])
        residual = out.target - target
        if kernel == "reference":  # the simulation matches: only the constant is corrected
            torch.testing.assert_close(residual, torch.full_like(target, 0.25), atol=1e-4, rtol=0)
        else:
            assert float((residual - 0.25).abs().max()) > 1e-3


def test_a_given_flow_replaces_the_network_and_is_not_smoothed() -> None:
    target = scene(96)
    flow = smooth_flow_field(48)
    flow[..., :24, :] += 0.5  # a step the network path's smoothing would soften
    real = warp(simulate_lr(target, 2, 0.4), flow)
    net = OracleFlow(torch.zeros_like(flow))
    out = register_target(net, target, real, BANDS, BANDS, channel=2, geometric=True, flow=flow)
    assert not net.calls, "the network is not run when a flow is given"
    torch.testing.assert_close(out.flow, flow)
    torch.testing.assert_close(out.target, warp(target, upsample_flow(flow, 2)))
    with pytest.raises(ValueError, match=r"flow \(1, 2, 24, 24\) does not match the inputs"):
        register_target(net, target, real, BANDS, BANDS, channel=2, flow=flow[..., :24, :24])
