"""Build generators and discriminators from their params: one registry entry per ``model.generator`` /
``discriminator.kind`` name instead of a hand-written chain of cases.

A builder takes the params section and the band counts and returns the network; a new architecture is one
:func:`register_generator` (or :func:`register_discriminator`) call, and its name becomes a valid params value
of the registry (``ModelParams.generator`` still lists the names a params file may give).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TypeVar

from torch import nn

from sisrlib.models.base import SRModel
from sisrlib.models.bicubic import BicubicInterpolation
from sisrlib.models.carn import CARN
from sisrlib.models.discriminators import Discriminator, UNetDiscriminatorSN
from sisrlib.models.esrgan import ESRGANGenerator
from sisrlib.models.joint import JointSuperResolution
from sisrlib.models.linear import PolyphaseLinear
from sisrlib.models.params import DiscriminatorParams, ModelParams

#: ``builder(params, in_bands, out_bands) -> SRModel`` (a single-grid SISR network).
GeneratorBuilder = Callable[[ModelParams, int, int], SRModel]
#: ``builder(params) -> nn.Module`` (a discriminator fed ``params.num_in_ch`` bands).
DiscriminatorBuilder = Callable[[DiscriminatorParams], nn.Module]

#: A builder type (generator or discriminator).
B = TypeVar("B", GeneratorBuilder, DiscriminatorBuilder)

GENERATORS: dict[str, GeneratorBuilder] = {}
DISCRIMINATORS: dict[str, DiscriminatorBuilder] = {}


def _registrar(registry: dict[str, B], name: str, kind: str) -> Callable[[B], B]:
    """Decorator registering a builder in ``registry`` as ``name`` (a ValueError if the name is taken)."""

    def decorate(builder: B) -> B:
        if name in registry:
            raise ValueError(f"register_{kind}: a {kind} named {name!r} is already registered")
        registry[name] = builder
        return builder

    return decorate


def register_generator(name: str) -> Callable[[GeneratorBuilder], GeneratorBuilder]:
    """Decorator: register ``builder`` as the generator ``name`` (a ValueError if the name is taken)."""
    return _registrar(GENERATORS, name, "generator")


def register_discriminator(name: str) -> Callable[[DiscriminatorBuilder], DiscriminatorBuilder]:
    """Decorator: register ``builder`` as the discriminator kind ``name`` (a ValueError if it is taken)."""
    return _registrar(DISCRIMINATORS, name, "discriminator")


@register_generator("esrgan")
def _esrgan(params: ModelParams, in_bands: int, out_bands: int) -> SRModel:
    return ESRGANGenerator(
        in_bands,
        factor=params.factor,
        out_bands=out_bands,
        num_blocks=params.num_blocks,
        latent_size=params.latent_size,
        growth_channels=params.growth_channels,
        residual_scaling=params.residual_scaling,
        upsampling_base=params.upsampling_base,
        margin_rule=params.margin_rule,
        bicubic_residual=params.bicubic_residual,
    )


@register_generator("carn")
def _carn(params: ModelParams, in_bands: int, out_bands: int) -> SRModel:
    return CARN(
        in_bands,
        factor=params.factor,
        out_bands=out_bands,
        groups=params.carn_groups,
        shared_weights=params.carn_shared_weights,
        features_per_factor=params.carn_features_per_factor,
        n_cascading=params.carn_cascading_blocks,
        n_eres=params.carn_eres_blocks,
        kernel_size=params.kernel_size,
    )


@register_generator("bicubic")
def _bicubic(params: ModelParams, in_bands: int, out_bands: int) -> SRModel:
    if out_bands != in_bands:
        raise ValueError(
            f"build_generator: the bicubic generator keeps its {in_bands} bands, it cannot output {out_bands}"
        )
    return BicubicInterpolation(in_bands, params.factor)


@register_generator("linear")
def _linear(params: ModelParams, in_bands: int, out_bands: int) -> SRModel:
    return PolyphaseLinear(in_bands, params.factor, out_bands, kernel_size=params.linear_kernel_size)


@register_discriminator("unet")
def _unet(params: DiscriminatorParams) -> nn.Module:
    return UNetDiscriminatorSN(
        num_in_ch=params.num_in_ch,
        num_feat=params.num_feat,
        skip_connection=params.skip_connection,
        hpf_mtf=params.hpf_mtf,
        hpf_factor=params.hpf_factor,
    )


@register_discriminator("classification")
def _classification(params: DiscriminatorParams) -> nn.Module:
    return Discriminator(
        in_features=params.num_in_ch,
        latent_features=params.num_feat,
        nb_additional_latent_layers=params.classification_additional_layers,
        head_latent_features=params.classification_head_features,
        head_nb_additional_latent_layers=params.classification_head_additional_layers,
        pooling_size=params.classification_pooling_size,
        hpf_mtf=params.hpf_mtf,
        hpf_factor=params.hpf_factor,
    )


def _names(registry: Mapping[str, object]) -> str:
    names = sorted(registry)
    return ", ".join(names[:-1]) + f" or {names[-1]}" if len(names) > 1 else names[0]


def build_sisr_network(params: ModelParams, in_bands: int, out_bands: int | None = None) -> SRModel:
    """The single-grid SISR network of ``params`` (no 20 m branch): ``[B, in_bands, h, w]`` →
    ``[B, out_bands, h·factor, w·factor]`` (``out_bands`` defaults to ``in_bands``)."""
    if in_bands < 1:
        raise ValueError(f"build_generator: in_bands must be >= 1, got {in_bands}")
    builder = GENERATORS.get(params.generator)
    if builder is None:
        raise ValueError(
            f"build_generator: unknown generator {params.generator!r}; expected {_names(GENERATORS)}"
        )
    return builder(params, in_bands, in_bands if out_bands is None else out_bands)


def build_generator(
    params: ModelParams, in_bands: int, out_bands: int | None = None, *, lr_bands: int | None = None
) -> SRModel:
    """Build the generator described by ``params`` (the ``model:`` section of a params YAML).

    * ``params.lr_to_hr`` null (all paper experiments): the SISR network, ``in_bands`` → ``out_bands``
      (default ``in_bands``); called as ``model(x)``.
    * ``params.lr_to_hr`` set (EVOLAND joint model): ``in_bands`` are the 10 m bands and ``lr_bands``
      (keyword, required) the 20 m bands; returns a ``JointSuperResolution`` called as ``model(hr, lr)``,
      whose SISR network takes ``in_bands + lr_bands`` bands and outputs ``out_bands`` (default
      ``in_bands + lr_bands``: the EVOLAND model, 10 bands in and 10 out).
    """
    if params.lr_to_hr is None:
        if lr_bands:
            raise ValueError(
                f"build_generator: lr_bands={lr_bands} was given but model.lr_to_hr is null; set "
                "model.lr_to_hr: bicubic to super-resolve the 20 m bands jointly, or drop them from the data"
            )
        return build_sisr_network(params, in_bands, out_bands)
    if lr_bands is None or lr_bands < 1:
        raise ValueError(
            f"build_generator: model.lr_to_hr is {params.lr_to_hr!r}, so the number of 20 m bands (lr_bands) "
            f"must be given and >= 1, got {lr_bands}"
        )
    total = in_bands + lr_bands
    sisr = build_sisr_network(params, total, total if out_bands is None else out_bands)
    if params.lr_to_hr != "bicubic":  # pragma: no cover - guarded by the Literal type of ModelParams
        raise ValueError(
            f"build_generator: unknown model.lr_to_hr {params.lr_to_hr!r}; expected bicubic or null"
        )
    return JointSuperResolution(sisr, BicubicInterpolation(lr_bands, params.lr_to_hr_factor))


def build_discriminator(params: DiscriminatorParams, in_bands: int | None = None) -> nn.Module:
    """Build the discriminator of ``params``; ``in_bands`` (the number of adversarial bands the caller will
    feed), when given, must equal ``params.num_in_ch``."""
    if in_bands is not None and in_bands != params.num_in_ch:
        raise ValueError(
            f"build_discriminator: the adversarial term feeds {in_bands} bands but the discriminator's "
            f"num_in_ch is {params.num_in_ch}; set num_in_ch: {in_bands}"
        )
    builder = DISCRIMINATORS.get(params.kind)
    if builder is None:
        raise ValueError(
            f"build_discriminator: unknown kind {params.kind!r}; expected {_names(DISCRIMINATORS)}"
        )
    return builder(params)


__all__ = [
    "DISCRIMINATORS",
    "GENERATORS",
    "DiscriminatorBuilder",
    "GeneratorBuilder",
    "build_discriminator",
    "build_generator",
    "build_sisr_network",
    "register_discriminator",
    "register_generator",
]
