"""Degradation operators: PSF, MTF-aware downscaling, high-pass, LR and Wald simulation."""

from __future__ import annotations

import math

import pytest
import torch

from sisrlib.data.simulation import separable_mtf_downscale
from sisrlib.degradation import (
    PSF_KERNELS,
    add_noise,
    bicubic_margin,
    blur,
    flip_concat,
    high_pass,
    mtf_downscale,
    psf_half_width,
    psf_kernel,
    psf_sigma,
    simulate_lr,
    upsample,
    wald_degrade,
)

CASES = [(2.0, 0.1), (2.0, 0.4), (2.0, 0.3), (4.0, 0.1), (4.0, 0.4), (2.5 / 1.5, 0.1), (5 / 1.5, 0.1)]


def sampled_mtf(kernel: torch.Tensor, frequency: float) -> float:
    """Transfer of the sampled kernel at ``frequency`` (cycles per pixel) along the x axis."""
    hw = kernel.shape[-1] // 2
    j = torch.arange(-hw, hw + 1, dtype=torch.float64)
    return float((kernel.double() * torch.cos(2 * math.pi * frequency * j)[None, :]).sum())


@pytest.mark.parametrize(("factor", "mtf"), CASES)
def test_psf_sums_to_one_and_has_the_requested_mtf(factor: float, mtf: float) -> None:
    kernel = psf_kernel(factor, mtf, dtype=torch.float64)
    assert kernel.shape[0] == kernel.shape[1] and kernel.shape[0] % 2 == 1
    assert float(kernel.sum()) == pytest.approx(1.0, abs=1e-12)
    assert torch.allclose(kernel, kernel.T) and torch.allclose(kernel, kernel.flip(0))
    # MTF at the Nyquist frequency of the coarse grid (0.5 / factor cycles per fine pixel): within 1 %
    assert sampled_mtf(kernel, 0.5 / factor) == pytest.approx(mtf, rel=0.01)


def test_psf_sigma_formula_of_the_spec() -> None:
    # σ = mtf_res·√(−2 ln mtf)/π pixels for res = 1 (torchsisr's examples)
    assert psf_sigma(2, 0.4) == pytest.approx(0.86, abs=0.01)
    assert psf_sigma(2, 0.1) == pytest.approx(1.37, abs=0.01)
    assert psf_sigma(4, 0.4) == pytest.approx(1.72, abs=0.01)
    with pytest.raises(ValueError, match="mtf"):
        psf_sigma(2, 1.5)


