"""torchsisr's Lightning checkpoint layout: reading a file safely, checking its layout, and the helpers that
map its ``state_dict`` onto our modules (shared by the generator and flow-network importers).

A torchsisr checkpoint is a dictionary with ``state_dict``, ``global_step``, ``loops``, ``callbacks``,
``optimizer_states``, ... and **no** ``hyper_parameters``; its ``state_dict`` holds ``mean``/``std`` (the
standardisation, reflectance units, in the order of ``training_module.bands``), the SR network under
:data:`GENERATOR_PREFIX`, the flow network under :data:`REGISTRATION_PREFIX`, and networks we ignore
(discriminator, loss and metric networks, simulation noise).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from sisrlib.errors import CheckpointError
from sisrlib.safe_load import load_weights_only

#: Prefix of the SR network's weights in a torchsisr ``state_dict``.
GENERATOR_PREFIX = "generator.sisr_model."
#: Prefix of the flow network's weights.
REGISTRATION_PREFIX = "registration_module."


def refuse(path: Path, what: str, fix: str) -> CheckpointError:
    """The error refusing ``path``: what is wrong with it, then how to fix it."""
    return CheckpointError(f"torchsisr checkpoint {path}: {what}; {fix}")


def _safe_load(path: Path) -> dict[str, Any]:
    """``torch.load(path, map_location="cpu", weights_only=True)`` with clear refusals."""
    return load_weights_only(
        path,
        "cpu",
        what="torchsisr checkpoint",
        unreadable_fix="download it again or fix the path",
        unsafe_fix=(
            "torchsisr's checkpoints hold only tensors and plain values, so this file is not one or it was "
            "modified. Use the file as torchsisr's training wrote it"
        ),
        expected="a Lightning checkpoint with a state_dict",
    )


def check_finite(state: Mapping[str, torch.Tensor], path: Path, prefix: str) -> None:
    """Refuse a state whose floating-point tensors hold NaN or ±inf (keys shown with ``prefix``)."""
    for name, tensor in state.items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            bad = int((~torch.isfinite(tensor)).sum())
            raise refuse(
                path,
                f"state_dict[{prefix + name!r}] has {bad} non-finite value(s) of {tensor.numel()}",
                "the training diverged or the file was damaged; use another checkpoint of the run",
            )


def read_torchsisr_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The checkpoint dictionary of a torchsisr run, read safely and checked for its layout.

    Refused with :class:`CheckpointError` (naming the file and the key): a file that is not a torch
    checkpoint, a sisrlib checkpoint (it has ``hyper_parameters``), no ``state_dict`` or one holding
    non-tensors, no ``mean``/``std``. :class:`UnsafeCheckpointError`: a file that needs Python objects (never
    unpickled). ``FileNotFoundError``: a missing file.
    """
    p = Path(path)
    if p.is_dir():
        raise refuse(
            p,
            "is a folder",
            "pass one of its .ckpt files (e.g. the *_val_total_loss=*.ckpt one)",
        )
    ckpt = _safe_load(p)
    hp = ckpt.get("hyper_parameters")
    if isinstance(hp, Mapping) and ("params" in hp or "input_bands" in hp):
        raise refuse(
            p,
            "it is a sisrlib training checkpoint (it has hyper_parameters with 'params'/'input_bands'), "
            "not a torchsisr one",
            "use it directly: sisr evaluate / sisr infer / sisr export take it as it is",
        )
    state = ckpt.get("state_dict")
    if not isinstance(state, Mapping):
        raise refuse(
            p,
            f"no 'state_dict' mapping (top-level keys {sorted(map(str, ckpt))[:8]})",
            "expected a Lightning checkpoint written by torchsisr's training (bin/train.py)",
        )
    for key, value in state.items():
        if not isinstance(key, str) or not isinstance(value, torch.Tensor):
            raise refuse(
                p,
                f"state_dict[{key!r}] is a {type(value).__name__}, expected a tensor",
                "the file was damaged",
            )
    for key in ("mean", "std"):
        if key not in state:
            raise refuse(
                p,
                f"state_dict has no {key!r} (the standardisation buffers every torchsisr training module "
                f"holds; found {len(state)} keys, e.g. {list(state)[:3]})",
                "it is not a torchsisr DoubleSISRTrainingModule checkpoint, or it was stripped",
            )
    step = ckpt.get("global_step", 0)
    if isinstance(step, bool) or not isinstance(step, int) or step < 0:
        raise refuse(
            p,
            f"global_step is {step!r}, expected a non-negative integer",
            "the file was damaged",
        )
    return ckpt


