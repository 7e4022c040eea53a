"""The simulated and Wald branches of the SR loss (torchsisr's ``l1_sim`` and Wald losses), as a mixin of
:class:`sisrlib.training.module.SISRModule`.

* simulated branch (``training.losses.l1_sim > 0``): the inputs are simulated from the HR target
  (:func:`sisrlib.training.simulation.simulate_inputs`, MTF and noise multiplier drawn per batch), the
  generator predicts from them, and the per-band L1 against the target is the loss;
* Wald branch (``training.losses.wald_l1 > 0``, joint 10 m + 20 m model): the real inputs are degraded by 4
  (:func:`sisrlib.training.simulation.wald_batch`), predicted back to 20 m and compared by L1 with the real
  20 m bands on ``training.wald.bands`` (B11, B12).

Both work on reflectance batches, standardise what the generator sees, and compute the losses on
standardised tensors and the metrics on reflectance. Random draws come from generators seeded by the
training step (validation: by the batch index, with the middle of the MTF and noise ranges).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from sisrlib.bands import Standardisation
from sisrlib.models.base import SRModel
from sisrlib.run_params import ExperimentParams
from sisrlib.training.losses import crop, per_band_l1
from sisrlib.training.simulation import draw_uniform, simulate_inputs, wald_batch
from sisrlib.training.validation import simulated_metrics, wald_metrics

#: Offsets of the seeds of the simulated / Wald draws (training: + step; validation: + batch index).
SIM_SEED, WALD_SEED, VALIDATION_SEED = 700_001, 900_007, 20_000_000

Window = tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]


class AuxiliaryBranches:
    """Mixin: the simulated and Wald loss terms and their validation metrics (attributes set by
    ``SISRModule``)."""

    experiment: ExperimentParams
    input_bands: tuple[str, ...]
    target_bands: tuple[str, ...]
    lr_bands: tuple[str, ...]
    output_bands: tuple[str, ...]
    input_std: Standardisation
    target_std: Standardisation
    output_std: Standardisation
    lr_std: Standardisation | None
    target_index: list[int]
    generator: SRModel | None

    # provided by SISRModule
    def predict_standardised(
        self, inputs: torch.Tensor, lr_inputs: torch.Tensor | None = None
    ) -> torch.Tensor:  # pragma: no cover - overridden
        raise NotImplementedError

    def _flow_generator(self, offset: int) -> torch.Generator:  # pragma: no cover - overridden
        raise NotImplementedError

    def band_weighted_mean(self, per_band: torch.Tensor, bands: Sequence[str]) -> torch.Tensor:
        """Average over bands of ``per_band`` ``[C]`` (values of ``bands``), each weighted by
        ``training.losses.band_weights`` (1 when not listed; the plain mean when the key is null)."""
        weights = self.experiment.training.losses.band_weights
        if not weights:
            return per_band.mean()
        w = torch.tensor([float(weights.get(b, 1.0)) for b in bands], dtype=per_band.dtype)
        return (per_band * w.to(per_band.device)).mean()

    def _standardise_lr(self, lr: torch.Tensor | None) -> torch.Tensor | None:
        if lr is None or self.lr_std is None:
            return None
        return self.lr_std.standardise(lr)

    @property
    def generator_margin(self) -> int:
        return int(self.generator.margin) if self.generator is not None else 0

    # ------------------------------------------------------------------ simulated branch
    def simulated_prediction(
        self, window: Window, seed: int, validation: bool
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(prediction from the simulated input ``[B, C_t, H, W]``, target ``[B, C_t, H, W]``), both
        standardised, restricted to the target bands; ``window`` = reflectance (inputs, target, lr)."""
        inputs, target, lr = window
        sim = self.experiment.training.simulation
        generator = self._flow_generator(seed)
        if validation:
            mtf = 0.5 * (sim.mtf_min + sim.mtf_max)
            multiplier = 0.5 * (sim.noise_multiplier_min + sim.noise_multiplier_max)
        else:
            mtf = draw_uniform(sim.mtf_min, sim.mtf_max, generator)
            multiplier = draw_uniform(sim.noise_multiplier_min, sim.noise_multiplier_max, generator)
        sim_in, sim_lr = simulate_inputs(
            target,
            self.target_bands,
            inputs,
            self.input_bands,
            lr,
            self.lr_bands,
            mtf=mtf,
            noise_std=sim.noise_std,
            multiplier=multiplier,
            generator=generator,
            kernel=self.experiment.training.psf_kernel,
        )
        pred = self.predict_standardised(self.input_std.standardise(sim_in), self._standardise_lr(sim_lr))
        return pred[:, self.target_index], self.target_std.standardise(target)

    def simulated_terms(
        self, window: Window, seed: int, prefix: str, margin: int, metrics: bool = False
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """``l1_sim`` weight × band-weighted mean of the per-band L1 (standardised, ``margin`` px cropped),
        and the values to log (``{prefix}/l1_sim_{band}``, ``..._average``; with ``metrics`` also
        ``{prefix}/sim_psnr_*`` and ``sim_rmse_*`` on reflectance)."""
        pred, target = self.simulated_prediction(window, seed, validation=prefix != "training")
        per_band = per_band_l1(crop(pred, margin), crop(target, margin))
        logs = _band_logs(prefix, "l1_sim", self.target_bands, per_band)
        loss = self.experiment.training.losses.l1_sim * self.band_weighted_mean(per_band, self.target_bands)
        if metrics:
            pred_r = self.target_std.unstandardise(pred.float())
            target_r = self.target_std.unstandardise(target.float())
            for name, values in simulated_metrics(pred_r, target_r, margin).items():
                logs.update(_band_logs(prefix, f"sim_{name}", self.target_bands, values.detach()))
        return loss, logs

    # ------------------------------------------------------------------ Wald branch
    @property
    def wald_index(self) -> list[int]:
        """Indices of ``training.wald.bands`` among the generator's output bands."""
        return [self.output_bands.index(b) for b in self.experiment.training.wald.bands]

    def check_wald(self) -> None:
        """A ValueError unless the Wald branch can run: a joint model whose output holds the Wald bands."""
        wald = self.experiment.training.wald
        missing = [b for b in wald.bands if b not in self.output_bands]
        if not self.lr_bands or self.experiment.model.lr_to_hr is None or missing:
            raise ValueError(
                "training.losses.wald_l1 > 0 needs the joint 10 m + 20 m model (model.lr_to_hr: bicubic, "
                "data.load_10m, load_20m and load_b11b12 true) whose output holds training.wald.bands "
                f"{wald.bands}; the generator outputs {list(self.output_bands)}"
            )

    def wald_terms(
        self, inputs: torch.Tensor, lr: torch.Tensor, seed: int, prefix: str, metrics: bool = False
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """``wald_l1`` weight × band-weighted mean of the per-band L1 of the Wald branch on
        ``training.wald.bands`` (standardised), from the reflectance 10 m ``inputs`` and 20 m ``lr``; with
        ``metrics`` also ``{prefix}/wald_psnr_*`` and ``wald_hr_rmse_*`` (reflectance)."""
        wald = self.experiment.training.wald
        generator = self._flow_generator(seed)
        if prefix == "training":
            mtf = draw_uniform(wald.mtf_min, wald.mtf_max, generator)
            multiplier = draw_uniform(wald.noise_multiplier_min, wald.noise_multiplier_max, generator)
            margin = wald.margin if wald.margin is not None else self.generator_margin
        else:
            mtf = 0.5 * (wald.mtf_min + wald.mtf_max)
            multiplier = 0.5 * (wald.noise_multiplier_min + wald.noise_multiplier_max)
            margin = wald.validation_margin
        target, hr, lr_w = wald_batch(
            inputs,
            self.input_bands,
            lr,
            self.lr_bands,
            mtf=mtf,
            noise_std=wald.noise_std,
            multiplier=multiplier,
            generator=generator,
            pad_to_input_size=wald.pad_to_input_size,
            kernel=self.experiment.training.psf_kernel,
        )
        idx = self.wald_index
        pred = self.predict_standardised(self.input_std.standardise(hr), self._standardise_lr(lr_w))[:, idx]
        wald_std = self.output_std.select(tuple(wald.bands))
        target_w = wald_std.standardise(target[:, idx])
        per_band = per_band_l1(crop(pred, margin), crop(target_w, margin))
        logs = _band_logs(prefix, "wald_l1", wald.bands, per_band)
        loss = self.experiment.training.losses.wald_l1 * self.band_weighted_mean(per_band, wald.bands)
        if metrics:
            pred_r = wald_std.unstandardise(pred.float())
            factor = pred.shape[-1] / hr.shape[-1]
            for name, values in wald_metrics(pred_r, target[:, idx].float(), factor, margin).items():
                logs.update(_band_logs(prefix, f"wald_{name}", wald.bands, values.detach()))
        return loss, logs


def _band_logs(prefix: str, name: str, bands: Sequence[str], values: torch.Tensor) -> dict[str, torch.Tensor]:
    """``{prefix}/{name}_{band}`` for every band and ``{prefix}/{name}_average`` (detached)."""
    logs = {f"{prefix}/{name}_{b}": v.detach() for b, v in zip(bands, values, strict=True)}
    logs[f"{prefix}/{name}_average"] = values.mean().detach()
    return logs


__all__ = ["VALIDATION_SEED", "AuxiliaryBranches"]
