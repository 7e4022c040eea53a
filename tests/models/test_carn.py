"""CARN: EVOLAND margin, analytic parameter counts, additive cascade, shapes, gradients."""

from __future__ import annotations

import pytest
import torch

from sisrlib.models.carn import CARN, CascadingBlock, EResBlock
from sisrlib.models.params import ModelParams
from sisrlib.models.registry import build_generator


def n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_evoland_margin_and_size() -> None:
    with torch.device("meta"):
        model = CARN(10, 2.0, groups=4, shared_weights=True, features_per_factor=64, n_cascading=3, n_eres=3)
    assert model.margin == 41 == ((2 * 3 * 3 + 2) * 2 + 1) * 1
    assert model.receptive_field == 41
    assert model.features == 256
    # hand computed: ERes 361 216, cascading 558 592, input conv 23 296, output convs 590 080 + 5 770
    assert model.nb_params() == n_params(model) == 2_492_298


def test_margin_formula_kernel_size_five() -> None:
    model = CARN(4, 2.0, groups=1, features_per_factor=1, n_cascading=2, n_eres=1, kernel_size=5)
    assert model.margin == ((2 * 1 * 2 + 2) * 2 + 1) * 2 == 26 == model.receptive_field


@pytest.mark.parametrize("groups", [1, 2, 4])
@pytest.mark.parametrize("shared", [True, False])
def test_block_parameter_counts(groups: int, shared: bool) -> None:
    eres = EResBlock(8, groups, 3)
    assert eres.nb_params() == n_params(eres) == 2 * (9 * 8 * 8 // groups + 8) + 8 * 9
    block = CascadingBlock(3, 8, groups, 3, shared_weights=shared)
    assert block.nb_params() == n_params(block)
    assert len(block.eres_blocks) == (1 if shared else 3)


@pytest.mark.parametrize("groups", [1, 2, 4])
@pytest.mark.parametrize("shared", [True, False])
@pytest.mark.parametrize("out_bands", [None, 8])
def test_model_parameter_counts(groups: int, shared: bool, out_bands: int | None) -> None:
    model = CARN(4, 2.0, out_bands=out_bands, groups=groups, shared_weights=shared, features_per_factor=2)
    assert model.nb_params() == n_params(model)
    assert model.out_bands == (4 if out_bands is None else out_bands)


def test_shared_weights_reuse_one_block() -> None:
    block = CascadingBlock(3, 4, 2, 3, shared_weights=True)
    sequence = block._sequence()
    assert len(sequence) == 3 and all(b is sequence[0] for b in sequence)


def test_additive_cascade_rule() -> None:
    """state_j = conv_j(b_j) + x + Σ_{i<j} b_i, checked against a hand-written loop."""
    torch.manual_seed(0)
    block = CascadingBlock(3, 4, 2, 3, shared_weights=False)
    x = torch.randn(1, 4, 6, 6)
    b1 = block.eres_blocks[0](x)
    s1 = block.pointwise[0](b1) + x
    b2 = block.eres_blocks[1](s1)
    s2 = block.pointwise[1](b2) + x + b1
    b3 = block.eres_blocks[2](s2)
    s3 = block.pointwise[2](b3) + x + b1 + b2
    torch.testing.assert_close(block(x), s3)


@pytest.mark.parametrize(("factor", "rounded", "size"), [(2.0, 2, 20), (3.0, 4, 30), (4.0, 4, 40)])
def test_output_shapes(factor: float, rounded: int, size: int) -> None:
    model = CARN(4, factor, groups=2, features_per_factor=2, n_cascading=2, n_eres=2)
    assert model.rounded_factor == rounded and model.features == 2 * rounded**2
    assert model(torch.randn(2, 4, 10, 10)).shape == (2, 4, size, size)


def test_non_integer_factor_margin() -> None:
    model = CARN(4, 3.0, groups=2, features_per_factor=2)
    assert model.margin == (20 * 3 + 1)  # spec formula with the real factor
    # exact: (20·4 + 1) px on the ×4 grid, then bicubic ↓4/3: ⌊82.5·0.75 − 0.5⌋ + 1
    assert model.receptive_field == 62


def test_backpropagates_to_every_parameter() -> None:
    torch.manual_seed(0)
    model = CARN(3, 3.0, out_bands=5, groups=2, shared_weights=False, features_per_factor=2, n_cascading=2)
    x = torch.randn(2, 3, 8, 8, requires_grad=True)
    model(x).square().mean().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name


def test_groups_must_divide_features() -> None:
    with pytest.raises(ValueError, match="divisible by groups = 3"):
        CARN(4, 2.0, groups=3, features_per_factor=2)


def test_build_generator_carn() -> None:
    params = ModelParams(generator="carn", carn_features_per_factor=2, carn_groups=2, carn_cascading_blocks=1)
    model = build_generator(params, 4)
    assert isinstance(model, CARN)
    assert model.margin == (2 * 3 * 1 + 2) * 2 + 1
    assert model(torch.randn(1, 4, 8, 8)).shape == (1, 4, 16, 16)
