"""Loading trained networks from the Lightning checkpoints of :func:`sisrlib.training.fit`.

A checkpoint (``<output_dir>/checkpoints/{best,last}.ckpt``) holds the run's params mapping and band names in
``hyper_parameters`` and the weights under ``generator.``, ``registration.`` and ``discriminator.``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from sisrlib.bands import Standardisation, standardisation
from sisrlib.errors import SisrError
from sisrlib.models.base import SRModel
from sisrlib.registration.network import FlowEstimator, freeze
from sisrlib.training.params import ExperimentParams, RegistrationParams, experiment_from_mapping


@dataclass
class LoadedGenerator:
    """A trained generator in eval mode (standardised units in and out) and what is needed to use it."""

    model: SRModel
    standardisation: Standardisation
    target_standardisation: Standardisation
    input_bands: tuple[str, ...]
    target_bands: tuple[str, ...]
    factor: float
    params: ExperimentParams
    lr_bands: tuple[str, ...] = ()
    global_step: int = 0


def read_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """The checkpoint dictionary, with clear errors for a missing file or a file that is not a sisrlib run."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(
            f"checkpoint {p} does not exist; train the run first (sisr train / sisr pretrain-registration) "
            "or fix "
            "the path"
        )
    try:
        ckpt = torch.load(p, map_location=map_location, weights_only=False)
    except Exception as exc:  # pickle/zip errors of a corrupt or foreign file
        raise SisrError(f"checkpoint {p} cannot be read ({type(exc).__name__}: {exc})") from exc
    if (
        not isinstance(ckpt, dict)
        or "state_dict" not in ckpt
        or "params" not in ckpt.get("hyper_parameters", {})
    ):
        raise SisrError(
            f"{p} is not a sisrlib training checkpoint (expected a Lightning checkpoint with the run params "
            "in "
            "hyper_parameters)"
        )
    return ckpt


def _sub_state(state: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}


def checkpoint_params(ckpt: dict[str, Any], path: str | Path = "checkpoint") -> ExperimentParams:
    return experiment_from_mapping(ckpt["hyper_parameters"]["params"], where=f"{path} params")


def load_generator(path: str | Path, map_location: str | torch.device = "cpu") -> LoadedGenerator:
    """The generator of an SR training checkpoint (eval mode, on ``map_location``)."""
    from sisrlib.models import build_generator

    ckpt = read_checkpoint(path, map_location)
    hp = ckpt["hyper_parameters"]
    params = checkpoint_params(ckpt, path)
    if params.training.mode != "sr":
        raise SisrError(f"{path} is a registration pre-training checkpoint, it holds no generator")
    input_bands, target_bands = tuple(hp["input_bands"]), tuple(hp["target_bands"])
    lr_bands = tuple(hp.get("lr_bands") or ())
    n_lr = len(lr_bands) if params.model.lr_to_hr is not None else None
    model = build_generator(params.model, len(input_bands), len(target_bands), lr_bands=n_lr)
    state = _sub_state(ckpt["state_dict"], "generator.")
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise SisrError(f"{path}: the generator weights do not fit the network of its params: {exc}") from exc
    model.to(map_location).eval()
    stats = params.training.standardisation
    return LoadedGenerator(
        model=model,
        standardisation=standardisation(stats, input_bands),
        target_standardisation=standardisation(stats, target_bands),
        input_bands=input_bands,
        target_bands=target_bands,
        factor=float(hp["factor"]),
        params=params,
        lr_bands=lr_bands,
        global_step=int(ckpt.get("global_step", 0)),
    )


def registration_state(
    path: str | Path, map_location: str | torch.device = "cpu"
) -> tuple[RegistrationParams, dict[str, torch.Tensor]]:
    """The registration params and flow-network weights stored in a checkpoint (pre-training or SR run)."""
    ckpt = read_checkpoint(path, map_location)
    params = checkpoint_params(ckpt, path)
    state = _sub_state(ckpt["state_dict"], "registration.")
    if not state:
        raise SisrError(
            f"{path} holds no registration network weights (it is an SR run without registration); point "
            "registration.checkpoint to a pre-training run's checkpoints/best.ckpt"
        )
    return params.registration, state


def load_registration(path: str | Path, map_location: str | torch.device = "cpu") -> FlowEstimator:
    """The frozen flow network of a checkpoint: ``net(left [B,H,W], right [B,H,W]) -> flow [B,2,H,W]``
    (px)."""
    from sisrlib.training.module import build_flow_estimator

    reg, state = registration_state(path, map_location)
    net = build_flow_estimator(reg)
    net.load_state_dict(state)
    net.to(map_location)
    frozen: FlowEstimator = freeze(net)  # type: ignore[assignment]
    return frozen


def load_registration_into(net: FlowEstimator, path: str | Path, run: RegistrationParams) -> None:
    """Load a checkpoint's flow weights into ``net`` (built from the run's params), with a clear error when
    the
    architectures differ."""
    ckpt_reg, state = registration_state(path)
    arch = ("depth", "start_filters", "min_skip_depth", "features", "max_range")
    theirs = {k: getattr(ckpt_reg, k) for k in arch}
    ours = {k: getattr(run, k) for k in arch}
    message = (
        f"registration.checkpoint {path} does not fit the registration network of this run: the checkpoint "
        f"was trained with {theirs}, this run asks for {ours}; set the registration keys to the checkpoint's "
        "values (or point to a matching checkpoint)"
    )
    if theirs != ours:
        raise SisrError(message)
    try:
        net.load_state_dict(state)
    except RuntimeError as exc:
        raise SisrError(f"{message}. Details: {str(exc).splitlines()[0]}") from exc
