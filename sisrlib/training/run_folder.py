"""The run folder's bookkeeping: its params file, its signature (what the run learns from) and setting aside
a stale run (``<output_dir>.stale``). No Lightning."""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

import yaml

from sisrlib.atomic import move_aside, write_text_atomic
from sisrlib.checkpoint import checkpoint_global_step, load_checkpoint_file
from sisrlib.errors import CheckpointError, UnsafeCheckpointError
from sisrlib.params import to_mapping
from sisrlib.run_params import ExperimentParams, TrainingParams

LOGGER = logging.getLogger(__name__)

_TRAINING_DEFAULTS = json.loads(json.dumps(to_mapping(TrainingParams())))
_LOSS_DEFAULTS = _TRAINING_DEFAULTS["losses"]
#: Params keys added after runs were trained, by path, with the default that reproduces what those runs did.
LATER_KEYS: dict[tuple[str, ...], Any] = {
    ("registration", "input_normalisation"): "image",
    ("registration", "psf_kernel"): "exact",
    ("registration", "radiometric_model"): "additive",
    ("registration", "flow_source"): "network",
    **{
        ("training", key): _TRAINING_DEFAULTS[key]
        for key in (
            "simulation",
            "wald",
            "align_min_max",
            "psf_kernel",
            "validation_metrics",
        )
        if key in _TRAINING_DEFAULTS
    },
    **{
        ("training", "losses", key): _LOSS_DEFAULTS[key]
        for key in ("l1_sim", "wald_l1", "band_weights", "fft_amplitude_l1", "fft_min_frequency")
    },
    ("training", "adversarial", "start_convention"): "from_start_step",
    ("training", "validate_every_epoch"): False,
}

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
        "max_epochs",
        "checkpoint_every_n_steps",
        "best_total_checkpoint",
        "best_brisque_checkpoint",
        "brisque_weights",
    ),
    "data": ("num_workers", "test_batch_size"),
}
SIGNATURE_FILE = "signature.json"


def write_params(params: ExperimentParams, path: Path) -> None:
    """Write the validated params as YAML (temporary file then rename)."""
    write_text_atomic(path, yaml.safe_dump(params.to_mapping(), sort_keys=False))


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _drop_later_defaults(mapping: dict[str, Any]) -> dict[str, Any]:
    """Remove from a signature (in place) the :data:`LATER_KEYS` at their default: keys that came later do not
    make the runs trained before them stale, nor do runs whose signature already lists them at the default."""
    for (section, *path), default in LATER_KEYS.items():
        node = mapping.get(section, {})
        for key in path[:-1]:
            node = node.get(key, {})
        if path and isinstance(node, dict) and node.get(path[-1], default) == default:
            node.pop(path[-1], None)
    return mapping


def run_signature(params: ExperimentParams) -> dict[str, Any]:
    """What the run learns from: its params without :data:`EXECUTION_SETTINGS`, and the sha256 of the
    registration checkpoint it loads (so that a retrained registration network makes its SR runs stale)."""
    mapping = json.loads(json.dumps(params.to_mapping()))
    for section, names in EXECUTION_SETTINGS.items():
        for name in names:
            mapping.get(section, {}).pop(name, None)
    _drop_later_defaults(mapping)
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
    if isinstance(previous, dict) and _drop_later_defaults(previous) == run_signature(params):
        return None
    aside = move_aside(out, out.with_name(out.name + ".stale"))
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


def finished_step(params: ExperimentParams) -> int | None:
    """The step of ``last.ckpt`` when the run reached ``training.max_steps`` (or ``max_epochs``, counted by
    the checkpoint's ``sisr_epochs_completed``), else None (not done, or no readable checkpoint)."""
    tp = params.training
    try:
        ckpt = load_checkpoint_file(params.last_checkpoint)
    except UnsafeCheckpointError:
        raise  # foreign objects: refused, never "not done"
    except (FileNotFoundError, CheckpointError):
        return None
    step = ckpt.get("global_step", -1)
    if isinstance(step, bool) or not isinstance(step, int) or step < 0:
        return None
    epochs = ckpt.get("sisr_epochs_completed", -1)
    by_epochs = tp.max_epochs is not None and isinstance(epochs, int) and epochs >= tp.max_epochs
    return step if (tp.max_steps != -1 and step >= tp.max_steps) or by_epochs else None


def checkpoint_step(path: Path) -> int:
    """``global_step`` stored in a Lightning checkpoint (-1 when unreadable), read with
    ``weights_only=True``: a file that needs foreign objects raises ``UnsafeCheckpointError``, unrun."""
    return checkpoint_global_step(path)


__all__ = [
    "EXECUTION_SETTINGS",
    "LATER_KEYS",
    "SIGNATURE_FILE",
    "checkpoint_step",
    "finished_step",
    "run_signature",
    "set_aside_if_stale",
    "write_params",
    "write_signature",
]
