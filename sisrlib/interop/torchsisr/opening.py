"""What both torchsisr importers do first: read the checkpoint safely, find its run configuration, and take
the weights of one network (the SR network or the flow network) out of its ``state_dict``."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from sisrlib.interop.torchsisr.layout import read_torchsisr_checkpoint, refuse, sub_state
from sisrlib.interop.torchsisr.run_config import ConfigArg, load_run_config


@dataclass
class OpenedNetwork:
    """One network of a torchsisr checkpoint, with what the importer needs beside its weights."""

    #: The checkpoint file.
    path: Path
    #: The whole checkpoint (``state_dict``, ``global_step``, ``loops``, ...).
    checkpoint: dict[str, Any]
    #: The ``state_dict`` (the standardisation ``mean``/``std`` and every network).
    state: Mapping[str, torch.Tensor]
    #: The network's weights, the prefix removed.
    weights: dict[str, torch.Tensor]
    #: The run configuration (None when there is none) and where it came from.
    config: Mapping[str, Any] | None
    config_where: str
    #: Where each choice of the import came from (filled by the importer), starting with the configuration.
    provenance: dict[str, str]


def open_network(
    path: str | os.PathLike[str], config: ConfigArg, prefix: str, empty: str, fix: str
) -> OpenedNetwork:
    """Read ``path`` (:func:`read_torchsisr_checkpoint`), its run configuration (:func:`load_run_config`)
    and the weights under ``prefix``; a checkpoint with none is refused with ``empty`` (what it holds
    instead) and ``fix`` (what to use)."""
    p = Path(path)
    ckpt = read_torchsisr_checkpoint(p)
    state: Mapping[str, torch.Tensor] = ckpt["state_dict"]
    cfg, cfg_where = load_run_config(p, config)
    weights = sub_state(state, prefix)
    if not weights:
        raise refuse(p, f"state_dict holds no {prefix}* weights{empty}", fix)
    return OpenedNetwork(p, ckpt, state, weights, cfg, cfg_where, {"run configuration": cfg_where})
