"""Oracle references of simulated sites: the target brought into the LR sensor's geometry and radiometry, the
kept-distortion measure (``oracle_geom``) and the oracle columns of the evaluation."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from sisrlib.data.batch import Batch
from sisrlib.data.embedded_simulation import REGIMES, SiteDistortion, simulate_group
from sisrlib.degradation import depthwise_filter, mtf_downscale, psf_kernel
from sisrlib.experiments.evaluation.loop import ORACLE_METRICS, evaluate_predictors
from sisrlib.experiments.evaluation.params import EvaluationParams, RunSpec
from sisrlib.flow import flow_norm, simulate_flow, upsample_flow, warp
from sisrlib.metrics.oracle import (
    REFINE_ITERATIONS,
    KeptDistortion,
    oracle_target,
    radiometric_decomposition,
)
from sisrlib.metrics.pixel import crop
from sisrlib.predictors import BicubicPredictor, Predictor

FACTOR = 2
NOISE = (6.0, 8.0, 13.0, 16.0)
BANDS = ("B2", "B3", "B4", "B8")


def _texture(batch: int, channels: int, size: int, seed: int) -> torch.Tensor:
    """Smooth random DN images (a land-like texture), float64."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, channels, size, size, generator=g, dtype=torch.float64)
    return depthwise_filter(x, psf_kernel(1.0, 0.3, 1.0)) * 1500.0 + 2500.0


def _simulated(target_units: bool = False, seed: int = 0) -> tuple[torch.Tensor, ...]:
    """A simulated group as the embedded sites are built: (target, inputs, true_flow, true_radiometry)."""
    margin = 6
    hr_ext = _texture(3, 4, 64 + 2 * margin * FACTOR, seed)
    site = SiteDistortion((0.5, -0.3), (1.04, 0.97, 1.02, 0.95), (20.0, -15.0, 5.0, 25.0))
    g = torch.Generator().manual_seed(seed + 1)
    group = simulate_group(
        hr_ext,
        None,
        FACTOR,
        margin,
        REGIMES["strong"],
        site,
        NOISE,
        g,
        target_gain=(0.8, 0.7, 0.75, 0.55) if target_units else None,
        target_offset=(120.0, 90.0, 60.0, 40.0) if target_units else None,
    )
    return group.target, group.inputs, group.true_flow, group.true_radiometry


@pytest.mark.parametrize("target_units", [False, True], ids=["sen2venus-like", "worldstrat-like"])
def test_the_oracle_target_downscaled_is_the_input_up_to_noise(target_units: bool) -> None:
    target, inputs, flow, rad = _simulated(target_units)
    oracle = oracle_target(target, inputs, flow, rad)
    assert oracle.shape == target.shape and oracle.dtype == torch.float32
    border = 5  # LR px: larger than the largest displacement (reflection padding of the warp)
    err = crop(mtf_downscale(oracle.double(), FACTOR, REGIMES["strong"].mtf) - inputs, border)
    rms = err.square().mean(dim=(0, 2, 3)).sqrt()
    unaligned = crop(mtf_downscale(target, FACTOR, REGIMES["strong"].mtf) - inputs, border)
    for k, noise in enumerate(NOISE):
        assert float(rms[k]) < 1.5 * noise  # noise plus rounding
        assert float(unaligned[:, k].square().mean().sqrt()) > 4 * noise
    assert float(err.mean(dim=(0, 2, 3)).abs().max()) < 2.0  # DN


def test_the_radiometric_decomposition_is_exact_and_finds_the_unit_change() -> None:
    _, inputs, _, rad = _simulated(target_units=True)
    a, c, rho = radiometric_decomposition(inputs, rad)
    s = inputs - rad
    assert torch.allclose(a * s + c + rho, rad, atol=1e-6)
    # hr = g·DN + o and the LR sensor's gain ≈ 1 ± 0.05: 1 + a ≈ gain / g
    expected = torch.tensor([1.04 / 0.8, 0.97 / 0.7, 1.02 / 0.75, 0.95 / 0.55], dtype=torch.float64)
    assert torch.allclose((1 + a).mean(dim=0).flatten(), expected, rtol=0.03)


