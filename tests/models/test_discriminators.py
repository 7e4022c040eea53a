"""Discriminators: output shapes, spectral norm, skip connections, high-pass pre-filter, factory."""

from __future__ import annotations

import pytest
import torch
from torch.nn.utils import parametrize

from sisrlib.degradation import high_pass
from sisrlib.models.discriminators import Discriminator, UNetDiscriminatorSN
from sisrlib.models.params import DiscriminatorParams
from sisrlib.models.registry import build_discriminator
from sisrlib.params import ParamsError, from_mapping


@pytest.mark.parametrize("size", [32, 36, 27])
def test_unet_outputs_per_pixel_logits(size: int) -> None:
    disc = UNetDiscriminatorSN(num_in_ch=4, num_feat=8)
    y = disc(torch.randn(2, 4, size, size))
    assert y.shape == (2, 1, size, size)


def test_unet_spectral_norm_on_the_inner_convs() -> None:
    disc = UNetDiscriminatorSN(4, 8)
    inner = [*disc.down, *disc.up, *disc.extra]
    assert len(inner) == 8
    assert all(parametrize.is_parametrized(conv, "weight") for conv in inner)
    assert not parametrize.is_parametrized(disc.conv0) and not parametrize.is_parametrized(disc.last_conv)
    assert [c.out_channels for c in disc.down] == [16, 32, 64]
    assert [c.out_channels for c in disc.up] == [32, 16, 8]


def test_unet_spectral_norm_bounds_the_weight() -> None:
    torch.manual_seed(0)
    disc = UNetDiscriminatorSN(4, 8)
    disc.train()
    for _ in range(20):  # power iterations run at every training forward
        disc(torch.randn(1, 4, 8, 8))
    weight = disc.down[0].weight  # the normalised weight
    sigma = torch.linalg.matrix_norm(weight.detach().flatten(1), ord=2)
    assert sigma == pytest.approx(1.0, abs=0.05)


def test_unet_skip_connection_changes_the_output() -> None:
    torch.manual_seed(0)
    without = UNetDiscriminatorSN(4, 8, skip_connection=False).eval()
    with_skip = UNetDiscriminatorSN(4, 8, skip_connection=True).eval()
    with_skip.load_state_dict(without.state_dict())
    x = torch.randn(1, 4, 16, 16)
    assert not torch.allclose(without(x), with_skip(x))


def test_unet_high_pass_pre_filter() -> None:
    torch.manual_seed(0)
    disc = UNetDiscriminatorSN(4, 8, hpf_mtf=0.4).eval()
    x = torch.randn(1, 4, 17, 17)
    assert disc(x).shape == (1, 1, 16, 16)  # cropped to a multiple of the HPF factor
    # a constant image has no high frequency: same logits as zeros
    torch.testing.assert_close(disc(torch.full((1, 4, 16, 16), 5.0)), disc(torch.zeros(1, 4, 16, 16)))
    # and the pre-filter is exactly sisrlib.degradation.high_pass
    plain = UNetDiscriminatorSN(4, 8).eval()
    plain.load_state_dict(disc.state_dict())
    torch.testing.assert_close(disc(x), plain(high_pass(x, 2, 0.4)))


@pytest.mark.parametrize(("extra", "pool"), [(0, 2), (4, 2), (1, 3)])
def test_classification_discriminator(extra: int, pool: int) -> None:
    disc = Discriminator(
        in_features=7,
        latent_features=8,
        nb_additional_latent_layers=extra,
        pooling_size=pool,
        head_latent_features=16,
        head_nb_additional_latent_layers=2,
    )
    y = disc(torch.randn(3, 7, 20, 20))
    assert y.shape == (3, 1)
    convs = [m for m in disc.encoder if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == extra + 1
    assert all(c.bias is None and c.padding == (0, 0) for c in convs)
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in disc.encoder) == extra + 1
    assert sum(isinstance(m, torch.nn.Linear) for m in disc.head) == 2 + 2


def test_classification_discriminator_reference_test_config() -> None:
    disc = Discriminator(in_features=3, hpf_mtf=0.4).eval()
    assert disc(torch.randn(2, 3, 32, 32)).shape == (2, 1)
    torch.testing.assert_close(disc(torch.full((2, 3, 32, 32), 2.0)), disc(torch.zeros(2, 3, 32, 32)))


def test_classification_too_small_input() -> None:
    disc = Discriminator(in_features=4, nb_additional_latent_layers=4)
    with pytest.raises(ValueError, match="H, W >= 11"):
        disc(torch.randn(1, 4, 8, 8))


@pytest.mark.parametrize("disc", [UNetDiscriminatorSN(4, 8, hpf_mtf=0.4), Discriminator(4, 8, 1, 16)])
def test_discriminators_backpropagate(disc: torch.nn.Module) -> None:
    x = torch.randn(2, 4, 16, 16, requires_grad=True)
    disc(x).mean().backward()
    for name, p in disc.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_build_discriminator_paper_defaults() -> None:
    params = DiscriminatorParams()
    assert (params.kind, params.num_in_ch, params.num_feat, params.skip_connection, params.hpf_mtf) == (
        "unet",
        4,
        32,
        False,
        None,
    )
    disc = build_discriminator(params, in_bands=4)
    assert isinstance(disc, UNetDiscriminatorSN) and disc.num_feat == 32 and not disc.skip_connection
    with pytest.raises(ValueError, match="set num_in_ch: 7"):
        build_discriminator(params, in_bands=7)


def test_build_classification_discriminator_from_yaml_mapping() -> None:
    mapping = {
        "kind": "classification",
        "num_in_ch": 7,
        "num_feat": 64,
        "hpf_mtf": 0.4,
        "classification_additional_layers": 4,
        "classification_head_additional_layers": 2,
    }
    disc = build_discriminator(from_mapping(DiscriminatorParams, mapping))
    assert isinstance(disc, Discriminator)
    assert disc(torch.randn(2, 7, 24, 24)).shape == (2, 1)
    with pytest.raises(ParamsError, match="hpf_mtf must lie in"):
        from_mapping(DiscriminatorParams, {"hpf_mtf": 1.5})
    with pytest.raises(ParamsError, match="unknown key"):
        from_mapping(DiscriminatorParams, {"num_features": 3})
