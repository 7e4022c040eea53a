"""``open_model``: a :class:`~sisrlib.predictors.base.Predictor` from a model file, its kind told by the file.

* ``NAME.yaml`` (or ``NAME.onnx`` with ``NAME.yaml`` beside it): an exported model in the EVOLAND contract,
  by any producer, run by ONNX Runtime — torch is not imported;
* a checkpoint (a torch zip file, usually ``.ckpt``): this project's training checkpoint or a torchsisr
  Lightning checkpoint, told apart by content (:mod:`sisrlib.predictors.checkpoints`, loaded only then, so
  that the ONNX path starts without torch).
"""

from __future__ import annotations

import importlib
import os
import zipfile
from pathlib import Path

from sisrlib.errors import SisrError
from sisrlib.predictors.base import ModelOptions, Predictor, check_device_name, check_threads
from sisrlib.predictors.onnx import OnnxPredictor

#: The torch-backed loaders, imported on first use (``sisr infer`` on an ONNX model never imports torch).
CHECKPOINT_LOADERS = "sisrlib.predictors.checkpoints"
#: What ``--model`` may be, for error messages.
EXPECTED_KINDS = (
    "an exported model NAME.yaml beside NAME.onnx (EVOLAND contract), this project's training checkpoint "
    "(.ckpt), or a torchsisr Lightning checkpoint (.ckpt)"
)


def open_model(
    path: str | os.PathLike[str],
    *,
    device: str = "cpu",
    threads: int = 1,
    options: ModelOptions | None = None,
) -> Predictor:
    """The predictor of ``path`` on ``device`` (``cpu`` or ``cuda``) with ``threads`` CPU threads.

    ``options`` supplies what a foreign checkpoint lacks (bands, factor, standardisation); given for a
    model that carries them, they must agree. Raises ``FileNotFoundError`` for a missing file and
    :class:`SisrError` naming the three kinds expected for anything else.
    """
    check_threads(threads)
    check_device_name(device)
    options = options or ModelOptions()
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix in (".yaml", ".yml", ".onnx"):
        predictor = OnnxPredictor(p, threads=threads, device=device)
        options.refuse_contradictions(
            predictor.card.yaml_path,
            predictor,
            "the yaml's",
            "an exported model holds its normalisation inside the graph",
        )
        return predictor
    if p.is_dir():
        raise ValueError(f"--model {p} is a folder; expected {EXPECTED_KINDS}")
    if not p.is_file():
        raise FileNotFoundError(f"--model {p} does not exist; expected {EXPECTED_KINDS}")
    if not zipfile.is_zipfile(p):
        raise SisrError(f"--model {p}: not a model file; expected {EXPECTED_KINDS}")
    loaders = importlib.import_module(CHECKPOINT_LOADERS)
    checkpoint: Predictor = loaders.open_checkpoint(p, device=device, threads=threads, options=options)
    return checkpoint
