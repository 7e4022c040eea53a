"""ONNX export of a generator for the EVOLAND ``sentinel2_superresolution`` tool.

The exported graph follows the model contract of that tool (as torchsisr's export writes it):

* one float32 input named ``input`` of shape ``[b, C, h, w]`` holding Sentinel-2 L2A **DN**
  (reflectance × 10000);
* one output named ``output`` of shape ``[b, C, h·f, w·f]``, also in DN;
* batch, height and width are dynamic axes;
* the normalisation is inside the graph: DN → ÷10000 → (x − μ_c)/σ_c → network → ·σ_c + μ_c → ×10000, with no
  clipping, rounding or no-data handling;
* a sidecar ``NAME.yaml`` with exactly the keys ``bands`` (names in channel order), ``factor`` (float),
  ``margin`` (int, output pixels) and ``model`` (the ONNX file name, relative to the yaml).

The sidecar's ``margin`` is the network's margin rounded up (:func:`aligned_margin`) so that it spans a whole
number of pixels of every band's native grid: the EVOLAND tool pads each tile by ``margin`` output pixels in
metres and reads every band on that window; a window that falls between pixels of a band's grid is
resampled by the tool's reader (e.g. margin 30 at ×4 is 7.5 px of 20 m: its ROI output then differs from its
whole-scene output by hundreds of DN).

Every export is verified: ONNX Runtime and torch run on the same random DN tile and the export fails (both
files removed) when they disagree by more than ``tolerance_dn``. Both files are written under temporary names
and renamed once verified, so a failed export leaves nothing behind.
"""

from __future__ import annotations

import copy
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import yaml

from sisrlib.atomic import atomic_output
from sisrlib.bands import Standardisation, validate_bands
from sisrlib.errors import SisrError
from sisrlib.models.base import SRModel
from sisrlib.models.dn_model import DNModel
from sisrlib.predictors.checkpoints import dn_model_from_any_checkpoint, dn_model_from_checkpoint
from sisrlib.predictors.contract import (
    ONNX_INPUT_NAME,
    ONNX_OUTPUT_NAME,
    SIDECAR_KEYS,
    aligned_margin,
    margin_step,
    sidecar_mapping,
    source_resolution_m,
)
from sisrlib.predictors.onnx import onnx_runtime_session

__all__ = [
    "DEFAULT_OPSET",
    "DEFAULT_TOLERANCE_DN",
    "ONNX_INPUT_NAME",
    "ONNX_OUTPUT_NAME",
    "SIDECAR_KEYS",
    "DNModel",
    "ExportError",
    "ExportParams",
    "ExportedPair",
    "aligned_margin",
    "check_export_output",
    "check_graph",
    "dn_model_from_checkpoint",
    "export_checkpoint",
    "export_dn_model",
    "export_generator",
    "margin_step",
    "onnx_runtime_session",
    "sidecar_mapping",
    "source_resolution_m",
    "verify_parity",
]

#: Default ONNX opset (the reference exported with torch 2.5.1's default, 17).
DEFAULT_OPSET = 17
#: Largest ONNX Runtime / torch disagreement accepted by an export, in DN.
DEFAULT_TOLERANCE_DN = 0.5


@dataclass(frozen=True)
class ExportParams:
    """Parameters of ``notebooks/06_export_inference.ipynb`` (``params/<profile>/06_*.yaml``)."""

    #: SR training checkpoint, or a glob pattern: the first SR checkpoint (sorted) among its matches is used.
    checkpoint: str = "build/quick/runs/*/checkpoints/best.ckpt"
    #: Folder of the exported pair, the scene GeoTIFF and the super-resolved GeoTIFFs.
    output_dir: str = "build/quick/export"
    #: Stem of the exported pair: ``<output_dir>/<name>.onnx`` and ``<name>.yaml``.
    name: str = "sisr"
    opset: int = DEFAULT_OPSET
    #: Tile edge in output pixels, and ONNX Runtime threads, of the scene super-resolution.
    tile_size: int = 512
    threads: int = 2
    #: Part of the scene to super-resolve, ``[col, row, width, height]`` in input px; null: the whole scene.
    roi_pixels: list[int] | None = None
    #: Crops shown side by side: centres as fractions ``[x, y]`` of the super-resolved region; edge in
    #: input px.
    crops: list[list[float]] = field(default_factory=lambda: [[0.2, 0.25], [0.66, 0.4], [0.42, 0.62]])
    crop_size: int = 64
    #: Folder of the figures.
    figures_dir: str = "figures/quick"


