"""The SR network of a torchsisr checkpoint as our module: :func:`import_generator`.

What the weights do not say is taken, in this order, from an explicit argument, from the run configuration
(:mod:`sisrlib.interop.torchsisr.run_config`) or from the tensor shapes, and recorded in ``provenance``:

* architecture sizes: the tensor shapes (always; the configuration, when present, must agree);
* factor: argument, else ``upsampling_factor`` of the configuration, else the shapes (2 per ESRGAN upsampling
  stage; the pixel-shuffle ratio of a CARN);
* band names: argument, else ``training_module.bands``; never guessed (refused when unknown);
* standardisation: always the checkpoint's ``mean``/``std`` buffers (what the network was trained with; a
  configuration that disagrees is reported, not used);
* 20 m branch (joint 10 m + 20 m model): argument, else ``model.model.lr_to_hr_model`` of the configuration
  (absent = torchsisr's default bicubic ×2, null = none), else the bands (10 m and 20 m bands together can
  only have been trained through the bicubic branch).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch

from sisrlib.bands import BAND_RESOLUTION_M, Standardisation, validate_bands
from sisrlib.interop.torchsisr.layout import (
    GENERATOR_PREFIX,
    check_finite,
    refuse,
    unique_count,
)
from sisrlib.interop.torchsisr.networks import carn_from_weights, esrgan_from_weights
from sisrlib.interop.torchsisr.opening import open_network
from sisrlib.interop.torchsisr.run_config import (
    MISSING,
    ConfigArg,
    lookup,
    number,
)
from sisrlib.models.base import SRModel
from sisrlib.models.bicubic import BicubicInterpolation
from sisrlib.models.joint import JointSuperResolution

LOGGER = logging.getLogger("sisrlib.interop.torchsisr")

LrToHr = Literal["bicubic", "none"]


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


def is_pretraining(
    ckpt: Mapping[str, Any], cfg: Mapping[str, Any] | None, n_generator: int
) -> tuple[bool, str]:
    """Whether a checkpoint is a registration pre-training run (its generator is untrained), and why."""
    flag = lookup(cfg, "training_module.config.pretrain_registration")
    if flag is not MISSING:
        return bool(flag), "training_module.config.pretrain_registration of the run configuration"
    states = ckpt.get("optimizer_states")
    if isinstance(states, list) and states and isinstance(states[0], Mapping):
        ids = [i for i in states[0].get("state", {}) if isinstance(i, int)]
        if ids:
            untouched = min(ids) >= n_generator
            return (
                untouched,
                "the first optimizer's state (it covers no generator parameter)"
                if untouched
                else ("the first optimizer's state (it covers generator parameters)"),
            )
    return False, "no run configuration or optimizer state says so"


def _factor(factor: float | None, cfg_gen: Any, cfg_where: str, prov: dict[str, str]) -> float | None:
    """The factor asked for (argument, else the configuration's), or None (the weights decide)."""
    cfg_factor = None
    if isinstance(cfg_gen, Mapping):
        inner = cfg_gen.get("config", cfg_gen)
        cfg_factor = number(inner.get("upsampling_factor")) if isinstance(inner, Mapping) else None
    if factor is not None:
        prov["factor"] = "argument factor"
        return float(factor)
    if cfg_factor is not None:
        prov["factor"] = f"{cfg_where}: model.model.sisr_model upsampling_factor"
        return cfg_factor
    prov["factor"] = "tensor shapes (2 per ESRGAN upsampling stage / the CARN pixel-shuffle ratio)"
    return None


def _band_names(
    p: Path,
    bands: list[str] | tuple[str, ...] | None,
    cfg: Mapping[str, Any] | None,
    cfg_where: str,
    prov: dict[str, str],
) -> tuple[str, ...]:
    if bands is not None:
        prov["bands"] = "argument bands"
        return tuple(validate_bands(bands, where="import_generator bands"))
    cfg_bands = lookup(cfg, "training_module.bands")
    if not isinstance(cfg_bands, list) or not all(isinstance(b, str) for b in cfg_bands):
        raise refuse(
            p,
            "the band names are not stored in a torchsisr checkpoint and no run configuration gives them "
            f"({cfg_where}; training_module.bands: {cfg_bands!r})",
            "pass bands=[...] in the order of the standardisation (e.g. B2 B3 B4 B8), or the run's "
            ".hydra/config.yaml",
        )
    prov["bands"] = f"{cfg_where}: training_module.bands"
    return tuple(validate_bands(cfg_bands, where=f"{cfg_where}: training_module.bands"))


def _standardisation(
    p: Path,
    state: Mapping[str, torch.Tensor],
    names: tuple[str, ...],
    sisr: SRModel,
    cfg: Mapping[str, Any] | None,
    cfg_where: str,
    prov: dict[str, str],
) -> Standardisation:
    """The checkpoint's ``mean``/``std`` for ``names``, checked against the network."""
    mean, std = (
        state["mean"].double().flatten().tolist(),
        state["std"].double().flatten().tolist(),
    )
    if not len(mean) == len(std) == len(names) == sisr.in_bands:
        raise refuse(
            p,
            f"state_dict['mean'] has {len(mean)} values, ['std'] {len(std)}, the network takes "
            f"{sisr.in_bands} bands, but {len(names)} band names were found ({prov['bands']}: {list(names)})",
            "pass the bands the model was trained with",
        )
    if sisr.out_bands != sisr.in_bands:
        raise refuse(
            p,
            f"its network maps {sisr.in_bands} bands to {sisr.out_bands}",
            "torchsisr generators return the bands they take; the file was edited",
        )
    try:
        stats = Standardisation(tuple(names), tuple(mean), tuple(std))
    except ValueError as exc:
        raise refuse(p, f"state_dict['mean'/'std']: {exc}", "the file was damaged") from exc
    prov["standardisation"] = "checkpoint state_dict['mean'], ['std'] (reflectance)"
    cfg_std = lookup(cfg, "training_module.standardization_parameters")
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
    return stats


def _is_joint(
    p: Path,
    names: tuple[str, ...],
    lr_to_hr: LrToHr | None,
    cfg: Mapping[str, Any] | None,
    cfg_where: str,
    prov: dict[str, str],
) -> bool:
    """Whether the model has torchsisr's bicubic ×2 20 m branch."""
    resolutions = [BAND_RESOLUTION_M[b] for b in names]
    if lr_to_hr is not None:
        joint = lr_to_hr == "bicubic"
        prov["lr_to_hr"] = f"argument lr_to_hr={lr_to_hr!r}"
    elif isinstance(lookup(cfg, "model.model"), Mapping):
        node = lookup(cfg, "model.model.lr_to_hr_model")
        if node is MISSING:
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
            raise refuse(
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
    return joint


def import_generator(
    path: str | os.PathLike[str],
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
    opened = open_network(
        path,
        config,
        GENERATOR_PREFIX,
        "",
        "it holds no torchsisr SR network (a registration-only file? use import_registration)",
    )
    p, ckpt, state, src = opened.path, opened.checkpoint, opened.state, opened.weights
    cfg, cfg_where, prov = opened.config, opened.config_where, opened.provenance
    pretraining, why = is_pretraining(ckpt, cfg, unique_count(src))
    if pretraining and not allow_untrained:
        raise refuse(
            p,
            f"it is a registration pre-training run ({why}): its generator was never trained",
            "import its flow network with import_registration, or pass allow_untrained=True to get the "
            "untrained generator anyway",
        )
    cfg_gen = lookup(cfg, "model.model.sisr_model")
    chosen_factor = _factor(factor, cfg_gen, cfg_where, prov)
    sisr: SRModel
    if "encoder.blocks.0.weight" in src:
        kind: Literal["esrgan", "carn"] = "esrgan"
        sisr, final_factor = esrgan_from_weights(src, p, chosen_factor, prov, cfg_gen)
    elif "input_conv.weight" in src:
        kind = "carn"
        sisr, final_factor = carn_from_weights(src, p, chosen_factor, prov, cfg_gen)
    else:
        raise refuse(
            p,
            f"its {GENERATOR_PREFIX}* weights are neither an ESRGANGenerator (encoder.blocks.0.weight) nor a "
            f"CARN (input_conv.weight); found e.g. {list(src)[:3]}",
            "only torchsisr's ESRGAN and CARN generators can be imported",
        )
    check_finite(src, p, GENERATOR_PREFIX)
    target = str(cfg_gen.get("_target_", "")) if isinstance(cfg_gen, Mapping) else ""
    expected_class = "ESRGANGenerator" if kind == "esrgan" else "CARN"
    if target and target.rsplit(".", 1)[-1] != expected_class:
        raise refuse(
            p,
            f"its run configuration ({cfg_where}) does not describe these weights (model.model.sisr_model is "
            f"{target}, the weights are a {expected_class})",
            "the .hydra/config.yaml beside it belongs to another run: pass config=None or the right file",
        )
    names = _band_names(p, bands, cfg, cfg_where, prov)
    stats = _standardisation(p, state, names, sisr, cfg, cfg_where, prov)
    model: SRModel = sisr
    hr_bands: tuple[str, ...] = names
    lr_bands: tuple[str, ...] = ()
    if _is_joint(p, names, lr_to_hr, cfg, cfg_where, prov):
        resolutions = [BAND_RESOLUTION_M[b] for b in names]
        lr_start = resolutions.index(max(resolutions))
        hr_bands, lr_bands = names[:lr_start], names[lr_start:]
        if (
            not hr_bands
            or any(r != resolutions[0] for r in resolutions[:lr_start])
            or any(r != resolutions[-1] for r in resolutions[lr_start:])
        ):
            raise refuse(
                p,
                "a joint 10 m + 20 m model needs its 10 m bands first, then its 20 m bands; found "
                f"{list(names)}",
                "pass the bands in the model's order, or lr_to_hr='none'",
            )
        model = JointSuperResolution(sisr, BicubicInterpolation(len(lr_bands), 2.0))
    model.eval()
    if pretraining:
        prov["warning"] = "untrained generator of a registration pre-training run (allow_untrained=True)"
    for item, where in prov.items():
        LOGGER.info("%s: %s from %s", p.name, item, where)
    return ImportedGenerator(
        model=model,
        sisr=sisr,
        kind=kind,
        bands=names,
        hr_bands=hr_bands,
        lr_bands=lr_bands,
        factor=float(final_factor),
        standardisation=stats,
        checkpoint=p,
        global_step=int(ckpt.get("global_step", 0)),
        provenance=prov,
    )
