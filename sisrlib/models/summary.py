"""A table of generators (name, factor, margins, parameters) for notebooks and reports."""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd
import torch

from sisrlib.models.base import SRModel
from sisrlib.models.params import ModelParams
from sisrlib.models.registry import build_generator

GeneratorSpec = tuple[ModelParams, int, int | None]

#: The generators of the paper (torchsisr) and the EVOLAND model:
#: name → (params, number of 10 m / main input bands, number of 20 m bands for a joint model).
PAPER_GENERATORS: dict[str, GeneratorSpec] = {
    "s2vx2 esrgan_6x64x32": (ModelParams(generator="esrgan", factor=2.0, num_blocks=6), 4, None),
    "s2vx4 esrgan_5x64x32": (ModelParams(generator="esrgan", factor=4.0, num_blocks=5), 4, None),
    "wsx2 esrgan_6x64x32": (ModelParams(generator="esrgan", factor=2.0, num_blocks=6), 4, None),
    "wsx4 esrgan_6x64x32": (ModelParams(generator="esrgan", factor=4.0, num_blocks=6), 4, None),
    "evoland carn_3x3x64g4swTrue + bicubic": (
        ModelParams(generator="carn", factor=2.0, lr_to_hr="bicubic"),
        4,
        6,
    ),
}


def parameter_count(model: torch.nn.Module) -> int:
    """Number of distinct parameters (shared weights counted once)."""
    return sum(p.numel() for p in model.parameters())


def model_summary(models: Mapping[str, SRModel]) -> pd.DataFrame:
    """One row per model: ``name``, ``kind``, ``factor``, ``margin`` and ``receptive_field`` (output px),
    ``in_bands``, ``out_bands``, ``params``."""
    rows = [
        {
            "name": name,
            "kind": type(model).__name__,
            "factor": model.factor,
            "margin": model.margin,
            "receptive_field": model.receptive_field,
            "in_bands": model.in_bands,
            "out_bands": model.out_bands,
            "params": parameter_count(model),
        }
        for name, model in models.items()
    ]
    columns = ["name", "kind", "factor", "margin", "receptive_field", "in_bands", "out_bands", "params"]
    return pd.DataFrame(rows, columns=columns)


def params_summary(generators: Mapping[str, GeneratorSpec] | None = None) -> pd.DataFrame:
    """``model_summary`` of generators described by params (default: ``PAPER_GENERATORS``), built on the
    ``meta`` device so that no memory is allocated nor weights initialised."""
    specs = PAPER_GENERATORS if generators is None else generators
    with torch.device("meta"):
        models = {
            name: build_generator(params, in_bands, lr_bands=lr_bands)
            for name, (params, in_bands, lr_bands) in specs.items()
        }
    return model_summary(models)
