"""The generator / discriminator registry and the interface every network stores once (``SRModel``)."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from sisrlib.models.base import SRModel
from sisrlib.models.bicubic import BicubicInterpolation
from sisrlib.models.carn import CARN
from sisrlib.models.esrgan import ESRGANGenerator
from sisrlib.models.linear import PolyphaseLinear
from sisrlib.models.params import DiscriminatorParams, ModelParams
from sisrlib.models.registry import (
    DISCRIMINATORS,
    GENERATORS,
    build_discriminator,
    build_generator,
    build_sisr_network,
    register_generator,
)


def test_every_params_name_has_a_builder() -> None:
    assert set(GENERATORS) == {"esrgan", "carn", "bicubic", "linear"}
    assert set(DISCRIMINATORS) == {"unet", "classification"}


@pytest.mark.parametrize(
    ("generator", "cls"),
    [
        ("esrgan", ESRGANGenerator),
        ("carn", CARN),
        ("bicubic", BicubicInterpolation),
        ("linear", PolyphaseLinear),
    ],
)
def test_registry_builds_the_named_network_with_its_bands_and_factor(generator: str, cls: type) -> None:
    params = ModelParams(
        generator=generator,  # type: ignore[arg-type]
        factor=2.0,
        num_blocks=1,
        latent_size=8,
        growth_channels=4,
        carn_features_per_factor=4,
        carn_cascading_blocks=1,
        carn_eres_blocks=1,
    )
    net = build_sisr_network(params, 3)
    assert isinstance(net, cls)
    assert (net.in_bands, net.out_bands, net.factor) == (3, 3, 2.0)
    assert net(torch.zeros(1, 3, 8, 8)).shape == (1, 3, 16, 16)


def test_unknown_names_list_the_registered_ones() -> None:
    params = dataclasses.replace(ModelParams(), generator="swinir")  # type: ignore[arg-type]
    with pytest.raises(
        ValueError, match=r"unknown generator 'swinir'; expected bicubic, carn, esrgan or linear"
    ):
        build_generator(params, 4)
    disc = dataclasses.replace(DiscriminatorParams(), kind="patchgan")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"unknown kind 'patchgan'; expected classification or unet"):
        build_discriminator(disc)


def test_a_name_is_registered_once() -> None:
    with pytest.raises(ValueError, match=r"a generator named 'carn' is already registered"):
        register_generator("carn")(lambda params, i, o: BicubicInterpolation(i))


def test_joint_model_outputs_every_band_by_default() -> None:
    params = ModelParams(generator="carn", carn_features_per_factor=4, carn_cascading_blocks=1,
                         carn_eres_blocks=1, lr_to_hr="bicubic")  # fmt: skip
    joint = build_generator(params, 4, lr_bands=6)
    assert (joint.in_bands, joint.out_bands) == (10, 10)
    assert joint(torch.zeros(1, 4, 8, 8), torch.zeros(1, 6, 4, 4)).shape == (1, 10, 16, 16)


class _Identity(SRModel):
    @property
    def margin(self) -> int:
        return 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


@pytest.mark.parametrize(
    ("args", "message"),
    [((0, 1, 1.0), "in_bands must be an integer >= 1"), ((1, 0, 1.0), "out_bands must be an integer >= 1"),
     ((1, 1, 0.0), "factor must be > 0")],
)  # fmt: skip
def test_srmodel_checks_what_it_stores(args: tuple[int, int, float], message: str) -> None:
    with pytest.raises(ValueError, match=f"_Identity: {message}"):
        _Identity(*args)
    net = _Identity(2, 3, 4.0)
    assert (net.in_bands, net.out_bands, net.factor) == (2, 3, 4.0)
