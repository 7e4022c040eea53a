"""The flow network of a torchsisr checkpoint as our :class:`FlowEstimator`: :func:`import_registration`.

The architecture comes from the tensor shapes; ``max_offset`` (our ``max_range``, it scales the output: 10 px
for Sen2Venµs, 20 for WorldStrat) from an argument, else ``training_module.config.registration`` of the run
configuration, and is refused when unknown; ``registration_channel`` from an argument, else the configuration,
else our default 2 (said so). The network is built with ``input_normalisation="reference_rows"`` (torchsisr
normalises each image row).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from sisrlib.checkpoint import load_checkpoint_file, load_registration
from sisrlib.interop.torchsisr.keymaps import flow_pairs
from sisrlib.interop.torchsisr.layout import (
    REGISTRATION_PREFIX,
    WeightMap,
    check_finite,
    indices,
    need,
    refuse,
)
from sisrlib.interop.torchsisr.opening import open_network
from sisrlib.interop.torchsisr.run_config import (
    ConfigArg,
    agree,
    load_run_config,
    lookup,
    number,
)
from sisrlib.registration.network import FlowEstimator, freeze
from sisrlib.run_params import RegistrationParams

LOGGER = logging.getLogger("sisrlib.interop.torchsisr")


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

    def registration_params(self, **overrides: Any) -> RegistrationParams:
        """The matching :class:`sisrlib.run_params.RegistrationParams` (``input_normalisation:
        reference_rows``), with ``overrides``."""
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


def _unet_sizes(src: Mapping[str, torch.Tensor], p: Path) -> tuple[int, int, int, int]:
    """(depth, start filters, min_skip_depth, output features) of the UNet, from the tensor shapes."""
    depth = len(indices(list(src), r"^unet\.down_convs\.(\d+)\."))
    start = int(need(src, "unet.down_convs.0.conv1.weight", p, REGISTRATION_PREFIX).shape[0])
    features = int(need(src, "unet.conv_final.weight", p, REGISTRATION_PREFIX).shape[0])
    skips = []
    for i in range(depth - 1):
        w = need(src, f"unet.up_convs.{i}.conv1.weight", p, REGISTRATION_PREFIX)
        skips.append(int(w.shape[1]) == 2 * int(w.shape[0]))
    min_skip = skips.index(True) if True in skips else max(depth - 1, 0)
    if skips != [i >= min_skip for i in range(depth - 1)]:
        raise refuse(
            p,
            f"its UNet skips {skips} are not those of a min_skip_depth",
            "edited file",
        )
    return depth, start, min_skip, features


def import_registration(
    path: str | os.PathLike[str],
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
    opened = open_network(
        path,
        config,
        REGISTRATION_PREFIX,
        " (an EVOLAND run, or the flow network was stripped)",
        "use a registration pre-training checkpoint or a paper SR run checkpoint",
    )
    p, ckpt, src = opened.path, opened.checkpoint, opened.weights
    cfg, cfg_where, prov = opened.config, opened.config_where, opened.provenance
    depth, start, min_skip, features = _unet_sizes(src, p)
    cfg_reg = lookup(cfg, "training_module.config.registration")
    if isinstance(cfg_reg, Mapping):
        agree(
            p,
            cfg_reg,
            {"depth": depth, "min_skip_depth": min_skip, "nb_features": start},
            "training_module.config.registration",
        )
    prov["architecture"] = (
        f"tensor shapes: UNet depth {depth}, start filters {start}, min_skip_depth {min_skip}, {features} "
        "output features"
    )
    cfg_range = number(cfg_reg.get("max_offset")) if isinstance(cfg_reg, Mapping) else None
    if max_range is not None:
        chosen_range = float(max_range)
        prov["max_range"] = "argument max_range"
    elif cfg_range is not None:
        chosen_range = cfg_range
        prov["max_range"] = f"{cfg_where}: training_module.config.registration.max_offset"
    else:
        raise refuse(
            p,
            "the flow network's max_offset (it scales the output) is not stored in a torchsisr checkpoint "
            f"and no run configuration gives it ({cfg_where})",
            "pass max_range (torchsisr: 10 px for Sen2Venµs runs, 20 for WorldStrat), or the run's "
            ".hydra/config.yaml",
        )
    if not chosen_range > 0:
        raise refuse(p, f"max_range {chosen_range:g} is not > 0 px", "pass the run's max_offset")
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
    weights = WeightMap(src, p, REGISTRATION_PREFIX)
    weights.take_all(flow_pairs(depth))
    check_finite(src, p, REGISTRATION_PREFIX)
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


def is_torchsisr_checkpoint(ckpt: Mapping[str, Any]) -> bool:
    """Whether a checkpoint dictionary is torchsisr's (a ``state_dict`` with ``mean``/``std`` and no sisrlib
    ``hyper_parameters``) rather than this project's."""
    hp = ckpt.get("hyper_parameters")
    ours = isinstance(hp, Mapping) and ("params" in hp or "input_bands" in hp)
    state = ckpt.get("state_dict")
    return not ours and isinstance(state, Mapping) and "mean" in state and "std" in state


def load_flow_network(
    path: str | os.PathLike[str],
    *,
    max_range: float | None = None,
    map_location: str | torch.device = "cpu",
) -> FlowEstimator:
    """The frozen flow network of this project's checkpoint (:func:`sisrlib.checkpoint.load_registration`)
    or of a torchsisr one (:func:`import_registration`), told from the file's content, on ``map_location``.

    ``max_range`` (LR px): used for a torchsisr file whose run configuration does not give ``max_offset``
    (e.g. the renamed ``*_registration_model.ckpt`` files of the support data: 10 Sen2Venµs, 20 WorldStrat).
    """
    p = Path(path)
    if not is_torchsisr_checkpoint(load_checkpoint_file(p)):
        return load_registration(p, map_location=map_location)
    cfg, _ = load_run_config(p, "auto")
    configured = number(lookup(cfg, "training_module.config.registration.max_offset")) is not None
    net = import_registration(p, max_range=None if configured else max_range).net.to(map_location)
    assert isinstance(net, FlowEstimator)
    return net
