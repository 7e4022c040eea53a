"""The registration pre-training steps of :class:`sisrlib.training.module.SISRModule`
(``training.mode: pretrain_registration``): only the flow network is trained, with the self-supervised loss
of :func:`sisrlib.registration.pretraining.pretraining_loss` on (simulated LR band, real LR band) pairs.

Tensors are standardised: ``inputs`` ``[B, C, h, w]`` (LR), ``target`` ``[B, C_t, H, W]`` (HR); the pairs
are ``[B, h, w]`` on the registration channel. Random flows and crops come from generators seeded by the
step (validation: by the batch index).
"""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
import torch

from sisrlib.data.batch import Batch
from sisrlib.degradation import simulate_lr
from sisrlib.flow import flow_norm
from sisrlib.registration.network import FlowEstimator
from sisrlib.registration.pretraining import RegistrationLosses, pretraining_loss
from sisrlib.run_params import ExperimentParams
from sisrlib.training.losses import finite_or_raise

#: Offset of the seeds of the validation flows (+ batch index).
VALIDATION_FLOW_SEED = 10_000_000


def loss_values(logs: dict[str, torch.Tensor]) -> str:
    """``name value, ...`` of logged scalars, for error messages."""
    return ", ".join(f"{k.removeprefix('training/')} {float(v):.4g}" for k, v in logs.items())


class RegistrationPretraining(pl.LightningModule):
    """Mixin of ``SISRModule``: the pre-training step and validation logs of the flow network."""

    experiment: ExperimentParams
    registration: FlowEstimator | None
    reg_target_index: int

    def _flow_generator(self, offset: int) -> torch.Generator:  # pragma: no cover - overridden
        raise NotImplementedError

    def _registration_pair(
        self, inputs: torch.Tensor, target: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(simulated LR band, real LR band) ``[B, h, w]`` on the registration channel."""
        reg = self.experiment.registration
        t = self.reg_target_index
        factor = target.shape[-1] / inputs.shape[-1]
        sim = simulate_lr(target[:, t : t + 1], factor, reg.sim_mtf, kernel=reg.psf_kernel)[:, 0]
        return sim, inputs[:, reg.channel]

    def _pretraining_losses(
        self, sim: torch.Tensor, real: torch.Tensor, generator: torch.Generator
    ) -> RegistrationLosses:
        assert self.registration is not None
        reg = self.experiment.registration
        return pretraining_loss(
            self.registration,
            sim,
            real,
            reg.flow_max_range,
            reg.flow_max_width,
            reg.composition,
            generator=generator,
            weights=reg.loss_weights,
            flow_penalty=reg.flow_penalty,
            data_penalty=reg.data_penalty,
            data_highpass=reg.data_highpass,
        )

    def pretraining_step(
        self, inputs: torch.Tensor, target: torch.Tensor, step: int, opt: Any, sched: Any
    ) -> torch.Tensor:
        """One optimiser step of the flow network; returns the (detached) total loss."""
        reg = self.experiment.registration
        sim, real = self._registration_pair(inputs, target)
        generator = self._flow_generator(step)
        if reg.crop_size is not None and reg.crop_size < min(sim.shape[-2:]):
            c = reg.crop_size
            i = int(torch.randint(0, sim.shape[-2] - c + 1, (1,), generator=generator))
            j = int(torch.randint(0, sim.shape[-1] - c + 1, (1,), generator=generator))
            sim, real = sim[:, i : i + c, j : j + c], real[:, i : i + c, j : j + c]
        losses = self._pretraining_losses(sim, real, generator)
        try:
            total = finite_or_raise(losses.total, f"the registration pre-training loss at step {step}")
        except FloatingPointError as exc:
            raise FloatingPointError(f"{exc}; loss terms: {loss_values(losses.as_dict())}") from exc
        opt.zero_grad()
        self.manual_backward(total)
        opt.step()
        sched.step()
        bsz = inputs.shape[0]
        for k, v in losses.as_dict().items():
            self.log(f"training/{k}", v.detach(), on_step=True, on_epoch=False, batch_size=bsz)
        self.log("training/total_loss", total.detach(), on_step=True, prog_bar=True, batch_size=bsz)
        return total.detach()

    def pretraining_logs(
        self, inputs: torch.Tensor, target: torch.Tensor, batch: Batch, batch_idx: int, context: str
    ) -> dict[str, torch.Tensor]:
        """Validation / test values of the pre-training loss (and the flow's end-point error against the
        true flow of simulated sites)."""
        assert self.registration is not None
        sim, real = self._registration_pair(inputs, target)
        losses = self._pretraining_losses(sim, real, self._flow_generator(VALIDATION_FLOW_SEED + batch_idx))
        logs = {f"{context}/{k}": v for k, v in losses.as_dict().items()}
        logs[f"{context}/total_loss"] = losses.total
        if batch.true_flow is not None:
            est = self.registration(sim, real)
            epe = torch.linalg.vector_norm(est - batch.true_flow.to(est.dtype), dim=1)
            logs[f"{context}/flow_epe"] = epe.mean()
            logs[f"{context}/true_flow_norm"] = flow_norm(batch.true_flow).mean()
        return logs


__all__ = ["VALIDATION_FLOW_SEED", "RegistrationPretraining", "loss_values"]
