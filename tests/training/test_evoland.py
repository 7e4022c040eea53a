"""The EVOLAND training pieces: batch simulation, Wald batch, align_min_max, the 10-in / 10-out joint model,
``l1_sim`` and the Wald loss, their params and errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader

from sisrlib.checkpoint import generator_output_bands, load_generator
from sisrlib.data.batch import Batch
from sisrlib.degradation import flip_concat, mtf_downscale
from sisrlib.errors import SisrError
from sisrlib.models.params import ModelParams
from sisrlib.params import ParamsError
from sisrlib.run_params import experiment_from_mapping
from sisrlib.training.fit import fit
from sisrlib.training.losses import crop, per_band_l1
from sisrlib.training.module import SISRModule
from sisrlib.training.simulation import (
    align_min_max,
    align_target,
    draw_uniform,
    noise_vector,
    simulate_inputs,
    wald_batch,
)
from tests.helpers.evoland_fakes import EVOLAND, HR, LR, TARGET, evoland_batch
from tests.helpers.training_fakes import tiny_params


def _reflectance(b: Batch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(target, inputs, lr) of a batch in reflectance."""
    assert b.lr_inputs is not None
    return b.target / 1e4, b.inputs / 1e4, b.lr_inputs / 1e4


class EvolandDataModule(pl.LightningDataModule):
    """10 m + 20 m (with B11/B12) inputs and 8-band 5 m targets, like Sen2Venµs loaded with all bands."""

    input_bands, target_bands, lr_bands, factor = HR, TARGET, LR, 2.0

    def __init__(self, size: int = 16) -> None:
        super().__init__()
        self.size = size

    def _loader(self, seed: int) -> DataLoader[Any]:
        batches = [evoland_batch(2, self.size, seed + k) for k in range(2)]
        return DataLoader(batches, batch_size=None, shuffle=False)  # type: ignore[arg-type]

    def train_dataloader(self) -> DataLoader[Any]:
        return self._loader(0)

    def val_dataloader(self) -> DataLoader[Any]:
        return self._loader(10)


def _evoland_params(tmp: Path, **training: Any) -> Any:
    return tiny_params(
        tmp,
        model={
            "generator": "carn",
            "factor": 2.0,
            "carn_features_per_factor": 4,
            "carn_cascading_blocks": 1,
            "carn_eres_blocks": 1,
            "lr_to_hr": "bicubic",
        },
        training={
            "standardisation": "evoland",
            "losses": {"mse": 0.0, "l1": 0.0, "lpips": 0.0, "l1_sim": 1.0, "wald_l1": 1.0},
            "simulation": {"mtf_min": 0.3, "mtf_max": 0.7, "noise_std": {"B2": 0.001, "B5": 0.002}},
            "wald": {"pad_to_input_size": True, "margin": 2, "validation_margin": 2},
            "align_min_max": True,
            "validation_metrics": "reference",
            "validation_margin": 4,
            "log_every_n_steps": 1,
            **training,
        },
    )


# ------------------------------------------------------------------------------------------- simulation
def test_draw_uniform_is_within_bounds_and_seeded() -> None:
    draws = [draw_uniform(0.3, 0.7, torch.Generator().manual_seed(s)) for s in range(50)]
    assert all(0.3 <= d <= 0.7 for d in draws) and len(set(draws)) == 50
    again = [draw_uniform(0.3, 0.7, torch.Generator().manual_seed(s)) for s in range(50)]
    assert draws == again
    assert draw_uniform(0.4, 0.4, torch.Generator()) == 0.4


def test_noise_vector_per_band_times_multiplier() -> None:
    v = noise_vector({"B2": 0.001, "B8": 0.002}, HR, 2.5)
    assert v is not None and torch.allclose(v, torch.tensor([0.0025, 0.0, 0.0, 0.005]))
    assert noise_vector(None, HR, 2.0) is None and noise_vector({"B11": 0.1}, HR, 2.0) is None


def test_simulated_inputs_replace_the_bands_with_a_target_and_keep_b11_b12() -> None:
    b = evoland_batch()
    target, inputs, lr = _reflectance(b)
    sim_in, sim_lr = simulate_inputs(
        target,
        TARGET,
        inputs,
        HR,
        lr,
        LR,
        mtf=0.5,
        noise_std=None,
        multiplier=1.0,
        generator=torch.Generator().manual_seed(0),
    )
    assert sim_lr is not None
    assert torch.allclose(sim_in, mtf_downscale(target[:, :4], 2, 0.5))
    assert torch.allclose(sim_lr[:, :4], mtf_downscale(target[:, 4:], 4, 0.5))
    assert torch.equal(sim_lr[:, 4:], lr[:, 4:])  # B11/B12 have no target: kept real


