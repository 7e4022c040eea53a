"""Import the checkpoints of torchsisr (CESBIO's reference code of hal-04723225) onto this library's networks.

torchsisr writes Lightning checkpoints of its ``DoubleSISRTrainingModule``: a dictionary with ``state_dict``,
``loops``, ``callbacks``, ``optimizer_states``, ... and **no** ``hyper_parameters``. Its ``state_dict`` holds

* ``mean``, ``std``: the standardisation (reflectance units) of ``training_module.bands``, in that order;
* ``generator.sisr_model.*``: the SR network (``ESRGANGenerator`` of the paper's runs, ``CARN`` of the
  EVOLAND model and of the registration pre-training runs, where it is untrained);
* ``registration_module.*``: the flow network ``UnetOpticalFlowEstimation`` (registration pre-training runs
  and every paper SR run, which carries a copy of its pre-trained network);
* discriminator, loss and metric networks, simulation noise: ignored here.

The file is read by :func:`sisrlib.safe_load.load_weights_only` (``torch.load(weights_only=True,
map_location="cpu")``, the loader of our own checkpoints too): nothing in it runs, and a file that needs a
Python global is refused (:class:`~sisrlib.errors.UnsafeCheckpointError`). Neither Lightning nor torchsisr
code is imported.

What the weights do not say is taken, in this order, from an explicit argument, from the run configuration
hydra saved beside the checkpoint (``.hydra/config.yaml``, read with ``yaml.safe_load``; only plain
``${a.b}`` interpolations are followed, environment variables never), or from the tensor shapes; each
imported object carries a ``provenance`` mapping (item → where it came from), also logged at INFO level:

* architecture sizes: the tensor shapes (always; the configuration, when present, must agree);
* factor: argument, else ``upsampling_factor`` of the configuration, else the shapes (2 per ESRGAN upsampling
  stage; the pixel-shuffle ratio of a CARN);
* band names: argument, else ``training_module.bands``; never guessed (refused when unknown);
* standardisation: always the checkpoint's ``mean``/``std`` buffers (what the network was trained with; a
  configuration that disagrees is reported, not used);
* 20 m branch (joint 10 m + 20 m model): argument, else ``model.model.lr_to_hr_model`` of the configuration
  (absent = torchsisr's default bicubic ×2, null = none), else the bands (10 m and 20 m bands together can
  only have been trained through the bicubic branch);
* flow network ``max_offset`` (our ``max_range``): argument, else ``training_module.config.registration``;
  refused when unknown (it scales the output: 10 px for Sen2Venµs, 20 for WorldStrat);
  ``registration_channel``: argument, else the configuration, else our default 2 (said so).

The flow network is built with ``input_normalisation="reference_rows"`` (torchsisr normalises each image row).
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
import yaml
from torch import nn

from sisrlib.bands import BAND_RESOLUTION_M, Standardisation, validate_bands
from sisrlib.errors import CheckpointError
from sisrlib.models.base import SRModel
from sisrlib.models.bicubic import BicubicInterpolation
from sisrlib.models.carn import CARN
from sisrlib.models.esrgan import ESRGANGenerator
from sisrlib.models.geometry import rounded_factor
from sisrlib.models.joint import JointSuperResolution
from sisrlib.registration.network import FlowEstimator, freeze
from sisrlib.safe_load import load_weights_only

LOGGER = logging.getLogger(__name__)

#: Prefix of the SR network's weights in a torchsisr ``state_dict``.
GENERATOR_PREFIX = "generator.sisr_model."
#: Prefix of the flow network's weights.
REGISTRATION_PREFIX = "registration_module."
#: Where hydra writes the run configuration, relative to the checkpoint's folder.
RUN_CONFIG = Path(".hydra") / "config.yaml"

ConfigArg = str | Path | Mapping[str, Any] | Literal["auto"] | None
LrToHr = Literal["bicubic", "none"]

_INTERPOLATION = re.compile(r"^\$\{([A-Za-z_][\w.]*)\}$")
_TOL = 1e-6


@dataclass
class ImportedGenerator:
    """A torchsisr generator mapped onto our modules, in eval mode on the CPU, standardised units.

    ``model``: ``ESRGANGenerator`` / ``CARN`` (``model(x)``) or, for the joint 10 m + 20 m model, a
    ``JointSuperResolution`` (``model(hr, lr)``: ``hr`` ``[B, len(hr_bands), h, w]``, ``lr``
    ``[B, len(lr_bands), h/2, w/2]`` → ``[B, len(bands), h·f, w·f]``). ``sisr``: the bare network (all
    ``bands`` on one grid), what torchsisr exports to ONNX. ``standardisation``: the checkpoint's statistics
    of ``bands`` (reflectance). ``provenance``: item → where its value came from.
    """

    model: SRModel
    sisr: SRModel
    kind: Literal["esrgan", "carn"]
    bands: tuple[str, ...]
    hr_bands: tuple[str, ...]
    lr_bands: tuple[str, ...]
    factor: float
    standardisation: Standardisation
    checkpoint: Path
    global_step: int
    provenance: dict[str, str] = field(default_factory=dict)

    @property
    def margin(self) -> int:
        """Prediction margin (output px) of ``model``, torchsisr's formula (ESRGAN 66/110/130, CARN 41)."""
        return int(self.model.margin)


