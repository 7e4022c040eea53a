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
import csv
import hashlib
import json
import logging
import os
import random
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
import yaml
from pytorch_lightning.callbacks import Callback, LearningRateMonitor, ModelCheckpoint
from pytorch_lightning.loggers import CSVLogger, TensorBoardLogger
from pytorch_lightning.loggers.csv_logs import ExperimentWriter
from pytorch_lightning.loggers.logger import rank_zero_experiment
from pytorch_lightning.utilities import rank_zero_only
from pytorch_lightning.utilities.exceptions import MisconfigurationException, SIGTERMException

from sisrlib.bands import STANDARDISATION
from sisrlib.errors import SisrError
from sisrlib.metrics.atomic import write_text_atomic
from sisrlib.training.checkpoint import checkpoint_global_step, load_registration_into, read_checkpoint
from sisrlib.training.module import MONITOR, SISRModule
from sisrlib.training.params import ExperimentParams

LOGGER = logging.getLogger(__name__)

#: Settings of how (and how long) a run is executed, not of what it learns: they may differ between the SLURM
#: job that trained a run and the notebook that evaluates it without making the run stale; a larger
#: ``max_steps`` continues a finished run.
EXECUTION_SETTINGS: dict[str, tuple[str, ...]] = {
    "training": (
        "accelerator",
        "devices",
        "num_nodes",
        "strategy",
        "resume_from",
        "skip_if_done",
        "log_every_n_steps",
        "num_threads",
        "test_after_fit",
        "limit_test_batches",
        "max_steps",
    ),
    "data": ("num_workers", "test_batch_size"),
}
SIGNATURE_FILE = "signature.json"


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