def test_oracle_target_errors_name_the_problem() -> None:
    target, inputs, flow, rad = _simulated()
    with pytest.raises(ValueError, match="true flow's grid"):
        oracle_target(target, inputs[..., :-2], flow, rad)
    bad = rad.clone()
    bad[0, 0, 0, 0] = math.nan
    with pytest.raises(ValueError, match="NaN"):
        oracle_target(target, inputs, flow, bad)


@pytest.fixture(scope="module")
def scene() -> tuple[torch.Tensor, torch.Tensor, KeptDistortion]:
    g = torch.Generator().manual_seed(3)
    target = _texture(4, 3, 80, seed=5)
    flow = simulate_flow(4, 40, 40, 0.8, 10.0, g, dtype=torch.float64) + 0.5
    return target, flow, KeptDistortion(target, flow, margin_lr=6, iterations=REFINE_ITERATIONS)


@pytest.mark.parametrize("kept", [0.0, 0.25, 0.5, 1.0])
def test_kept_distortion_reads_the_fraction_of_the_true_flow(
    scene: tuple[torch.Tensor, torch.Tensor, KeptDistortion], kept: float
) -> None:
    target, flow, measure = scene
    pred = warp(target, upsample_flow((1 - kept) * flow, FACTOR))
    assert torch.allclose(measure.fraction(pred), torch.full((4,), kept, dtype=torch.float64), atol=0.02)
    assert torch.allclose(measure(pred), kept * measure.true_mean, atol=0.03)


def test_kept_distortion_is_blind_to_blur_gain_and_units(
    scene: tuple[torch.Tensor, torch.Tensor, KeptDistortion],
) -> None:
    target, flow, measure = scene
    aligned = warp(target, upsample_flow(flow, FACTOR))
    blurry = depthwise_filter(aligned, psf_kernel(1.0, 0.1, 1.0))
    assert float(measure.fraction(blurry).abs().max()) < 0.02
    assert float(measure.fraction(1.3 * aligned / 10000 + 0.02).abs().max()) < 0.02  # reflectance, gain
    half = depthwise_filter(warp(target, upsample_flow(0.5 * flow, FACTOR)), psf_kernel(1.0, 0.1, 1.0))
    assert torch.allclose(measure.fraction(half), torch.full((4,), 0.5, dtype=torch.float64), atol=0.02)


@pytest.mark.parametrize("offset", [(0.6, 0.0), (-0.3, 0.5), (0.4, -0.7)])
def test_kept_distortion_reads_a_constant_translation_in_any_direction(
    scene: tuple[torch.Tensor, torch.Tensor, KeptDistortion], offset: tuple[float, float]
) -> None:
    # the oracle geometry shifted by a constant offset (what a model without registration learns of the
    # training sites' systematic offset): the residual distortion is the offset's norm, whatever its
    # direction relative to each patch's flow
    target, flow, measure = scene
    o = torch.tensor(offset, dtype=torch.float64).view(1, 2, 1, 1)
    pred = warp(target, upsample_flow(flow - o, FACTOR))
    s, t = measure.fit(pred)
    assert float(s.abs().max()) < 0.03
    assert torch.allclose(t, o.view(1, 2).expand(4, 2), atol=0.03)
    assert torch.allclose(
        measure(pred), torch.full((4,), math.hypot(*offset), dtype=torch.float64), atol=0.03
    )


def test_kept_distortion_separates_a_kept_fraction_from_a_translation(
    scene: tuple[torch.Tensor, torch.Tensor, KeptDistortion],
) -> None:
    target, flow, measure = scene
    o = torch.tensor([0.3, -0.2], dtype=torch.float64).view(1, 2, 1, 1)
    kept = 0.5 * flow + o
    pred = warp(target, upsample_flow(flow - kept, FACTOR))
    expected = crop(flow_norm(kept), 6).flatten(1).mean(dim=1)
    assert torch.allclose(measure(pred), expected, atol=0.03)
    # without the refinement, the grid over the fraction alone misses the translation
    grid_only = KeptDistortion(target, flow, margin_lr=6, iterations=0)
    assert float((grid_only(pred) - expected).abs().max()) > 0.05