@dataclass
class ImportedRegistration:
    """A torchsisr flow network mapped onto :class:`FlowEstimator` (row-wise input normalisation), frozen.

    ``net(left [B, H, W], right [B, H, W])`` → flow ``[B, 2, H, W]`` in pixels of that grid (LR px), channel 0
    along columns; ``warp(left, flow) ≈ right``. ``provenance``: item → where each value came from.

    ``max_range`` (LR px, torchsisr's ``max_offset``), ``channel`` (index of the band the flow is estimated
    on), and the UNet sizes ``depth``, ``start_filters``, ``min_skip_depth``, ``features``.
    """

    net: FlowEstimator
    max_range: float
    channel: int
    depth: int
    start_filters: int
    min_skip_depth: int
    features: int
    checkpoint: Path
    global_step: int
    provenance: dict[str, str] = field(default_factory=dict)

    def registration_params(self, **overrides: Any) -> Any:
        """The matching :class:`sisrlib.training.params.RegistrationParams` (``input_normalisation:
        reference_rows``), with ``overrides``; imports :mod:`sisrlib.training` (and so Lightning)."""
        from sisrlib.training.params import RegistrationParams

        values: dict[str, Any] = {
            "channel": self.channel,
            "max_range": self.max_range,
            "depth": self.depth,
            "start_filters": self.start_filters,
            "min_skip_depth": self.min_skip_depth,
            "features": self.features,
            "input_normalisation": "reference_rows",
        }
        values.update(overrides)
        return RegistrationParams(**values)


# --------------------------------------------------------------------------------------------- reading
def _refuse(path: Path, what: str, fix: str) -> CheckpointError:
    return CheckpointError(f"torchsisr checkpoint {path}: {what}; {fix}")


def _safe_load(path: Path) -> dict[str, Any]:
    """``torch.load(path, map_location="cpu", weights_only=True)`` with clear refusals."""
    return load_weights_only(
        path,
        "cpu",
        what="torchsisr checkpoint",
        unreadable_fix="download it again or fix the path",
        unsafe_fix=(
            "torchsisr's checkpoints hold only tensors and plain values, so this file is not one or it was "
            "modified. Use the file as torchsisr's training wrote it"
        ),
        expected="a Lightning checkpoint with a state_dict",
    )


def _check_finite(state: Mapping[str, torch.Tensor], path: Path, prefix: str) -> None:
    for name, tensor in state.items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            bad = int((~torch.isfinite(tensor)).sum())
            raise _refuse(
                path,
                f"state_dict[{prefix + name!r}] has {bad} non-finite value(s) of {tensor.numel()}",
                "the training diverged or the file was damaged; use another checkpoint of the run",
            )


def read_torchsisr_checkpoint(path: str | Path) -> dict[str, Any]:
    """The checkpoint dictionary of a torchsisr run, read safely and checked for its layout.

    Refused with :class:`CheckpointError` (naming the file and the key): a file that is not a torch
    checkpoint, a sisrlib checkpoint (it has ``hyper_parameters``), no ``state_dict`` or one holding
    non-tensors, no ``mean``/``std``. :class:`UnsafeCheckpointError`: a file that needs Python objects (never
    unpickled). ``FileNotFoundError``: a missing file.
    """
    p = Path(path)
    if p.is_dir():
        raise _refuse(p, "is a folder", "pass one of its .ckpt files (e.g. the *_val_total_loss=*.ckpt one)")
    ckpt = _safe_load(p)
    hp = ckpt.get("hyper_parameters")
    if isinstance(hp, Mapping) and ("params" in hp or "input_bands" in hp):
        raise _refuse(
            p,
            "it is a sisrlib training checkpoint (it has hyper_parameters with 'params'/'input_bands'), "
            "not a torchsisr one",
            "use it directly: sisr evaluate / sisr infer / sisr export take it as it is",
        )
    state = ckpt.get("state_dict")
    if not isinstance(state, Mapping):
        raise _refuse(
            p,
            f"no 'state_dict' mapping (top-level keys {sorted(map(str, ckpt))[:8]})",
            "expected a Lightning checkpoint written by torchsisr's training (bin/train.py)",
        )
    for key, value in state.items():
        if not isinstance(key, str) or not isinstance(value, torch.Tensor):
            raise _refuse(
                p,
                f"state_dict[{key!r}] is a {type(value).__name__}, expected a tensor",
                "the file was damaged",
            )
    for key in ("mean", "std"):
        if key not in state:
            raise _refuse(
                p,
                f"state_dict has no {key!r} (the standardisation buffers every torchsisr training module "
                f"holds; found {len(state)} keys, e.g. {list(state)[:3]})",
                "it is not a torchsisr DoubleSISRTrainingModule checkpoint, or it was stripped",
            )
    step = ckpt.get("global_step", 0)
    if isinstance(step, bool) or not isinstance(step, int) or step < 0:
        raise _refuse(p, f"global_step is {step!r}, expected a non-negative integer", "the file was damaged")
    return ckpt