@pytest.mark.parametrize("factor", [2, 4, 2.5])
@pytest.mark.parametrize("mtf", [0.1, 0.4, None])
def test_downscaling_a_constant_gives_the_constant(factor: float, mtf: float | None) -> None:
    if mtf is None and factor != int(factor):
        pytest.skip("area downscaling needs an integer factor")
    x = torch.full((2, 3, 40, 48), 1234.5, dtype=torch.float64)
    y = mtf_downscale(x, factor, mtf)
    assert y.shape == (2, 3, int(40 // factor), int(48 // factor))
    assert torch.allclose(y, torch.full_like(y, 1234.5), atol=1e-9)


def test_upsample_and_blur_keep_a_constant() -> None:
    x = torch.full((1, 2, 9, 7), -3.25, dtype=torch.float64)
    assert torch.allclose(upsample(x, 2), torch.full((1, 2, 18, 14), -3.25, dtype=torch.float64))
    assert torch.allclose(blur(x, 0.4), x)


@pytest.mark.parametrize("factor", [2, 4])
def test_high_pass_of_a_constant_is_zero(factor: int) -> None:
    x = torch.full((2, 4, 35, 42), 812.0)
    hp = high_pass(x, factor)
    assert hp.shape == (2, 4, (35 // factor) * factor, (42 // factor) * factor)
    assert float(hp.abs().max()) < 1e-3


def test_high_pass_keeps_high_frequencies() -> None:
    # a checkerboard (Nyquist) is removed by the downscaling, so it survives the high-pass
    x = ((torch.arange(32)[:, None] + torch.arange(32)[None, :]) % 2).float()[None, None] * 100
    hp = high_pass(x, 2, mtf=0.1)
    assert float(hp[..., 4:-4, 4:-4].std()) > 30


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_shapes_dtypes_and_batching(dtype: torch.dtype) -> None:
    x = torch.rand(3, 4, 64, 48, dtype=dtype)
    assert mtf_downscale(x, 2).dtype == dtype
    assert simulate_lr(x, 4, 0.4).shape == (3, 4, 16, 12)
    assert upsample(x, 2).shape == (3, 4, 128, 96)
    # batched = per-sample
    per_sample = torch.cat([mtf_downscale(x[i : i + 1], 2, 0.3) for i in range(3)])
    assert torch.allclose(mtf_downscale(x, 2, 0.3), per_sample)
    with pytest.raises(ValueError, match=r"\[B, C, H, W\]"):
        mtf_downscale(x[0], 2)
    with pytest.raises(TypeError, match="floating"):
        mtf_downscale(torch.zeros(1, 1, 8, 8, dtype=torch.int16), 2)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_device_is_kept() -> None:
    x = torch.rand(2, 4, 32, 32, device="cuda")
    assert mtf_downscale(x, 2).device == x.device
    assert high_pass(x, 2).device == x.device
    assert torch.allclose(mtf_downscale(x, 2).cpu(), mtf_downscale(x.cpu(), 2), atol=1e-4)


def test_noise_is_reproducible_with_a_generator() -> None:
    x = torch.zeros(2, 4, 16, 16)
    a = add_noise(x, torch.tensor([1.0, 2.0, 3.0, 4.0]), torch.Generator().manual_seed(5))
    b = add_noise(x, torch.tensor([1.0, 2.0, 3.0, 4.0]), torch.Generator().manual_seed(5))
    assert torch.equal(a, b)
    stds = a.transpose(0, 1).reshape(4, -1).std(dim=1)
    assert torch.allclose(stds, torch.tensor([1.0, 2.0, 3.0, 4.0]), rtol=0.25)
    assert add_noise(x, None) is x


def test_wald_degrade_shapes_of_the_reference_test() -> None:
    # torchsisr's test: target 10×64×64, hr 4×32×32, lr 6×16×16 from 10 m 4×128×128 and 20 m 6×64×64
    target, hr, lr = wald_degrade(torch.rand(2, 4, 128, 128), torch.rand(2, 6, 64, 64))
    assert target.shape == (2, 10, 64, 64) and hr.shape == (2, 4, 32, 32) and lr.shape == (2, 6, 16, 16)
    target, hr, lr = wald_degrade(torch.rand(1, 4, 64, 64), torch.rand(1, 6, 32, 32), pad_to_input_size=True)
    assert target.shape == (1, 10, 64, 64) and hr.shape == (1, 4, 32, 32) and lr.shape == (1, 6, 16, 16)
    assert flip_concat(torch.rand(1, 1, 3, 5)).shape == (1, 1, 6, 10)


# ---- PSF kernels: "exact" (⌈4σ⌉) and torchsisr's fixed 7 × 7 ("reference") ---------------------------------


def effective_mtf_7x7(factor: float, mtf: float) -> float:
    """From the definition, without the package: the DFT at the LR Nyquist (0.5/factor cycles per HR px) of
    the 7 × 7 Gaussian of σ = factor·√(−2 ln mtf)/π HR px, sampled at −3…3 and normalised to sum 1. The kernel
    is separable and the other axis sums to 1, so the 2-D DFT at (ν, 0) is the 1-D one."""
    sigma = factor * math.sqrt(-2.0 * math.log(mtf)) / math.pi
    taps = [math.exp(-0.5 * (k / sigma) ** 2) for k in range(-3, 4)]
    total = sum(taps)
    nu = 0.5 / factor
    return sum(t / total * math.cos(2 * math.pi * nu * k) for t, k in zip(taps, range(-3, 4), strict=True))


# torchsisr's values at ×4 (LR fidelity 0.1, geometric metric 0.3, registration simulation 0.4)
REFERENCE_X4 = {0.1: 0.282, 0.3: 0.392, 0.4: 0.454}


@pytest.mark.parametrize("mtf", [0.1, 0.3, 0.4])
def test_reference_kernel_effective_mtf_known_answers(mtf: float) -> None:
    assert effective_mtf_7x7(4.0, mtf) == pytest.approx(REFERENCE_X4[mtf], abs=5e-4)
    for factor in (2.0, 4.0):
        kernel = psf_kernel(factor, mtf, dtype=torch.float64, kernel="reference")
        assert kernel.shape == (7, 7)
        assert float(kernel.sum()) == pytest.approx(1.0, abs=1e-12)
        assert sampled_mtf(kernel, 0.5 / factor) == pytest.approx(effective_mtf_7x7(factor, mtf), abs=1e-9)
    # at ×2 the 7 × 7 support holds most of the Gaussian: the effective MTF is near the nominal one...
    assert effective_mtf_7x7(2.0, mtf) == pytest.approx(mtf, abs=0.01)
    # ...at ×4 it is truncated and transfers more; the exact kernel keeps the nominal MTF
    assert effective_mtf_7x7(4.0, mtf) > mtf + 0.05
    exact = psf_kernel(4.0, mtf, dtype=torch.float64)
    assert sampled_mtf(exact, 0.125) == pytest.approx(mtf, abs=1e-3)


def test_reference_kernel_at_x2_values() -> None:
    # from the definition: 0.0928 (0.1), 0.2999 (0.3), 0.4003 (0.4)
    assert effective_mtf_7x7(2.0, 0.1) == pytest.approx(0.0928, abs=1e-4)
    assert effective_mtf_7x7(2.0, 0.3) == pytest.approx(0.2999, abs=1e-4)
    assert effective_mtf_7x7(2.0, 0.4) == pytest.approx(0.4003, abs=1e-4)


def test_exact_kernel_is_the_default_and_unchanged() -> None:
    for factor, mtf in CASES:
        sigma = psf_sigma(factor, mtf)
        kernel = psf_kernel(factor, mtf)
        assert kernel.shape[0] == 2 * max(1, math.ceil(4 * sigma)) + 1
        assert torch.equal(kernel, psf_kernel(factor, mtf, kernel="exact"))
    x = torch.rand(2, 3, 40, 40, generator=torch.Generator().manual_seed(1))
    assert torch.equal(mtf_downscale(x, 4, 0.1), mtf_downscale(x, 4, 0.1, kernel="exact"))
    assert torch.equal(psf_kernel(4, 0.1, half_width=3), psf_kernel(4, 0.1, kernel="reference"))


def test_every_psf_function_takes_the_kernel() -> None:
    g = torch.Generator().manual_seed(2)
    x = torch.rand(1, 4, 64, 64, generator=g, dtype=torch.float64)
    pairs = [
        # same grid: σ = 0.97 px for MTF 0.01 (at 0.1, ⌈4σ⌉ = 3 already gives the 7 × 7 kernel)
        (blur(x, 0.01), blur(x, 0.01, kernel="reference"), blur(x, 0.01, half_width=3)),
        (
            mtf_downscale(x, 4, 0.1),
            mtf_downscale(x, 4, 0.1, kernel="reference"),
            mtf_downscale(x, 4, 0.1, half_width=3),
        ),
        (high_pass(x, 4), high_pass(x, 4, kernel="reference"), high_pass(x, 4, half_width=3)),
        (
            simulate_lr(x, 4, 0.4),
            simulate_lr(x, 4, 0.4, kernel="reference"),
            simulate_lr(x, 4, 0.4, half_width=3),
        ),
    ]
    for exact, reference, seven in pairs:
        assert torch.equal(reference, seven)
        assert not torch.allclose(exact, reference)
    t_e, hr_e, lr_e = wald_degrade(x, x[..., :32, :32])
    t_r, hr_r, lr_r = wald_degrade(x, x[..., :32, :32], kernel="reference")
    assert t_e.shape == t_r.shape and not torch.allclose(hr_e, hr_r) and not torch.allclose(lr_e, lr_r)
    # the separable float64 version of the data builders follows the same kernel
    assert torch.allclose(
        separable_mtf_downscale(x, 4, 0.35, kernel="reference"),
        mtf_downscale(x, 4, 0.35, kernel="reference"),
        atol=1e-9,
    )


def test_kernel_errors_name_the_choices() -> None:
    assert PSF_KERNELS == ("exact", "reference")
    with pytest.raises(ValueError, match=r"kernel must be one of \['exact', 'reference'\], got 'seven'"):
        psf_kernel(2, 0.1, kernel="seven")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="kernel='reference' is torchsisr's 7x7"):
        psf_kernel(2, 0.1, half_width=5, kernel="reference")
    assert psf_half_width(10.0, "reference") == 3 and psf_half_width(0.1) == 1


# ---- the bicubic margin ------------------------------------------------------------------------------------


def test_bicubic_margin_known_answers() -> None:
    # output q samples x = (q + ½)/f − ½ with taps ⌊x⌋−1 … ⌊x⌋+2: clamped (tile-dependent) while ⌊x⌋ − 1 < 0
    assert [bicubic_margin(f) for f in (2.0, 3.0, 4.0)] == [3, 4, 6]
    assert bicubic_margin(1.0) == 0  # identity: x = q, a single tap


@pytest.mark.parametrize("factor", [2.0, 3.0, 4.0])
def test_bicubic_margin_bounds_what_depends_beyond_the_tile(factor: float) -> None:
    big = torch.rand(1, 2, 40, 40, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    tile = big[..., 10:30, 10:30]
    m = bicubic_margin(factor)
    f = int(factor)
    up_big = upsample(big, factor)[..., 10 * f : 30 * f, 10 * f : 30 * f]
    up_tile = upsample(tile, factor)
    inner = (..., slice(m, up_tile.shape[-2] - m), slice(m, up_tile.shape[-1] - m))
    assert torch.allclose(up_tile[inner], up_big[inner], atol=1e-12)
    # one pixel further out already depends on the padding
    assert not torch.allclose(up_tile[..., m - 1, m:-m], up_big[..., m - 1, m:-m], atol=1e-12)