# ------------------------------------------------------------------------------------------- state helpers
def sub_state(state: Mapping[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """The entries of ``state`` under ``prefix``, with the prefix removed."""
    return {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}


def indices(keys: list[str], pattern: str) -> list[int]:
    """The sorted distinct integers captured by group 1 of ``pattern`` in ``keys``."""
    regex = re.compile(pattern)
    return sorted({int(m.group(1)) for k in keys if (m := regex.match(k))})


def need(state: Mapping[str, torch.Tensor], key: str, path: Path, prefix: str) -> torch.Tensor:
    """``state[key]``, or a refusal naming ``prefix + key``."""
    if key not in state:
        raise refuse(
            path,
            f"state_dict has no {prefix + key!r}, which a torchsisr network of this kind holds",
            "the file is incomplete or was edited; use the checkpoint as the training wrote it",
        )
    return state[key]


def unique_count(tensors: Mapping[str, torch.Tensor]) -> int:
    """Number of distinct parameters (aliased CARN weights counted once; 0-d ESRGAN scales included)."""
    seen: set[tuple[int, int, tuple[int, ...]]] = set()
    for t in tensors.values():
        seen.add((t.untyped_storage().data_ptr(), int(t.storage_offset()), tuple(t.shape)))
    return len(seen)


class WeightMap:
    """Our state-dict keys filled from a torchsisr state (keys without ``prefix``), keeping track of which
    source keys were used, so that loading can refuse both unfilled weights and unexpected source keys."""

    def __init__(self, src: Mapping[str, torch.Tensor], path: Path, prefix: str) -> None:
        self.src, self.path, self.prefix = src, path, prefix
        self.mapped: dict[str, torch.Tensor] = {}
        self.used: set[str] = set()

    def take(self, ours: str, theirs: str) -> None:
        """Our ``ours.weight``/``.bias`` from their ``theirs.weight``/``.bias`` (refused when absent)."""
        for suffix in ("weight", "bias"):
            key = f"{theirs}.{suffix}"
            self.mapped[f"{ours}.{suffix}"] = need(self.src, key, self.path, self.prefix)
            self.used.add(key)

    def take_all(self, pairs: list[tuple[str, str]]) -> None:
        """:meth:`take` every ``(ours, theirs)`` pair (see :mod:`sisrlib.interop.torchsisr.keymaps`)."""
        for ours, theirs in pairs:
            self.take(ours, theirs)

    def skip(self, theirs: str) -> None:
        """A source key deliberately not mapped (e.g. a constant residual scale)."""
        self.used.add(theirs)

    def load_into(self, net: nn.Module) -> None:
        """Load the mapped tensors into ``net`` strictly; every source key must have been used."""
        expected = net.state_dict()
        missing = [k for k in expected if k not in self.mapped]
        shapes = [
            f"{k}: checkpoint {list(self.mapped[k].shape)}, network {list(v.shape)}"
            for k, v in expected.items()
            if k in self.mapped and self.mapped[k].shape != v.shape
        ]
        unused = [self.prefix + k for k in self.src if k not in self.used]
        if missing or shapes or unused:
            found = (
                ("unfilled", missing),
                ("shape mismatch", shapes),
                ("unexpected", unused),
            )
            parts = [
                f"{len(items)} {label} ({'; '.join(items[:3])}{' ...' if len(items) > 3 else ''})"
                for label, items in found
                if items
            ]
            raise refuse(
                self.path,
                f"the {self.prefix}* weights do not map onto the network inferred from their shapes: "
                f"{', '.join(parts)}",
                "the file was edited or comes from another version of torchsisr",
            )
        net.load_state_dict({k: v.to(torch.float32) for k, v in self.mapped.items()})
