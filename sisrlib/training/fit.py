"""Run a training or registration pre-training from its params: checks, Lightning trainer, checkpoints, logs.

Run layout under ``output_dir`` (``build/<profile>/runs/<name>``)::

    params.yaml                  the validated params of the run
    signature.json               what the run learns from (params without execution settings, and the
                                 sha256 of the registration checkpoint): a run whose signature differs from
                                 its params file is stale, and is set aside as ``<output_dir>.stale``
    checkpoints/best.ckpt        min validation/total_loss
    checkpoints/last.ckpt        latest state (optimisers, schedulers, step), rewritten at every validation
    logs/csv/metrics.csv         CSV log (training/*, validation/*, test/*)
    logs/tensorboard/            TensorBoard events
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
import yaml
from pytorch_lightning.callbacks import Callback, LearningRateMonitor, ModelCheckpoint
from pytorch_lightning.loggers import CSVLogger, TensorBoardLogger

from sisrlib.bands import STANDARDISATION
from sisrlib.errors import SisrError
from sisrlib.metrics.atomic import write_text_atomic
from sisrlib.training.checkpoint import load_registration_into
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
    """``global_step`` stored in a Lightning checkpoint (-1 when unreadable)."""
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
        return int(ckpt.get("global_step", -1))
    except Exception:
        return -1


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
    r = params.training.resume_from
    if r is None:
        return None
    if r == "last":
        return params.last_checkpoint if params.last_checkpoint.is_file() else None
    path = Path(r)
    if not path.is_file():
        raise FileNotFoundError(f"training.resume_from: checkpoint {path} does not exist")
    return path


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


def build_trainer(params: ExperimentParams, callbacks: list[Callback]) -> pl.Trainer:
    tp = params.training
    out = Path(params.output_dir)
    loggers = [
        CSVLogger(save_dir=str(out), name="logs", version="csv"),
        TensorBoardLogger(save_dir=str(out), name="logs", version="tensorboard", default_hp_metric=False),
    ]
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
    resume = _resolve_resume(params)
    pl.seed_everything(params.seed, workers=True, verbose=False)  # same init whatever the data module drew
    module = SISRModule(params.to_mapping(), list(input_bands), list(target_bands), factor, list(lr_bands))
    _check_registration(params, module)
    write_params(params, out / "params.yaml")
    write_signature(params)
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
    ]
    trainer = build_trainer(params, callbacks)
    trainer.fit(module, datamodule=datamodule, ckpt_path=str(resume) if resume is not None else None)
    result.global_step = int(trainer.global_step)
    if tp.test_after_fit:
        ckpt = params.best_checkpoint if params.best_checkpoint.is_file() else None
        outputs = trainer.test(
            module, datamodule=datamodule, ckpt_path=str(ckpt) if ckpt else None, verbose=False
        )
        if outputs:
            result.test_metrics = {k: float(v) for k, v in outputs[0].items()}
