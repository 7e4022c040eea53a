"""The sidecar yaml of an exported model (the EVOLAND contract), read and validated strictly."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from sisrlib.bands import validate_bands
from sisrlib.errors import SisrError
from sisrlib.export import SIDECAR_KEYS


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
