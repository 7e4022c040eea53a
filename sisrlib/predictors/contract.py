"""The EVOLAND model contract (what ``sentinel2_superresolution`` reads, as torchsisr's export writes it):
the graph's input and output names, the sidecar ``NAME.yaml`` (read, validated, written), the grid a model is
fed on and the margin rule. Torch-free: ``sisr infer`` on an exported model needs only this, numpy and ONNX
Runtime.

* The graph: one float32 input named ``input`` ``[b, C, h, w]`` of DN, one output ``[b, C, h·f, w·f]`` of DN.
* The sidecar: exactly the keys ``bands`` (names in channel order), ``factor`` (float), ``margin`` (int,
  output pixels) and ``model`` (the ONNX file name, relative to the yaml).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import yaml

from sisrlib.bands import BAND_RESOLUTION_M, BANDS_10M, validate_bands
from sisrlib.errors import SisrError

#: Name of the graph input required by the EVOLAND tool.
ONNX_INPUT_NAME = "input"
#: Name of the graph output (the tool takes the first output whatever its name).
ONNX_OUTPUT_NAME = "output"
#: The exact keys of the sidecar yaml.
SIDECAR_KEYS: tuple[str, ...] = ("bands", "factor", "margin", "model")


def source_resolution_m(bands: Sequence[str]) -> float:
    """The grid (m) the EVOLAND tool feeds a model on: 10 m if any of B2/B3/B4/B8 is among ``bands``, else
    20 m; every band is read on it."""
    return 10.0 if any(b in BANDS_10M for b in bands) else 20.0


def margin_step(factor: float, bands: Sequence[str]) -> int:
    """The smallest margin step (output px) whose multiples span whole pixels of every band's native grid.

    A margin ``m`` (output px of ``source / factor`` metres) covers ``m · source / factor / native`` pixels of
    a band of ``native`` metres: whole for every band when ``m`` is a multiple of the numerator of each
    ``factor · native / source``. ×2 on 10 m bands: 2; ×4 on 20 m bands: 4; ×2 on 10 m + 20 m bands: 4.
    """
    source = Fraction(source_resolution_m(bands))
    scale = Fraction(factor).limit_denominator(1000)
    step = 1
    for band in dict.fromkeys(bands):
        step = math.lcm(step, (scale * Fraction(BAND_RESOLUTION_M[band]) / source).numerator)
    return step


def aligned_margin(margin: int, factor: float, bands: Sequence[str]) -> int:
    """``margin`` (output px) rounded up to a multiple of :func:`margin_step`: e.g. 30 → 32 at ×4 on 20 m
    bands (7.5 → 8 px of 20 m), 41 → 44 at ×2 on 10 m + 20 m bands (11 px of 20 m), 66 unchanged at ×2 on
    10 m bands."""
    step = margin_step(factor, bands)
    return -(-max(int(margin), 0) // step) * step


def sidecar_mapping(bands: Sequence[str], factor: float, margin: int, onnx_name: str) -> dict[str, Any]:
    """The sidecar yaml content: exactly ``bands``, ``factor`` (float), ``margin`` (int), ``model``."""
    return {
        "bands": [str(b) for b in bands],
        "factor": float(factor),
        "margin": int(margin),
        "model": onnx_name,
    }


@dataclass(frozen=True)
class ModelCard:
    """What the sidecar yaml says: band names in channel order, factor, margin (output px), ONNX file."""

    yaml_path: Path
    bands: tuple[str, ...]
    factor: float
    margin: int
    onnx_path: Path


def _fail(path: Path, message: str) -> SisrError:
    return SisrError(f"model yaml {path}: {message}")


def read_model_yaml(path: str | os.PathLike[str]) -> ModelCard:
    """Read ``NAME.yaml`` the way the EVOLAND tool does (``yaml.safe_load``) and check every key.

    Raises ``FileNotFoundError`` when the yaml or the ONNX file it names is missing, and ``SisrError`` naming
    the key, what was expected and what was found when the content is malformed.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"model yaml {path} does not exist")
    try:
        with open(path, encoding="utf-8") as stream:
            content: Any = yaml.safe_load(stream)
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise _fail(path, f"not valid YAML ({exc})") from exc
    if not isinstance(content, dict):
        raise _fail(
            path, f"expected a mapping with keys {list(SIDECAR_KEYS)}, found {type(content).__name__}"
        )
    keys = set(content)
    if keys != set(SIDECAR_KEYS):
        missing = sorted(set(SIDECAR_KEYS) - keys)
        extra = sorted(str(k) for k in keys - set(SIDECAR_KEYS))
        raise _fail(
            path, f"expected exactly the keys {list(SIDECAR_KEYS)}; missing {missing}, unexpected {extra}"
        )
    bands = content["bands"]
    if not isinstance(bands, list) or not bands or not all(isinstance(b, str) for b in bands):
        raise _fail(
            path, f"'bands' must be a non-empty list of band names such as [B2, B3, B4, B8], found {bands!r}"
        )
    try:
        band_names = validate_bands(bands, where=f"model yaml {path}: 'bands'")
    except ValueError as exc:
        raise SisrError(str(exc)) from exc
    factor = content["factor"]
    if (
        isinstance(factor, bool)
        or not isinstance(factor, int | float)
        or not math.isfinite(factor)
        or not factor > 0
    ):
        raise _fail(path, f"'factor' must be a positive finite number (e.g. 2.0), found {factor!r}")
    margin = content["margin"]
    if isinstance(margin, bool) or not isinstance(margin, int) or margin < 0:
        raise _fail(path, f"'margin' must be a non-negative integer (output pixels), found {margin!r}")
    model = content["model"]
    if not isinstance(model, str) or not model:
        raise _fail(path, f"'model' must be the ONNX file name relative to the yaml, found {model!r}")
    onnx_path = path.parent / model
    if not onnx_path.is_file():
        raise FileNotFoundError(
            f"model yaml {path}: the ONNX file {onnx_path} named by 'model' does not exist"
        )
    return ModelCard(path, band_names, float(factor), int(margin), onnx_path)
