"""Calibration of the geometric distortion measure (``geom_mean``) on known shifts, blur and gain.

The measure is the one of the evaluation (``geometric_distortion``: the HR image downscaled with MTF 0.3, a
flow estimator against the LR reference, the mean flow norm in LR px inside a margin). With an exact estimator
(the least-squares global translation) it must read a shift as the shift and a blur or a gain as no motion.
With the trained registration network of the quick profile (when it has been trained: ``make paper``), the
shifts must be read within 0.15 LR px; what it reads on blur, gain and added detail is printed (the confound
of a blurry model's non-geometric error with motion), and bounded loosely.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from sisrlib.degradation import depthwise_filter, psf_kernel
from sisrlib.metrics.distortion import CalibrationReading, GlobalShiftEstimator, calibrate_geometric

ROOT = Path(__file__).resolve().parents[2]
QUICK_REGISTRATION = ROOT / "build" / "quick" / "runs" / "registration_s2v1x2" / "checkpoints" / "best.ckpt"


def _texture(batch: int, size: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, 1, size, size, generator=g, dtype=torch.float64)
    return (depthwise_filter(x, psf_kernel(1.0, 0.3, 1.0)) * 0.05 + 0.1).float()


def _by_kind(readings: list[CalibrationReading]) -> dict[tuple[str, float], CalibrationReading]:
    return {(r.kind, r.level): r for r in readings}


def test_the_measure_reads_known_shifts_and_no_motion_for_blur_and_gain() -> None:
    hr = _texture(3, 96)
    readings = calibrate_geometric(GlobalShiftEstimator(), hr, factor=2.0, margin_lr=4)
    got = _by_kind(readings)
    kinds = ["none"] + ["shift"] * 3 + ["blur"] * 3 + ["gain"] * 3 + ["residual"] * 2
    assert [r.kind for r in readings] == kinds
    assert got[("none", 0.0)].read_px < 0.02
    for shift in (0.25, 0.5, 1.0):
        r = got[("shift", shift)]
        assert r.true_px == shift
        assert r.read_px == pytest.approx(shift, abs=0.03)
        assert r.read_std_px < 0.03  # a global shift: the same everywhere
    for key, r in got.items():
        if key[0] in ("blur", "gain", "residual"):
            assert r.true_px == 0.0 and r.read_px < 0.03, r


def test_calibration_rejects_more_than_one_band() -> None:
    with pytest.raises(ValueError, match="one band"):
        calibrate_geometric(GlobalShiftEstimator(), torch.zeros(1, 2, 32, 32), factor=2.0)


@pytest.mark.skipif(not QUICK_REGISTRATION.is_file(), reason="the quick registration network is not trained")
def test_the_trained_registration_network_reads_shifts_and_some_blur_as_motion() -> None:  # pragma: no cover
    from sisrlib.checkpoint import load_registration

    estimator = load_registration(QUICK_REGISTRATION, map_location="cpu")
    hr = _texture(4, 128, seed=1) * 10 - 0.5  # standardised-like values
    readings = calibrate_geometric(estimator, hr, factor=2.0, margin_lr=8)
    for r in readings:
        print(f"{r.kind} {r.level:.2f}: true {r.true_px:.2f} px, read {r.read_px:.3f} ± {r.read_std_px:.3f}")
    got = _by_kind(readings)
    floor = got[("none", 0.0)].read_px
    for shift in (0.25, 0.5, 1.0):
        assert got[("shift", shift)].read_px == pytest.approx(shift, abs=0.15 + floor)
    # blur, gain and another patch's detail are no motion; a learned estimator reads some: bounded
    for key, r in got.items():
        if key[0] in ("blur", "gain", "residual"):
            assert r.read_px < 1.0