class SaveLastCheckpoint(Callback):
    """Writes ``last.ckpt`` atomically (temporary name, then rename) after every validation and at the end."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def _save(self, trainer: pl.Trainer) -> None:
        if trainer.sanity_checking:
            return
        for logger in trainer.loggers:  # the logs hold every step the checkpoint holds
            logger.save()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        trainer.save_checkpoint(tmp)
        if trainer.is_global_zero:
            os.replace(tmp, self.path)

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.state.fn == "fit":
            self._save(trainer)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._save(trainer)


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


class _AppendingExperimentWriter(ExperimentWriter):
    """Lightning's CSV writer, except that an existing ``metrics.csv`` keeps its rows of the steps before
    ``keep_before`` (rewritten atomically) instead of being deleted; new rows are appended."""

    def __init__(self, log_dir: str, keep_before: int | None) -> None:
        self.keep_before = keep_before
        super().__init__(log_dir=log_dir)

    def _check_log_dir_exists(self) -> None:
        path = Path(self.metrics_file_path)
        if self.keep_before is None or not path.is_file():
            super()._check_log_dir_exists()
            return
        with path.open(newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            header = list(reader.fieldnames or [])
            rows = [r for r in reader if _csv_step(r) < self.keep_before]
        tmp = path.with_name(f".{path.name}.tmp")
        with tmp.open("w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=header)
            writer.writeheader()
            writer.writerows(rows)
        os.replace(tmp, path)
        self.metrics_keys = sorted(header)
        if header != self.metrics_keys:  # Lightning writes its columns sorted
            self._rewrite_with_new_header(self.metrics_keys)


def _csv_step(row: dict[str, str]) -> float:
    try:
        return float(row.get("step") or "nan")
    except ValueError:
        return float("nan")


class ResumableCSVLogger(CSVLogger):
    """``CSVLogger`` that, for a run resumed at step ``resume_step``, keeps the earlier rows of
    ``metrics.csv`` (Lightning's ``step`` column counts from 0: rows logged after the checkpoint have
    ``step >= resume_step``) and appends."""

    def __init__(self, *args: Any, resume_step: int | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.resume_step = resume_step

    @property
    @rank_zero_experiment
    def experiment(self) -> ExperimentWriter:
        if self._experiment is None:
            self._fs.makedirs(self.root_dir, exist_ok=True)
            self._experiment = _AppendingExperimentWriter(self.log_dir, self.resume_step)
        assert isinstance(self._experiment, ExperimentWriter)
        return self._experiment


def is_rank_zero() -> bool:
    """Whether this process is the global rank 0 (always, without DDP or srun)."""
    return int(getattr(rank_zero_only, "rank", 0)) == 0


def write_params(params: ExperimentParams, path: Path) -> None:
    """Write the validated params as YAML (temporary file then rename)."""
    write_text_atomic(path, yaml.safe_dump(params.to_mapping(), sort_keys=False))


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def run_signature(params: ExperimentParams) -> dict[str, Any]:
    """What the run learns from: its params without :data:`EXECUTION_SETTINGS`, and the sha256 of the
    registration checkpoint it loads (so that a retrained registration network makes its SR runs stale)."""
    mapping = json.loads(json.dumps(params.to_mapping()))
    for section, names in EXECUTION_SETTINGS.items():
        for name in names:
            mapping.get(section, {}).pop(name, None)
    # registration.input_normalisation came later; its default ("image") is what earlier runs did, so it
    # does not make them stale.
    if mapping.get("registration", {}).get("input_normalisation") == "image":
        mapping["registration"].pop("input_normalisation")
    checkpoint = params.registration.checkpoint
    mapping["registration_checkpoint_sha256"] = (
        _sha256(Path(checkpoint)) if checkpoint and Path(checkpoint).is_file() else None
    )
    return dict(mapping)


def set_aside_if_stale(params: ExperimentParams) -> Path | None:
    """Move ``output_dir`` to ``<output_dir>.stale`` (replacing an older one) when it holds a run of other
    params or of another registration checkpoint; returns the new place, or None when nothing was moved."""
    out = Path(params.output_dir)
    if params.training.resume_from not in (None, "last") or not out.is_dir() or not any(out.iterdir()):
        return None  # an explicit resume_from checkpoint is the user's choice
    stored = out / SIGNATURE_FILE
    try:
        previous = json.loads(stored.read_text(encoding="utf-8")) if stored.is_file() else None
    except (OSError, ValueError):
        previous = None
    if previous == run_signature(params):
        return None
    aside = out.with_name(out.name + ".stale")
    if aside.exists():
        shutil.rmtree(aside)
    out.rename(aside)
    LOGGER.warning(
        "%s: the run in %s was trained from other params or another registration checkpoint; moved to %s "
        "and training again",
        params.name,
        out,
        aside,
    )
    return aside


def write_signature(params: ExperimentParams) -> None:
    """Write :func:`run_signature` as ``<output_dir>/signature.json`` (temporary file then rename)."""
    write_text_atomic(
        Path(params.output_dir) / SIGNATURE_FILE, json.dumps(run_signature(params), indent=1, sort_keys=True)
    )


def checkpoint_step(path: Path) -> int:
    """``global_step`` stored in a Lightning checkpoint (-1 when unreadable), read with
    ``weights_only=True``: a file that needs foreign objects raises ``UnsafeCheckpointError``, unrun."""
    return checkpoint_global_step(path)


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


def _trainer(params: ExperimentParams, callbacks: list[Callback], loggers: list[Any]) -> pl.Trainer:
    tp = params.training
    out = Path(params.output_dir)
    return pl.Trainer(
        default_root_dir=str(out),
        max_steps=tp.max_steps,
        max_epochs=-1,
        val_check_interval=min(tp.val_check_interval, tp.max_steps),
        check_val_every_n_epoch=None,
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
        step = checkpoint_step(params.last_checkpoint)
        if step >= tp.max_steps:
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
        from sisrlib.data import build_datamodule

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
    best = ModelCheckpoint(
        dirpath=str(params.checkpoint_dir),
        filename="best",
        monitor=MONITOR,
        mode="min",
        save_top_k=1,
        save_last=False,
        auto_insert_metric_name=False,
        enable_version_counter=False,
    )
    callbacks: list[Callback] = [
        best,
        SaveLastCheckpoint(params.last_checkpoint),
        LearningRateMonitor("step"),
        RandomStates(),
    ]
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
    if result.global_step <= start < tp.max_steps:
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