class ExportError(SisrError):
    """The export could not be produced or did not pass its verification."""


@dataclass(frozen=True)
class ExportedPair:
    """The files of one export and what its verification measured."""

    onnx_path: Path
    yaml_path: Path
    bands: tuple[str, ...]
    factor: float
    #: The sidecar's margin (output px): the network's, rounded up by :func:`aligned_margin`.
    margin: int
    opset: int
    #: Largest |ONNX Runtime − torch| over the verification tile, in DN.
    max_abs_diff_dn: float
    #: The network's own margin (output px), before rounding; None when not recorded.
    model_margin: int | None = None


def _random_dn_tile(channels: int, height: int, width: int, batch: int, seed: int) -> torch.Tensor:
    """Seeded random integer DN in [0, 10000), float32, ``[batch, channels, height, width]``."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, 10000, (batch, channels, height, width), generator=generator).to(torch.float32)


def _export_graph(wrapper: DNModel, path: Path, opset: int, dummy: torch.Tensor) -> None:
    """Write the ONNX graph of ``wrapper`` with dynamic batch/height/width (TorchScript exporter)."""
    dynamic_axes = {
        ONNX_INPUT_NAME: {0: "batch", 2: "height", 3: "width"},
        ONNX_OUTPUT_NAME: {0: "batch", 2: "out_height", 3: "out_width"},
    }
    with warnings.catch_warnings():
        # The TorchScript-based exporter is deprecated in favour of the dynamo one, which needs onnxscript;
        # the TorchScript exporter handles dynamic axes and needs no extra dependency.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            wrapper,
            (dummy,),
            str(path),
            input_names=[ONNX_INPUT_NAME],
            output_names=[ONNX_OUTPUT_NAME],
            dynamic_axes=dynamic_axes,
            opset_version=opset,
            do_constant_folding=False,
            dynamo=False,
        )


def check_graph(path: Path, channels: int) -> None:
    """``onnx.checker`` plus the contract's signature: one input ``input`` ``[b, C, h, w]``, b/h/w dynamic."""
    import onnx

    try:
        proto = onnx.load(str(path))
        onnx.checker.check_model(proto, full_check=True)
    except Exception as exc:  # onnx raises several unrelated exception types
        raise ExportError(f"{path}: the exported graph does not pass onnx.checker: {exc}") from exc
    inputs = [i for i in proto.graph.input if i.name not in {init.name for init in proto.graph.initializer}]
    if len(inputs) != 1 or inputs[0].name != ONNX_INPUT_NAME:
        raise ExportError(
            f"{path}: expected exactly one graph input named {ONNX_INPUT_NAME!r}, found "
            f"{[i.name for i in inputs]}"
        )
    if not proto.graph.output or proto.graph.output[0].name != ONNX_OUTPUT_NAME:
        raise ExportError(f"{path}: expected the first graph output to be named {ONNX_OUTPUT_NAME!r}")
    for value in (inputs[0], proto.graph.output[0]):
        dims = value.type.tensor_type.shape.dim
        if len(dims) != 4:
            raise ExportError(f"{path}: {value.name} has rank {len(dims)}, expected 4 ([b, C, h, w])")
        for axis in (0, 2, 3):
            if not dims[axis].dim_param:
                raise ExportError(f"{path}: axis {axis} of {value.name} is not dynamic")
        if dims[1].dim_value != channels:
            raise ExportError(f"{path}: {value.name} has {dims[1].dim_value} channels, expected {channels}")
        if value.type.tensor_type.elem_type != onnx.TensorProto.FLOAT:
            raise ExportError(f"{path}: {value.name} is not float32")