def test_simulated_noise_is_seeded_and_sized_by_band() -> None:
    b = evoland_batch()
    target, inputs = b.target / 1e4, b.inputs / 1e4

    def run(seed: int) -> torch.Tensor:
        sim, _ = simulate_inputs(
            target,
            TARGET,
            inputs,
            HR,
            None,
            (),
            mtf=0.5,
            noise_std={"B3": 0.01},
            multiplier=2.0,
            generator=torch.Generator().manual_seed(seed),
        )
        return sim

    clean = mtf_downscale(target[:, :4], 2, 0.5)
    noisy = run(1)
    assert torch.equal(noisy, run(1)) and not torch.equal(noisy, run(2))
    noise = noisy - clean
    expected = 0.02 * torch.randn(clean.shape, generator=torch.Generator().manual_seed(1))
    assert torch.allclose(noise[:, 1], expected[:, 1], atol=1e-6)  # σ 0.01 × 2 on B3
    assert torch.allclose(noise[:, [0, 2, 3]], torch.zeros_like(noise[:, [0, 2, 3]]), atol=1e-6)


def test_align_min_max_known_answer() -> None:
    target = torch.tensor([0.0, 1.0, 2.0, 4.0]).view(1, 1, 2, 2)
    reference = torch.tensor([10.0, 30.0]).view(1, 1, 1, 2)
    assert torch.allclose(align_min_max(target, reference).flatten(), torch.tensor([10.0, 15.0, 20.0, 30.0]))
    flat = align_min_max(torch.full((1, 1, 2, 2), 5.0), reference)
    assert torch.allclose(flat, torch.full((1, 1, 2, 2), 20.0))


def test_align_target_uses_the_10m_then_the_20m_input_of_each_band() -> None:
    b = evoland_batch()
    target, inputs, lr = _reflectance(b)
    aligned = align_target(target, TARGET, inputs, HR, lr, LR)
    for t, ref in ((0, inputs[:, 0]), (4, lr[:, 0]), (7, lr[:, 3])):
        assert torch.allclose(aligned[:, t].amin(dim=(-2, -1)), ref.amin(dim=(-2, -1)), atol=1e-6)
        assert torch.allclose(aligned[:, t].amax(dim=(-2, -1)), ref.amax(dim=(-2, -1)), atol=1e-6)


@pytest.mark.parametrize("pad", [False, True])
def test_wald_batch_shapes_and_values(pad: bool) -> None:
    b = evoland_batch(size=16)
    _, inputs, lr = _reflectance(b)
    target, hr, lr_w = wald_batch(
        inputs,
        HR,
        lr,
        LR,
        mtf=0.4,
        noise_std=None,
        multiplier=1.0,
        generator=torch.Generator().manual_seed(0),
        pad_to_input_size=pad,
    )
    k = 2 if pad else 1
    assert target.shape == (2, 10, 8 * k, 8 * k) and hr.shape == (2, 4, 4 * k, 4 * k)
    assert lr_w.shape == (2, 6, 2 * k, 2 * k)
    real_20m = flip_concat(lr) if pad else lr
    assert torch.equal(target[:, 4:], real_20m)  # the 20 m bands are their own target
    assert torch.allclose(hr, mtf_downscale(flip_concat(inputs) if pad else inputs, 4, 0.4))


# ------------------------------------------------------------------------------------- joint model, losses
def test_generator_output_bands() -> None:
    joint = ModelParams(generator="carn", lr_to_hr="bicubic")
    assert generator_output_bands(joint, HR, TARGET, LR) == EVOLAND
    assert generator_output_bands(ModelParams(), HR, HR) == HR
    with pytest.raises(ValueError, match=r"lack the target band\(s\) \['B5'\]"):
        generator_output_bands(joint, HR, (*HR, "B5"), ("B11", "B12"))


def test_joint_module_takes_10_bands_and_returns_10(tmp_path: Path) -> None:
    params = _evoland_params(tmp_path)
    module = SISRModule(params.to_mapping(), list(HR), list(TARGET), 2.0, list(LR))
    assert module.output_bands == EVOLAND and module.target_index == list(range(8))
    assert module.generator is not None
    assert (module.generator.in_bands, module.generator.out_bands) == (10, 10)
    b = evoland_batch()
    inputs, _, lr = module.standardised(b)
    assert module.predict_standardised(inputs, lr).shape == (2, 10, 32, 32)