def test_kept_distortion_rejects_bad_settings(
    scene: tuple[torch.Tensor, torch.Tensor, KeptDistortion],
) -> None:
    target, flow, measure = scene
    with pytest.raises(ValueError, match="iterations"):
        KeptDistortion(target, flow, iterations=-1)
    with pytest.raises(ValueError, match="does not match the target"):
        measure(target[..., :-2, :-2])


class _Fixed(Predictor):
    """Returns the given DN tensor whatever its input (a test predictor for one known batch)."""

    def __init__(self, output: torch.Tensor, in_bands: tuple[str, ...] = BANDS) -> None:
        self.output = output
        self.in_bands, self.out_bands = in_bands, BANDS
        self.factor, self.margin, self.name = float(FACTOR), 0, "fixed"

    def __call__(self, dn: np.ndarray) -> np.ndarray:
        return self.output.numpy().astype(np.float32)


def _aligned_oracle(batch: Batch) -> _Fixed:
    """Predicts the oracle target."""
    assert batch.true_flow is not None and batch.true_radiometry is not None
    return _Fixed(oracle_target(batch.target, batch.inputs, batch.true_flow, batch.true_radiometry))


def _batch(with_truth: bool = True) -> Batch:
    target, inputs, flow, rad = _simulated()
    return Batch(
        inputs=inputs.float(),
        target=target.float(),
        input_bands=BANDS,
        target_bands=BANDS,
        input_resolution_m=20.0,
        target_resolution_m=10.0,
        true_flow=flow.float() if with_truth else None,
        true_radiometry=rad.float() if with_truth else None,
    )


def test_evaluation_writes_the_oracle_columns_on_simulated_sites() -> None:
    params = EvaluationParams(runs=[RunSpec(checkpoint="unused")], output_dir="unused", margin=8)
    batch = _batch()
    predictors = [_aligned_oracle(batch), _Fixed(batch.target), BicubicPredictor(BANDS, FACTOR)]
    rows, _ = evaluate_predictors(predictors, [batch], params)
    aligned, target, bicubic = rows
    assert aligned["oracle_psnr"] > 90 and aligned["oracle_ssim"] == pytest.approx(1.0)
    assert aligned["oracle_frr"] == pytest.approx(100.0, abs=1e-6)
    assert aligned["oracle_geom"] < 0.03 and abs(aligned["oracle_kept"]) < 0.02
    # the unregistered target keeps all of the true distortion; bicubic has the input's geometry
    assert target["oracle_kept"] == pytest.approx(1.0, abs=0.03)
    true_mean = float(crop(flow_norm(batch.true_flow), 4).mean())  # type: ignore[arg-type]
    assert target["oracle_geom"] == pytest.approx(true_mean, rel=0.1)
    assert bicubic["oracle_geom"] < 0.15
    assert bicubic["oracle_psnr"] > bicubic["psnr"]
    assert {f"oracle_psnr_{b}" for b in BANDS} <= set(bicubic)


def test_oracle_columns_are_nan_without_truth() -> None:
    params = EvaluationParams(runs=[RunSpec(checkpoint="unused")], output_dir="unused", margin=8)
    rows, _ = evaluate_predictors([BicubicPredictor(BANDS, FACTOR)], [_batch(with_truth=False)], params)
    assert all(math.isnan(rows[0][name]) for name in ORACLE_METRICS)
    # a batch without truth after one with it: the oracle columns are dropped (NaN), never partial
    bicubic = BicubicPredictor(BANDS, FACTOR)
    rows, _ = evaluate_predictors([bicubic], [_batch(), _batch(with_truth=False)], params)
    assert all(math.isnan(rows[0][name]) for name in ORACLE_METRICS)
    assert not any(k.startswith("oracle_psnr_") for k in rows[0])


def test_a_target_band_missing_from_the_inputs_disables_the_oracle() -> None:
    batch = _batch()
    batch = dataclasses.replace(
        batch,
        inputs=batch.inputs[:, :3],
        input_bands=BANDS[:3],
        true_radiometry=None if batch.true_radiometry is None else batch.true_radiometry[:, :3],
    )
    params = EvaluationParams(runs=[RunSpec(checkpoint="unused")], output_dir="unused", margin=8)
    rows, _ = evaluate_predictors([_Fixed(batch.target, BANDS[:3])], [batch], params)
    assert math.isnan(rows[0]["oracle_psnr"])