def verify_parity(
    onnx_path: Path,
    wrapper: DNModel,
    *,
    seed: int = 0,
    height: int = 48,
    width: int = 40,
    batch: int = 2,
) -> float:
    """Run ONNX Runtime and torch on one seeded random DN tile; return max |difference| in DN.

    The tile (``[batch, C, height, width]``) differs in batch size and shape from the tracing input, so it
    also checks that the dynamic axes work.
    """
    dn = _random_dn_tile(len(wrapper.bands), height, width, batch, seed)
    with torch.no_grad():
        expected = wrapper(dn).numpy()
    session = onnx_runtime_session(onnx_path)
    try:
        got = session.run(None, {ONNX_INPUT_NAME: dn.numpy()})[0]
    except Exception as exc:
        raise ExportError(f"{onnx_path}: ONNX Runtime failed on a {list(dn.shape)} tile: {exc}") from exc
    if got.shape != expected.shape:
        raise ExportError(
            f"{onnx_path}: ONNX Runtime output shape {list(got.shape)} differs from torch "
            f"{list(expected.shape)}"
        )
    diff = np.abs(got.astype(np.float64) - expected.astype(np.float64))
    return float(np.nan_to_num(diff, nan=np.inf).max())


def export_generator(
    model: SRModel,
    standardisation: Standardisation,
    bands: Sequence[str],
    path: str | os.PathLike[str],
    opset: int = DEFAULT_OPSET,
    *,
    output_standardisation: Standardisation | None = None,
    tolerance_dn: float = DEFAULT_TOLERANCE_DN,
    seed: int = 0,
) -> ExportedPair:
    """Export ``model`` (standardised units) as a DN-in/DN-out ONNX graph plus its sidecar yaml.

    Args:
        model: the generator, ``[B, C, h, w]`` → ``[B, C, h·f, w·f]`` in standardised units; it must
            return the bands it takes (``in_bands == out_bands == len(bands)``). It is copied to CPU
            float32; the original is left untouched.
        standardisation: per-band reflectance statistics; matched to ``bands`` by name.
        bands: the band names in channel order (``B2 … B12``).
        path: the ``.onnx`` file to write; the yaml gets the same stem.
        opset: ONNX opset version (17 by default).
        output_standardisation: statistics to un-standardise the output (default: ``standardisation``).
        tolerance_dn: largest accepted ONNX Runtime / torch disagreement, in DN.
        seed: seed of the random verification tile.

    Returns:
        The written pair and the measured disagreement. On any failure both files are removed and an
        ``ExportError`` (or ``ValueError`` for bad arguments) is raised.
    """
    bands = validate_bands(bands, where="export bands")
    if model.in_bands != len(bands) or model.out_bands != len(bands):
        raise ValueError(
            f"the model maps {model.in_bands} bands to {model.out_bands} but {len(bands)} band names were "
            "given "
            f"({list(bands)}); the EVOLAND contract needs the same bands in and out"
        )
    out_std = (output_standardisation or standardisation).select(bands)
    wrapper = DNModel(model, standardisation.select(bands), out_std)
    return export_dn_model(wrapper, path, opset, tolerance_dn=tolerance_dn, seed=seed)


