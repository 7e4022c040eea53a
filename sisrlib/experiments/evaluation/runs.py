"""Run discovery: which model files an evaluation's ``runs`` name, and their labels.

A run is a training params file (its checkpoint ``<output_dir>/checkpoints/<choice>``), a training checkpoint
or run folder, an EVOLAND model (``NAME.yaml`` + ``NAME.onnx``, given by either file) or a torchsisr
Lightning checkpoint. Glob patterns expand to every match (registration pre-training checkpoints skipped).
"""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import yaml

from sisrlib.checkpoint import checkpoint_params, read_checkpoint
from sisrlib.data.params import DataParams
from sisrlib.errors import SisrError, UnsafeCheckpointError
from sisrlib.experiments.evaluation.batches import glob_paths, is_glob, resolve_path
from sisrlib.experiments.evaluation.params import CHECKPOINT_FILES, CheckpointChoice, RunSpec
from sisrlib.interop.torchsisr import load_flow_network
from sisrlib.metrics.distortion import FlowEstimator
from sisrlib.run_params import ExperimentParams, load_experiment

LOGGER = logging.getLogger(__name__)

VARIANTS: tuple[str, ...] = ("baseline", "geom", "geomrad", "rad")


def is_evoland_yaml(path: Path) -> bool:
    """Whether ``path`` is the yaml of an EVOLAND model (a mapping whose ``model`` is the ONNX file's
    name), as opposed to a training params file (whose ``model`` is a mapping)."""
    if path.suffix not in (".yaml", ".yml") or not path.is_file():
        return False
    try:
        mapping = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return False
    return isinstance(mapping, dict) and isinstance(mapping.get("model"), str)


def run_spec(model: str) -> RunSpec:
    """The run spec of a command-line model argument: a training params file (``.yaml`` that is not an
    EVOLAND model yaml) → ``params_file``; anything else (checkpoint, run folder, EVOLAND yaml or ONNX) →
    ``checkpoint``."""
    path = resolve_path(model)
    if not path.exists():
        raise SisrError(
            f"model {model} does not exist: expected this project's checkpoint (.ckpt), a run folder, a "
            "training params YAML, an exported NAME.yaml beside NAME.onnx (EVOLAND contract) or a torchsisr "
            "checkpoint"
        )
    if path.suffix in (".yaml", ".yml") and not is_evoland_yaml(path):
        return RunSpec(params_file=model)
    return RunSpec(checkpoint=model)


def own_params(path: Path) -> ExperimentParams | None:
    """The run params stored in ``path`` when it is a training checkpoint of this project, else None. A file
    holding foreign objects is refused (``UnsafeCheckpointError``), never read as another kind."""
    if path.suffix != ".ckpt":
        return None
    try:
        return checkpoint_params(read_checkpoint(path), path)
    except UnsafeCheckpointError:
        raise
    except SisrError:
        return None


def is_project_checkpoint(path: Path) -> bool:
    """Whether ``path`` is a training checkpoint of this project (see :func:`own_params`)."""
    return own_params(path) is not None


def _checkpoint_in(folder: Path, choice: CheckpointChoice) -> Path:
    name = CHECKPOINT_FILES[choice]
    for candidate in (folder / "checkpoints" / name, folder / name):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(
        f"{folder} is a folder without checkpoints/{name} or {name} (checkpoint: {choice}); give a "
        "checkpoint file, or choose another checkpoint (best, last, best_total, best_brisque)"
    )


def resolve_checkpoint(spec: RunSpec, choice: CheckpointChoice = "best") -> Path:
    """The model file of a run spec (see ``RunSpec``; ``choice`` picks the checkpoint of a run folder or of a
    training params file), with a clear error when it does not exist."""
    if spec.checkpoint is not None:
        p = resolve_path(spec.checkpoint)
        if p.is_dir():
            return _checkpoint_in(p, choice)
        if p.suffix == ".onnx" and p.with_suffix(".yaml").is_file():
            return p.with_suffix(".yaml")
        if not p.is_file():
            raise FileNotFoundError(f"model {p} does not exist; train the run first or fix the path")
        return p
    assert spec.params_file is not None
    params_path = resolve_path(spec.params_file)
    experiment = load_experiment(params_path)
    ckpt = experiment.checkpoint_dir / CHECKPOINT_FILES[choice]
    if not ckpt.is_file():
        raise FileNotFoundError(
            f"run {experiment.name} ({params_path}) has no checkpoint {ckpt} (checkpoint: {choice}); train "
            f"it first (sisr train {params_path}, or the 03_training notebook)"
        )
    return ckpt


