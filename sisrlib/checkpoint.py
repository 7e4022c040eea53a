"""Loading trained networks from the Lightning checkpoints of :func:`sisrlib.training.fit.fit`, safely,
without importing pytorch_lightning.

A checkpoint (``<output_dir>/checkpoints/{best,last}.ckpt``) holds the run's params mapping and band names in
``hyper_parameters`` and the weights under ``generator.``, ``registration.`` and ``discriminator.``.

Checkpoints are shared between labs, and unpickling a foreign object can run arbitrary code. Every read goes
through :func:`load_checkpoint_file` (:func:`sisrlib.safe_load.load_weights_only`,
``torch.load(weights_only=True)``): tensors, numbers, strings, lists, tuples and dicts only, plus the globals
of :data:`sisrlib.safe_load.SAFE_GLOBALS`. A file that needs anything else is refused with
:class:`~sisrlib.errors.UnsafeCheckpointError` naming the file and the global(s), and nothing in it is run.
The content is then checked (:func:`read_checkpoint`): the keys and types this module needs, weights that fit
the network built from the stored params, and finite weights.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from sisrlib.bands import Standardisation, standardisation
from sisrlib.errors import CheckpointError, SisrError, UnsafeCheckpointError
from sisrlib.models.base import SRModel
from sisrlib.models.params import ModelParams
from sisrlib.models.registry import build_generator
from sisrlib.params import ParamsError
from sisrlib.registration.factory import build_flow_estimator
from sisrlib.registration.network import FlowEstimator, freeze
from sisrlib.run_params import ExperimentParams, RegistrationParams, experiment_from_mapping
from sisrlib.safe_load import load_weights_only

#: The ``hyper_parameters`` keys a sisrlib checkpoint holds (``lr_bands`` may be empty).
HYPER_PARAMETER_KEYS: tuple[str, ...] = ("params", "input_bands", "target_bands", "factor", "lr_bands")


def generator_output_bands(
    model: ModelParams,
    input_bands: Sequence[str],
    target_bands: Sequence[str],
    lr_bands: Sequence[str] = (),
) -> tuple[str, ...]:
    """The bands a run's generator outputs, in order: the data's target bands, except for the joint
    10 m + 20 m model (``model.lr_to_hr`` set), which outputs every band it takes, the 10 m bands then the
    20 m bands (the EVOLAND model: B2 B3 B4 B8 B5 B6 B7 B8A B11 B12 in and out; B11/B12 have no 5 m target
    and are trained by the Wald branch). A ValueError when a target band is not among them."""
    if model.lr_to_hr is None or not lr_bands:
        return tuple(target_bands)
    out = (*input_bands, *lr_bands)
    missing = [b for b in target_bands if b not in out]
    if missing:
        raise ValueError(
            f"the joint model outputs its input bands {list(out)}, which lack the target band(s) {missing}"
        )
    return out


@dataclass
class LoadedGenerator:
    """A trained generator in eval mode (standardised units in and out) and what is needed to use it.

    ``target_bands`` are the bands the generator **outputs** (:func:`generator_output_bands`: the training
    data's target bands, or all 10 bands of the joint EVOLAND model) and ``target_standardisation`` their
    statistics; ``data_target_bands`` the bands the training data had a target for.
    """

    model: SRModel
    standardisation: Standardisation
    target_standardisation: Standardisation
    input_bands: tuple[str, ...]
    target_bands: tuple[str, ...]
    factor: float
    params: ExperimentParams
    lr_bands: tuple[str, ...] = ()
    global_step: int = 0
    data_target_bands: tuple[str, ...] = ()


# ------------------------------------------------------------------------------------------------ safe load
def load_checkpoint_file(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """The top-level dictionary of a checkpoint file, read with ``torch.load(weights_only=True)``
    (:func:`sisrlib.safe_load.load_weights_only`).

    Raises ``FileNotFoundError`` for a missing file, :class:`UnsafeCheckpointError` for a file that needs
    Python objects beyond tensors and plain values (nothing in it is run), and :class:`CheckpointError` for
    an unreadable file or one whose content is not a dictionary. The content is not checked further (see
    :func:`read_checkpoint`).
    """
    return load_weights_only(
        path,
        map_location,
        missing_fix="train the run first (sisr train / sisr pretrain-registration) or fix the path",
        unreadable_fix="train the run again or fix the path",
        unsafe_fix=(
            "a checkpoint written by sisrlib's training never holds any. Use a checkpoint from sisr train / "
            "sisr pretrain-registration, or, only if you trust its author, re-save its content as plain "
            "tensors, numbers, strings, lists and dicts"
        ),
        expected="a Lightning checkpoint with state_dict and hyper_parameters",
    )


def checkpoint_global_step(path: str | Path) -> int:
    """``global_step`` of a checkpoint, or -1 when the file is missing, unreadable or has no integer step.

    A file that needs foreign objects is not "unreadable": it raises :class:`UnsafeCheckpointError`.
    """
    try:
        ckpt = load_checkpoint_file(path)
    except UnsafeCheckpointError:
        raise
    except (FileNotFoundError, CheckpointError):
        return -1
    step = ckpt.get("global_step", -1)
    return step if isinstance(step, int) and not isinstance(step, bool) else -1


# --------------------------------------------------------------------------------------- content validation
def _describe(value: Any) -> str:
    """A short description of a found value: numbers and short strings as written, else the type."""
    if value is None or isinstance(value, (bool, int, float)) or (isinstance(value, str) and len(value) < 60):
        return repr(value)
    if isinstance(value, (list, tuple)):
        items = ", ".join(_describe(v) for v in value[:3]) + (", ..." if len(value) > 3 else "")
        return f"a {type(value).__name__} of {len(value)} item(s) [{items}]"
    return f"a {type(value).__name__}"


def _not_sisrlib(path: Path, key: str, expected: str, found: str) -> CheckpointError:
    return CheckpointError(
        f"checkpoint {path}: {key}: expected {expected}, found {found}; it is not a sisrlib training "
        "checkpoint (or it was damaged): use a checkpoints/best.ckpt or last.ckpt written by sisr train / "
        "sisr pretrain-registration"
    )


def _band_list(path: Path, hp: Mapping[str, Any], key: str) -> tuple[str, ...]:
    value = hp.get(key)
    if not isinstance(value, (list, tuple)) or not all(isinstance(b, str) for b in value):
        raise _not_sisrlib(path, f"hyper_parameters[{key!r}]", "a list of band names", _describe(value))
    return tuple(value)


def validate_checkpoint(ckpt: Mapping[str, Any], path: str | Path) -> None:
    """Check what this module needs in a checkpoint: a ``state_dict`` of tensors and ``hyper_parameters``
    with ``params`` (a mapping), ``input_bands``/``target_bands``/``lr_bands`` (lists of band names) and a
    finite positive ``factor``. Raises :class:`CheckpointError` naming the file and the key."""
    p = Path(path)
    state = ckpt.get("state_dict")
    if not isinstance(state, Mapping):
        raise _not_sisrlib(p, "state_dict", "a mapping of weight names to tensors", _describe(state))
    for key, value in state.items():
        if not isinstance(key, str) or not isinstance(value, torch.Tensor):
            raise _not_sisrlib(p, f"state_dict[{key!r}]", "a tensor", _describe(value))
    hp = ckpt.get("hyper_parameters")
    if not isinstance(hp, Mapping):
        raise _not_sisrlib(
            p, "hyper_parameters", f"a mapping with the keys {list(HYPER_PARAMETER_KEYS)}", _describe(hp)
        )
    missing = [k for k in HYPER_PARAMETER_KEYS if k not in hp and k != "lr_bands"]
    if missing:
        raise _not_sisrlib(
            p,
            "hyper_parameters",
            f"the keys {list(HYPER_PARAMETER_KEYS[:-1])}",
            f"a mapping without {missing} (keys {sorted(map(str, hp))})",
        )
    if not isinstance(hp["params"], Mapping):
        raise _not_sisrlib(p, "hyper_parameters['params']", "the run params mapping", _describe(hp["params"]))
    for key in ("input_bands", "target_bands"):
        if not _band_list(p, hp, key):
            raise _not_sisrlib(p, f"hyper_parameters[{key!r}]", "at least one band name", "an empty list")
    if hp.get("lr_bands") is not None:
        _band_list(p, hp, "lr_bands")
    factor = hp["factor"]
    if (
        isinstance(factor, bool)
        or not isinstance(factor, (int, float))
        or not math.isfinite(factor)
        or factor <= 0
    ):
        raise _not_sisrlib(p, "hyper_parameters['factor']", "a finite positive number", _describe(factor))
    step = ckpt.get("global_step", 0)
    if isinstance(step, bool) or not isinstance(step, int) or step < 0:
        raise _not_sisrlib(p, "global_step", "a non-negative integer", _describe(step))


def read_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """The checkpoint dictionary, read safely (:func:`load_checkpoint_file`) and checked
    (:func:`validate_checkpoint`): clear errors for a missing file, a file that needs foreign objects, and
    a file that is not a sisrlib run."""
    ckpt = load_checkpoint_file(path, map_location)
    validate_checkpoint(ckpt, path)
    return ckpt


def _sub_state(state: Mapping[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}


def check_finite(state: Mapping[str, torch.Tensor], path: str | Path, prefix: str = "") -> None:
    """Refuse weights holding NaN or ±inf, naming the first such tensor (its key as stored: ``prefix`` +
    name) and how many values are not finite; such a network only outputs no-data."""
    for name, tensor in state.items():
        if not (tensor.is_floating_point() or tensor.is_complex()):
            continue
        bad = ~torch.isfinite(tensor)
        if bool(bad.any()):
            n_nan = int(torch.isnan(tensor).sum())
            raise CheckpointError(
                f"checkpoint {path}: state_dict[{prefix + name!r}] has {int(bad.sum())} non-finite value(s) "
                f"of {tensor.numel()} ({n_nan} NaN, {int(bad.sum()) - n_nan} ±inf): the training diverged "
                "or the file was damaged; use an earlier checkpoint or train again (lower training.lr)"
            )


def check_state_fits(
    net: nn.Module, state: Mapping[str, torch.Tensor], path: str | Path, prefix: str, what: str
) -> None:
    """Compare the weights ``state`` (stored under ``prefix``) with ``net``'s: missing and unexpected keys,
    shape mismatches; a :class:`CheckpointError` listing the first few of each."""
    expected = net.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    shapes = [
        f"{prefix}{k}: checkpoint {list(state[k].shape)}, network {list(v.shape)}"
        for k, v in expected.items()
        if k in state and state[k].shape != v.shape
    ]
    if not (missing or unexpected or shapes):
        return
    parts = []
    for label, items in (
        ("missing", [prefix + k for k in missing]),
        ("unexpected", [prefix + k for k in unexpected]),
        ("shape mismatch", shapes),
    ):
        if items:
            more = f" and {len(items) - 3} more" if len(items) > 3 else ""
            parts.append(f"{len(items)} {label} ({'; '.join(items[:3])}{more})")
    raise CheckpointError(
        f"checkpoint {path}: the {what} weights in state_dict do not fit the network built from its "
        f"hyper_parameters: {', '.join(parts)}; the file was damaged or edited, or written by another "
        "version: use a checkpoint written by this sisrlib's training"
    )


def checkpoint_params(ckpt: Mapping[str, Any], path: str | Path = "checkpoint") -> ExperimentParams:
    """The run params stored in ``hyper_parameters['params']`` (a :class:`CheckpointError` when invalid)."""
    hp = ckpt.get("hyper_parameters")
    if not isinstance(hp, Mapping) or "params" not in hp:
        raise _not_sisrlib(Path(path), "hyper_parameters['params']", "the run params mapping", _describe(hp))
    try:
        return experiment_from_mapping(hp["params"], where="hyper_parameters['params']")
    except ParamsError as exc:
        raise CheckpointError(
            f"checkpoint {path}: {exc}; the stored run params are not valid for this version of sisrlib: "
            "use a checkpoint written by its training"
        ) from exc


# ------------------------------------------------------------------------------------------------ networks
def load_generator(path: str | Path, map_location: str | torch.device = "cpu") -> LoadedGenerator:
    """The generator of an SR training checkpoint (eval mode, on ``map_location``).

    Refused with a :class:`CheckpointError` naming the file (and :class:`UnsafeCheckpointError` for foreign
    objects): bad keys or types, weights that do not fit the network of the stored params, NaN/inf weights.
    """
    ckpt = read_checkpoint(path, map_location)
    hp = ckpt["hyper_parameters"]
    params = checkpoint_params(ckpt, path)
    if params.training.mode != "sr":
        raise SisrError(f"{path} is a registration pre-training checkpoint, it holds no generator")
    input_bands, data_target_bands = tuple(hp["input_bands"]), tuple(hp["target_bands"])
    lr_bands = tuple(hp.get("lr_bands") or ())
    try:
        target_bands = generator_output_bands(params.model, input_bands, data_target_bands, lr_bands)
    except ValueError as exc:
        raise CheckpointError(f"checkpoint {path}: its generator cannot be built: {exc}") from exc
    factor = float(hp["factor"])
    if abs(params.model.factor - factor) > 1e-6:
        raise CheckpointError(
            f"checkpoint {path}: hyper_parameters['factor'] is {factor:g} but its params' model.factor is "
            f"{params.model.factor:g}; the file was damaged or edited"
        )
    n_lr = len(lr_bands) if params.model.lr_to_hr is not None else None
    try:
        model = build_generator(params.model, len(input_bands), len(target_bands), lr_bands=n_lr)
    except ValueError as exc:
        raise CheckpointError(f"checkpoint {path}: its generator cannot be built: {exc}") from exc
    state = _sub_state(ckpt["state_dict"], "generator.")
    if not state:
        raise CheckpointError(
            f"checkpoint {path}: state_dict holds no generator weights (no 'generator.*' key); it is not "
            "an SR training checkpoint"
        )
    check_state_fits(model, state, path, "generator.", "generator")
    check_finite(state, path, "generator.")
    model.load_state_dict(state)
    model.to(map_location).eval()
    stats = params.training.standardisation
    try:
        in_std, out_std = standardisation(stats, input_bands), standardisation(stats, target_bands)
    except (ValueError, KeyError) as exc:
        raise CheckpointError(
            f"checkpoint {path}: training.standardisation {stats!r} does not cover its bands: {exc}"
        ) from exc
    return LoadedGenerator(
        model=model,
        standardisation=in_std,
        target_standardisation=out_std,
        input_bands=input_bands,
        target_bands=target_bands,
        factor=factor,
        params=params,
        lr_bands=lr_bands,
        global_step=int(ckpt.get("global_step", 0)),
        data_target_bands=data_target_bands,
    )


def registration_state(
    path: str | Path, map_location: str | torch.device = "cpu"
) -> tuple[RegistrationParams, dict[str, torch.Tensor]]:
    """The registration params and flow-network weights stored in a checkpoint (pre-training or SR run);
    NaN/inf weights are refused."""
    ckpt = read_checkpoint(path, map_location)
    params = checkpoint_params(ckpt, path)
    state = _sub_state(ckpt["state_dict"], "registration.")
    if not state:
        raise SisrError(
            f"{path} holds no registration network weights (it is an SR run without registration); point "
            "registration.checkpoint to a pre-training run's checkpoints/best.ckpt"
        )
    check_finite(state, path, "registration.")
    return params.registration, state


def load_registration(path: str | Path, map_location: str | torch.device = "cpu") -> FlowEstimator:
    """The frozen flow network of a checkpoint: ``net(left [B,H,W], right [B,H,W]) -> flow [B,2,H,W]``
    (px)."""
    reg, state = registration_state(path, map_location)
    net = build_flow_estimator(reg)
    check_state_fits(net, state, path, "registration.", "registration")
    net.load_state_dict(state)
    net.to(map_location)
    frozen: FlowEstimator = freeze(net)  # type: ignore[assignment]
    return frozen


def load_registration_into(net: FlowEstimator, path: str | Path, run: RegistrationParams) -> None:
    """Load a checkpoint's flow weights into ``net`` (built from the run's params), with a clear error when
    the architectures differ."""
    ckpt_reg, state = registration_state(path)
    arch = ("depth", "start_filters", "min_skip_depth", "features", "max_range", "input_normalisation")
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
        check_state_fits(net, state, path, "registration.", "registration")
    except CheckpointError as exc:
        raise SisrError(f"{message}. Details: {exc}") from exc
    net.load_state_dict(state)
