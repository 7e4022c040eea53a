"""ESRGAN (RRDB) generator: paper margins, parameter counts, shapes, gradients, errors."""

from __future__ import annotations

import pytest
import torch

from sisrlib.models.esrgan import RRDB, ESRGANGenerator, ResidualDenseBlock
from sisrlib.models.params import ModelParams
from sisrlib.models.registry import build_generator


def conv_params(c_in: int, c_out: int, k: int = 3) -> int:
    return k * k * c_in * c_out + c_out


def rrdb_params(latent: int, growth: int) -> int:
    dense = sum(conv_params(latent + i * growth, growth if i < 4 else latent) for i in range(5))
    return 3 * dense


def esrgan_params(c_in: int, c_out: int, blocks: int, latent: int, growth: int, n_up: int) -> int:
    return (
        conv_params(c_in, latent)
        + blocks * rrdb_params(latent, growth)
        + conv_params(latent, latent)  # trunk conv
        + n_up * conv_params(latent, latent)  # upsampling blocks
        + conv_params(latent, latent)  # HR conv
        + conv_params(latent, c_out)
    )


def n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize(
    ("blocks", "factor", "margin"),
    [(6, 2.0, 66), (5, 4.0, 110), (6, 4.0, 130)],
    ids=["s2vx2/wsx2", "s2vx4", "wsx4"],
)
def test_paper_margins(blocks: int, factor: float, margin: int) -> None:
    model = ESRGANGenerator(4, factor, num_blocks=blocks)
    assert model.margin == margin == (5 * blocks + 2) * factor + 2
    assert model.factor == factor and model.in_bands == 4 and model.out_bands == 4


def test_exact_receptive_field_is_larger_than_the_reference_margin() -> None:
    # 1 + 15 per RRDB + 1 LR px, ×2, + upsampling conv + 2 HR convs
    model = ESRGANGenerator(4, 2.0, num_blocks=6)
    assert model.receptive_field == (15 * 6 + 2) * 2 + 1 + 2 == 187
    assert ESRGANGenerator(4, 4.0, num_blocks=5).receptive_field == 77 * 4 + 3 + 2
    exact = ESRGANGenerator(4, 2.0, num_blocks=6, margin_rule="receptive_field")
    assert exact.margin == 187
    params = ModelParams(num_blocks=6, margin_rule="receptive_field")
    assert build_generator(params, 4).margin == 187


@pytest.mark.parametrize(("blocks", "factor", "n_up"), [(6, 2.0, 1), (5, 4.0, 2), (6, 4.0, 2), (6, 3.0, 2)])
def test_parameter_count_paper_sizes(blocks: int, factor: float, n_up: int) -> None:
    with torch.device("meta"):  # no allocation nor initialisation
        model = ESRGANGenerator(4, factor, num_blocks=blocks, latent_size=64, growth_channels=32)
    assert n_params(model) == esrgan_params(4, 4, blocks, 64, 32, n_up)


def test_parameter_count_known_answer() -> None:
    # hand computed: RRDB(64, 32) = 3 × 239 808; + first conv 2 368 + 3 × 36 928 + last conv 2 308
    assert rrdb_params(64, 32) == 719_424
    assert n_params(RRDB(64, 32)) == 719_424
    with torch.device("meta"):
        assert n_params(ESRGANGenerator(4, 2.0, num_blocks=6)) == 4_432_004


def test_parameter_count_other_bands() -> None:
    model = ESRGANGenerator(10, 2.0, out_bands=8, num_blocks=2, latent_size=16, growth_channels=8)
    assert n_params(model) == esrgan_params(10, 8, 2, 16, 8, 1)
    assert model.out_bands == 8


@pytest.mark.parametrize(("factor", "size"), [(2.0, 24), (3.0, 36), (4.0, 48), (2.5, 30)])
def test_output_shapes(factor: float, size: int) -> None:
    torch.manual_seed(0)
    model = ESRGANGenerator(4, factor, num_blocks=1, latent_size=8, growth_channels=4)
    y = model(torch.randn(2, 4, 12, 12))
    assert y.shape == (2, 4, size, size)
    assert model.rounded_factor == {2.0: 2, 3.0: 4, 4.0: 4, 2.5: 4}[factor]
    assert model.output_size(12, 12) == (size, size)