def expand_runs(specs: Sequence[RunSpec], choice: CheckpointChoice = "best") -> list[tuple[RunSpec, Path]]:
    """Every (run spec, model file) to evaluate, glob patterns expanded (see ``RunSpec``)."""
    out: list[tuple[RunSpec, Path]] = []
    for spec in specs:
        pattern = spec.checkpoint if spec.checkpoint is not None else spec.params_file
        assert pattern is not None
        if not is_glob(pattern):
            out.append((spec, resolve_checkpoint(spec, choice)))
            continue
        found = 0
        for match in glob_paths(pattern):
            single = dataclasses.replace(
                spec,
                checkpoint=str(match) if spec.checkpoint is not None else None,
                params_file=str(match) if spec.checkpoint is None else None,
                label=None,
                dataset=spec.dataset,
                variant=None,
            )
            ckpt = resolve_checkpoint(single, choice)
            own = own_params(ckpt)
            if own is not None and own.training.mode != "sr":
                LOGGER.info("skipping %s: a registration pre-training checkpoint", ckpt)
                continue
            out.append((single, ckpt))
            found += 1
        if not found:
            raise FileNotFoundError(
                f"no super-resolution checkpoint matches {pattern!r}; train the runs first (03_training)"
            )
    return out


def run_experiment(spec: RunSpec, model_file: Path) -> tuple[ExperimentParams, ExperimentParams | None]:
    """``(test, own)``: the training params that give a run's test data, seed, margin and registration
    channel (those of ``spec.data_params`` when given, else those stored in this project's checkpoint), and
    the checkpoint's own params (None for a model file of another kind). A clear error when a model file
    carries none and no ``data_params`` is given."""
    own = own_params(model_file)
    if spec.data_params is not None:
        return load_experiment(resolve_path(spec.data_params)), own
    if own is not None:
        return own, own
    raise SisrError(
        f"model {model_file} carries no test data (it is not a checkpoint of this project's training): "
        "give the training params file whose data section and margins to use (runs[].data_params, or the "
        "first run of the evaluation params file for sisr evaluate)"
    )


def variant_of(params: Any) -> str:
    """baseline / geom / geomrad / rad from an ExperimentParams' registration flags."""
    reg = params.registration
    if reg.geometric and reg.radiometric:
        return "geomrad"
    if reg.geometric:
        return "geom"
    if reg.radiometric:
        return "rad"
    return "baseline"


def dataset_of(name: str, variant: str, data: DataParams, factor: float) -> str:
    """Dataset label: the run name without a trailing ``_<variant>`` (and a leading ``NN_training_``), else
    ``<dataset>x<factor>``."""
    base = re.sub(r"^\d\d_training_", "", name)
    for suffix in (variant, *VARIANTS):
        if base.endswith("_" + suffix) and len(base) > len(suffix) + 1:
            return base[: -len(suffix) - 1]
    return f"{data.dataset}x{factor:g}"


def registration_estimator(
    path: str | None, experiments: Sequence[ExperimentParams], device: torch.device
) -> tuple[FlowEstimator | None, str | None]:
    """The flow network at ``path``, else at the ``registration.checkpoint`` of the first of ``experiments``
    that has one on disk; ``(None, None)`` when there is none."""
    if path is None:
        for exp in experiments:
            candidate = exp.registration.checkpoint
            if candidate and resolve_path(candidate).is_file():
                path = candidate
                break
    if path is None:
        return None, None
    p = resolve_path(path)
    if not p.is_file():
        raise FileNotFoundError(
            f"registration_checkpoint {p} does not exist; run the registration pre-training (02) first"
        )
    # this project's checkpoint or torchsisr's (the published profile): max_range when its file does not say
    max_range = experiments[0].registration.max_range if experiments else None
    estimator: FlowEstimator = load_flow_network(p, max_range=max_range, map_location=device)
    return estimator, str(p)
