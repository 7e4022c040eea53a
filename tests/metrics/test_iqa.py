"""Own GMSD, MS-GMSD and HaarPSI (sisrlib.metrics.iqa): known answers, monotone responses, shapes, dtypes."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch

from sisrlib.degradation import blur, upsample
from sisrlib.metrics.iqa import gmsd, haarpsi, multi_scale_gmsd

Metric = Callable[..., torch.Tensor]
ALL: list[tuple[str, Metric, float]] = [
    ("GMSD", gmsd, 0.0),
    ("MS-GMSD", multi_scale_gmsd, 0.0),
    ("HaarPSI", haarpsi, 1.0),
]


def images(n: int = 3, size: int = 48, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Textured reflectance-like patches ``[n, 1, size, size]`` in [0, 1]."""
    g = torch.Generator().manual_seed(0)
    coarse = torch.rand(n, 1, size // 4, size // 4, generator=g, dtype=torch.float64)
    fine = torch.rand(n, 1, size, size, generator=g, dtype=torch.float64)
    return (0.05 + 0.3 * upsample(coarse, 4) + 0.05 * fine).clamp(0, 1).to(dtype)


def noisy(x: torch.Tensor, std: float, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (x + std * torch.randn(x.shape, generator=g, dtype=torch.float64).to(x.dtype)).clamp(0, 1)


@pytest.mark.parametrize(("name", "fn", "identical"), ALL)
def test_identical_images_give_the_known_answer(name: str, fn: Metric, identical: float) -> None:
    x = images()
    value = fn(x, x.clone())
    assert value.shape == (), f"{name} returns a scalar (batch mean)"
    assert value.dtype == x.dtype
    assert float(value) == pytest.approx(identical, abs=1e-6)
    zeros = torch.zeros(2, 1, 32, 32)
    assert float(fn(zeros, zeros)) == pytest.approx(identical, abs=1e-6), "no structure at all"


@pytest.mark.parametrize("fn", [gmsd, multi_scale_gmsd])
def test_deviations_grow_with_the_noise(fn: Metric) -> None:
    x = images()
    values = [float(fn(noisy(x, std), x)) for std in (0.002, 0.01, 0.05)]
    assert 0.0 < values[0] < values[1] < values[2], values
    assert float(fn(blur(x, 0.1), x)) > 0.0, "blur is detected"


def test_haarpsi_falls_with_the_noise() -> None:
    x = images()
    values = [float(haarpsi(noisy(x, std), x)) for std in (0.002, 0.01, 0.05)]
    assert 1.0 > values[0] > values[1] > values[2] > 0.0, values
    assert 0.0 < float(haarpsi(blur(x, 0.1), x)) < 1.0


def test_batch_mean_and_data_range() -> None:
    x = images()
    y = noisy(x, 0.01)
    for _, fn, _ in ALL:
        per_image = torch.stack([fn(y[k : k + 1], x[k : k + 1]) for k in range(x.shape[0])])
        assert torch.allclose(fn(y, x), per_image.mean(), atol=1e-6)
        # the same images on a [0, 255] scale give the same value with data_range=255
        assert torch.allclose(fn(255 * y, 255 * x, data_range=255.0), fn(y, x), atol=1e-5)


def test_float64_and_rgb_luma() -> None:
    x64 = images(dtype=torch.float64)
    y64 = noisy(x64, 0.01)
    for name, fn, identical in ALL:
        value = fn(y64, x64)
        assert value.dtype == torch.float64, name
        assert float(fn(x64, x64)) == pytest.approx(identical, abs=1e-12), name
        assert float(value) == pytest.approx(float(fn(y64.float(), x64.float())), rel=1e-3, abs=1e-6), name
        # a gray RGB image is its own luma
        assert torch.allclose(fn(y64.expand(-1, 3, -1, -1), x64.expand(-1, 3, -1, -1)), value), name


def test_gradients_flow_to_the_prediction() -> None:
    x = images(n=2)
    for name, fn, _ in ALL:
        pred = noisy(x, 0.01).requires_grad_(True)
        fn(pred, x).backward()
        assert pred.grad is not None and torch.isfinite(pred.grad).all(), name


def test_bad_input_is_refused() -> None:
    x = images()
    for name, fn, _ in ALL:
        with pytest.raises(ValueError, match="same shape"):
            fn(x, x[:, :, :40])
        with pytest.raises(ValueError, match=r"\[N, C, H, W\]"):
            fn(x[0], x[0])
        with pytest.raises(ValueError, match="1 \\(grayscale\\) or 3 \\(RGB\\) channels"):
            fn(x.expand(-1, 2, -1, -1), x.expand(-1, 2, -1, -1))
        with pytest.raises(ValueError, match=f"{name} needs images of at least"):
            fn(x[..., :3, :3], x[..., :3, :3])
    with pytest.raises(ValueError, match="at least 16×16"):
        multi_scale_gmsd(x[..., :15, :15], x[..., :15, :15])
    assert float(gmsd(x[..., :15, :15], x[..., :15, :15])) == 0.0, "GMSD works on small (odd) patches"
