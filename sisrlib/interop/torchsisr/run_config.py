"""The run configuration hydra saves beside a torchsisr checkpoint (``.hydra/config.yaml``), read safely.

Read with ``yaml.safe_load``; only plain ``${a.b}`` interpolations are followed, environment variables (and
hydra resolvers) never. What the importers take from it (each import records which, in ``provenance``):

* ``training_module.bands``: band names of the standardisation and input order;
* ``model.model.sisr_model`` (``_target_``, ``upsampling_factor``, architecture sizes: checked against the
  tensor shapes) and ``model.model.lr_to_hr_model`` (the joint model's bicubic 20 m branch);
* ``training_module.config.registration`` (``max_offset``, ``registration_channel``, UNet sizes) and
  ``training_module.config.pretrain_registration``;
* ``training_module.standardization_parameters``: compared with the checkpoint's buffers, never used.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml

from sisrlib.errors import CheckpointError
from sisrlib.interop.torchsisr.layout import refuse

#: Where hydra writes the run configuration, relative to the checkpoint's folder.
RUN_CONFIG = Path(".hydra") / "config.yaml"

#: ``"auto"`` (beside the checkpoint), a path, an already loaded mapping, or ``None`` (use none).
ConfigArg = str | Path | Mapping[str, Any] | Literal["auto"] | None

_INTERPOLATION = re.compile(r"^\$\{([A-Za-z_][\w.]*)\}$")


def load_run_config(checkpoint: Path, config: ConfigArg) -> tuple[Mapping[str, Any] | None, str]:
    """The run configuration and a description of where it came from.

    ``config``: ``"auto"`` (``<checkpoint folder>/.hydra/config.yaml`` when it exists), a path, an already
    loaded mapping, or ``None`` (do not use one). Read with ``yaml.safe_load``; a file that is not a mapping
    is refused.
    """
    if config is None:
        return None, "no run configuration (config=None)"
    if isinstance(config, Mapping):
        return config, "the run configuration given as a mapping"
    path = checkpoint.parent / RUN_CONFIG if config == "auto" else Path(config)
    if not path.is_file():
        if config == "auto":
            return None, f"no run configuration ({path} does not exist)"
        raise FileNotFoundError(f"run configuration {path} does not exist; pass the run's .hydra/config.yaml")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise CheckpointError(f"run configuration {path} cannot be read as YAML: {exc}") from exc
    if not isinstance(data, Mapping):
        raise CheckpointError(
            f"run configuration {path}: expected a mapping (hydra's composed config), found "
            f"{type(data).__name__}"
        )
    return data, str(path)


class _Missing:
    def __repr__(self) -> str:
        return "<missing>"


#: What :func:`lookup` returns for an absent node (``None`` is a value: YAML's ``null``).
MISSING: Any = _Missing()


def lookup(cfg: Mapping[str, Any] | None, dotted: str, depth: int = 0) -> Any:
    """The node at ``dotted`` in ``cfg`` (:data:`MISSING` when absent or ``cfg`` is None), following
    ``${a.b}`` interpolations."""
    if cfg is None or depth > 16:
        return MISSING
    node: Any = cfg
    for part in dotted.split("."):
        node = _follow(cfg, node, depth)
        if not isinstance(node, Mapping) or part not in node:
            return MISSING
        node = node[part]
    return _follow(cfg, node, depth)


def _follow(cfg: Mapping[str, Any], node: Any, depth: int) -> Any:
    if isinstance(node, str):
        match = _INTERPOLATION.match(node.strip())
        if match:
            return lookup(cfg, match.group(1), depth + 1)
    return node


def number(value: Any) -> float | None:
    """``value`` as a finite float, else None (booleans are not numbers here)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def agree(path: Path, cfg: Mapping[str, Any], expected: Mapping[str, Any], where: str) -> None:
    """Refuse a run configuration whose architecture values differ from the tensor shapes."""
    wrong = {k: (cfg[k], v) for k, v in expected.items() if k in cfg and cfg[k] != v}
    if wrong:
        detail = ", ".join(f"{k}: config {c!r}, weights {w!r}" for k, (c, w) in wrong.items())
        raise refuse(
            path,
            f"its run configuration ({where}) does not describe these weights ({detail})",
            "the .hydra/config.yaml beside it belongs to another run: pass config=None or the right file",
        )
