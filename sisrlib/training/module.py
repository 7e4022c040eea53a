"""The LightningModule of SR training and registration pre-training (torchsisr).

One module, two modes (``training.mode``):

* ``pretrain_registration``: only the flow network is trained, with the self-supervised loss of
  :mod:`sisrlib.registration.pretraining` on (simulated LR band, real LR band) pairs;
* ``sr``: the generator is trained on the real pairs with per-band MSE / L1 / LPIPS losses (and the
relativistic
  DRA-BCE adversarial term), the target being optionally registered onto the input first (geom, rad) by the
  frozen flow network.

Manual optimisation as in torchsisr: Adam + cosine warm restarts, schedulers stepped every training
step; both optimisers and schedulers are saved in the checkpoints (Lightning's ``optimizer_states`` /
``lr_schedulers``) and restored on resume. ``global_step`` counts generator steps (training batches): the
discriminator's optimiser steps are not counted.

Units: batches arrive in DN; they are converted to reflectance and standardised (band statistics named by
``training.standardisation``); losses on standardised tensors, metrics on reflectance.
"""

from __future__ import annotations

from typing import Any

import torch
from pytorch_lightning.core.optimizer import do_nothing_closure
from torch import nn

from sisrlib.bands import Standardisation, dn_to_reflectance, match_bands, standardisation
from sisrlib.checkpoint import generator_output_bands
from sisrlib.data.batch import Batch
from sisrlib.degradation import mtf_downscale
from sisrlib.errors import SisrError
from sisrlib.flow import flow_norm
from sisrlib.metrics.lpips import PerBandLPIPS
from sisrlib.metrics.perceptual import perceptual_scores, perceptual_unavailable
from sisrlib.models.base import SRModel
from sisrlib.models.joint import JointSuperResolution
from sisrlib.models.registry import build_discriminator as build_discriminator_network
from sisrlib.models.registry import build_generator
from sisrlib.registration.factory import build_flow_estimator
from sisrlib.registration.network import FlowEstimator, freeze
from sisrlib.registration.target import register_target, registration_band_index
from sisrlib.run_params import ExperimentParams, experiment_from_mapping
from sisrlib.training.branches import SIM_SEED, VALIDATION_SEED, WALD_SEED, AuxiliaryBranches
from sisrlib.training.losses import (
    crop,
    dra_bce_discriminator_loss,
    dra_bce_generator_loss,
    finite_or_raise,
    per_band_bias,
    per_band_fft_amplitude_l1,
    per_band_highpass_l1,
    per_band_l1,
    per_band_mse,
    per_band_psnr,
    per_band_rmse,
)
from sisrlib.training.pretraining_step import RegistrationPretraining, loss_values
from sisrlib.training.simulation import align_target
from sisrlib.training.validation import reference_metrics
from sisrlib.training.windows import random_window

#: Monitored by the "best" checkpoint in both modes.
MONITOR = "validation/total_loss"
#: Monitored by ``best_total.ckpt``: the validation loss with the adversarial term (torchsisr's total).
MONITOR_TOTAL = "validation/total_loss_with_adversarial"
#: Monitored by ``best_brisque.ckpt``: the mean BRISQUE of the predictions over bands (lower is better).
MONITOR_BRISQUE = "validation/brisque_average"
#: MTF of the prediction/target downscaling of the test-time geometric metric (torchsisr).
GEOMETRIC_METRIC_MTF = 0.3
#: MTF of the LR-fidelity metric (prediction downscaled and compared with the input).
LR_FIDELITY_MTF = 0.1


def build_discriminator(params: ExperimentParams, in_bands: int) -> nn.Module:
    """The discriminator of ``training.adversarial`` fed with ``in_bands`` bands."""
    return build_discriminator_network(params.training.adversarial.discriminator, in_bands)


Reflectance = tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]


