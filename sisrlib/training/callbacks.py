"""Lightning callbacks of a run: the checkpoints it writes, the random states saved in them, SLURM's requeue
signal, and a warning when the adversarial term's discriminator never left chance.

Every checkpoint is written atomically (:func:`save_checkpoint_atomic`: a temporary name in the same folder,
renamed when complete), so that an interrupted run never leaves a partial ``.ckpt``.
"""

from __future__ import annotations

import logging
import math
import random
import signal
import threading
from pathlib import Path
from types import FrameType
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Callback, LearningRateMonitor, ModelCheckpoint
from pytorch_lightning.plugins.environments import SLURMEnvironment

from sisrlib.atomic import atomic_output
from sisrlib.metrics.perceptual import perceptual_unavailable
from sisrlib.run_params import ExperimentParams
from sisrlib.training.module import MONITOR, MONITOR_BRISQUE, MONITOR_TOTAL

LOGGER = logging.getLogger(__name__)


def save_checkpoint_atomic(trainer: pl.Trainer, path: Path) -> None:
    """``trainer.save_checkpoint`` to ``path`` through a temporary name (renamed when complete). Called on
    every rank (the save is collective); only the global rank 0 writes."""
    if trainer.is_global_zero:
        with atomic_output(path) as tmp:
            trainer.save_checkpoint(tmp)
    else:
        trainer.save_checkpoint(path)  # writes nothing off rank 0, takes part in the collective save


class SaveLastCheckpoint(Callback):
    """Writes ``last.ckpt`` atomically (temporary name, then rename) after every validation and at the end."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def _save(self, trainer: pl.Trainer) -> None:
        if trainer.sanity_checking:
            return
        for logger in trainer.loggers:  # the logs hold every step the checkpoint holds
            logger.save()
        save_checkpoint_atomic(trainer, self.path)

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.state.fn == "fit":
            self._save(trainer)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._save(trainer)


class StepCheckpoints(Callback):
    """Writes ``step_{global_step:06d}.ckpt`` (atomically) every ``every`` training steps, as torchsisr's
    ``every_n_train_steps`` checkpoint (500 steps there); every one is kept."""

    def __init__(self, folder: Path, every: int) -> None:
        if every < 1:
            raise ValueError(f"training.checkpoint_every_n_steps must be >= 1, got {every}")
        self.folder = Path(folder)
        self.every = int(every)
        self._last = -1

    def path(self, step: int) -> Path:
        return self.folder / f"step_{step:06d}.ckpt"

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        step = int(trainer.global_step)
        if step > 0 and step % self.every == 0 and step != self._last:
            self._last = step
            save_checkpoint_atomic(trainer, self.path(step))


class EpochsCompleted(Callback):
    """Stores the number of completed training epochs in every checkpoint (``sisr_epochs_completed``), so
    that a run trained to ``training.max_epochs`` is recognised as done."""

    KEY = "sisr_epochs_completed"

    def on_save_checkpoint(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        checkpoint[self.KEY] = int(trainer.fit_loop.epoch_progress.current.completed)


class RandomStates(Callback):
    """Saves the global torch (and CUDA), numpy and python random states in every checkpoint and restores
    them when training resumes (on ``on_train_start``, just before the first resumed step), so that anything
    drawing from them (none of this project's training steps does: crops and flows use generators seeded by
    the step) continues the uninterrupted run's sequence. Stored as tensors and plain values (a
    ``weights_only`` checkpoint)."""

    def __init__(self) -> None:
        self._pending: dict[str, Any] | None = None

    def state_dict(self) -> dict[str, Any]:
        bit_generator = np.random.get_state(legacy=False)
        python = random.getstate()
        return {
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "numpy": {
                "bit_generator": bit_generator["bit_generator"],
                "key": [int(v) for v in bit_generator["state"]["key"]],
                "pos": int(bit_generator["state"]["pos"]),
                "has_gauss": int(bit_generator["has_gauss"]),
                "gauss": float(bit_generator["gauss"]),
            },
            "python": [python[0], list(python[1]), python[2]],
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._pending = dict(state_dict)

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        state, self._pending = self._pending, None
        if not state:
            return
        torch.set_rng_state(state["torch"])
        cuda = state.get("cuda") or []
        if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda)
        n = state["numpy"]
        np.random.set_state(
            {
                "bit_generator": n["bit_generator"],
                "state": {"key": np.asarray(n["key"], dtype=np.uint32), "pos": n["pos"]},
                "has_gauss": n["has_gauss"],
                "gauss": n["gauss"],
            }
        )
        version, internal, gauss = state["python"]
        random.setstate((version, tuple(internal), gauss))


class DeferredRequeue(Callback):
    """SLURM's requeue signal (SIGUSR1, ``hpc_ckpt_<n>.ckpt`` then ``scontrol requeue``), acted on after the
    current training step instead of inside the signal handler.

    Lightning saves the checkpoint from within its handler, i.e. wherever the main thread happened to be,
    possibly in the middle of writing ``last.ckpt`` or the logs: re-entering that code could hang the run
    (seen about once in twelve runs of ``tests/training/test_signals.py`` on a loaded machine). This callback
    installs, before Lightning registers its own, a handler that only records the signal (Lightning then
    keeps it), and runs Lightning's requeue actions at the end of the next training batch.
    """

    def __init__(self) -> None:
        self._received: int | None = None
        self._signal: int | None = None
        self._previous: Any = None

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        environment = trainer._accelerator_connector.cluster_environment
        if (
            stage != "fit"
            or not isinstance(environment, SLURMEnvironment)
            or not environment.auto_requeue
            or threading.current_thread() is not threading.main_thread()
        ):
            return
        signum = environment.requeue_signal or signal.SIGUSR1
        self._signal = int(signum)
        self._previous = signal.signal(signum, self._record)

    def _record(self, signum: int, _frame: FrameType | None) -> None:
        self._received = signum

    def on_train_batch_end(self, trainer: pl.Trainer, *args: Any) -> None:
        if self._received is not None:
            signum, self._received = self._received, None
            trainer._signal_connector._slurm_sigusr_handler_fn(signum, None)  # type: ignore[arg-type]

    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if self._signal is not None and threading.current_thread() is threading.main_thread():
            signal.signal(self._signal, self._previous)
            self._signal = None


class DiscriminatorAtChance(Callback):
    """Warns at the end of training when the adversarial term was inert: the discriminator's DRA-BCE loss
    (``training/discriminator_dra``) never fell ``margin`` below ln 2, its value when the discriminator scores
    real and super-resolved patches alike. The generator's adversarial gradient is then noise, and the run is
    in effect a pixel-loss run. Seen with the U-Net discriminator without high-pass pre-filter on the quick
    profile's windows: a prediction within a few per cent of the target leaves it at chance for 800 steps,
    where ``training.adversarial.discriminator.hpf_mtf: 0.4`` lets it discriminate after about 550."""

    METRIC = "training/discriminator_dra"
    #: The DRA-BCE loss of a discriminator that scores real and fake alike (equal logits, any labels).
    CHANCE = math.log(2.0)

    def __init__(self, name: str, min_steps: int = 100, margin: float = 0.01) -> None:
        self.name = name
        self.min_steps = min_steps
        self.margin = margin
        self.steps = 0
        # kept on the loss's device: reading it back every step would synchronise a GPU run
        self.lowest: torch.Tensor | None = None

    def on_train_batch_end(self, trainer: pl.Trainer, *args: Any) -> None:
        value = trainer.callback_metrics.get(self.METRIC)
        if value is None:
            return
        self.steps += 1
        value = value.detach()
        self.lowest = value if self.lowest is None else torch.minimum(self.lowest, value)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.lowest is None or self.steps < self.min_steps:
            return
        lowest = float(self.lowest)
        if lowest < self.CHANCE - self.margin:
            return
        LOGGER.warning(
            "%s: the discriminator stayed at chance for its %d training steps (lowest DRA-BCE loss %.4f, "
            "chance ln 2 = %.4f): the adversarial term did not act. Feed it the high frequencies "
            "(training.adversarial.discriminator.hpf_mtf, e.g. 0.4), raise training.adversarial.lr, or train "
            "longer.",
            self.name,
            self.steps,
            lowest,
            self.CHANCE,
        )


def _best(params: ExperimentParams, name: str, monitor: str) -> ModelCheckpoint:
    """Lightning's top-1 checkpoint ``<checkpoint_dir>/<name>.ckpt`` of the minimum of ``monitor``."""
    return ModelCheckpoint(
        dirpath=str(params.checkpoint_dir),
        filename=name,
        monitor=monitor,
        mode="min",
        save_top_k=1,
        save_last=False,
        auto_insert_metric_name=False,
        enable_version_counter=False,
    )