# ------------------------------------------------------------------------------------- run configuration
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


def _lookup(cfg: Mapping[str, Any], dotted: str, depth: int = 0) -> Any:
    """The node at ``dotted`` in ``cfg`` (``_MISSING`` when absent), following ``${a.b}`` interpolations."""
    if depth > 16:
        return _MISSING
    node: Any = cfg
    for part in dotted.split("."):
        node = _follow(cfg, node, depth)
        if not isinstance(node, Mapping) or part not in node:
            return _MISSING
        node = node[part]
    return _follow(cfg, node, depth)


def _follow(cfg: Mapping[str, Any], node: Any, depth: int) -> Any:
    if isinstance(node, str):
        match = _INTERPOLATION.match(node.strip())
        if match:
            return _lookup(cfg, match.group(1), depth + 1)
    return node


class _Missing:
    def __repr__(self) -> str:
        return "<missing>"


_MISSING: Any = _Missing()


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


# ------------------------------------------------------------------------------------------- state helpers
def _sub(state: Mapping[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}


def _indices(keys: list[str], pattern: str) -> list[int]:
    regex = re.compile(pattern)
    return sorted({int(m.group(1)) for k in keys if (m := regex.match(k))})


def _need(state: Mapping[str, torch.Tensor], key: str, path: Path, prefix: str) -> torch.Tensor:
    if key not in state:
        raise _refuse(
            path,
            f"state_dict has no {prefix + key!r}, which a torchsisr network of this kind holds",
            "the file is incomplete or was edited; use the checkpoint as the training wrote it",
        )
    return state[key]


class _WeightMap:
    """Our state-dict keys filled from a torchsisr state (keys without ``prefix``), keeping track of which
    source keys were used, so that loading can refuse both unfilled weights and unexpected source keys."""

    def __init__(self, src: Mapping[str, torch.Tensor], path: Path, prefix: str) -> None:
        self.src, self.path, self.prefix = src, path, prefix
        self.mapped: dict[str, torch.Tensor] = {}
        self.used: set[str] = set()

    def take(self, ours: str, theirs: str) -> None:
        """Our ``ours.weight``/``.bias`` from their ``theirs.weight``/``.bias`` (refused when absent)."""
        for suffix in ("weight", "bias"):
            key = f"{theirs}.{suffix}"
            self.mapped[f"{ours}.{suffix}"] = _need(self.src, key, self.path, self.prefix)
            self.used.add(key)

    def skip(self, theirs: str) -> None:
        """A source key deliberately not mapped (e.g. a constant residual scale)."""
        self.used.add(theirs)

    def load_into(self, net: nn.Module) -> None:
        """Load the mapped tensors into ``net`` strictly; every source key must have been used."""
        expected = net.state_dict()
        missing = [k for k in expected if k not in self.mapped]
        shapes = [
            f"{k}: checkpoint {list(self.mapped[k].shape)}, network {list(v.shape)}"
            for k, v in expected.items()
            if k in self.mapped and self.mapped[k].shape != v.shape
        ]
        unused = [self.prefix + k for k in self.src if k not in self.used]
        if missing or shapes or unused:
            found = (("unfilled", missing), ("shape mismatch", shapes), ("unexpected", unused))
            parts = [
                f"{len(items)} {label} ({'; '.join(items[:3])}{' ...' if len(items) > 3 else ''})"
                for label, items in found
                if items
            ]
            raise _refuse(
                self.path,
                f"the {self.prefix}* weights do not map onto the network inferred from their shapes: "
                f"{', '.join(parts)}",
                "the file was edited or comes from another version of torchsisr",
            )
        net.load_state_dict({k: v.to(torch.float32) for k, v in self.mapped.items()})


# ------------------------------------------------------------------------------------------------ ESRGAN
def _esrgan(
    src: dict[str, torch.Tensor], path: Path, factor: float | None, prov: dict[str, str], cfg_gen: Any
) -> tuple[ESRGANGenerator, float]:
    keys = list(src)
    first = _need(src, "encoder.blocks.0.weight", path, GENERATOR_PREFIX)
    latent, in_bands = int(first.shape[0]), int(first.shape[1])
    blocks = _indices(keys, r"^encoder\.blocks\.(\d+)\.scale$")
    n = len(blocks)
    if blocks != list(range(1, n + 1)):
        raise _refuse(path, f"RRDB indices {blocks} are not 1..N", "the file was edited")
    growth = (
        int(
            _need(
                src, "encoder.blocks.1.module.block_0.module.module.0.conv.weight", path, GENERATOR_PREFIX
            ).shape[0]
        )
        if n
        else 32
    )
    out_bands = int(_need(src, "decoder.blocks.conv.2.weight", path, GENERATOR_PREFIX).shape[0])
    n_up = len(_indices(keys, r"^decoder\.blocks\.upsampling_(\d+)\."))
    scales = [float(v) for k, v in src.items() if k.endswith("scale") and v.dim() == 0]
    scaling = scales[0] if scales else 0.2
    if any(abs(s - scaling) > _TOL for s in scales):
        raise _refuse(
            path,
            f"its RRDB/dense-block residual scalings differ ({sorted(set(scales))[:4]}); this library's "
            "ESRGANGenerator uses one value for all",
            "such a model cannot be imported",
        )
    weights_factor = float(2**n_up)
    prov["architecture"] = (
        f"tensor shapes: ESRGAN {n} RRDB, latent {latent}, growth {growth}, {in_bands} → {out_bands} bands, "
        f"{n_up} upsampling stage(s), residual scaling {scaling:g}"
    )
    if isinstance(cfg_gen, Mapping):
        expected = {
            "nb_bands": in_bands,
            "latent_size": latent,
            "growth_channels": growth,
            "num_basic_blocks": n,
        }
        _agree(path, cfg_gen, expected, "model.model.sisr_model")
    chosen = weights_factor if factor is None else factor
    if rounded_factor(chosen, 2) != weights_factor:
        raise _refuse(
            path,
            f"factor {chosen:g} does not fit its {n_up} ×2 upsampling stage(s) (×{weights_factor:g})",
            "pass the factor the model was trained for, or fix the run configuration",
        )
    net = ESRGANGenerator(
        in_bands,
        factor=chosen,
        out_bands=out_bands,
        num_blocks=n,
        latent_size=latent,
        growth_channels=growth,
        residual_scaling=scaling,
    )
    weights = _WeightMap(src, path, GENERATOR_PREFIX)
    take = weights.take

    take("first_conv", "encoder.blocks.0")
    for i in range(n):
        weights.skip(f"encoder.blocks.{i + 1}.scale")
        for j in range(3):
            weights.skip(f"encoder.blocks.{i + 1}.module.block_{j}.scale")
            for k in range(5):
                take(
                    f"trunk.{i}.blocks.{j}.convs.{k}",
                    f"encoder.blocks.{i + 1}.module.block_{j}.module.module.{k}.conv",
                )
    take("trunk_conv", f"encoder.blocks.{n + 1}")
    for u in range(n_up):
        take(f"upsampling.{u}.conv", f"decoder.blocks.upsampling_{u}.block.0")
    take("hr_conv", "decoder.blocks.conv.0")
    take("last_conv", "decoder.blocks.conv.2")
    weights.load_into(net)
    return net, chosen


# -------------------------------------------------------------------------------------------------- CARN
def _carn(
    src: dict[str, torch.Tensor], path: Path, factor: float | None, prov: dict[str, str], cfg_gen: Any
) -> tuple[CARN, float]:
    keys = list(src)
    conv_in = _need(src, "input_conv.weight", path, GENERATOR_PREFIX)
    features, in_bands, kernel = int(conv_in.shape[0]), int(conv_in.shape[1]), int(conv_in.shape[2])
    out_conv = _need(src, "output_conv2.weight", path, GENERATOR_PREFIX)
    out_bands, per_factor = int(out_conv.shape[0]), int(out_conv.shape[1])
    ratio = math.isqrt(features // per_factor) if per_factor else 0
    if per_factor < 1 or ratio * ratio * per_factor != features:
        raise _refuse(
            path, f"input_conv has {features} features, not a square multiple of {per_factor}", "edited file"
        )
    n_casc = len(_indices(keys, r"^cascading_blocks\.(\d+)\."))
    n_eres = len(_indices(keys, r"^cascading_blocks\.0\.residual_1d_conv\.(\d+)\."))
    groups = features // int(
        _need(src, "cascading_blocks.0.residual_blocks.0.net.conv_1.weight", path, GENERATOR_PREFIX).shape[1]
    )

    def same_as_first(c: int, e: int) -> bool:
        names = ("net.conv_1", "net.conv_2", "single_conv")
        return all(
            torch.equal(
                _need(src, f"cascading_blocks.{c}.residual_blocks.{e}.{m}.{s}", path, GENERATOR_PREFIX),
                src[f"cascading_blocks.{c}.residual_blocks.0.{m}.{s}"],
            )
            for m in names
            for s in ("weight", "bias")
        )

    shared = all(same_as_first(c, e) for c in range(n_casc) for e in range(1, n_eres))
    if isinstance(cfg_gen, Mapping):
        inner = cfg_gen.get("config", cfg_gen)
        if isinstance(inner, Mapping):
            _agree(
                path,
                inner,
                {
                    "nb_bands": in_bands,
                    "groups": groups,
                    "nb_features_per_factor": per_factor,
                    "nb_cascading_blocks": n_casc,
                    "nb_eres_blocks_per_cascading_block": n_eres,
                    "kernel_size": kernel,
                },
                "model.model.sisr_model.config",
            )
    prov["architecture"] = (
        f"tensor shapes: CARN {n_casc} cascading × {n_eres} EResBlocks, {features} features ({per_factor} "
        f"per factor, pixel shuffle ×{ratio}), groups {groups}, kernel {kernel}, "
        f"{in_bands} → {out_bands} bands, "
        f"{'shared' if shared else 'distinct'} EResBlock weights"
    )
    chosen = float(ratio) if factor is None else factor
    if 2 * math.ceil(chosen / 2) != ratio:
        raise _refuse(
            path,
            f"factor {chosen:g} does not fit its pixel shuffle ×{ratio}",
            "pass the factor the model was trained for, or fix the run configuration",
        )
    net = CARN(
        in_bands,
        factor=chosen,
        out_bands=out_bands,
        groups=groups,
        shared_weights=shared,
        features_per_factor=per_factor,
        n_cascading=n_casc,
        n_eres=n_eres,
        kernel_size=kernel,
    )
    weights = _WeightMap(src, path, GENERATOR_PREFIX)
    take = weights.take

    take("input_conv", "input_conv")
    for c in range(n_casc):
        for e in range(n_eres):
            ours_e = 0 if shared else e
            for ours, theirs in (
                ("conv1", "net.conv_1"),
                ("conv2", "net.conv_2"),
                ("pointwise", "single_conv"),
            ):
                take(
                    f"cascading_blocks.{c}.eres_blocks.{ours_e}.{ours}",
                    f"cascading_blocks.{c}.residual_blocks.{e}.{theirs}",
                )
            take(f"cascading_blocks.{c}.pointwise.{e}", f"cascading_blocks.{c}.residual_1d_conv.{e}")
        take(f"pointwise.{c}", f"residual_1d_conv.{c}")
    take("output_conv1", "output_conv1")
    take("output_conv2", "output_conv2")
    weights.load_into(net)
    return net, chosen


def _agree(path: Path, cfg: Mapping[str, Any], expected: Mapping[str, Any], where: str) -> None:
    """Refuse a run configuration whose architecture values differ from the tensor shapes."""
    wrong = {k: (cfg[k], v) for k, v in expected.items() if k in cfg and cfg[k] != v}
    if wrong:
        detail = ", ".join(f"{k}: config {c!r}, weights {w!r}" for k, (c, w) in wrong.items())
        raise _refuse(
            path,
            f"its run configuration ({where}) does not describe these weights ({detail})",
            "the .hydra/config.yaml beside it belongs to another run: pass config=None or the right file",
        )


# ------------------------------------------------------------------------------------------- generator
def _is_pretraining(
    ckpt: Mapping[str, Any], cfg: Mapping[str, Any] | None, n_generator: int
) -> tuple[bool, str]:
    """Whether a checkpoint is a registration pre-training run (its generator is untrained)."""
    if cfg is not None:
        flag = _lookup(cfg, "training_module.config.pretrain_registration")
        if flag is not _MISSING:
            return bool(flag), "training_module.config.pretrain_registration of the run configuration"
    states = ckpt.get("optimizer_states")
    if isinstance(states, list) and states and isinstance(states[0], Mapping):
        indices = [i for i in states[0].get("state", {}) if isinstance(i, int)]
        if indices:
            untouched = min(indices) >= n_generator
            return (
                untouched,
                "the first optimizer's state (it covers no generator parameter)"
                if untouched
                else ("the first optimizer's state (it covers generator parameters)"),
            )
    return False, "no run configuration or optimizer state says so"


def _unique_count(tensors: Mapping[str, torch.Tensor]) -> int:
    """Number of distinct parameters (aliased CARN weights counted once; 0-d ESRGAN scales included)."""
    seen: set[tuple[int, int, tuple[int, ...]]] = set()
    for t in tensors.values():
        seen.add((t.untyped_storage().data_ptr(), int(t.storage_offset()), tuple(t.shape)))
    return len(seen)


def import_generator(
    path: str | Path,
    *,
    config: ConfigArg = "auto",
    bands: list[str] | tuple[str, ...] | None = None,
    factor: float | None = None,
    lr_to_hr: LrToHr | None = None,
    allow_untrained: bool = False,
) -> ImportedGenerator:
    """The SR network of a torchsisr checkpoint as our module (eval mode, CPU, standardised units).

    Args:
        path: the ``.ckpt`` file.
        config: the run configuration (:func:`load_run_config`; default: ``.hydra/config.yaml`` beside it).
        bands: band names of the standardisation / input order (default: ``training_module.bands``).
        factor: SR factor (default: the configuration's ``upsampling_factor``, else the tensor shapes).
        lr_to_hr: ``bicubic`` (joint 10 m + 20 m model) or ``none`` (default: configuration, else bands).
        allow_untrained: import the (untrained) generator of a registration pre-training run anyway.

    Raises :class:`CheckpointError` naming the file, key and fix (see :func:`read_torchsisr_checkpoint`),
    when bands are unknown or the configuration contradicts the weights.
    """
    p = Path(path)
    ckpt = read_torchsisr_checkpoint(p)
    state: Mapping[str, torch.Tensor] = ckpt["state_dict"]
    cfg, cfg_where = load_run_config(p, config)
    prov: dict[str, str] = {"run configuration": cfg_where}
    src = _sub(state, GENERATOR_PREFIX)
    if not src:
        raise _refuse(
            p,
            f"state_dict holds no {GENERATOR_PREFIX}* weights",
            "it holds no torchsisr SR network (a registration-only file? use import_registration)",
        )
    pretraining, why = _is_pretraining(ckpt, cfg, _unique_count(src))
    if pretraining and not allow_untrained:
        raise _refuse(
            p,
            f"it is a registration pre-training run ({why}): its generator was never trained",
            "import its flow network with import_registration, or pass allow_untrained=True to get the "
            "untrained generator anyway",
        )
    cfg_gen = _lookup(cfg, "model.model.sisr_model") if cfg is not None else _MISSING
    cfg_factor = None
    if isinstance(cfg_gen, Mapping):
        inner = cfg_gen.get("config", cfg_gen)
        cfg_factor = _number(inner.get("upsampling_factor")) if isinstance(inner, Mapping) else None
    if factor is not None:
        prov["factor"] = "argument factor"
        chosen_factor: float | None = float(factor)
    elif cfg_factor is not None:
        prov["factor"] = f"{cfg_where}: model.model.sisr_model upsampling_factor"
        chosen_factor = cfg_factor
    else:
        prov["factor"] = "tensor shapes (2 per ESRGAN upsampling stage / the CARN pixel-shuffle ratio)"
        chosen_factor = None

    if "encoder.blocks.0.weight" in src:
        kind: Literal["esrgan", "carn"] = "esrgan"
        sisr: SRModel
        sisr, final_factor = _esrgan(src, p, chosen_factor, prov, cfg_gen)
    elif "input_conv.weight" in src:
        kind = "carn"
        sisr, final_factor = _carn(src, p, chosen_factor, prov, cfg_gen)
    else:
        raise _refuse(
            p,
            f"its {GENERATOR_PREFIX}* weights are neither an ESRGANGenerator (encoder.blocks.0.weight) nor a "
            f"CARN (input_conv.weight); found e.g. {list(src)[:3]}",
            "only torchsisr's ESRGAN and CARN generators can be imported",
        )
    _check_finite(src, p, GENERATOR_PREFIX)
    target = str(cfg_gen.get("_target_", "")) if isinstance(cfg_gen, Mapping) else ""
    expected_class = "ESRGANGenerator" if kind == "esrgan" else "CARN"
    if target and target.rsplit(".", 1)[-1] != expected_class:
        raise _refuse(
            p,
            f"its run configuration ({cfg_where}) does not describe these weights (model.model.sisr_model is "
            f"{target}, the weights are a {expected_class})",
            "the .hydra/config.yaml beside it belongs to another run: pass config=None or the right file",
        )

    # bands and standardisation
    if bands is not None:
        names = validate_bands(bands, where="import_generator bands")
        prov["bands"] = "argument bands"
    else:
        cfg_bands = _lookup(cfg, "training_module.bands") if cfg is not None else _MISSING
        if not isinstance(cfg_bands, list) or not all(isinstance(b, str) for b in cfg_bands):
            raise _refuse(
                p,
                "the band names are not stored in a torchsisr checkpoint and no run configuration gives them "
                f"({cfg_where}; training_module.bands: {cfg_bands!r})",
                "pass bands=[...] in the order of the standardisation (e.g. B2 B3 B4 B8), or the run's "
                ".hydra/config.yaml",
            )
        names = validate_bands(cfg_bands, where=f"{cfg_where}: training_module.bands")
        prov["bands"] = f"{cfg_where}: training_module.bands"
    mean, std = state["mean"].double().flatten().tolist(), state["std"].double().flatten().tolist()
    if not len(mean) == len(std) == len(names) == sisr.in_bands:
        raise _refuse(
            p,
            f"state_dict['mean'] has {len(mean)} values, ['std'] {len(std)}, the network takes "
            f"{sisr.in_bands} bands, but {len(names)} band names were found ({prov['bands']}: {list(names)})",
            "pass the bands the model was trained with",
        )
    if sisr.out_bands != sisr.in_bands:
        raise _refuse(
            p,
            f"its network maps {sisr.in_bands} bands to {sisr.out_bands}",
            "torchsisr generators return the bands they take; the file was edited",
        )
    try:
        stats = Standardisation(tuple(names), tuple(mean), tuple(std))
    except ValueError as exc:
        raise _refuse(p, f"state_dict['mean'/'std']: {exc}", "the file was damaged") from exc
    prov["standardisation"] = "checkpoint state_dict['mean'], ['std'] (reflectance)"
    if cfg is not None:
        cfg_std = _lookup(cfg, "training_module.standardization_parameters")
        if isinstance(cfg_std, Mapping) and isinstance(cfg_std.get("mean"), list):
            try:
                same = (
                    cfg_std.get("bands") == list(names)
                    and all(abs(float(a) - b) <= 1e-6 for a, b in zip(cfg_std["mean"], mean, strict=True))
                    and all(abs(float(a) - b) <= 1e-6 for a, b in zip(cfg_std["std"], std, strict=True))
                )
            except (TypeError, ValueError):
                same = False
            if not same:
                prov["standardisation"] += (
                    f" (the run configuration's standardization_parameters differ: {cfg_where}; not used)"
                )

    # joint 10 m + 20 m model
    resolutions = [BAND_RESOLUTION_M[b] for b in names]
    if lr_to_hr is not None:
        joint = lr_to_hr == "bicubic"
        prov["lr_to_hr"] = f"argument lr_to_hr={lr_to_hr!r}"
    elif cfg is not None and isinstance(_lookup(cfg, "model.model"), Mapping):
        node = _lookup(cfg, "model.model.lr_to_hr_model")
        if node is _MISSING:
            joint = True
            prov["lr_to_hr"] = (
                f"{cfg_where}: model.model has no lr_to_hr_model (torchsisr's default: bicubic ×2)"
            )
        elif node is None:
            joint = False
            prov["lr_to_hr"] = f"{cfg_where}: model.model.lr_to_hr_model is null"
        elif isinstance(node, Mapping) and str(node.get("_target_", "")).endswith("BicubicInterpolation"):
            joint = True
            prov["lr_to_hr"] = f"{cfg_where}: model.model.lr_to_hr_model is BicubicInterpolation"
        else:
            raise _refuse(
                p,
                f"its run configuration's model.model.lr_to_hr_model is {node!r}; only BicubicInterpolation "
                "or null can be imported",
                "pass lr_to_hr='bicubic' or 'none' if you know better",
            )
    else:
        joint = len(set(resolutions)) > 1
        prov["lr_to_hr"] = (
            "the bands (10 m and 20 m bands together go through torchsisr's bicubic ×2 branch)"
            if joint
            else "the bands (one resolution: no 20 m branch)"
        )
    if joint and len(set(resolutions)) == 1:
        joint = False
        prov["lr_to_hr"] += "; unused: all bands have one resolution, there is no 20 m input"
    if joint:
        lr_start = resolutions.index(max(resolutions)) if len(set(resolutions)) > 1 else len(names)
        hr_bands, lr_bands = tuple(names[:lr_start]), tuple(names[lr_start:])
        if (
            not hr_bands
            or not lr_bands
            or any(r != resolutions[0] for r in resolutions[:lr_start])
            or any(r != resolutions[-1] for r in resolutions[lr_start:])
        ):
            raise _refuse(
                p,
                f"a joint 10 m + 20 m model needs its 10 m bands first, then its 20 m bands; found "
                f"{list(names)}",
                "pass the bands in the model's order, or lr_to_hr='none'",
            )
        model: SRModel = JointSuperResolution(sisr, BicubicInterpolation(len(lr_bands), 2.0))
    else:
        hr_bands, lr_bands = tuple(names), ()
        model = sisr
    model.eval()
    imported = ImportedGenerator(
        model=model,
        sisr=sisr,
        kind=kind,
        bands=tuple(names),
        hr_bands=hr_bands,
        lr_bands=lr_bands,
        factor=float(final_factor),
        standardisation=stats,
        checkpoint=p,
        global_step=int(ckpt.get("global_step", 0)),
        provenance=prov,
    )
    if pretraining:
        prov["warning"] = "untrained generator of a registration pre-training run (allow_untrained=True)"
    for item, where in prov.items():
        LOGGER.info("%s: %s from %s", p.name, item, where)
    return imported


def imported_dn_model(imported: ImportedGenerator) -> Any:
    """The DN-in/DN-out model of an imported generator, as torchsisr's ONNX export builds it: ``/10000``,
    standardisation, the bare network (a joint model's 10 m then 20 m bands, all on the 10 m grid),
    un-standardisation, ``×10000``. ``[B, C, h, w]`` DN → ``[B, C, h·f, w·f]`` DN (float32); a
    :class:`sisrlib.export.DNModel` in eval mode, ready for :func:`sisrlib.export.export_dn_model`."""
    from sisrlib.export import DNModel

    return DNModel(imported.sisr, imported.standardisation, imported.standardisation).eval()


# ----------------------------------------------------------------------------------------- registration
def import_registration(
    path: str | Path,
    *,
    config: ConfigArg = "auto",
    max_range: float | None = None,
    channel: int | None = None,
) -> ImportedRegistration:
    """The flow network (``registration_module.*``) of a torchsisr checkpoint as a frozen
    :class:`FlowEstimator` with torchsisr's row-wise input normalisation.

    Args:
        path: a registration pre-training or a paper SR run checkpoint.
        config: the run configuration (default: ``.hydra/config.yaml`` beside the file).
        max_range: the network's ``max_offset`` (LR px; 10 Sen2Venµs, 20 WorldStrat); default: configuration.
        channel: index of the band the flow is estimated on; default: configuration, else 2.
    """
    p = Path(path)
    ckpt = read_torchsisr_checkpoint(p)
    state: Mapping[str, torch.Tensor] = ckpt["state_dict"]
    cfg, cfg_where = load_run_config(p, config)
    prov: dict[str, str] = {"run configuration": cfg_where}
    src = _sub(state, REGISTRATION_PREFIX)
    if not src:
        raise _refuse(
            p,
            f"state_dict holds no {REGISTRATION_PREFIX}* weights (an EVOLAND run, or the flow network was "
            "stripped)",
            "use a registration pre-training checkpoint or a paper SR run checkpoint",
        )
    keys = list(src)
    depth = len(_indices(keys, r"^unet\.down_convs\.(\d+)\."))
    start = int(_need(src, "unet.down_convs.0.conv1.weight", p, REGISTRATION_PREFIX).shape[0])
    features = int(_need(src, "unet.conv_final.weight", p, REGISTRATION_PREFIX).shape[0])
    skips = []
    for i in range(depth - 1):
        w = _need(src, f"unet.up_convs.{i}.conv1.weight", p, REGISTRATION_PREFIX)
        skips.append(int(w.shape[1]) == 2 * int(w.shape[0]))
    min_skip = skips.index(True) if True in skips else max(depth - 1, 0)
    if skips != [i >= min_skip for i in range(depth - 1)]:
        raise _refuse(p, f"its UNet skips {skips} are not those of a min_skip_depth", "edited file")
    cfg_reg = _lookup(cfg, "training_module.config.registration") if cfg is not None else _MISSING
    if isinstance(cfg_reg, Mapping):
        _agree(
            p,
            cfg_reg,
            {"depth": depth, "min_skip_depth": min_skip, "nb_features": start},
            "training_module.config.registration",
        )
    prov["architecture"] = (
        f"tensor shapes: UNet depth {depth}, start filters {start}, min_skip_depth {min_skip}, {features} "
        "output features"
    )
    cfg_range = _number(cfg_reg.get("max_offset")) if isinstance(cfg_reg, Mapping) else None
    if max_range is not None:
        chosen_range = float(max_range)
        prov["max_range"] = "argument max_range"
    elif cfg_range is not None:
        chosen_range = cfg_range
        prov["max_range"] = f"{cfg_where}: training_module.config.registration.max_offset"
    else:
        raise _refuse(
            p,
            "the flow network's max_offset (it scales the output) is not stored in a torchsisr checkpoint "
            f"and no run configuration gives it ({cfg_where})",
            "pass max_range (torchsisr: 10 px for Sen2Venµs runs, 20 for WorldStrat), or the run's "
            ".hydra/config.yaml",
        )
    if not chosen_range > 0:
        raise _refuse(p, f"max_range {chosen_range:g} is not > 0 px", "pass the run's max_offset")
    cfg_channel = cfg_reg.get("registration_channel") if isinstance(cfg_reg, Mapping) else None
    if channel is not None:
        chosen_channel = int(channel)
        prov["channel"] = "argument channel"
    elif isinstance(cfg_channel, int) and not isinstance(cfg_channel, bool):
        chosen_channel = cfg_channel
        prov["channel"] = f"{cfg_where}: training_module.config.registration.registration_channel"
    else:
        chosen_channel = 2
        prov["channel"] = (
            f"not stored: our default {chosen_channel} (B4 of B2 B3 B4 B8); pass channel for other bands"
        )
    prov["input_normalisation"] = "torchsisr's: reference_rows (F.instance_norm on [B, H, W])"
    net = FlowEstimator(
        max_range=chosen_range,
        depth=depth,
        start_filters=start,
        min_skip_depth=min_skip,
        features=features,
        input_normalisation="reference_rows",
    )
    weights = _WeightMap(src, p, REGISTRATION_PREFIX)
    take = weights.take

    for i in range(depth):
        take(f"unet.down.{i}.conv1", f"unet.down_convs.{i}.conv1")
        take(f"unet.down.{i}.conv2", f"unet.down_convs.{i}.conv2")
    for i in range(depth - 1):
        take(f"unet.up.{i}.reduce", f"unet.up_convs.{i}.upconv.1")
        take(f"unet.up.{i}.convs.conv1", f"unet.up_convs.{i}.conv1")
        take(f"unet.up.{i}.convs.conv2", f"unet.up_convs.{i}.conv2")
    take("unet.head", "unet.conv_final")
    take("head", "final_conv")
    _check_finite(src, p, REGISTRATION_PREFIX)
    weights.load_into(net)
    frozen = freeze(net)
    assert isinstance(frozen, FlowEstimator)
    for item, where in prov.items():
        LOGGER.info("%s: %s from %s", p.name, item, where)
    return ImportedRegistration(
        net=frozen,
        max_range=chosen_range,
        channel=chosen_channel,
        depth=depth,
        start_filters=start,
        min_skip_depth=min_skip,
        features=features,
        checkpoint=p,
        global_step=int(ckpt.get("global_step", 0)),
        provenance=prov,
    )


def export_imported_generator(
    imported: ImportedGenerator, path: str | Path, opset: int | None = None, **options: Any
) -> Any:
    """Export an imported generator in the EVOLAND contract (DN in, DN out ONNX + sidecar yaml), verified by
    :func:`sisrlib.export.export_dn_model` (ONNX Runtime vs torch parity; nothing left on failure).

    As torchsisr's export: the bare network (a joint model takes its 10 m then 20 m bands, all on the 10 m
    grid), the checkpoint's standardisation baked in, ``margin`` of the bare network. Returns the
    :class:`sisrlib.export.ExportedPair`; ``options``: ``tolerance_dn``, ``seed``.
    """
    from sisrlib.export import DEFAULT_OPSET, export_dn_model

    return export_dn_model(
        imported_dn_model(imported), path, DEFAULT_OPSET if opset is None else opset, **options
    )