class SISRModule(AuxiliaryBranches, RegistrationPretraining):
    """SR training / registration pre-training.

    Constructor arguments are plain data (saved as hyper-parameters, so ``load_from_checkpoint`` needs no
    other
    input): ``params`` (the mapping of an :class:`ExperimentParams`), the band names of the data and its
    factor.
    """

    def __init__(
        self,
        params: dict[str, Any],
        input_bands: list[str],
        target_bands: list[str],
        factor: float,
        lr_bands: list[str] | None = None,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.automatic_optimization = False
        self.experiment = experiment_from_mapping(params, where="checkpoint params")
        p = self.experiment
        self.input_bands = tuple(input_bands)
        self.target_bands = tuple(target_bands)
        self.lr_bands = tuple(lr_bands or ())
        self.data_factor = float(factor)
        self.mode = p.training.mode
        stats = p.training.standardisation
        self.input_std: Standardisation = standardisation(stats, self.input_bands)
        self.target_std: Standardisation = standardisation(stats, self.target_bands)
        self.output_bands = generator_output_bands(
            p.model, self.input_bands, self.target_bands, self.lr_bands
        )
        self.output_std: Standardisation = standardisation(stats, self.output_bands)
        self.target_index = [self.output_bands.index(b) for b in self.target_bands]
        self.lr_std: Standardisation | None = standardisation(stats, self.lr_bands) if self.lr_bands else None
        reg = p.registration
        self.reg_target_index = registration_band_index(self.input_bands, self.target_bands, reg.channel)

        self.registration: FlowEstimator | None = None
        self.generator: SRModel | None = None
        self.discriminator: nn.Module | None = None
        self._lpips: list[PerBandLPIPS] = []  # kept outside the module tree: not saved in checkpoints
        self.adversarial_index: list[int] = []
        self._brisque = False
        if self.mode == "pretrain_registration":
            self.registration = build_flow_estimator(reg)
            return
        if reg.enabled or reg.checkpoint is not None:
            self.registration = freeze(build_flow_estimator(reg))  # type: ignore[assignment]
        n_lr = len(self.lr_bands) if p.model.lr_to_hr is not None else None
        self.generator = build_generator(
            p.model, len(self.input_bands), len(self.output_bands), lr_bands=n_lr
        )
        if p.training.losses.wald_l1 > 0:
            self.check_wald()
        adv = p.training.adversarial
        if adv.enabled:
            bands = adv.bands if adv.bands is not None else list(self.target_bands)
            self.adversarial_index = match_bands(self.target_bands, bands, where="training.adversarial.bands")
            self.discriminator = build_discriminator(p, len(self.adversarial_index))
        if p.training.losses.lpips > 0:
            self._lpips.append(PerBandLPIPS(p.training.losses.lpips_weights))
        self._brisque = p.training.best_brisque_checkpoint and bool(
            perceptual_unavailable("brisque", p.training.brisque_weights) is None
        )

    # ------------------------------------------------------------------ helpers
    def train(self, mode: bool = True) -> SISRModule:
        super().train(mode)
        if self.registration is not None and self.mode == "sr":
            self.registration.eval()  # frozen network
        return self

    def transfer_batch_to_device(self, batch: Any, device: torch.device, dataloader_idx: int) -> Any:
        if isinstance(batch, Batch):
            return batch.to(device)
        return super().transfer_batch_to_device(batch, device, dataloader_idx)

    @property
    def training_margin(self) -> int:
        m = self.experiment.training.training_margin
        if m is not None:
            return m
        return int(self.generator.margin) if self.generator is not None else 0

    def reflectance(self, batch: Batch) -> Reflectance:
        """(inputs, target, lr_inputs) in reflectance from a DN batch, the target aligned onto the inputs
        when ``training.align_min_max`` is on."""
        if tuple(batch.input_bands) != self.input_bands or tuple(batch.target_bands) != self.target_bands:
            raise ValueError(
                f"batch bands {batch.input_bands} → {batch.target_bands} differ from the module's "
                f"{self.input_bands} → {self.target_bands}"
            )
        inputs = dn_to_reflectance(batch.inputs)
        target = dn_to_reflectance(batch.target)
        lr = None
        if batch.lr_inputs is not None and self.lr_std is not None:
            lr = dn_to_reflectance(batch.lr_inputs)
        if self.experiment.training.align_min_max:
            target = align_target(target, self.target_bands, inputs, self.input_bands, lr, self.lr_bands)
        return inputs, target, lr

    def standardise(self, reflectance: Reflectance) -> Reflectance:
        """(inputs, target, lr_inputs) standardised with the band statistics of the run."""
        inputs, target, lr = reflectance
        inputs, target = self.input_std.standardise(inputs), self.target_std.standardise(target)
        return inputs, target, self._standardise_lr(lr)

    def standardised(self, batch: Batch) -> Reflectance:
        """(inputs, target, lr_inputs) standardised, from a DN batch."""
        return self.standardise(self.reflectance(batch))

    def to_target_bands(self, pred: torch.Tensor) -> torch.Tensor:
        """The target bands ``[B, C_t, H, W]`` of a prediction ``[B, len(output_bands), H, W]``."""
        if self.output_bands == self.target_bands:
            return pred
        return pred[:, self.target_index]

    def adversarial_active(self, step: int) -> bool:
        """Whether the generator's adversarial term gets a gradient and the discriminator trains at ``step``
        (``training.adversarial.start_convention``: from ``start_step``, or after it as torchsisr)."""
        adv = self.experiment.training.adversarial
        return step >= adv.start_step if adv.start_convention == "from_start_step" else step > adv.start_step

    @property
    def real_terms(self) -> bool:
        """Whether the loss has a term on the prediction from the real input (pixel or adversarial)."""
        weights = self.experiment.training.losses.real_input_weights
        return max(weights.values()) > 0 or self.discriminator is not None

    def predict_standardised(
        self, inputs: torch.Tensor, lr_inputs: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Generator output (standardised target units) ``[B, C_t, H, W]``."""
        if self.generator is None:
            raise RuntimeError("no generator in registration pre-training mode")
        if isinstance(self.generator, JointSuperResolution):
            out: torch.Tensor = self.generator(inputs, lr_inputs)
            return out
        out = self.generator(inputs)
        return out

    def forward(self, inputs: torch.Tensor, lr_inputs: torch.Tensor | None = None) -> torch.Tensor:
        return self.predict_standardised(inputs, lr_inputs)

    def _registered_target(
        self,
        inputs: torch.Tensor,
        target: torch.Tensor,
        lr: torch.Tensor | None,
        true_flow: torch.Tensor | None,
    ) -> torch.Tensor:
        reg = self.experiment.registration
        if not reg.enabled or self.registration is None:
            return target
        if reg.flow_source == "true_flow" and true_flow is None:
            raise SisrError(
                "registration.flow_source: true_flow registers the target with the batch's stored true flow, "
                "and this batch has none: use simulated (embedded) sites with data.load_truth: true, or "
                "registration.flow_source: network"
            )
        return register_target(
            self.registration,
            target,
            inputs,
            self.input_bands,
            self.target_bands,
            reg.channel,
            geometric=reg.geometric,
            radiometric=reg.radiometric,
            sim_mtf=reg.sim_mtf,
            kernel=reg.psf_kernel,
            lr_inputs=lr,
            lr_bands=self.lr_bands,
            radiometric_model=reg.radiometric_model,
            flow=true_flow if reg.flow_source == "true_flow" else None,
        ).target

    def _flow_generator(self, offset: int) -> torch.Generator:
        g = torch.Generator()
        g.manual_seed(self.experiment.seed * 1_000_003 + offset * 7919 + self.global_rank)
        return g

    def _training_window(
        self, inputs: torch.Tensor, target: torch.Tensor, lr: torch.Tensor | None, step: int
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """:func:`sisrlib.training.windows.random_window` of ``training.crop_size``, seeded by the step."""
        generator = self._flow_generator(step + 500_009)
        return random_window(inputs, target, lr, self.experiment.training.crop_size, generator)

    def _pixel_losses(
        self, pred: torch.Tensor, target: torch.Tensor, prefix: str
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Weighted sum of band-averaged losses and the per-band values to log."""
        w = self.experiment.training.losses
        total = pred.new_zeros(())
        logs: dict[str, torch.Tensor] = {}
        terms: list[tuple[str, float, torch.Tensor]] = []
        if w.mse > 0:
            terms.append(("mse", w.mse, per_band_mse(pred, target)))
        if w.l1 > 0:
            terms.append(("l1", w.l1, per_band_l1(pred, target)))
        if w.highpass_l1 > 0:
            terms.append(("highpass_l1", w.highpass_l1, per_band_highpass_l1(pred, target, w.highpass_sigma)))
        if w.fft_amplitude_l1 > 0:
            fft = per_band_fft_amplitude_l1(pred, target, w.fft_min_frequency)
            terms.append(("fft_amplitude_l1", w.fft_amplitude_l1, fft))
        if w.lpips > 0 and self._lpips:
            lp = self._lpips[0].to(pred.device)
            terms.append(("lpips", w.lpips, lp(pred.float(), target.float())))
        for name, weight, per_band in terms:
            for band, v in zip(self.target_bands, per_band, strict=True):
                logs[f"{prefix}/{name}_{band}"] = v.detach()
            logs[f"{prefix}/{name}_average"] = per_band.mean().detach()
            total = total + weight * self.band_weighted_mean(per_band, self.target_bands)
        logs[f"{prefix}/total_pixel_loss"] = total.detach()
        return total, logs

    # ------------------------------------------------------------------ training
    def training_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        reflectance = self.reflectance(batch)
        inputs, target, lr = self.standardise(reflectance)
        opts = self.optimizers()
        opt_list = opts if isinstance(opts, list) else [opts]
        scheds = self.lr_schedulers()
        sched_list: list[Any] = scheds if isinstance(scheds, list) else [scheds]
        step = int(self.global_step)
        bsz = inputs.shape[0]

        if self.mode == "pretrain_registration":
            return self.pretraining_step(inputs, target, step, opt_list[0], sched_list[0])

        total, logs = inputs.new_zeros(()), dict[str, torch.Tensor]()
        adv = self.experiment.training.adversarial
        fake = real_d = None
        m = self.training_margin
        if self.real_terms:
            target = self._registered_target(inputs, target, lr, batch.true_flow)
            inputs, target, lr = self._training_window(inputs, target, lr, step)
            pred = self.to_target_bands(self.predict_standardised(inputs, lr))
            pred_c, target_c = crop(pred, m), crop(target, m)
            total, logs = self._pixel_losses(pred_c, target_c, "training")
        weights = self.experiment.training.losses
        if weights.l1_sim > 0:
            window = self._training_window(*reflectance, step)
            sim_total, sim_logs = self.simulated_terms(window, step + SIM_SEED, "training", m)
            total, logs = total + sim_total, {**logs, **sim_logs}
        if weights.wald_l1 > 0 and reflectance[2] is not None:
            seed = step + WALD_SEED
            wald_total, wald_logs = self.wald_terms(reflectance[0], reflectance[2], seed, "training")
            total, logs = total + wald_total, {**logs, **wald_logs}
        if self.discriminator is not None and self.real_terms:
            fake, real_d = pred_c[:, self.adversarial_index], target_c[:, self.adversarial_index]
            g_loss = dra_bce_generator_loss(self.discriminator(real_d), self.discriminator(fake))
            logs["training/generator_dra"] = g_loss.detach()
            if not self.adversarial_active(step):
                g_loss = g_loss.detach()
            total = total + adv.weight * g_loss
        try:
            total = finite_or_raise(total, f"the training loss at step {step}")
        except FloatingPointError as exc:  # name the terms (computed only on failure)
            terms = {k: v for k, v in logs.items() if k.endswith(("_average", "_dra", "total_pixel_loss"))}
            raise FloatingPointError(f"{exc}; loss terms: {loss_values(terms)}") from exc
        opt_g = opt_list[0]
        opt_g.zero_grad()
        self.manual_backward(total)
        opt_g.step()
        sched_list[0].step()
        if (
            self.discriminator is not None
            and fake is not None
            and real_d is not None
            and self.adversarial_active(step)
        ):
            d_loss = dra_bce_discriminator_loss(
                self.discriminator(real_d), self.discriminator(fake.detach()), adv.label_smoothing
            )
            logs["training/discriminator_dra"] = d_loss.detach()
            opt_d = opt_list[1]
            # The discriminator's steps must not advance global_step (which counts training batches).
            opt_d._on_before_step = do_nothing_closure
            opt_d._on_after_step = do_nothing_closure
            opt_d.zero_grad()
            self.manual_backward(d_loss)
            opt_d.step()
            sched_list[1].step()
        logs["training/total_loss"] = total.detach()
        self.log_dict(logs, on_step=True, on_epoch=False, batch_size=bsz)
        self.log("training/loss", total.detach(), prog_bar=True, on_step=True, logger=False, batch_size=bsz)
        return total.detach()

    # ------------------------------------------------------------------ validation / test
    def _evaluation_logs(self, batch: Batch, batch_idx: int, context: str) -> dict[str, torch.Tensor]:
        reflectance = self.reflectance(batch)
        inputs, target, lr = self.standardise(reflectance)
        tp = self.experiment.training
        logs: dict[str, torch.Tensor] = {}
        if self.mode == "pretrain_registration":
            return self.pretraining_logs(inputs, target, batch, batch_idx, context)

        registered = self._registered_target(inputs, target, lr, batch.true_flow)
        pred = self.to_target_bands(self.predict_standardised(inputs, lr))
        m = tp.validation_margin
        total, loss_logs = self._pixel_losses(crop(pred, m), crop(registered, m), context)
        logs.update(loss_logs)
        reference = tp.validation_metrics == "reference"
        if tp.losses.l1_sim > 0 or reference:
            seed = VALIDATION_SEED + SIM_SEED + batch_idx
            sim_total, sim_logs = self.simulated_terms(reflectance, seed, context, m, metrics=reference)
            total = total + sim_total
            logs.update(sim_logs)
        if tp.losses.wald_l1 > 0 and reflectance[2] is not None:
            seed = VALIDATION_SEED + WALD_SEED + batch_idx
            wald_total, wald_logs = self.wald_terms(reflectance[0], reflectance[2], seed, context, reference)
            total = total + wald_total
            logs.update(wald_logs)
        logs[f"{context}/total_loss"] = total
        if self.discriminator is not None or tp.best_total_checkpoint:
            logs.update(self._total_with_adversarial(crop(pred, m), crop(registered, m), total, context))
        # metrics on reflectance, against the un-registered target
        pred_r = self.target_std.unstandardise(pred.float())
        target_r = self.target_std.unstandardise(target.float())
        pc, tc = crop(pred_r, m), crop(target_r, m)
        metrics = {"rmse": per_band_rmse(pc, tc), "psnr": per_band_psnr(pc, tc)}
        if reference:
            metrics.update(reference_metrics(pred_r, target_r, pred.shape[-1] / inputs.shape[-1], m))
        if self._brisque:
            brisque = perceptual_scores("brisque", pc, None, tp.brisque_weights).mean(dim=0)
            metrics["brisque"] = brisque
        shared = [b for b in self.target_bands if b in self.input_bands]
        if shared:
            t_idx = [self.target_bands.index(b) for b in shared]
            i_idx = [self.input_bands.index(b) for b in shared]
            factor = pred.shape[-1] / inputs.shape[-1]
            inputs_r = self.input_std.unstandardise(inputs.float())
            down = mtf_downscale(pred_r[:, t_idx], factor, LR_FIDELITY_MTF, kernel=tp.psf_kernel)
            mi = round(m / factor)
            lr_rmse = per_band_rmse(crop(down, mi), crop(inputs_r[:, i_idx], mi))
            lr_bias = per_band_bias(crop(down, mi), crop(inputs_r[:, i_idx], mi))
            for band, v, b in zip(shared, lr_rmse, lr_bias, strict=True):
                logs[f"{context}/lr_rmse_{band}"] = v
                logs[f"{context}/lr_bias_{band}"] = b
            logs[f"{context}/lr_rmse_average"] = lr_rmse.mean()
            logs[f"{context}/lr_bias_average"] = lr_bias.mean()
        for name, values in metrics.items():
            for band, v in zip(self.target_bands, values, strict=True):
                logs[f"{context}/{name}_{band}"] = v
            logs[f"{context}/{name}_average"] = values.mean()
        if context == "test" and self.registration is not None:
            logs.update(self._geometric_metric(inputs, pred, target, context))
        return logs

    def _total_with_adversarial(
        self, pred: torch.Tensor, target: torch.Tensor, total: torch.Tensor, context: str
    ) -> dict[str, torch.Tensor]:
        """``{context}/total_loss_with_adversarial`` (torchsisr's validation total: the pixel terms plus the
        weighted relativistic generator term) and ``{context}/generator_dra``; cropped standardised
        ``pred`` and ``target``."""
        if self.discriminator is None:
            return {f"{context}/total_loss_with_adversarial": total}
        idx = self.adversarial_index
        g = dra_bce_generator_loss(self.discriminator(target[:, idx]), self.discriminator(pred[:, idx]))
        weight = self.experiment.training.adversarial.weight
        return {f"{context}/generator_dra": g, f"{context}/total_loss_with_adversarial": total + weight * g}

    def _geometric_metric(
        self, inputs: torch.Tensor, pred: torch.Tensor, target: torch.Tensor, context: str
    ) -> dict[str, torch.Tensor]:
        """Mean/std flow norm (LR px) from the downscaled prediction and target to the real input
        (torchsisr's geometric metric)."""
        assert self.registration is not None
        reg = self.experiment.registration
        t = self.reg_target_index
        factor = pred.shape[-1] / inputs.shape[-1]
        real = inputs[:, reg.channel]
        mi = round(self.experiment.training.validation_margin / factor)
        logs: dict[str, torch.Tensor] = {}
        for name, hr in (("pred", pred), ("target", target)):
            kernel = self.experiment.training.psf_kernel
            down = mtf_downscale(hr[:, t : t + 1].float(), factor, GEOMETRIC_METRIC_MTF, kernel=kernel)[:, 0]
            norm = flow_norm(crop(self.registration(down, real.float()), mi))
            logs[f"{context}/average_{name}_warp"] = norm.mean()
            logs[f"{context}/std_{name}_warp"] = norm.std()
        return logs

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        logs = self._evaluation_logs(batch, batch_idx, "validation")
        self.log_dict(logs, on_step=False, on_epoch=True, sync_dist=True, batch_size=len(batch))

    def test_step(self, batch: Batch, batch_idx: int) -> None:
        logs = self._evaluation_logs(batch, batch_idx, "test")
        self.log_dict(logs, on_step=False, on_epoch=True, sync_dist=True, batch_size=len(batch))

    # ------------------------------------------------------------------ optimisers
    def configure_optimizers(self) -> Any:
        tp = self.experiment.training
        if self.mode == "pretrain_registration":
            assert self.registration is not None
            params = list(self.registration.parameters())
        else:
            assert self.generator is not None
            params = list(self.generator.parameters())
        opt = torch.optim.Adam(params, lr=tp.lr, betas=(0.9, 0.999))
        sched = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(opt, T_0=tp.t_0, T_mult=tp.t_mult)
        if self.discriminator is None:
            return [opt], [sched]
        adv = tp.adversarial
        opt_d = torch.optim.Adam(self.discriminator.parameters(), lr=adv.lr, betas=(0.9, 0.999))
        sched_d = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(opt_d, T_0=adv.t_0, T_mult=adv.t_mult)
        return [opt, opt_d], [sched, sched_d]
