"""The inverse of the importer: our networks written as a torchsisr run folder (a Lightning checkpoint in
torchsisr's layout and the ``.hydra/config.yaml`` hydra saves beside it).

What it is for: evaluating one of our models through the same path as a published torchsisr checkpoint (the
comparison notebook), and building a fake copy of the support data in tests, from which the importer reads
the networks back exactly. The files hold only what the importer reads and a real run would hold in the
same place: ``state_dict`` (``mean``, ``std``, ``generator.sisr_model.*``, ``registration_module.*``),
``epoch``, ``global_step``, ``pytorch-lightning_version``, empty ``loops``/``callbacks``/optimizer states;
the configuration has ``training_module.bands``, ``standardization_parameters``,
``config.registration``/``pretrain_registration``, ``model.model.sisr_model``/``lr_to_hr_model``. No
discriminator, loss or metric networks.

Only what torchsisr can express is written: ESRGAN with ×2 upsampling stages (factor 2 or 4, no final
resampling), CARN with LeakyReLU 0.2, a joint model with the bicubic ×2 20 m branch, the flow network.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
import yaml

from sisrlib.atomic import atomic_output, write_text_atomic
from sisrlib.bands import Standardisation
from sisrlib.interop.torchsisr.keymaps import Pairs, carn_pairs, esrgan_pairs, esrgan_scales, flow_pairs
from sisrlib.interop.torchsisr.layout import GENERATOR_PREFIX, REGISTRATION_PREFIX
from sisrlib.interop.torchsisr.run_config import RUN_CONFIG
from sisrlib.models.base import SRModel
from sisrlib.models.bicubic import BicubicInterpolation
from sisrlib.models.carn import CARN
from sisrlib.models.esrgan import RRDB, ESRGANGenerator
from sisrlib.models.joint import JointSuperResolution
from sisrlib.registration.network import FlowEstimator

#: The Lightning version written in the files (the one of torchsisr's lock file).
LIGHTNING_VERSION = "2.5.0.post0"


def _copy(ours: Mapping[str, torch.Tensor], pairs: Pairs, prefix: str) -> dict[str, torch.Tensor]:
    """Their keys (with ``prefix``) → our tensors (detached, CPU, float32). A tensor of ours mapped onto
    several of their keys (CARN's shared EResBlocks) is written once and aliased, as torchsisr does."""
    out: dict[str, torch.Tensor] = {}
    copies: dict[str, torch.Tensor] = {}
    for mine, theirs in pairs:
        for suffix in ("weight", "bias"):
            key = f"{mine}.{suffix}"
            if key not in copies:
                copies[key] = ours[key].detach().to("cpu", torch.float32).clone()
            out[f"{prefix}{theirs}.{suffix}"] = copies[key]
    return out


def _sisr_of(generator: SRModel) -> tuple[SRModel, bool]:
    """The bare network and whether the model has the bicubic ×2 20 m branch."""
    if isinstance(generator, JointSuperResolution):
        if generator.lr_to_hr is None:
            return generator.sisr, False
        if not isinstance(generator.lr_to_hr, BicubicInterpolation) or generator.lr_to_hr.factor != 2.0:
            raise ValueError(
                "torchsisr's joint model has a bicubic ×2 20 m branch only; this model's lr_to_hr is "
                f"{type(generator.lr_to_hr).__name__} ×{generator.lr_to_hr.factor:g}"
            )
        return generator.sisr, True
    return generator, False


def _esrgan(net: ESRGANGenerator) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    n_up = len(net.upsampling)
    if net.upsampling_base != 2 or float(2**n_up) != float(net.factor):
        raise ValueError(
            f"torchsisr's ESRGAN upsamples by ×2 stages only (factor 2, 4, ...), without a final resampling; "
            f"this generator has factor {net.factor:g} with ×{net.upsampling_base} stages"
        )
    block = net.trunk[0] if net.num_blocks else None
    scaling = block.residual_scaling if isinstance(block, RRDB) else 0.2
    ours = net.state_dict()
    state = _copy(ours, esrgan_pairs(net.num_blocks, n_up), GENERATOR_PREFIX)
    for key in esrgan_scales(net.num_blocks):
        state[GENERATOR_PREFIX + key] = torch.tensor(scaling, dtype=torch.float32)
    first = ours["first_conv.weight"]
    growth = int(ours["trunk.0.blocks.0.convs.0.weight"].shape[0]) if net.num_blocks else 32
    config = {
        "_target_": "torchsisr.esrgan.ESRGANGenerator",
        "nb_bands": int(first.shape[1]),
        "upsampling_factor": float(net.factor),
        "latent_size": int(first.shape[0]),
        "growth_channels": growth,
        "num_basic_blocks": int(net.num_blocks),
        "residual_scaling": float(scaling),
    }
    return state, config


def _carn(net: CARN) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    if abs(net.negative_slope - 0.2) > 1e-12:
        raise ValueError(f"torchsisr's CARN uses LeakyReLU 0.2; this one {net.negative_slope:g}")
    ours = net.state_dict()
    pairs = carn_pairs(net.n_cascading, net.n_eres, net.shared_weights)
    state = _copy(ours, pairs, GENERATOR_PREFIX)
    config = {
        "_target_": "torchsisr.carn.CARNConfig",
        "nb_bands": int(ours["input_conv.weight"].shape[1]),
        "groups": int(net.groups),
        "shared_weights": bool(net.shared_weights),
        "nb_features_per_factor": int(net.features_per_factor),
        "upsampling_factor": float(net.factor),
        "nb_cascading_blocks": int(net.n_cascading),
        "nb_eres_blocks_per_cascading_block": int(net.n_eres),
        "kernel_size": int(net.kernel_size),
    }
    return state, {"_target_": "torchsisr.carn.CARN", "config": config}


def _flow(net: FlowEstimator) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    if net.input_normalisation != "reference_rows":
        raise ValueError(
            f"torchsisr's flow network normalises each image row; this one uses {net.input_normalisation!r} "
            "normalisation, so torchsisr (and our importer) would compute other flows with its weights. Only "
            "a FlowEstimator(input_normalisation='reference_rows') can be written"
        )
    depth = int(net.unet.depth)
    ours = net.state_dict()
    state = _copy(ours, flow_pairs(depth), REGISTRATION_PREFIX)
    ups = [ours[f"unet.up.{i}.convs.conv1.weight"] for i in range(depth - 1)]
    skips = [int(w.shape[1]) == 2 * int(w.shape[0]) for w in ups]
    config = {
        "_target_": "torchsisr.training.RegistrationParameters",
        "max_offset": float(net.max_range),
        "depth": depth,
        "min_skip_depth": skips.index(True) if True in skips else max(depth - 1, 0),
        "nb_features": int(ours["unet.down.0.conv1.weight"].shape[0]),
    }
    return state, config


def torchsisr_run(
    standardisation: Standardisation,
    generator: SRModel | None = None,
    flow: FlowEstimator | None = None,
    *,
    channel: int = 2,
    pretraining: bool = False,
    global_step: int = 0,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(checkpoint dictionary, run configuration) of a torchsisr run holding ``generator`` (ESRGAN, CARN, or a
    joint model with the bicubic ×2 20 m branch; standardised units, the statistics of
    ``standardisation``, whose bands are the model's input order) and/or ``flow`` (estimated on band index
    ``channel``). ``pretraining``: a registration pre-training run (its generator is marked untrained).
    """
    if generator is None and flow is None:
        raise ValueError("torchsisr_run: give a generator, a flow network or both")
    bands = list(standardisation.bands)
    state: dict[str, torch.Tensor] = {
        "mean": torch.tensor(standardisation.mean, dtype=torch.float32),
        "std": torch.tensor(standardisation.std, dtype=torch.float32),
    }
    model: dict[str, Any] = {"_target_": "torchsisr.double_sisr_model.DoubleSuperResolutionModel"}
    if generator is not None:
        sisr, joint = _sisr_of(generator)
        if isinstance(sisr, ESRGANGenerator):
            gen_state, model["sisr_model"] = _esrgan(sisr)
        elif isinstance(sisr, CARN):
            gen_state, model["sisr_model"] = _carn(sisr)
        else:
            raise ValueError(f"torchsisr has no {type(sisr).__name__}; only ESRGAN and CARN can be written")
        first = next(iter(gen_state.values()))
        if int(first.shape[1]) != len(bands):
            raise ValueError(
                f"the generator takes {int(first.shape[1])} bands but the standardisation has {len(bands)} "
                f"({bands})"
            )
        state.update(gen_state)
        model["lr_to_hr_model"] = (
            {"_target_": "torchsisr.double_sisr_model.BicubicInterpolation"} if joint else None
        )
    training_config: dict[str, Any] = {"pretrain_registration": bool(pretraining)}
    if flow is not None:
        flow_state, reg_config = _flow(flow)
        state.update(flow_state)
        training_config["registration"] = {**reg_config, "registration_channel": int(channel)}
    ckpt: dict[str, Any] = {
        "epoch": 0,
        "global_step": int(global_step),
        "pytorch-lightning_version": LIGHTNING_VERSION,
        "state_dict": state,
        "loops": {},
        "callbacks": {},
        "optimizer_states": [],
        "lr_schedulers": [],
    }
    config = {
        "training_module": {
            "bands": bands,
            "standardization_parameters": {
                "_target_": "torchsisr.training.StandardizationParameters",
                "bands": bands,
                "mean": [float(v) for v in standardisation.mean],
                "std": [float(v) for v in standardisation.std],
            },
            "config": training_config,
        },
        "model": {"model": model} if generator is not None else {},
    }
    return ckpt, config


def write_torchsisr_run(
    path: str | os.PathLike[str],
    standardisation: Standardisation,
    generator: SRModel | None = None,
    flow: FlowEstimator | None = None,
    *,
    channel: int = 2,
    pretraining: bool = False,
    global_step: int = 0,
    run_config: bool = True,
) -> Path:
    """Write :func:`torchsisr_run` as ``path`` (the ``.ckpt``) and, with ``run_config``, its
    ``.hydra/config.yaml`` beside it (atomically; an existing file is refused). Returns ``path``."""
    target = Path(path)
    config_path = target.parent / RUN_CONFIG
    for existing in (target, config_path) if run_config else (target,):
        if existing.exists():
            raise FileExistsError(
                f"{existing} exists; torchsisr runs are not overwritten, choose another path"
            )
    ckpt, config = torchsisr_run(
        standardisation, generator, flow, channel=channel, pretraining=pretraining, global_step=global_step
    )
    with atomic_output(target) as tmp:
        torch.save(ckpt, tmp)
    if run_config:
        write_text_atomic(config_path, yaml.safe_dump(config, sort_keys=False))
    return target
