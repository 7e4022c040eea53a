"""The metric conventions an evaluation used, so that its tables say which they follow: this project's
(the defaults) or torchsisr's (the paper profile). Written as ``conventions.json`` beside ``metrics.csv`` and
as one line under the markdown tables."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sisrlib.experiments.evaluation.params import EvaluationParams

_FRU = {"positive": "FRU ≥ 0 (ours)", "reference": "FRU ≤ 0 (torchsisr's sign)"}
_TV = {
    "signed_percent": "TV variation 100·(TVp − TVr)/TVr (ours)",
    "reference": "TV variation |TVp − TVr|/TVr ÷ batch size (torchsisr's)",
}
_KERNEL = {"exact": "exact PSF (half-width ⌈4σ⌉, ours)", "reference": "torchsisr's 7 × 7 PSF"}
_FDA = {
    "cropped": "FFT profiles of the patch less the margin (ours)",
    "reference": "FFT profiles of the whole patch (torchsisr's)",
}


def conventions(params: EvaluationParams, notes: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The conventions of ``params`` as a JSON-ready mapping; ``notes``: perceptual metrics not computed →
    why."""
    notes = dict(notes or {})
    return {
        "psf_kernel": params.psf_kernel,
        "lr_mtf": params.lr_mtf,
        "geometric_mtf": params.geometric_mtf,
        "fru_sign": params.fru_sign,
        "tv_variation": params.tv_variation,
        "fda_margin": params.fda_margin,
        "checkpoint": params.checkpoint,
        "margin": params.margin,
        "perceptual": {name: notes.get(name, "computed") for name in params.perceptual},
        "sim": {"mtf": params.sim_mtf, "kernel": params.psf_kernel} if params.sim else None,
        "target": "un-registered HR target",
    }


def conventions_line(conv: Mapping[str, Any]) -> str:
    """One sentence for under a table, e.g. ``Conventions: exact PSF (...) for LR fidelity (MTF 0.1) and the
    geometric metric (MTF 0.3); FRU ≥ 0 (ours); ...; checkpoint best.``"""
    parts = [
        f"{_KERNEL.get(conv['psf_kernel'], conv['psf_kernel'])} for LR fidelity (MTF {conv['lr_mtf']:g}) and "
        f"the geometric metric (MTF {conv['geometric_mtf']:g})",
        _FRU.get(conv["fru_sign"], conv["fru_sign"]),
        _TV.get(conv["tv_variation"], conv["tv_variation"]),
        # written before the option existed: the whole patch
        _FDA.get(conv.get("fda_margin", "reference"), str(conv.get("fda_margin"))),
        f"checkpoint {conv['checkpoint']}",
    ]
    perceptual = conv.get("perceptual") or {}
    if perceptual:
        shown = [
            name if why == "computed" else f"{name} not computed ({why})" for name, why in perceptual.items()
        ]
        parts.append("perceptual: " + ", ".join(shown))
    sim = conv.get("sim")
    if sim:
        parts.append(f"sim metrics from inputs simulated at MTF {sim['mtf']:g}")
    return "Conventions: " + "; ".join(parts) + "."


#: File name of the conventions beside ``metrics.csv``.
CONVENTIONS_FILE = "conventions.json"


def read_conventions(output_dir: str | Path) -> dict[str, Any] | None:
    """The conventions an evaluation wrote into ``output_dir`` (``conventions.json`` beside its
    ``metrics.csv``), or None for an evaluation written before they were recorded."""
    path = Path(output_dir) / CONVENTIONS_FILE
    if not path.is_file():
        return None
    mapping = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(mapping, dict):
        raise ValueError(f"{path}: expected a JSON mapping of the evaluation's conventions")
    return mapping