def brisque_available(params: ExperimentParams) -> bool:
    """Whether ``best_brisque.ckpt`` is asked for and BRISQUE's weights are present (else a warning)."""
    tp = params.training
    if not tp.best_brisque_checkpoint:
        return False
    reason = perceptual_unavailable("brisque", tp.brisque_weights, "training.brisque_weights")
    if reason is not None:
        LOGGER.warning("%s: no best_brisque.ckpt: %s", params.name, reason)
    return reason is None


def run_callbacks(params: ExperimentParams) -> list[Callback]:
    """The callbacks of a run: ``best.ckpt`` (min ``validation/total_loss``), ``last.ckpt``, and the
    checkpoints of torchsisr asked for by ``training`` (``best_total.ckpt``, ``best_brisque.ckpt``,
    ``step_{global_step:06d}.ckpt``); the learning-rate log, the random states, the epoch count, SLURM's
    requeue signal handled between steps, and with the adversarial term a warning if its discriminator
    never left chance."""
    tp = params.training
    callbacks: list[Callback] = [
        _best(params, "best", MONITOR),
        SaveLastCheckpoint(params.last_checkpoint),
        LearningRateMonitor("step"),
        RandomStates(),
        EpochsCompleted(),
        DeferredRequeue(),
    ]
    if tp.best_total_checkpoint:
        callbacks.append(_best(params, "best_total", MONITOR_TOTAL))
    if brisque_available(params):
        callbacks.append(_best(params, "best_brisque", MONITOR_BRISQUE))
    if tp.checkpoint_every_n_steps is not None:
        callbacks.append(StepCheckpoints(params.checkpoint_dir, tp.checkpoint_every_n_steps))
    if tp.adversarial.enabled:
        callbacks.append(DiscriminatorAtChance(params.name))
    return callbacks


__all__ = [
    "DeferredRequeue",
    "DiscriminatorAtChance",
    "EpochsCompleted",
    "RandomStates",
    "SaveLastCheckpoint",
    "StepCheckpoints",
    "brisque_available",
    "run_callbacks",
    "save_checkpoint_atomic",
]
