"""Bicubic baseline, joint 10 m + 20 m model and ``build_generator``."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from sisrlib.models.bicubic import BicubicInterpolation
from sisrlib.models.carn import CARN
from sisrlib.models.esrgan import ESRGANGenerator
from sisrlib.models.joint import JointSuperResolution
from sisrlib.models.params import ModelParams
from sisrlib.models.registry import build_generator
from sisrlib.params import ParamsError, from_mapping


def small_carn(in_bands: int, factor: float = 2.0) -> CARN:
    return CARN(in_bands, factor, groups=2, features_per_factor=2, n_cascading=1, n_eres=2)


@pytest.mark.parametrize("factor", [2.0, 3.0, 4.0])
def test_bicubic(factor: float) -> None:
    model = BicubicInterpolation(4, factor)
    x = torch.randn(2, 4, 8, 8)
    y = model(x)
    assert y.shape == (2, 4, int(8 * factor), int(8 * factor))
    assert model.margin == 1
    expected = F.interpolate(x, scale_factor=factor, mode="bicubic", align_corners=False)
    torch.testing.assert_close(y, expected)
    # constants are preserved (bicubic weights sum to 1)
    constant = model(torch.full((1, 4, 6, 6), 3.0))
    torch.testing.assert_close(constant, torch.full_like(constant, 3.0))


def test_bicubic_backpropagates_to_its_input() -> None:
    x = torch.randn(1, 2, 5, 5, requires_grad=True)
    BicubicInterpolation(2, 2.0)(x).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()


def test_joint_evoland_margin_and_shapes() -> None:
    with torch.device("meta"):
        sisr = CARN(10, 2.0, groups=4, features_per_factor=64)
    joint = JointSuperResolution(sisr, BicubicInterpolation(6, 2.0))
    assert joint.margin == 43 == 41 + 2 * 1
    assert joint.hr_bands == 4 and joint.lr_bands == 6 and joint.in_bands == 10 and joint.out_bands == 10
    assert joint.receptive_field == 41 + 2 * 3


@pytest.mark.parametrize("factor", [2.0, 3.0, 4.0])
def test_joint_forward_shapes(factor: float) -> None:
    joint = JointSuperResolution(small_carn(10, factor), BicubicInterpolation(6, 2.0))
    y = joint(torch.randn(2, 4, 12, 12), torch.randn(2, 6, 6, 6))
    assert y.shape == (2, 10, int(12 * factor), int(12 * factor))


def test_joint_is_the_sisr_model_on_the_concatenated_stack() -> None:
    torch.manual_seed(0)
    sisr = small_carn(10)
    joint = JointSuperResolution(sisr, BicubicInterpolation(6, 2.0))
    hr, lr = torch.randn(1, 4, 8, 8), torch.randn(1, 6, 4, 4)
    stack = torch.cat((hr, F.interpolate(lr, scale_factor=2.0, mode="bicubic", align_corners=False)), dim=1)
    torch.testing.assert_close(joint(hr, lr), sisr(stack))


def test_joint_with_a_carn_lr_branch_x3() -> None:
    """The reference also tests a CARN ×3 branch (and hr 3× larger than lr)."""
    joint = JointSuperResolution(small_carn(7), small_carn(3, 3.0))
    assert joint.margin == int(joint.sisr.margin + 2 * small_carn(3, 3.0).margin)
    y = joint(torch.randn(2, 4, 12, 12), torch.randn(2, 3, 4, 4))
    assert y.shape == (2, 7, 24, 24)
    y.sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in joint.parameters())


def test_joint_without_lr_branch() -> None:
    sisr = small_carn(4)
    joint = JointSuperResolution(sisr)
    x = torch.randn(1, 4, 8, 8)
    torch.testing.assert_close(joint(x), sisr(x))
    assert joint.margin == sisr.margin and joint.lr_bands == 0
    with pytest.raises(ValueError, match="no lr_to_hr"):
        joint(x, torch.randn(1, 2, 4, 4))


def test_joint_errors() -> None:
    joint = JointSuperResolution(small_carn(10), BicubicInterpolation(6, 2.0))
    with pytest.raises(ValueError, match="needs the lr"):
        joint(torch.randn(1, 4, 8, 8))
    with pytest.raises(ValueError, match=r"lr must be 2\.0× smaller"):
        joint(torch.randn(1, 4, 8, 8), torch.randn(1, 6, 8, 8))
    with pytest.raises(ValueError, match=r"hr must be a floating \[B, 4, H, W\]"):
        joint(torch.randn(1, 5, 8, 8), torch.randn(1, 6, 4, 4))
    with pytest.raises(ValueError, match="leaves no 10 m band"):
        JointSuperResolution(small_carn(6), BicubicInterpolation(6, 2.0))


def test_build_generator_joint() -> None:
    params = ModelParams(
        generator="carn",
        carn_features_per_factor=2,
        carn_groups=2,
        carn_cascading_blocks=1,
        lr_to_hr="bicubic",
    )
    model = build_generator(params, 4, lr_bands=6)
    assert isinstance(model, JointSuperResolution)
    assert model.in_bands == 10 and model.out_bands == 10 and model.hr_bands == 4 and model.lr_bands == 6
    assert model.margin == ((2 * 3 * 1 + 2) * 2 + 1) + 2 * 1
    assert model(torch.randn(1, 4, 8, 8), torch.randn(1, 6, 4, 4)).shape == (1, 10, 16, 16)
    assert build_generator(params, 4, 8, lr_bands=6).out_bands == 8
    with pytest.raises(ValueError, match="lr_bands"):
        build_generator(params, 4)


def test_build_generator_plain() -> None:
    esrgan = build_generator(ModelParams(num_blocks=1, latent_size=8, growth_channels=4, factor=4.0), 4)
    assert isinstance(esrgan, ESRGANGenerator) and esrgan.factor == 4.0 and esrgan.margin == 7 * 4 + 2
    bicubic = build_generator(ModelParams(generator="bicubic", factor=4.0), 4)
    assert isinstance(bicubic, BicubicInterpolation) and bicubic.factor == 4.0
    with pytest.raises(ValueError, match=r"model\.lr_to_hr is null"):
        build_generator(ModelParams(), 4, lr_bands=6)
    with pytest.raises(ValueError, match="cannot output 3"):
        build_generator(ModelParams(generator="bicubic"), 4, 3)


def test_model_params_from_yaml_mapping() -> None:
    params = from_mapping(ModelParams, {"generator": "carn", "factor": 3, "margin_rule": "receptive_field"})
    assert params.factor == 3.0 and params.margin_rule == "receptive_field"
    with pytest.raises(ParamsError, match="factor must be >= 1"):
        from_mapping(ModelParams, {"factor": 0.5})
    with pytest.raises(ParamsError, match="kernel_size must be odd"):
        from_mapping(ModelParams, {"kernel_size": 4})