def export_dn_model(
    wrapper: DNModel,
    path: str | os.PathLike[str],
    opset: int = DEFAULT_OPSET,
    *,
    tolerance_dn: float = DEFAULT_TOLERANCE_DN,
    seed: int = 0,
) -> ExportedPair:
    """Export a :class:`DNModel` (see :func:`export_generator`); verified, atomic, nothing left on failure."""
    onnx_path = check_export_output(path)
    if isinstance(opset, bool) or not isinstance(opset, int) or opset < 7:
        raise ValueError(f"--opset {opset}: expected an ONNX opset >= 7 (default {DEFAULT_OPSET})")
    bands = wrapper.bands
    if wrapper.out_bands != bands:
        raise ValueError(
            f"the model returns bands {list(wrapper.out_bands)} but takes {list(bands)}; the EVOLAND "
            "contract "
            "needs the same bands in and out"
        )
    factor = wrapper.factor
    margin = aligned_margin(wrapper.margin, factor, bands)
    cpu_wrapper = copy.deepcopy(wrapper).to(device="cpu", dtype=torch.float32).eval()
    yaml_path = onnx_path.with_suffix(".yaml")

    # Both files are written under temporary names and renamed once the graph is verified (the sidecar
    # first, then the graph); a failure leaves the previous pair, if any, untouched.
    with atomic_output(yaml_path) as tmp_yaml, atomic_output(onnx_path) as tmp_onnx:
        dummy = _random_dn_tile(len(bands), 32, 32, 1, seed)
        try:
            _export_graph(cpu_wrapper, Path(tmp_onnx), opset, dummy)
        except Exception as exc:
            raise ExportError(
                f"torch.onnx.export failed for {type(wrapper.model).__name__} at opset {opset}: {exc}"
            ) from exc
        check_graph(Path(tmp_onnx), len(bands))
        max_diff = verify_parity(Path(tmp_onnx), cpu_wrapper, seed=seed + 1)
        if not max_diff <= tolerance_dn:
            raise ExportError(
                f"{onnx_path}: ONNX Runtime and torch disagree by {max_diff:.4g} DN on a random DN tile "
                f"(tolerance {tolerance_dn} DN); the export was removed"
            )
        with open(tmp_yaml, "w", encoding="utf-8") as stream:
            yaml.safe_dump(sidecar_mapping(bands, factor, margin, onnx_path.name), stream, sort_keys=True)
    return ExportedPair(onnx_path, yaml_path, bands, factor, margin, opset, max_diff, wrapper.margin)


def check_export_output(
    path: str | os.PathLike[str], checkpoint: str | os.PathLike[str] | None = None
) -> Path:
    """``path`` as the ``.onnx`` file of an export, checked before any work: it ends in ``.onnx``, its folder
    exists, neither it nor its sidecar ``.yaml`` is an existing folder, and neither is the input
    ``checkpoint`` (an export never replaces its model). Raises ``ValueError``/``FileNotFoundError``."""
    onnx_path = Path(path)
    yaml_path = onnx_path.with_suffix(".yaml")
    if onnx_path.is_dir():
        raise ValueError(
            f"export output {onnx_path} is an existing folder; pass the .onnx file to write, e.g. "
            f"--output {onnx_path / 'model.onnx'}"
        )
    if onnx_path.suffix != ".onnx":
        raise ValueError(f"export output {onnx_path}: expected a file name ending in .onnx")
    if not onnx_path.parent.is_dir():
        raise FileNotFoundError(f"export output {onnx_path}: the folder {onnx_path.parent} does not exist")
    if yaml_path.is_dir():
        raise ValueError(
            f"export output {onnx_path}: its sidecar {yaml_path} is an existing folder; choose another name"
        )
    if checkpoint is not None:
        source = Path(checkpoint)
        for written in (onnx_path, yaml_path):
            if written.exists() and source.exists() and os.path.samefile(written, source):
                raise ValueError(
                    f"export output {onnx_path}: it would replace the input checkpoint {source} "
                    f"(writing {written}); choose another --output"
                )
    return onnx_path


def export_checkpoint(
    checkpoint: str | os.PathLike[str],
    output: str | os.PathLike[str] | None = None,
    opset: int = DEFAULT_OPSET,
    *,
    tolerance_dn: float = DEFAULT_TOLERANCE_DN,
) -> ExportedPair:
    """Export the generator of a sisrlib or torchsisr checkpoint (default output: the checkpoint path with
    ``.onnx``).

    The output is checked before the checkpoint is read (:func:`check_export_output`); the checkpoint is read
    safely (``weights_only=True``, see :mod:`sisrlib.checkpoint`), its kind told from its content."""
    target = Path(output) if output is not None else Path(checkpoint).with_suffix(".onnx")
    check_export_output(target, checkpoint)
    wrapper = dn_model_from_any_checkpoint(checkpoint)
    return export_dn_model(wrapper, target, opset, tolerance_dn=tolerance_dn)
