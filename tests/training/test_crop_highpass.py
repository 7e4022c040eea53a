"""The quick profile's cheap-step keys: ``training.crop_size`` (random LR window, matching HR window), the
high-pass L1 term ``training.losses.highpass_l1`` and the amplitude-spectrum term
``training.losses.fft_amplitude_l1``."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import torch

from sisrlib.run_params import LossParams, TrainingParams
from sisrlib.training.fit import fit
from sisrlib.training.losses import per_band_fft_amplitude_l1, per_band_highpass_l1, per_band_l1
from sisrlib.training.module import SISRModule
from tests.helpers.training_fakes import BANDS, FakeDataModule, tiny_params

LOG_EVERY = {"log_every_n_steps": 1}


def test_highpass_l1_ignores_offsets_and_sees_detail() -> None:
    g = torch.Generator().manual_seed(0)
    ref = torch.rand(2, 3, 24, 24, generator=g)
    offset = ref + torch.tensor([0.5, -1.0, 2.0]).view(1, 3, 1, 1)
    assert torch.allclose(per_band_highpass_l1(offset, ref, 1.0), torch.zeros(3), atol=1e-6)
    noisy = ref + 0.1 * torch.randn(2, 3, 24, 24, generator=g)
    hp = per_band_highpass_l1(noisy, ref, 1.0)
    assert hp.shape == (3,)
    # white noise is mostly high-frequency: most of its L1 survives the high-pass
    assert bool((hp > 0.5 * per_band_l1(noisy, ref)).all())


def _wave(cycles_per_px: float, size: int = 32) -> torch.Tensor:
    """``[1, 1, size, size]``: a cosine along the columns, ``cycles_per_px`` cycles per pixel."""
    x = torch.arange(size, dtype=torch.float64)
    return torch.cos(2 * torch.pi * cycles_per_px * x).view(1, 1, 1, size).expand(1, 1, size, size).clone()


def test_fft_amplitude_l1_sees_the_energy_above_the_cut_not_where_it_lies() -> None:
    g = torch.Generator().manual_seed(0)
    ref = torch.rand(2, 3, 32, 32, generator=g, dtype=torch.float64)
    assert torch.equal(per_band_fft_amplitude_l1(ref, ref, 0.5), torch.zeros(3, dtype=torch.float64))
    # fine detail (0.4 cycles/px = 0.8 Nyquist) is seen above 0.5 Nyquist, coarse (0.1 = 0.2 Nyquist) is not
    fine, coarse = _wave(0.4), _wave(0.1)
    flat = torch.zeros_like(fine)
    seen = float(per_band_fft_amplitude_l1(fine, flat, 0.5))
    assert float(per_band_fft_amplitude_l1(coarse, flat, 0.5)) < 1e-2 * seen  # the window's side lobes
    assert float(per_band_fft_amplitude_l1(coarse, flat, 0.0)) > 0.5 * seen  # no cut: coarse detail counts
    # the same fine detail shifted by half a period (its opposite): same energy, almost no loss; an L1 pixel
    # term sees the full difference
    shifted = -fine
    assert float(per_band_fft_amplitude_l1(shifted, fine, 0.5)) < 1e-9
    assert float(per_band_l1(shifted, fine)) > 0.5
    with pytest.raises(ValueError, match="no frequency"):
        per_band_fft_amplitude_l1(ref[..., :1, :1], ref[..., :1, :1], 0.9)


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [("highpass_l1", -1.0, r"training\.losses\.highpass_l1 must be >= 0"),
     ("highpass_sigma", 0.0, "highpass_sigma must be > 0"),
     ("fft_amplitude_l1", -1.0, r"training\.losses\.fft_amplitude_l1 must be >= 0"),
     ("fft_min_frequency", 1.0, r"fft_min_frequency must lie in \[0, 1\)")],
)  # fmt: skip
def test_loss_keys_are_validated(key: str, value: float, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        LossParams(**{key: value})  # type: ignore[arg-type]


def test_crop_size_is_validated() -> None:
    with pytest.raises(ValueError, match=r"training\.crop_size must be >= 8"):
        TrainingParams(crop_size=4)


def test_training_window_takes_the_matching_hr_window(tmp_path: Path) -> None:
    params = tiny_params(tmp_path, training={"crop_size": 8})
    module = SISRModule(params.to_mapping(), list(BANDS), list(BANDS), 2.0)
    lr_coords = torch.arange(16.0).view(1, 1, 1, 16).expand(2, 4, 16, 16)
    hr_coords = (torch.arange(32.0) // 2).view(1, 1, 1, 32).expand(2, 4, 32, 32)
    rows_lr = torch.arange(16.0).view(1, 1, 16, 1).expand(2, 4, 16, 16)
    rows_hr = (torch.arange(32.0) // 2).view(1, 1, 32, 1).expand(2, 4, 32, 32)
    seen = set()
    for step in range(6):
        x, y, lr = module._training_window(lr_coords, hr_coords, None, step)
        xr, yr, _ = module._training_window(rows_lr, rows_hr, None, step)
        assert x.shape == (2, 4, 8, 8) and y.shape == (2, 4, 16, 16) and lr is None
        # the HR window covers exactly the LR window (columns and rows)
        assert torch.equal(y[..., ::2, ::2], x) and torch.equal(yr[..., ::2, ::2], xr)
        seen.add((int(x[0, 0, 0, 0]), int(xr[0, 0, 0, 0])))
    assert len(seen) > 1  # the window moves with the step
    # the same step draws the same window (seeded)
    a = module._training_window(lr_coords, hr_coords, None, 3)[0]
    assert torch.equal(a, module._training_window(lr_coords, hr_coords, None, 3)[0])


def test_training_with_crop_and_highpass_runs_and_is_reproducible(tmp_path: Path) -> None:
    losses = []
    for run in ("a", "b"):
        params = tiny_params(
            tmp_path / run,
            training={
                "max_steps": 3,
                "crop_size": 8,
                "losses": {"mse": 0.0, "l1": 1.0, "highpass_l1": 0.5, "fft_amplitude_l1": 0.5},
                **LOG_EVERY,
            },
        )
        log = pd.read_csv(fit(params, FakeDataModule()).metrics_csv)
        assert {"training/highpass_l1_average", "training/fft_amplitude_l1_average"} <= set(log.columns)
        losses.append(log["training/total_loss"].dropna().tolist())
    assert len(losses[0]) == 3
    assert losses[0] == losses[1]
