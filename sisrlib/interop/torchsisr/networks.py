"""torchsisr's SR networks (``ESRGANGenerator``, ``CARN``) rebuilt as ours from their weights.

The architecture is read from the tensor shapes (the checkpoint stores no hyper-parameter); a run
configuration, when given, must agree with them. Every source tensor must be used and every weight of ours
filled (:class:`~sisrlib.interop.torchsisr.layout.WeightMap`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from sisrlib.interop.torchsisr.keymaps import carn_pairs, esrgan_pairs, esrgan_scales
from sisrlib.interop.torchsisr.layout import (
    GENERATOR_PREFIX,
    WeightMap,
    indices,
    need,
    refuse,
)
from sisrlib.interop.torchsisr.run_config import agree
from sisrlib.models.carn import CARN
from sisrlib.models.esrgan import ESRGANGenerator
from sisrlib.models.geometry import rounded_factor

_TOL = 1e-6


def esrgan_from_weights(
    src: dict[str, torch.Tensor],
    path: Path,
    factor: float | None,
    prov: dict[str, str],
    cfg_gen: Any,
) -> tuple[ESRGANGenerator, float]:
    """Our ESRGANGenerator holding the ``generator.sisr_model.*`` weights ``src`` (prefix removed), and its
    factor (``factor``, else 2 per upsampling stage). Records the architecture in ``prov``."""
    keys = list(src)
    first = need(src, "encoder.blocks.0.weight", path, GENERATOR_PREFIX)
    latent, in_bands = int(first.shape[0]), int(first.shape[1])
    blocks = indices(keys, r"^encoder\.blocks\.(\d+)\.scale$")
    n = len(blocks)
    if blocks != list(range(1, n + 1)):
        raise refuse(path, f"RRDB indices {blocks} are not 1..N", "the file was edited")
    first_dense = "encoder.blocks.1.module.block_0.module.module.0.conv.weight"
    growth = int(need(src, first_dense, path, GENERATOR_PREFIX).shape[0]) if n else 32
    out_bands = int(need(src, "decoder.blocks.conv.2.weight", path, GENERATOR_PREFIX).shape[0])
    n_up = len(indices(keys, r"^decoder\.blocks\.upsampling_(\d+)\."))
    scales = [float(v) for k, v in src.items() if k.endswith("scale") and v.dim() == 0]
    scaling = scales[0] if scales else 0.2
    if any(abs(s - scaling) > _TOL for s in scales):
        raise refuse(
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
        agree(path, cfg_gen, expected, "model.model.sisr_model")
    chosen = weights_factor if factor is None else factor
    if rounded_factor(chosen, 2) != weights_factor:
        raise refuse(
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
    weights = WeightMap(src, path, GENERATOR_PREFIX)
    for key in esrgan_scales(n):
        weights.skip(key)
    weights.take_all(esrgan_pairs(n, n_up))
    weights.load_into(net)
    return net, chosen


def _carn_shared(src: Mapping[str, torch.Tensor], path: Path, n_casc: int, n_eres: int) -> bool:
    """Whether every EResBlock of each cascading block holds the weights of its first one."""

    def same_as_first(c: int, e: int) -> bool:
        names = ("net.conv_1", "net.conv_2", "single_conv")
        return all(
            torch.equal(
                need(
                    src,
                    f"cascading_blocks.{c}.residual_blocks.{e}.{m}.{s}",
                    path,
                    GENERATOR_PREFIX,
                ),
                src[f"cascading_blocks.{c}.residual_blocks.0.{m}.{s}"],
            )
            for m in names
            for s in ("weight", "bias")
        )

    return all(same_as_first(c, e) for c in range(n_casc) for e in range(1, n_eres))


def carn_from_weights(
    src: dict[str, torch.Tensor],
    path: Path,
    factor: float | None,
    prov: dict[str, str],
    cfg_gen: Any,
) -> tuple[CARN, float]:
    """Our CARN holding the ``generator.sisr_model.*`` weights ``src`` (prefix removed), and its factor
    (``factor``, else the pixel-shuffle ratio). Records the architecture in ``prov``."""
    keys = list(src)
    conv_in = need(src, "input_conv.weight", path, GENERATOR_PREFIX)
    features, in_bands, kernel = (
        int(conv_in.shape[0]),
        int(conv_in.shape[1]),
        int(conv_in.shape[2]),
    )
    out_conv = need(src, "output_conv2.weight", path, GENERATOR_PREFIX)
    out_bands, per_factor = int(out_conv.shape[0]), int(out_conv.shape[1])
    ratio = math.isqrt(features // per_factor) if per_factor else 0
    if per_factor < 1 or ratio * ratio * per_factor != features:
        raise refuse(
            path,
            f"input_conv has {features} features, not a square multiple of {per_factor}",
            "edited file",
        )
    n_casc = len(indices(keys, r"^cascading_blocks\.(\d+)\."))
    n_eres = len(indices(keys, r"^cascading_blocks\.0\.residual_1d_conv\.(\d+)\."))
    first_conv = "cascading_blocks.0.residual_blocks.0.net.conv_1.weight"
    groups = features // int(need(src, first_conv, path, GENERATOR_PREFIX).shape[1])
    shared = _carn_shared(src, path, n_casc, n_eres)
    if isinstance(cfg_gen, Mapping):
        inner = cfg_gen.get("config", cfg_gen)
        if isinstance(inner, Mapping):
            agree(
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
        raise refuse(
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
    weights = WeightMap(src, path, GENERATOR_PREFIX)
    weights.take_all(carn_pairs(n_casc, n_eres, shared))
    weights.load_into(net)
    return net, chosen
