"""Per-band pixel metrics and the geometric / radiometric distortion metrics."""

from __future__ import annotations

import math

import pytest
import torch

from sisrlib.degradation import mtf_downscale, upsample
from sisrlib.flow import warp
from sisrlib.metrics.distortion import (
    end_point_error,
    estimate_flow,
    geometric_distortion,
    radiometric_distortion,
)
from sisrlib.metrics.pixel import (
    band_columns,
    crop,
    hf_power_variation,
    hr_fidelity,
    lr_fidelity,
    per_band_row,
    psnr,
    rmse,
    ssim,
    tv_variation,
)


def images(n: int = 2, bands: int = 3, size: int = 32, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return 0.1 + 0.3 * upsample(torch.rand(n, bands, size // 4, size // 4, generator=g), 4).clamp(0, 1)


def test_psnr_rmse_known_values_and_identical_images() -> None:
    x = images()
    y = x + torch.tensor([0.0, 0.01, 0.1]).view(1, 3, 1, 1)
    r = rmse(y, x)
    assert r.shape == (3,) and torch.allclose(r, torch.tensor([0.0, 0.01, 0.1]), atol=1e-6)
    p = psnr(y, x, data_range=1.0)
    assert math.isinf(p[0]) and p[0] > 0, "identical bands give +inf"
    assert torch.allclose(p[1:], torch.tensor([40.0, 20.0]), atol=1e-3)
    assert psnr(y, x, data_range=1.0, max_db=100.0)[0] == 100.0
    assert torch.allclose(psnr(y, x, data_range=2.0)[1:], p[1:] + 20 * math.log10(2), atol=1e-3)
    row = per_band_row("psnr", p, ["B2", "B3", "B4"])
    assert list(row) == band_columns("psnr", ["B2", "B3", "B4"]) and math.isinf(row["psnr"])


def test_margin_crops_output_pixels() -> None:
    x = images()
    y = x.clone()
    y[..., :4, :] += 1.0  # damage only the border
    assert rmse(y, x, margin=4).max() == 0
    assert rmse(y, x).min() > 0
    assert crop(x, 4).shape[-2:] == (24, 24)
    with pytest.raises(ValueError, match="leaves nothing"):
        crop(x, 16)


def test_ssim_per_band() -> None:
    x = images()
    noisy = x.clone()
    noisy[:, 1] += 0.05 * torch.randn(noisy[:, 1].shape, generator=torch.Generator().manual_seed(1))
    s = ssim(noisy, x, data_range=1.0)
    assert s.shape == (3,)
    assert torch.allclose(s[[0, 2]], torch.ones(2), atol=1e-5) and s[1] < 0.9


def test_lr_fidelity_zero_for_the_simulated_input_and_bias() -> None:
    hr = images(size=64)
    lr = mtf_downscale(hr, 2, 0.1)
    err, bias = lr_fidelity(hr, lr, 2, mtf=0.1)
    assert torch.allclose(err, torch.zeros(3), atol=1e-6) and torch.allclose(bias, torch.zeros(3), atol=1e-6)
    err, bias = lr_fidelity(hr + 0.02, lr, 2, mtf=0.1, margin=6)
    assert torch.allclose(bias, torch.full((3,), 0.02), atol=1e-5)
    assert torch.allclose(err, torch.full((3,), 0.02), atol=1e-5)
    with pytest.raises(ValueError, match="does not match the LR input"):
        lr_fidelity(hr, lr, 4)


def test_hr_fidelity_hf_power_and_tv_variation() -> None:
    x = images(size=64)
    assert torch.allclose(hr_fidelity(x, x, 2), torch.zeros(3))
    sharp = x + 0.02 * torch.randn(x.shape, generator=torch.Generator().manual_seed(2))
    assert (hr_fidelity(sharp, x, 2) > 0).all()
    assert (hf_power_variation(sharp, x) > 0).all()
    assert torch.allclose(hf_power_variation(x, x), torch.zeros(3), atol=1e-6)
    assert (tv_variation(sharp, x) > 0).all()
    smooth = upsample(mtf_downscale(x, 2, 0.1), 2)
    assert (tv_variation(smooth, x) < 0).all()
    # a coarser reference is upsampled first
    assert hf_power_variation(x, mtf_downscale(x, 2, 0.4)).shape == (3,)


def test_bad_inputs() -> None:
    x = images()
    with pytest.raises(ValueError, match="same shape"):
        rmse(x, x[:, :2])
    bad = x.clone()
    bad[0, 0, 0, 0] = math.nan
    with pytest.raises(ValueError, match="NaN"):
        psnr(bad, x, 1.0)
    with pytest.raises(ValueError, match="data_range"):
        psnr(x, x, 0.0)
    with pytest.raises(ValueError, match="2 values for 3 bands"):
        per_band_row("rmse", [1.0, 2.0], ["B2", "B3", "B4"])


def shift_estimator(left: torch.Tensor, right: torch.Tensor) -> torch.Tensor:
    """A test flow estimator: the integer shift (dx, dy) in [-3, 3]² that best maps left onto right,
    everywhere."""
    best = None
    flows = []
    for b in range(left.shape[0]):
        errors = {}
        for dy in range(-3, 4):
            for dx in range(-3, 4):
                moved = torch.roll(left[b], shifts=(-dy, -dx), dims=(-2, -1))
                errors[(dx, dy)] = float((crop(moved, 4) - crop(right[b], 4)).abs().mean())
        best = min(errors, key=lambda k: errors[k])
        flows.append(torch.tensor(best, dtype=left.dtype).view(2, 1, 1).expand(2, *left.shape[-2:]))
    return torch.stack(flows)


def test_geometric_distortion_measures_a_known_shift() -> None:
    hr = images(2, 2, 64, seed=3)
    lr = mtf_downscale(hr, 2, 0.3)
    shift = torch.zeros(2, 2, 32, 32)
    shift[:, 0] = 2.0  # the LR input samples the scene 2 LR px to the right
    lr_shifted = warp(lr, shift)
    stats = geometric_distortion(shift_estimator, hr, lr_shifted, 2, channel=1, margin=4)
    assert stats.mean == pytest.approx(2.0) and stats.std == pytest.approx(0.0)
    aligned = geometric_distortion(shift_estimator, hr, lr, 2, channel=0)
    assert aligned.mean == pytest.approx(0.0)
    epe = end_point_error(stats.flow, shift, margin=2)
    assert epe.mean == pytest.approx(0.0)
    with pytest.raises(ValueError, match="out of range"):
        estimate_flow(shift_estimator, hr, lr, 2, channel=5)
    with pytest.raises(ValueError, match="does not match"):
        geometric_distortion(shift_estimator, hr, lr[..., :16, :16], 2, channel=0)


def test_radiometric_distortion() -> None:
    hr = images(2, 3, 64)
    lr = mtf_downscale(hr, 4, 0.4)
    bias, err = radiometric_distortion(hr, lr + torch.tensor([0.0, 0.01, -0.02]).view(1, 3, 1, 1), 4)
    assert torch.allclose(bias, torch.tensor([0.0, -0.01, 0.02]), atol=1e-6)
    assert torch.allclose(err, bias.abs(), atol=1e-6)
    with pytest.raises(ValueError, match="bands"):
        radiometric_distortion(hr, lr[:, :2], 4)
