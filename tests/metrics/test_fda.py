"""Frequency Domain Analysis: ring construction, known answers of FRR / FRO / FRU, accumulation, bad input."""

from __future__ import annotations

import math

import pytest
import torch

from sisrlib.degradation import blur, mtf_downscale, upsample
from sisrlib.metrics.fda import (
    ProfileAccumulator,
    fda_noise,
    fft_profile,
    fro_fru,
    frr,
    ring_frequencies,
    to_db,
)


def masked_loop(images: torch.Tensor, size: int) -> torch.Tensor:
    """The reference's construction, literally (full fft2 + fftshift, one mask per ring), in float64.

    Radii in FFT bins: ``fftfreq(size, d=W/size)`` is ``k/W``, so ``2j/W < r < (2j+1)/W`` is ``2j < k <
    2j+1``; integer bins keep samples exactly on a ring edge (e.g. (3, 4) → 5) out, whatever W."""
    amp = torch.fft.fftshift(torch.fft.fft2(images.double(), s=(size, size)), dim=(-2, -1)).abs().mean(0)
    bins = torch.fft.fftshift(torch.fft.fftfreq(size, d=1.0 / size, dtype=torch.float64))
    radius = torch.sqrt(bins.view(1, -1) ** 2 + bins.view(-1, 1) ** 2)
    out = []
    for j in range(size // 4):
        mask = (radius > 2 * j) & (radius < 2 * j + 1)
        out.append(amp[:, mask].mean(-1) if mask.any() else torch.full((images.shape[1],), math.nan))
    return torch.stack(out, -1)


def scenes(n: int = 3, bands: int = 2, size: int = 32, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return upsample(torch.rand(n, bands, size // 4, size // 4, generator=g), 4) + 0.05 * torch.rand(
        n, bands, size, size, generator=g
    )


def test_reference_rings_match_the_masked_definition() -> None:
    x = scenes()
    freqs, profile = fft_profile(x, 64)
    expected = masked_loop(x, 64)
    assert profile.shape == (2, 16) and freqs.shape == (16,)
    assert torch.isnan(profile[:, 0]).all(), "ring 0 (0 < r < 1 bin) holds no sample: NaN"
    assert torch.allclose(profile[:, 1:].double(), expected[:, 1:], rtol=1e-5)
    assert torch.allclose(profile[:, 1:].double(), expected[:, 1:], rtol=1e-5)
    # reported frequency (2j + 1/2)/W in Nyquist units when size = 2W
    assert torch.allclose(freqs, (2 * torch.arange(16, dtype=torch.float64) + 0.5) / 32)


def test_non_square_images_and_size_equal_to_the_image() -> None:
    x = scenes(2, 1, 32)[..., :24]
    _, profile = fft_profile(x, 32)
    assert profile.shape == (1, 8)
    assert torch.allclose(profile[:, 1:].double(), masked_loop(x, 32)[:, 1:], rtol=1e-5)


def test_constant_image_profile() -> None:
    c = torch.full((2, 3, 32, 32), 0.3)
    _, ref = fft_profile(c, 32, rings="reference")
    _, cont = fft_profile(c, 32, rings="contiguous")
    assert torch.isnan(ref[:, 0]).all()
    assert ref[:, 1:].abs().max() < 1e-4  # nothing but the DC, which no reference ring holds
    assert (cont[:, 0] > 1.0).all()  # the DC is in contiguous ring 0
    assert cont[:, 1:].abs().max() < 1e-4
    assert torch.allclose(ring_frequencies(32, "contiguous"), (2 * torch.arange(8) + 1).double() * 2 / 32)


def test_contiguous_rings_cover_every_radius_below_nyquist() -> None:
    from sisrlib.metrics.fda import _ring_index_cpu

    _, _, counts_ref = _ring_index_cpu(64, "reference")
    _, _, counts_all = _ring_index_cpu(64, "contiguous")
    ky = torch.fft.fftfreq(64, d=1 / 64).view(-1, 1)
    kx = torch.fft.fftfreq(64, d=1 / 64).view(1, -1)
    inside = (torch.sqrt(kx**2 + ky**2) < 32).sum()
    assert counts_all.sum() == inside
    assert counts_ref.sum() < counts_all.sum()
    assert counts_ref[0] == 0 and (counts_ref[1:] > 0).all()


def test_to_db_is_relative_to_ring_one() -> None:
    p = torch.tensor([[math.nan, 2.0, 1.0, 0.2]])
    db = to_db(p)
    assert torch.isnan(db[0, 0]) and db[0, 1] == 0
    assert torch.allclose(db[0, 2:], torch.tensor([10 * math.log10(0.5), 10 * math.log10(0.1)]))


def profiles_db(size: int = 64) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """dB profiles of a sharp target, its blurred bicubic input and a half-restored prediction."""
    target = scenes(4, 2, 32, seed=1) + 0.2 * torch.rand(
        4, 2, 32, 32, generator=torch.Generator().manual_seed(3)
    )
    lr_input = upsample(mtf_downscale(target, 2, 0.1), 2)
    pred = 0.5 * (target + lr_input)
    t = to_db(fft_profile(target, size)[1])
    i = to_db(fft_profile(lr_input, size)[1])
    p = to_db(fft_profile(pred, size)[1])
    return p, t, i


def test_frr_known_answers() -> None:
    p, t, i = profiles_db()
    frr_input, arr_input, prr = frr(i, t, i)
    assert torch.allclose(frr_input, torch.zeros(2), atol=1e-5) and torch.allclose(arr_input, torch.zeros(2))
    frr_target, arr_target, prr_target = frr(t, t, i)
    assert torch.allclose(frr_target, torch.full((2,), 100.0))
    assert torch.allclose(arr_target, prr_target) and (prr > 0).all()
    mid, _, _ = frr(p, t, i)
    assert ((mid > 0) & (mid < 100)).all()
    # works on a single band [R]
    single, _, _ = frr(p[0], t[0], i[0])
    assert single.shape == () and torch.isclose(single, mid[0])
    # over-restoration is capped at the target
    over, _, _ = frr(t + 3.0, t, i)
    assert torch.allclose(over, torch.full((2,), 100.0))


def test_frr_ring_range_follows_the_reference() -> None:
    n = 16
    t = -torch.arange(n, dtype=torch.float64) * 0.1
    i = t - torch.linspace(0, 3, n, dtype=torch.float64)
    p = i.clone()
    p[12:] = t[12:]  # restore only the rings 12..15
    low, _, _ = frr(p, t, i, 0.0, 0.7)  # rings [1, floor(0.7·15) = 10)
    assert low == 0
    high, _, _ = frr(p, t, i, 0.8, 1.0)  # rings [12, 15)
    assert torch.isclose(high, torch.tensor(100.0, dtype=torch.float64))
    assert fda_noise(p, t, i) == pytest.approx(100.0)


def test_fro_fru_known_answers() -> None:
    p, t, i = profiles_db()
    below_target = torch.minimum(p, t)
    fro, _ = fro_fru(below_target, t, i)
    assert torch.allclose(fro, torch.zeros(2), atol=1e-6)
    above_input = torch.maximum(p, i)
    _, fru = fro_fru(above_input, t, i)
    assert torch.allclose(fru, torch.zeros(2), atol=1e-6)
    fro_noisy, _ = fro_fru(t + 1.0, t, i)
    assert (fro_noisy > 0).all()
    _, fru_blurred = fro_fru(i - 2.0, t, i)
    assert (fru_blurred > 0).all()


def test_frr_rises_when_the_prediction_gets_sharper() -> None:
    target = scenes(4, 1, 32, seed=5) + 0.2 * torch.rand(
        4, 1, 32, 32, generator=torch.Generator().manual_seed(6)
    )
    lr_input = upsample(mtf_downscale(target, 2, 0.1), 2)
    t = to_db(fft_profile(target, 64)[1])
    i = to_db(fft_profile(lr_input, 64)[1])
    values = [
        float(frr(to_db(fft_profile(blur(target, mtf), 64)[1]), t, i)[0][0]) for mtf in (0.05, 0.2, 0.5, 0.9)
    ]
    assert values == sorted(values), values


def test_profile_accumulator_weights_by_batch_size() -> None:
    x = scenes(5, 2, 32)
    acc = ProfileAccumulator(64)
    acc.update(x[:2])
    acc.update(x[2:])
    freqs, mean = acc.compute()
    _, whole = fft_profile(x, 64)
    assert acc.count == 5 and freqs.shape == (16,)
    assert torch.allclose(mean[:, 1:], whole[:, 1:].double(), rtol=1e-5)
    with pytest.raises(ValueError, match="number of bands"):
        acc.update(x[:, :1])
    with pytest.raises(ValueError, match="before any update"):
        ProfileAccumulator(64).compute()


def test_bad_inputs_are_rejected_with_clear_messages() -> None:
    x = scenes()
    with pytest.raises(ValueError, match="smaller than the image"):
        fft_profile(x, 16)
    with pytest.raises(ValueError, match="multiple of 4"):
        fft_profile(x, 66)
    with pytest.raises(ValueError, match=r"\[B, C, H, W\]"):
        fft_profile(x[0], 64)
    bad = x.clone()
    bad[0, 0, 3, 3] = math.nan
    with pytest.raises(ValueError, match="NaN"):
        fft_profile(bad, 64)
    with pytest.raises(ValueError, match="rings"):
        fft_profile(x, 64, rings="spiral")  # type: ignore[arg-type]
    p, t, i = profiles_db()
    with pytest.raises(ValueError, match="same shape"):
        frr(p[:1], t, i)
    with pytest.raises(ValueError, match="same shape"):
        fro_fru(p, t[:, :8], i)
    with pytest.raises(ValueError, match="fmin"):
        frr(p, t, i, 0.9, 0.5)


def test_fro_fru_reference_sign() -> None:
    p, t, i = profiles_db()
    fro, fru = fro_fru(p, t, i)
    fro_ref, fru_ref = fro_fru(p, t, i, reference_sign=True)
    sum_t, sum_i = t[:, 1:].sum(-1), i[:, 1:].sum(-1)
    assert torch.allclose(fro_ref, 100 * (sum_t - torch.maximum(p, t)[:, 1:].sum(-1)) / sum_t)
    assert torch.allclose(fru_ref, 100 * (i - torch.minimum(p, i))[:, 1:].sum(-1) / sum_i)
    assert torch.allclose(fro.abs(), fro_ref.abs()) and torch.allclose(fru.abs(), fru_ref.abs())
