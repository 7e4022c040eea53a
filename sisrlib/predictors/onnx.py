"""An exported model (NAME.yaml + NAME.onnx, the EVOLAND contract, any producer) run by ONNX Runtime.

Torch-free: this module, :mod:`sisrlib.predictors.contract` and ONNX Runtime are all that ``sisr infer``
needs for an exported model. The session is configured as the EVOLAND tool configures its own (intra- and
inter-op threads, deterministic compute), with the CUDA execution provider first when asked for.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from sisrlib.errors import MissingDependencyError, SisrError
from sisrlib.predictors.base import Predictor, check_device_name, check_threads
from sisrlib.predictors.contract import ONNX_INPUT_NAME, ModelCard, read_model_yaml

#: ONNX Runtime's graph optimisation levels, by the names ``onnx_runtime_session`` accepts.
GRAPH_OPTIMISATION_LEVELS: tuple[str, ...] = ("disable", "basic", "extended", "all")


def onnx_runtime_session(
    path: Path,
    threads: int = 1,
    use_cuda: bool = False,
    *,
    optimisation: str = "all",
    memory_arena: bool = True,
    spinning: bool = True,
) -> Any:
    """An ONNX Runtime session of ``path`` (threads, deterministic compute, CPU or CUDA-first providers).

    ``threads``: intra-op threads (and inter-op, as the EVOLAND tool sets both); ``optimisation``: one of
    :data:`GRAPH_OPTIMISATION_LEVELS` (ONNX Runtime's default is ``all``); ``memory_arena``: the CPU
    allocator's arena (memory kept between runs, rounded up to its bins); ``spinning``: idle intra-op threads
    spin instead of sleeping (lower latency between operators; CPU taken from other threads).
    """
    try:
        import onnxruntime as ort
    except ImportError as exc:  # pragma: no cover - onnxruntime is a dependency
        raise MissingDependencyError("onnxruntime is required: pip install onnxruntime") from exc
    if optimisation not in GRAPH_OPTIMISATION_LEVELS:
        raise ValueError(
            f"graph optimisation {optimisation!r}: expected one of {list(GRAPH_OPTIMISATION_LEVELS)}"
        )
    levels = {
        "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
        "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
        "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
    }
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = threads
    options.use_deterministic_compute = True
    options.log_severity_level = 3
    options.graph_optimization_level = levels[optimisation]
    options.enable_cpu_mem_arena = memory_arena
    if not spinning:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    providers = ["CPUExecutionProvider"]
    if use_cuda:
        if "CUDAExecutionProvider" not in ort.get_available_providers():
            raise MissingDependencyError(
                "--device cuda: this onnxruntime build has no CUDAExecutionProvider (available: "
                f"{ort.get_available_providers()}); install onnxruntime-gpu or use --device cpu"
            )
        providers = ["CUDAExecutionProvider", "CPUExecutionProvider"]
    try:
        return ort.InferenceSession(str(path), sess_options=options, providers=providers)
    except Exception as exc:  # onnxruntime raises its own exception classes
        raise SisrError(f"cannot load the ONNX model {path}: {exc}") from exc


def resolve_sidecar(path: str | os.PathLike[str]) -> Path:
    """The sidecar yaml of an exported model given as ``NAME.yaml`` or ``NAME.onnx`` (then ``NAME.yaml``
    must exist beside it)."""
    path = Path(path)
    if path.suffix.lower() == ".onnx":
        sidecar = path.with_suffix(".yaml")
        if not sidecar.is_file():
            raise FileNotFoundError(
                f"--model {path}: pass the sidecar yaml of the ONNX file (expected {sidecar}, which does "
                "not exist)"
            )
        return sidecar
    return path


#: ONNX Runtime settings of :class:`OnnxPredictor`, chosen by measurement on the quick ESRGAN, 2 threads: the
#: full graph optimisation (its NCHWc convolutions take half the CPU time of ``extended``'s), the memory
#: arena (without it every run maps and zeroes its buffers again: ~50 % more CPU time end to end, for a
#: lower peak RSS), and no spinning (idle intra-op threads sleep: ~10 % less CPU time end to end, and the
#: reader and writer threads get the cores).
PREDICTOR_SESSION = {"optimisation": "all", "memory_arena": True, "spinning": False}


class OnnxPredictor(Predictor):
    """An exported model run by ONNX Runtime; ``device="cuda"`` puts the CUDA execution provider first."""

    def __init__(
        self,
        yaml_path: str | os.PathLike[str],
        threads: int = 1,
        device: str = "cpu",
        *,
        optimisation: str = str(PREDICTOR_SESSION["optimisation"]),
        memory_arena: bool = bool(PREDICTOR_SESSION["memory_arena"]),
        spinning: bool = bool(PREDICTOR_SESSION["spinning"]),
    ) -> None:
        check_threads(threads)
        check_device_name(device)
        card = read_model_yaml(resolve_sidecar(yaml_path))
        self.card: ModelCard = card
        self.in_bands = card.bands
        self.out_bands = card.bands
        self.factor = card.factor
        self.margin = card.margin
        self.name = f"ONNX {card.onnx_path.name}"
        self.files = (card.yaml_path, card.onnx_path)
        self.session: Any = onnx_runtime_session(
            card.onnx_path,
            threads=threads,
            use_cuda=device == "cuda",
            optimisation=optimisation,
            memory_arena=memory_arena,
            spinning=spinning,
        )
        inputs = self.session.get_inputs()
        if len(inputs) != 1 or inputs[0].name != ONNX_INPUT_NAME:
            raise SisrError(
                f"{card.onnx_path}: expected one input named {ONNX_INPUT_NAME!r}, found "
                f"{[i.name for i in inputs]}"
            )
        shape = inputs[0].shape
        if len(shape) != 4:
            raise SisrError(f"{card.onnx_path}: expected a [b, c, h, w] input, found shape {shape}")
        if isinstance(shape[1], int) and shape[1] != len(card.bands):
            raise SisrError(
                f"{card.onnx_path}: the graph takes {shape[1]} channels but {card.yaml_path} lists "
                f"{len(card.bands)} bands {list(card.bands)}"
            )

    def __call__(self, dn: np.ndarray) -> np.ndarray:
        out = self.session.run(None, {ONNX_INPUT_NAME: np.ascontiguousarray(dn, dtype=np.float32)})[0]
        return np.asarray(out, dtype=np.float32)