def test_l1_sim_is_the_band_weighted_l1_of_the_simulated_prediction(tmp_path: Path) -> None:
    weights = {"B2": 3.0, "B8A": 0.0}
    params = _evoland_params(
        tmp_path, losses={"mse": 0.0, "l1": 0.0, "lpips": 0.0, "l1_sim": 0.5, "band_weights": weights}
    )
    module = SISRModule(params.to_mapping(), list(HR), list(TARGET), 2.0, list(LR))
    window = module.reflectance(evoland_batch())
    loss, logs = module.simulated_terms(window, 7, "training", 2)
    pred, target = module.simulated_prediction(window, 7, validation=False)
    per_band = per_band_l1(crop(pred, 2), crop(target, 2))
    w = torch.tensor([3.0, 1, 1, 1, 1, 1, 1, 0.0])
    assert torch.allclose(loss, 0.5 * (per_band * w).mean())
    assert torch.allclose(logs["training/l1_sim_average"], per_band.mean())
    assert set(logs) == {f"training/l1_sim_{b}" for b in (*TARGET, "average")}


def test_wald_loss_is_on_b11_b12_at_20m(tmp_path: Path) -> None:
    params = _evoland_params(tmp_path)
    module = SISRModule(params.to_mapping(), list(HR), list(TARGET), 2.0, list(LR))
    inputs, _, lr = module.reflectance(evoland_batch())
    assert lr is not None
    loss, logs = module.wald_terms(inputs, lr, 3, "validation", metrics=True)
    assert loss.ndim == 0 and float(loss) > 0
    assert {
        "validation/wald_l1_B11",
        "validation/wald_l1_B12",
        "validation/wald_psnr_B11",
        "validation/wald_hr_rmse_B12",
    } <= set(logs)
    assert not any(k.endswith("_B2") for k in logs)


def test_evoland_fit_end_to_end(tmp_path: Path) -> None:
    params = _evoland_params(tmp_path)
    result = fit(params, EvolandDataModule())
    assert result.global_step == 2
    loaded = load_generator(result.best_checkpoint)
    assert loaded.target_bands == EVOLAND and loaded.data_target_bands == TARGET
    assert loaded.target_standardisation.bands == EVOLAND
    header = result.metrics_csv.read_text().splitlines()[0].split(",")
    for key in (
        "training/l1_sim_average",
        "training/wald_l1_B11",
        "validation/sim_psnr_B2",
        "validation/wald_psnr_B12",
        "validation/ssim_B5",
        "validation/high_gradient_rmse_B8A",
        "validation/hf_power_variation_B4",
        "validation/tv_variation_B3",
        "validation/hr_rmse_B7",
    ):
        assert key in header, key


# ----------------------------------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    ("training", "message"),
    [
        ({"simulation": {"mtf_min": 0.7, "mtf_max": 0.3}}, r"training.simulation.mtf_min and .*mtf_max"),
        ({"simulation": {"noise_std": {"B2": -1.0}}}, r"training.simulation.noise_std.B2 must be >= 0"),
        ({"wald": {"bands": ["B13"]}}, r"training.wald.bands must be a non-empty list"),
        ({"psf_kernel": "box"}, r"psf_kernel"),
        ({"losses": {"band_weights": {"B2": -1.0}}}, r"band_weights.B2 must be >= 0"),
        ({"validation_metrics": "all"}, r"validation_metrics"),
    ],
)
def test_bad_keys_are_named(tmp_path: Path, training: dict[str, Any], message: str) -> None:
    mapping = tiny_params(tmp_path).to_mapping()
    for key, value in training.items():
        if isinstance(value, dict):
            mapping["training"][key] = {**mapping["training"].get(key, {}), **value}
        else:
            mapping["training"][key] = value
    with pytest.raises((ParamsError, ValueError), match=message):
        experiment_from_mapping(mapping)


def test_wald_without_the_joint_model_is_refused_before_training(tmp_path: Path) -> None:
    from tests.helpers.training_fakes import FakeDataModule

    params = tiny_params(tmp_path, training={"losses": {"mse": 1.0, "l1": 0.0, "lpips": 0.0, "wald_l1": 1.0}})
    with pytest.raises(SisrError, match=r"wald_l1 > 0 needs the joint 10 m \+ 20 m model"):
        fit(params, FakeDataModule())
    assert not params.best_checkpoint.exists()


def test_unknown_band_weight_is_refused(tmp_path: Path) -> None:
    from tests.helpers.training_fakes import FakeDataModule

    params = tiny_params(tmp_path, training={"losses": {"band_weights": {"B11": 1.0}}})
    with pytest.raises(SisrError, match=r"training.losses.band_weights: unknown band\(s\) \['B11'\]"):
        fit(params, FakeDataModule())