def test_upsampling_base_three() -> None:
    model = ESRGANGenerator(3, 3.0, num_blocks=1, latent_size=8, growth_channels=4, upsampling_base=3)
    assert model.rounded_factor == 3 and len(model.upsampling) == 1
    assert model(torch.randn(1, 3, 8, 8)).shape == (1, 3, 24, 24)
    assert model.receptive_field == 17 * 3 + 1 + 2


def test_backpropagates_to_every_parameter() -> None:
    torch.manual_seed(0)
    model = ESRGANGenerator(4, 3.0, num_blocks=2, latent_size=8, growth_channels=4)
    x = torch.randn(2, 4, 10, 10, requires_grad=True)
    model(x).square().mean().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name
    assert x.grad is not None and torch.isfinite(x.grad).all()


def test_dense_block_structure() -> None:
    block = ResidualDenseBlock(8, 4, residual_scaling=0.2)
    assert [c.in_channels for c in block.convs] == [8, 12, 16, 20, 24]
    assert [c.out_channels for c in block.convs] == [4, 4, 4, 4, 8]
    # a zero last conv makes the block the identity (residual form)
    torch.nn.init.zeros_(block.convs[-1].weight)
    torch.nn.init.zeros_(block.convs[-1].bias)
    x = torch.randn(1, 8, 5, 5)
    assert torch.equal(block(x), x)


def test_dtype_and_device_agnostic() -> None:
    model = ESRGANGenerator(2, 2.0, num_blocks=1, latent_size=4, growth_channels=2).double()
    y = model(torch.randn(1, 2, 6, 6, dtype=torch.float64))
    assert y.dtype == torch.float64


def test_bad_input_is_a_clear_error() -> None:
    model = ESRGANGenerator(4, 2.0, num_blocks=1, latent_size=4, growth_channels=2)
    with pytest.raises(ValueError, match=r"\[B, 4, H, W\].*got shape \(1, 3, 8, 8\)"):
        model(torch.randn(1, 3, 8, 8))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"factor": 0.5}, "factor must be a finite number >= 1"),
        ({"upsampling_base": 1}, "upsampling base must be an integer >= 2"),
        ({"latent_size": 0}, "latent_size must be >= 1"),
        ({"margin_rule": "exact"}, "margin_rule must be"),
    ],
)
def test_bad_parameters(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ESRGANGenerator(4, **kwargs)  # type: ignore[arg-type]


def test_bicubic_residual_adds_the_bicubic_interpolation() -> None:
    torch.manual_seed(0)
    plain = ESRGANGenerator(4, 2.0, num_blocks=1, latent_size=8, growth_channels=4)
    residual = ESRGANGenerator(4, 2.0, num_blocks=1, latent_size=8, growth_channels=4, bicubic_residual=True)
    residual.load_state_dict(plain.state_dict())
    x = torch.randn(2, 4, 10, 10)
    bicubic = torch.nn.functional.interpolate(x, scale_factor=2, mode="bicubic", align_corners=False)
    torch.testing.assert_close(residual(x), plain(x) + bicubic)
    with torch.no_grad():
        residual.last_conv.weight.zero_()
        residual.last_conv.bias.zero_()
    torch.testing.assert_close(residual(x), bicubic)
    assert residual.margin == plain.margin and residual.receptive_field == plain.receptive_field
    with pytest.raises(ValueError, match=r"bicubic_residual needs out_bands == in_bands, got 3 and 4"):
        ESRGANGenerator(4, 2.0, out_bands=3, num_blocks=1, bicubic_residual=True)
    params = ModelParams(num_blocks=1, latent_size=8, growth_channels=4, bicubic_residual=True)
    assert build_generator(params, 4).bicubic_residual  # type: ignore[union-attr]
