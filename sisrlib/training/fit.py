"""Run a training or registration pre-training from its params: checks, Lightning trainer, checkpoints, logs.

Run layout under ``output_dir`` (``build/<profile>/runs/<name>``)::

    params.yaml                  the validated params of the run
    signature.json               what the run learns from (params without execution settings, and the
                                 sha256 of the registration checkpoint): a run whose signature differs from
                                 its params file is stale, and is set aside as ``<output_dir>.stale``
    checkpoints/best.ckpt        min validation/total_loss
    checkpoints/last.ckpt        latest state (optimisers, schedulers, step, data order, random states),
                                 rewritten at every validation (the logs are flushed first)
    hpc_ckpt_<n>.ckpt            saved by Lightning's SLURM plugin on the requeue signal (SIGUSR1)
    logs/csv/metrics.csv         CSV log (training/*, validation/*, test/*); a resumed run keeps the rows
                                 before its checkpoint's step and appends
    logs/tensorboard/            TensorBoard events (a resumed run purges the events after its step)

Resume (``training.resume_from: last``): the newest of ``last.ckpt`` and the SLURM ``hpc_ckpt_*.ckpt``. On one
process it continues exactly where the checkpoint was taken: weights, optimisers, schedulers, step, the
training loader's permutation and position (:class:`sisrlib.data.datamodule.ResumableDataLoader`) and the
global torch / numpy / python random states, so that a run stopped at a checkpoint and resumed ends with the
same weights as an uninterrupted one (CPU). Random crops and flows are seeded by the step. The steps trained
after the checkpoint are trained again.

Exit: a SIGTERM (SLURM cancellation or time limit) stops after the current step with
:class:`TrainingInterruptedError` (exit status 143); a non-finite loss stops with
:class:`TrainingDivergedError`; in both cases ``last.ckpt`` stays the last checkpoint written before.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Callback
from pytorch_lightning.loggers import TensorBoardLogger
from pytorch_lightning.utilities import rank_zero_only
from pytorch_lightning.utilities.exceptions import MisconfigurationException, SIGTERMException

from sisrlib.bands import STANDARDISATION
from sisrlib.checkpoint import generator_output_bands, load_registration_into, read_checkpoint
from sisrlib.data.datamodule import build_datamodule
from sisrlib.errors import SisrError
from sisrlib.run_params import ExperimentParams, TrainingParams
from sisrlib.training.callbacks import run_callbacks
from sisrlib.training.logs import ResumableCSVLogger
from sisrlib.training.module import SISRModule
from sisrlib.training.run_folder import (
    EXECUTION_SETTINGS,
    SIGNATURE_FILE,
    checkpoint_step,
    finished_step,
    run_signature,
    set_aside_if_stale,
    write_params,
    write_signature,
)


class TrainingInterruptedError(SisrError):
    """Training was stopped by SIGTERM (a SLURM cancellation, its time limit, ``kill``): not a success."""

    #: 128 + SIGTERM, what a shell reports for a process killed by SIGTERM.
    exit_code = 143


class TrainingDivergedError(SisrError, ArithmeticError):
    """A training loss became NaN or infinite."""


@dataclass
class RunResult:
    """Where a run left its outputs."""

    name: str
    output_dir: Path
    best_checkpoint: Path
    last_checkpoint: Path
    log_dir: Path
    metrics_csv: Path
    global_step: int
    skipped: bool = False
    test_metrics: dict[str, float] = field(default_factory=dict)


def is_rank_zero() -> bool:
    """Whether this process is the global rank 0 (always, without DDP or srun)."""
    return int(getattr(rank_zero_only, "rank", 0)) == 0


def _data_bands(dm: Any) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...], float]:
    return (
        tuple(dm.input_bands),
        tuple(dm.target_bands),
        tuple(getattr(dm, "lr_bands", ()) or ()),
        float(dm.factor),
    )


def check_compatibility(
    params: ExperimentParams,
    input_bands: tuple[str, ...],
    target_bands: tuple[str, ...],
    lr_bands: tuple[str, ...],
    factor: float,
) -> None:
    """Errors before training for params the data cannot satisfy (factor, bands, registration channel)."""
    tp = params.training
    if tp.mode == "sr" and abs(params.model.factor - factor) > 1e-6:
        raise SisrError(
            f"model.factor is {params.model.factor} but the data ({params.data.dataset} at "
            f"{params.data.root}) has "
            f"a factor of {factor} (input bands {list(input_bands)} → target bands {list(target_bands)}); "
            "set "
            f"model.factor: {factor:g} or load other bands"
        )
    stats = STANDARDISATION[tp.standardisation]
    missing = [b for b in (*input_bands, *target_bands, *lr_bands) if b not in stats.bands]
    if missing:
        raise SisrError(
            f"training.standardisation {tp.standardisation!r} has no statistics for the data's band(s) "
            f"{missing} "
            f"(it covers {list(stats.bands)}); choose a standardisation whose bands include "
            f"{sorted(set(input_bands) | set(target_bands) | set(lr_bands))}"
        )
    if tp.adversarial.enabled and tp.adversarial.bands is not None:
        lacking = [b for b in tp.adversarial.bands if b not in target_bands]
        if lacking:
            raise SisrError(
                f"training.adversarial.bands {tp.adversarial.bands}: the dataset's target lacks {lacking} "
                f"(target bands {list(target_bands)})"
            )
    ch = params.registration.channel
    if not 0 <= ch < len(input_bands) or input_bands[ch] not in target_bands:
        raise SisrError(
            f"registration.channel {ch} must index an input band that the target also has; input bands "
            f"{list(input_bands)}, target bands {list(target_bands)}"
        )
    if tp.mode == "sr":
        check_branches(params, input_bands, target_bands, lr_bands)


def check_branches(
    params: ExperimentParams,
    input_bands: tuple[str, ...],
    target_bands: tuple[str, ...],
    lr_bands: tuple[str, ...],
) -> None:
    """Errors before training for simulated / Wald / band-weight keys the data cannot satisfy."""
    tp = params.training
    data_bands = (*input_bands, *lr_bands)
    try:
        output = generator_output_bands(params.model, input_bands, target_bands, lr_bands)
    except ValueError as exc:
        raise SisrError(f"model.lr_to_hr: {exc}") from exc
    if tp.losses.l1_sim > 0 and not any(b in target_bands for b in data_bands):
        raise SisrError(
            f"training.losses.l1_sim > 0 simulates the inputs from the target, but no input band "
            f"{list(data_bands)} has a target band {list(target_bands)}"
        )
    wald = tp.wald
    if tp.losses.wald_l1 > 0 and (params.model.lr_to_hr is None or not lr_bands):
        raise SisrError(
            "training.losses.wald_l1 > 0 needs the joint 10 m + 20 m model: set model.lr_to_hr: bicubic and "
            f"data.load_10m, load_20m (and load_b11b12 for B11/B12) true; the data has input bands "
            f"{list(input_bands)} and 20 m bands {list(lr_bands)}"
        )
    if tp.losses.wald_l1 > 0 and any(b not in output for b in wald.bands):
        raise SisrError(
            f"training.wald.bands {wald.bands} must be bands the model outputs ({list(output)}); load them "
            "(data.load_b11b12: true for B11/B12) or change training.wald.bands"
        )
    for key, names, valid in (
        ("training.losses.band_weights", tp.losses.band_weights, output),
        ("training.simulation.noise_std", tp.simulation.noise_std, data_bands),
        ("training.wald.noise_std", wald.noise_std, data_bands),
    ):
        unknown = [b for b in names or {} if b not in valid]
        if unknown:
            raise SisrError(f"{key}: unknown band(s) {unknown}; the run's bands are {list(valid)}")


def _check_validation_split(params: ExperimentParams, datamodule: pl.LightningDataModule) -> None:
    """The best checkpoint needs validation batches: an empty validation split is an error before training."""
    datamodule.setup("fit")
    try:
        n = len(datamodule.val_dataloader())
    except TypeError:  # iterable loaders without a length
        return
    if n == 0:
        raise SisrError(
            f"{params.name}: the validation split of {params.data.root} is empty (data.validation_ratio "
            f"{params.data.validation_ratio}, data.test_batch_size {params.data.test_batch_size}); raise "
            "data.validation_ratio or use more patches"
        )


def _resolve_resume(params: ExperimentParams) -> Path | None:
    """The checkpoint to resume from: for ``last``, the newest (largest step) of ``last.ckpt`` and the SLURM
    requeue checkpoints ``<output_dir>/hpc_ckpt_<n>.ckpt`` (None when there is none)."""
    r = params.training.resume_from
    if r is None:
        return None
    if r == "last":
        hpc = sorted(
            Path(params.output_dir).glob("hpc_ckpt_*.ckpt"),
            key=lambda p: int(p.stem.rsplit("_", 1)[-1]) if p.stem.rsplit("_", 1)[-1].isdigit() else -1,
        )
        candidates = [c for c in (params.last_checkpoint, *hpc[-1:]) if c.is_file()]
        if not candidates:
            return None
        return max(candidates, key=checkpoint_step)  # ties: last.ckpt, written at a step boundary
    path = Path(r)
    if not path.is_file():
        raise FileNotFoundError(f"training.resume_from: checkpoint {path} does not exist")
    return path


def _check_training_split(params: ExperimentParams, datamodule: pl.LightningDataModule) -> None:
    """At least one training batch per epoch (the training loader drops its last incomplete batch)."""
    try:
        loader = datamodule.train_dataloader()
        n = len(loader)
    except TypeError:  # iterable loaders without a length
        return
    if n == 0:
        dataset = getattr(loader, "dataset", None)
        size = len(dataset) if dataset is not None and hasattr(dataset, "__len__") else "fewer"
        raise SisrError(
            f"{params.name}: data.batch_size {params.data.batch_size} is larger than the training split "
            f"({size} patches of {params.data.root}, data.train_ratio {params.data.train_ratio}) and the "
            "last incomplete batch is dropped: not one training step; lower data.batch_size or use more "
            "patches"
        )


def _check_registration(params: ExperimentParams, module: SISRModule) -> None:
    reg = params.registration
    if params.training.mode == "sr" and reg.enabled and reg.checkpoint is None:
        raise SisrError(
            "registration.geometric/radiometric need a pre-trained flow network: set registration.checkpoint "
            "to "
            "a pre-training run's checkpoints/best.ckpt (sisr pretrain-registration PARAMS)"
        )
    if reg.checkpoint is None or module.registration is None:
        return
    path = Path(reg.checkpoint)
    if not path.is_file():
        raise SisrError(
            f"registration.checkpoint {path} does not exist; run the registration pre-training first "
            "(sisr pretrain-registration params/<profile>/02_registration_*.yaml) or fix the path"
        )
    load_registration_into(module.registration, path, reg)


def build_trainer(
    params: ExperimentParams, callbacks: list[Callback], resume_step: int | None = None
) -> pl.Trainer:
    """The Lightning trainer of a run; ``resume_step``: the step of the checkpoint a resumed run starts from
    (its CSV log keeps the earlier rows, its TensorBoard log purges the later events). Settings Lightning
    refuses (strategy, devices) raise a SisrError naming them."""
    tp = params.training
    out = Path(params.output_dir)
    tensorboard: dict[str, Any] = {"purge_step": resume_step} if resume_step else {}
    loggers = [
        ResumableCSVLogger(save_dir=str(out), name="logs", version="csv", resume_step=resume_step),
        TensorBoardLogger(
            save_dir=str(out), name="logs", version="tensorboard", default_hp_metric=False, **tensorboard
        ),
    ]
    try:
        return _trainer(params, callbacks, loggers)
    except (MisconfigurationException, ValueError, RuntimeError) as exc:
        raise SisrError(
            f"{params.name}: Lightning refuses training.accelerator {tp.accelerator!r}, devices "
            f"{tp.devices!r}, num_nodes {tp.num_nodes}, strategy {tp.strategy!r}, precision "
            f"{tp.precision!r}: {exc}"
        ) from exc


def _val_interval(tp: TrainingParams) -> int:
    """Validation every ``val_check_interval`` steps, at most ``max_steps`` (when there is a step limit)."""
    return min(tp.val_check_interval, tp.max_steps) if tp.max_steps > 0 else tp.val_check_interval


def _trainer(params: ExperimentParams, callbacks: list[Callback], loggers: list[Any]) -> pl.Trainer:
    tp = params.training
    out = Path(params.output_dir)
    return pl.Trainer(
        default_root_dir=str(out),
        max_steps=tp.max_steps,
        max_epochs=tp.max_epochs if tp.max_epochs is not None else -1,
        val_check_interval=1.0 if tp.validate_every_epoch else _val_interval(tp),
        check_val_every_n_epoch=1 if tp.validate_every_epoch else None,
        limit_val_batches=tp.limit_val_batches if tp.limit_val_batches is not None else 1.0,
        limit_test_batches=tp.limit_test_batches if tp.limit_test_batches is not None else 1.0,
        num_sanity_val_steps=0,
        precision=tp.precision,  # type: ignore[arg-type]
        accelerator=tp.accelerator,
        devices=tp.devices,
        num_nodes=tp.num_nodes,
        strategy=tp.strategy,
        log_every_n_steps=tp.log_every_n_steps,
        logger=loggers,
        callbacks=callbacks,
        enable_progress_bar=False,
        enable_model_summary=False,
        deterministic=False,
    )


def fit(params: ExperimentParams, datamodule: pl.LightningDataModule | None = None) -> RunResult:
    """Train (or pre-train the registration network of) one run; see the module docstring for the outputs.

    ``datamodule``: optional, for tests; by default ``sisrlib.data.build_datamodule(params.data,
    params.seed)``.
    Bad params (factor, bands, registration checkpoint, LPIPS weights) raise before any training step.
    """
    tp = params.training
    out = Path(params.output_dir)
    result = RunResult(
        name=params.name,
        output_dir=out,
        best_checkpoint=params.best_checkpoint,
        last_checkpoint=params.last_checkpoint,
        log_dir=out / "logs",
        metrics_csv=out / "logs" / "csv" / "metrics.csv",
        global_step=0,
    )
    if is_rank_zero():  # under DDP/srun the other ranks run this too: one process moves folders
        set_aside_if_stale(params)
    if tp.skip_if_done and params.last_checkpoint.is_file() and params.best_checkpoint.is_file():
        step = finished_step(params)
        if step is not None:
            result.global_step = step
            result.skipped = True
            return result
    if tp.accelerator in ("gpu", "cuda") and not torch.cuda.is_available():
        raise SisrError(
            f"{params.name}: training.accelerator is {tp.accelerator!r} but no CUDA GPU is available here; "
            "run it on "
            "a GPU node (see slurm/README.md) or set training.accelerator: cpu (slow at the paper's sizes)"
        )
    threads = torch.get_num_threads()
    if tp.num_threads is not None:
        torch.set_num_threads(tp.num_threads)
    try:
        _fit(params, datamodule, result)
    finally:
        torch.set_num_threads(threads)
    return result


def _fit(params: ExperimentParams, datamodule: pl.LightningDataModule | None, result: RunResult) -> None:
    tp = params.training
    out = Path(params.output_dir)
    pl.seed_everything(params.seed, workers=True, verbose=False)
    if datamodule is None:
        datamodule = build_datamodule(params.data, params.seed)
    input_bands, target_bands, lr_bands, factor = _data_bands(datamodule)
    check_compatibility(params, input_bands, target_bands, lr_bands, factor)
    _check_validation_split(params, datamodule)
    _check_training_split(params, datamodule)
    resume = _resolve_resume(params)
    if resume is not None:  # a foreign or broken file: a clear error before Lightning unpickles it
        read_checkpoint(resume)
    start = checkpoint_step(resume) if resume is not None else 0
    pl.seed_everything(params.seed, workers=True, verbose=False)  # same init whatever the data module drew
    module = SISRModule(params.to_mapping(), list(input_bands), list(target_bands), factor, list(lr_bands))
    _check_registration(params, module)
    callbacks = run_callbacks(params)
    trainer = build_trainer(params, callbacks, resume_step=start if resume is not None else None)
    if is_rank_zero():
        write_params(params, out / "params.yaml")
        write_signature(params)
    with _stopping(params, trainer):
        trainer.fit(
            module,
            datamodule=datamodule,
            ckpt_path=str(resume) if resume is not None else None,
            weights_only=True,
        )
    result.global_step = int(trainer.global_step)
    if result.global_step <= start and (tp.max_steps == -1 or start < tp.max_steps):
        raise SisrError(
            f"{params.name}: no training step ran (step {start} → {result.global_step} of training.max_steps "
            f"{tp.max_steps}); check that the training split yields batches (data.batch_size "
            f"{params.data.batch_size}, data.train_ratio {params.data.train_ratio})"
        )
    if tp.test_after_fit:
        ckpt = params.best_checkpoint if params.best_checkpoint.is_file() else None
        with _stopping(params, trainer):
            outputs = trainer.test(
                module,
                datamodule=datamodule,
                ckpt_path=str(ckpt) if ckpt else None,
                verbose=False,
                weights_only=True,
            )
        if outputs:
            result.test_metrics = {k: float(v) for k, v in outputs[0].items()}


@contextlib.contextmanager
def _stopping(params: ExperimentParams, trainer: pl.Trainer) -> Iterator[None]:
    """Turns Lightning's SIGTERM exit (a ``SystemExit`` without a code, which reads as success) into
    :class:`TrainingInterruptedError` and a non-finite loss into :class:`TrainingDivergedError`, each naming
    the step and the checkpoint a rerun resumes from."""
    try:
        yield
    except SIGTERMException as exc:
        raise TrainingInterruptedError(
            f"{params.name}: stopped by SIGTERM at step {trainer.global_step} of "
            f"{params.training.max_steps}; {_kept(params)}; rerun the same command to resume "
            "(training.resume_from: last)"
        ) from exc
    except FloatingPointError as exc:
        raise TrainingDivergedError(
            f"{params.name}: {exc}; training stopped at step {trainer.global_step}; {_kept(params)}. Lower "
            f"training.lr (now {params.training.lr:g}) or check the data for NaN/no-data patches"
        ) from exc


def _kept(params: ExperimentParams) -> str:
    last = params.last_checkpoint
    if not last.is_file():
        return "no checkpoint was written yet"
    return f"the last checkpoint {last} (step {checkpoint_step(last)}) is kept"


__all__ = [
    "EXECUTION_SETTINGS",
    "SIGNATURE_FILE",
    "RunResult",
    "TrainingDivergedError",
    "TrainingInterruptedError",
    "build_trainer",
    "check_compatibility",
    "fit",
    "is_rank_zero",
    "run_signature",
    "set_aside_if_stale",
    "write_params",
    "write_signature",
]
