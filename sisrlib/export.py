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

import contextlib
import copy
import math
import os
import tempfile
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from torch import nn

from sisrlib.bands import (
    BAND_RESOLUTION_M,
    BANDS_10M,
    DN_PER_REFLECTANCE,
    Standardisation,
    validate_bands,
)
from sisrlib.bands import standardisation as named_standardisation
from sisrlib.errors import MissingDependencyError, SisrError
from sisrlib.models.base import SRModel

#: Name of the graph input required by the EVOLAND tool.
ONNX_INPUT_NAME = "input"
#: Name of the graph output (the tool takes the first output whatever its name).
ONNX_OUTPUT_NAME = "output"
#: Default ONNX opset (the reference exported with torch 2.5.1's default, 17).
DEFAULT_OPSET = 17
#: Largest ONNX Runtime / torch disagreement accepted by an export, in DN.
DEFAULT_TOLERANCE_DN = 0.5
#: The exact keys of the sidecar yaml.
SIDECAR_KEYS: tuple[str, ...] = ("bands", "factor", "margin", "model")


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


class DNModel(nn.Module):
    """A generator wrapped with its normalisation: ``[B, C, h, w]`` DN → ``[B, C, h·f, w·f]`` DN.

    DN → reflectance (÷10000) → standardised with ``input_standardisation`` → ``model`` → un-standardised with
    ``output_standardisation`` → DN (×10000). Float32 in, float32 out; no clipping, no rounding.
    """

    in_mean: torch.Tensor
    in_std: torch.Tensor
    out_mean: torch.Tensor
    out_std: torch.Tensor

    def __init__(
        self,
        model: SRModel,
        input_standardisation: Standardisation,
        output_standardisation: Standardisation | None = None,
    ) -> None:
        super().__init__()
        out_std = output_standardisation if output_standardisation is not None else input_standardisation
        if len(input_standardisation.bands) != model.in_bands:
            raise ValueError(
                f"the model takes {model.in_bands} input bands but the standardisation has "
                f"{len(input_standardisation.bands)} ({list(input_standardisation.bands)})"
            )
        if len(out_std.bands) != model.out_bands:
            raise ValueError(
                f"the model returns {model.out_bands} bands but the output standardisation has "
                f"{len(out_std.bands)} ({list(out_std.bands)})"
            )
        self.model = model
        self.bands: tuple[str, ...] = tuple(input_standardisation.bands)
        self.out_bands: tuple[str, ...] = tuple(out_std.bands)
        self.register_buffer(
            "in_mean", torch.tensor(input_standardisation.mean, dtype=torch.float32).view(1, -1, 1, 1)
        )
        self.register_buffer(
            "in_std", torch.tensor(input_standardisation.std, dtype=torch.float32).view(1, -1, 1, 1)
        )
        self.register_buffer("out_mean", torch.tensor(out_std.mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("out_std", torch.tensor(out_std.std, dtype=torch.float32).view(1, -1, 1, 1))

    @property
    def factor(self) -> float:
        return float(self.model.factor)

    @property
    def margin(self) -> int:
        return int(self.model.margin)

    def forward(self, dn: torch.Tensor) -> torch.Tensor:
        """``[B, C, h, w]`` DN → ``[B, C, h·f, w·f]`` DN."""
        standardised = (dn / DN_PER_REFLECTANCE - self.in_mean) / self.in_std
        prediction = self.model(standardised)
        return (prediction * self.out_std + self.out_mean) * DN_PER_REFLECTANCE


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


def sidecar_mapping(bands: Sequence[str], factor: float, margin: int, onnx_name: str) -> dict[str, Any]:
    """The sidecar yaml content: exactly ``bands``, ``factor`` (float), ``margin`` (int), ``model``."""
    return {
        "bands": [str(b) for b in bands],
        "factor": float(factor),
        "margin": int(margin),
        "model": onnx_name,
    }


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


def onnx_runtime_session(path: Path, threads: int = 1, use_cuda: bool = False) -> Any:
    """An ONNX Runtime session configured like the EVOLAND tool (threads, deterministic compute, "
    "providers)."""
    try:
        import onnxruntime as ort
    except ImportError as exc:  # pragma: no cover - onnxruntime is a dependency
        raise MissingDependencyError("onnxruntime is required: pip install onnxruntime") from exc
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = threads
    options.use_deterministic_compute = True
    options.log_severity_level = 3
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


def set_default_permissions(path: Path) -> None:
    """Give a mkstemp file (0600) the permissions of an ordinary new file (0666 & ~umask)."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)


def _temp_path(directory: Path, stem: str, suffix: str) -> Path:
    fd, name = tempfile.mkstemp(dir=directory, prefix=f".{stem}.", suffix=f"{suffix}.tmp")
    os.close(fd)
    return Path(name)


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

    tmp_onnx = _temp_path(onnx_path.parent, onnx_path.stem, ".onnx")
    tmp_yaml = _temp_path(onnx_path.parent, onnx_path.stem, ".yaml")
    renamed: list[Path] = []
    try:
        dummy = _random_dn_tile(len(bands), 32, 32, 1, seed)
        try:
            _export_graph(cpu_wrapper, tmp_onnx, opset, dummy)
        except Exception as exc:
            raise ExportError(
                f"torch.onnx.export failed for {type(wrapper.model).__name__} at opset {opset}: {exc}"
            ) from exc
        check_graph(tmp_onnx, len(bands))
        max_diff = verify_parity(tmp_onnx, cpu_wrapper, seed=seed + 1)
        if not max_diff <= tolerance_dn:
            raise ExportError(
                f"{onnx_path}: ONNX Runtime and torch disagree by {max_diff:.4g} DN on a random DN tile "
                f"(tolerance {tolerance_dn} DN); the export was removed"
            )
        with open(tmp_yaml, "w", encoding="utf-8") as stream:
            yaml.safe_dump(sidecar_mapping(bands, factor, margin, onnx_path.name), stream, sort_keys=True)
        set_default_permissions(tmp_onnx)
        set_default_permissions(tmp_yaml)
        os.replace(tmp_onnx, onnx_path)
        renamed.append(onnx_path)
        os.replace(tmp_yaml, yaml_path)
        renamed.append(yaml_path)
    except BaseException:
        for leftover in (tmp_onnx, tmp_yaml, *renamed):
            with contextlib.suppress(FileNotFoundError):
                leftover.unlink()
        raise
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


def dn_model_from_checkpoint(checkpoint: str | os.PathLike[str]) -> DNModel:
    """The exportable generator of a training checkpoint, wrapped with its normalisation (CPU, eval).

    For a joint 10 m + 20 m model only its SISR network is kept (as the reference's export does): it takes the
    10 m bands followed by the 20 m bands, all on the 10 m grid (the caller up-samples the 20 m bands).
    Predictions are un-standardised with the target's statistics (the reference matches one table by band name
    for inputs and targets, so both give the same numbers there).
    """
    from sisrlib.models.joint import JointSuperResolution

    checkpoint = Path(checkpoint)
    if checkpoint.is_dir():
        raise ValueError(f"checkpoint {checkpoint} is a folder; pass its checkpoints/best.ckpt file")
    if not checkpoint.is_file():
        raise FileNotFoundError(f"checkpoint {checkpoint} does not exist")
    loaded = load_checkpoint_generator(checkpoint)
    model: SRModel = loaded.model
    bands = tuple(loaded.input_bands)
    stats_name = loaded.params.training.standardisation
    if isinstance(model, JointSuperResolution):
        if model.lr_to_hr is not None:
            bands = bands + tuple(loaded.lr_bands)
        model = model.sisr
    target_bands = tuple(loaded.target_bands)
    if target_bands != bands:
        raise ExportError(
            f"{checkpoint}: the generator maps bands {list(bands)} to {list(target_bands)}; the EVOLAND "
            "contract "
            "needs a model that returns the bands it takes, in the same order"
        )
    stats = named_standardisation(stats_name)
    return DNModel(model, stats.select(bands), loaded.target_standardisation.select(bands)).eval()


def export_checkpoint(
    checkpoint: str | os.PathLike[str],
    output: str | os.PathLike[str] | None = None,
    opset: int = DEFAULT_OPSET,
    *,
    tolerance_dn: float = DEFAULT_TOLERANCE_DN,
) -> ExportedPair:
    """Export the generator of a training checkpoint (default output: the checkpoint path with ``.onnx``).

    The output is checked before the checkpoint is read (:func:`check_export_output`); the checkpoint is read
    safely (``weights_only=True``, see :mod:`sisrlib.training.checkpoint`)."""
    target = Path(output) if output is not None else Path(checkpoint).with_suffix(".onnx")
    check_export_output(target, checkpoint)
    wrapper = dn_model_from_checkpoint(checkpoint)
    return export_dn_model(wrapper, target, opset, tolerance_dn=tolerance_dn)


def load_checkpoint_generator(checkpoint: Path) -> Any:
    """``sisrlib.training.checkpoint.load_generator(checkpoint)`` with a clear error when unavailable."""
    try:
        from sisrlib.training.checkpoint import load_generator
    except ImportError as exc:
        raise MissingDependencyError(
            f"cannot read {checkpoint}: sisrlib.training.checkpoint.load_generator is not available ({exc})"
        ) from exc
    return load_generator(checkpoint, map_location="cpu")
