"""What each benchmarked metric needs beyond torch: the optional packages piq and torchvision, and weight
files in the torch hub / CLIP caches. Nothing is downloaded: a metric whose needs are not met is skipped (or,
when asked for explicitly, refused with what to install or which file to supply)."""

from __future__ import annotations

import functools
import importlib
import importlib.util
import os
from collections.abc import Sequence
from pathlib import Path

import torch

from sisrlib.experiments.metrics_benchmark.spec import MetricSpec

__all__ = [
    "MetricSpec",
    "missing_weights",
    "piq_install_hint",
    "piq_unavailable_reason",
    "unavailable_reason",
]


def _hub_file(name: str) -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints" / name


def _clip_file(name: str) -> Path:
    return Path(os.path.expanduser("~/.cache/clip")) / name


def _weights_paths(spec: MetricSpec) -> list[Path]:
    return [_clip_file(w[5:]) if w.startswith("clip:") else _hub_file(w) for w in spec.weights]


def missing_weights(spec: MetricSpec) -> list[Path]:
    """The weight files of ``spec`` that are not present locally."""
    return [p for p in _weights_paths(spec) if not p.is_file()]


def _first_line(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text.splitlines()[0] if text else ''}"


@functools.cache
def piq_unavailable_reason() -> str | None:
    """None when the optional packages of the piq-only metrics (piq and a torchvision that works with the
    installed torch) import; else what is missing or broken (checked once per process)."""
    problems = []
    for package in ("torchvision", "piq"):
        try:
            installed = importlib.util.find_spec(package) is not None
        except (ImportError, ValueError):
            installed = True  # present in sys.modules without a spec: let the import decide
        if not installed:
            problems.append(f"{package} is not installed")
            continue
        try:
            importlib.import_module(package)
        except Exception as exc:  # a torchvision built for another torch fails with RuntimeError
            problems.append(f"{package} does not import ({_first_line(exc)})")
            if package == "torchvision":
                problems.append("piq needs torchvision")
                break
    return "; ".join(problems) if problems else None


def piq_install_hint(specs: Sequence[MetricSpec] = ()) -> str:
    """How to enable the piq metrics; names the missing weight files of ``specs``."""
    missing = list(dict.fromkeys(str(p) for spec in specs for p in missing_weights(spec)))
    hint = (
        f"install piq==0.8.0 and the torchvision release built for the installed torch {torch.__version__} "
        "(same CPU / CUDA variant)"
    )
    if missing:
        hint += ", plus the weight files " + ", ".join(missing) + " for the metrics that need weights"
    return hint


def unavailable_reason(spec: MetricSpec) -> str | None:
    """Why ``spec`` cannot run here (optional packages and / or weight files missing), or None."""
    parts = []
    problem = piq_unavailable_reason() if spec.needs_piq else None
    if problem is not None:
        parts.append(
            f"metric {spec.name} needs the optional packages piq and torchvision, which are not usable here "
            f"({problem}). To enable it: {piq_install_hint()}"
        )
    missing = missing_weights(spec)
    if missing:
        parts.append(
            f"metric {spec.name} needs pretrained weights that are not present: "
            + ", ".join(str(p) for p in missing)
            + ". Nothing is downloaded at run time: copy the file(s) there (from the piq / torchvision / "
            "CLIP release pages) to enable it"
        )
    return ". ".join(parts) if parts else None
