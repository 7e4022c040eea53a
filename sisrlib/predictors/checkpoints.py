"""Predictors from checkpoints: this project's training checkpoints and torchsisr's Lightning checkpoints.

Both are read safely (``torch.load(weights_only=True)``: nothing in a file runs) and wrapped as a
:class:`~sisrlib.models.dn_model.DNModel` (DN in, DN out) in a :class:`TorchPredictor`. The kind is told
from the content: a sisrlib checkpoint has ``hyper_parameters`` with ``params`` and ``input_bands``; a
torchsisr one has ``generator.sisr_model.*`` weights in its ``state_dict``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import torch

from sisrlib.bands import standardisation as named_standardisation
from sisrlib.checkpoint import load_checkpoint_file, load_generator
from sisrlib.errors import CheckpointError, SisrError
from sisrlib.interop import import_generator, imported_dn_model
from sisrlib.interop.torchsisr import GENERATOR_PREFIX
from sisrlib.models.base import SRModel
from sisrlib.models.dn_model import DNModel
from sisrlib.models.joint import JointSuperResolution
from sisrlib.predictors.base import ModelOptions, check_threads
from sisrlib.predictors.torch_models import TorchPredictor, torch_device

CheckpointKind = Literal["sisrlib", "torchsisr", "unknown"]


def dn_model_from_checkpoint(checkpoint: str | os.PathLike[str]) -> DNModel:
    """The exportable generator of a training checkpoint, wrapped with its normalisation (CPU, eval).

    For a joint 10 m + 20 m model only its SISR network is kept (as the reference's export does): it takes the
    10 m bands followed by the 20 m bands, all on the 10 m grid (the caller up-samples the 20 m bands).
    Predictions are un-standardised with the target's statistics (the reference matches one table by band name
    for inputs and targets, so both give the same numbers there).
    """
    checkpoint = Path(checkpoint)
    if checkpoint.is_dir():
        raise ValueError(f"checkpoint {checkpoint} is a folder; pass its checkpoints/best.ckpt file")
    if not checkpoint.is_file():
        raise FileNotFoundError(f"checkpoint {checkpoint} does not exist")
    loaded = load_generator(checkpoint, map_location="cpu")
    model: SRModel = loaded.model
    bands = tuple(loaded.input_bands)
    stats_name = loaded.params.training.standardisation
    if isinstance(model, JointSuperResolution):
        if model.lr_to_hr is not None:
            bands = bands + tuple(loaded.lr_bands)
        model = model.sisr
    target_bands = tuple(loaded.target_bands)
    if target_bands != bands:
        raise SisrError(
            f"{checkpoint}: the generator maps bands {list(bands)} to {list(target_bands)}; the EVOLAND "
            "contract needs a model that returns the bands it takes, in the same order"
        )
    stats = named_standardisation(stats_name)
    return DNModel(model, stats.select(bands), loaded.target_standardisation.select(bands)).eval()


def dn_model_from_torchsisr(
    checkpoint: str | os.PathLike[str], options: ModelOptions | None = None
) -> DNModel:
    """The generator of a torchsisr checkpoint as a :class:`DNModel` (CPU, eval).

    Bands and factor come from ``options`` when given, else from the run configuration saved beside the
    file (``.hydra/config.yaml``), else from the weights (see :func:`sisrlib.interop.import_generator`);
    the standardisation from ``options.standardisation`` (a name of ``sisrlib.bands.STANDARDISATION``) when
    given, else the checkpoint's own ``mean``/``std``.
    """
    options = options or ModelOptions()
    imported = import_generator(
        checkpoint,
        bands=list(options.bands) if options.bands is not None else None,
        factor=options.factor,
    )
    if options.standardisation is None:
        model: DNModel = imported_dn_model(imported)
        return model
    try:
        stats = named_standardisation(options.standardisation, imported.standardisation.bands)
    except ValueError as exc:
        raise SisrError(f"--standardisation for {checkpoint}: {exc}") from exc
    return DNModel(imported.sisr, stats, stats).eval()


def checkpoint_kind(path: str | os.PathLike[str]) -> CheckpointKind:
    """``"sisrlib"``, ``"torchsisr"`` or ``"unknown"`` from the content of a checkpoint file (read safely:
    ``FileNotFoundError``, :class:`~sisrlib.errors.UnsafeCheckpointError` or :class:`CheckpointError` for a
    missing, unsafe or unreadable file).

    torchsisr: ``generator.sisr_model.*`` weights and no sisrlib ``hyper_parameters`` (``params``,
    ``input_bands``); sisrlib: any other file with a ``hyper_parameters`` key (checked key by key on
    loading)."""
    ckpt = load_checkpoint_file(Path(path))
    hp = ckpt.get("hyper_parameters")
    ours = isinstance(hp, Mapping) and ("params" in hp or "input_bands" in hp)
    state = ckpt.get("state_dict")
    if not ours and isinstance(state, Mapping) and any(str(k).startswith(GENERATOR_PREFIX) for k in state):
        return "torchsisr"
    return "sisrlib" if "hyper_parameters" in ckpt else "unknown"


def unknown_checkpoint(path: Path) -> CheckpointError:
    """The error for a checkpoint of neither kind, naming the three kinds of model expected."""
    return CheckpointError(
        f"--model {path}: a torch checkpoint that is neither this project's (hyper_parameters with 'params' "
        f"and 'input_bands') nor torchsisr's ({GENERATOR_PREFIX}* weights in its state_dict). Expected an "
        "exported model NAME.yaml beside NAME.onnx (EVOLAND contract), a sisrlib training checkpoint "
        "(checkpoints/best.ckpt of sisr train), or a torchsisr Lightning checkpoint"
    )


def dn_model_from_any_checkpoint(
    path: str | os.PathLike[str], options: ModelOptions | None = None
) -> DNModel:
    """The :class:`DNModel` of a sisrlib or torchsisr checkpoint, the kind told from its content."""
    p = Path(path)
    if p.is_file():
        kind = checkpoint_kind(p)
        if kind == "torchsisr":
            return dn_model_from_torchsisr(p, options)
        if kind == "unknown":
            raise unknown_checkpoint(p)
    return dn_model_from_checkpoint(p)


def open_checkpoint(
    path: str | os.PathLike[str],
    *,
    device: str = "cpu",
    threads: int = 1,
    options: ModelOptions | None = None,
) -> TorchPredictor:
    """A :class:`TorchPredictor` of a sisrlib or torchsisr checkpoint (kind told from the content) on
    ``device``, with torch using ``threads`` CPU threads."""
    check_threads(threads)
    resolved = torch_device(device)
    p = Path(path)
    if p.is_dir():
        raise ValueError(f"--model {p} is a folder; pass a checkpoint file (e.g. its checkpoints/best.ckpt)")
    options = options or ModelOptions()
    torch.set_num_threads(threads)
    kind = checkpoint_kind(p) if p.is_file() else "sisrlib"
    if kind == "unknown":
        raise unknown_checkpoint(p)
    if kind == "sisrlib":
        predictor = TorchPredictor(dn_model_from_checkpoint(p), resolved)
        options.refuse_contradictions(
            p, predictor, "the checkpoint's", "this project's checkpoints store their standardisation"
        )
    else:
        predictor = TorchPredictor(dn_model_from_torchsisr(p, options), resolved)
        predictor.name = f"torchsisr {type(predictor.model.model).__name__}"
    predictor.files = (p,)
    return predictor
