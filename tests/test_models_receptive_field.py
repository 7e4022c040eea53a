"""The receptive field reported by every generator is exact.

Two properties, on small random networks in float64:

* sound: a prediction on a tile, cropped by ``receptive_field`` on every side, equals the prediction on the
  whole image (the input far from the kept region, i.e. the padding, does not matter);
* tight: the output row just inside the cropped band (``receptive_field − 1`` from the tile border) depends on
  an input row outside the tile, while the row at ``receptive_field`` does not. Dependencies are read from
  the exact support of the gradient (no cancellation, unlike finite differences through deep networks).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
import torch

from sisrlib.models import CARN, BicubicInterpolation, ESRGANGenerator, JointSuperResolution, SRModel

torch.set_default_dtype(torch.float32)


def esrgan(factor: float, blocks: int = 1, base: int = 2) -> SRModel:
    return ESRGANGenerator(
        3, factor, num_blocks=blocks, latent_size=4, growth_channels=2, upsampling_base=base
    ).double()


def carn(factor: float, kernel_size: int = 3) -> SRModel:
    model = CARN(3, factor, groups=2, features_per_factor=1, n_cascading=2, n_eres=2, kernel_size=kernel_size)
    return model.double()


def joint(factor: float) -> SRModel:
    sisr = CARN(5, factor, groups=2, features_per_factor=1, n_cascading=1, n_eres=2)
    return JointSuperResolution(sisr, BicubicInterpolation(2, 2.0)).double()


MODELS: dict[str, Callable[[], SRModel]] = {
    "esrgan_x2": lambda: esrgan(2.0),
    "esrgan_x3": lambda: esrgan(3.0),
    "esrgan_x4": lambda: esrgan(4.0),
    "esrgan_x3_base3": lambda: esrgan(3.0, base=3),
    "carn_x2": lambda: carn(2.0),
    "carn_x3": lambda: carn(3.0),
    "carn_x4": lambda: carn(4.0),
    "carn_x2_k5": lambda: carn(2.0, kernel_size=5),
    "bicubic_x2": lambda: BicubicInterpolation(3, 2.0).double(),
    "bicubic_x3": lambda: BicubicInterpolation(3, 3.0).double(),
    "bicubic_x4": lambda: BicubicInterpolation(3, 4.0).double(),
    "joint_carn_bicubic_x2": lambda: joint(2.0),
}


def make_inputs(model: SRModel, height: int, width: int) -> list[torch.Tensor]:
    """Random float64 inputs; for a joint model, (hr, lr) with lr 2× smaller."""
    if isinstance(model, JointSuperResolution):
        return [
            torch.randn(1, model.hr_bands, height, width, dtype=torch.float64),
            torch.randn(1, model.lr_bands, height // 2, width // 2, dtype=torch.float64),
        ]
    return [torch.randn(1, model.in_bands, height, width, dtype=torch.float64)]


def row_scale(model: SRModel, index: int) -> int:
    """How many hr input rows one row of input ``index`` covers."""
    return 2 if isinstance(model, JointSuperResolution) and index == 1 else 1


def row_dependencies(model: SRModel, inputs: list[torch.Tensor], out_rows: list[int]) -> list[list[set[int]]]:
    """For each output row (centre column), the set of input rows (per input) with a non-zero gradient."""
    leaves = [x.clone().requires_grad_(True) for x in inputs]
    y = model(*leaves)
    result = []
    for row in out_rows:
        grads = torch.autograd.grad(y[0, :, row, y.shape[-1] // 2].sum(), leaves, retain_graph=True)
        result.append([set(torch.nonzero(g.abs().sum(dim=(0, 1, 3))).flatten().tolist()) for g in grads])
    return result


@pytest.mark.parametrize("name", list(MODELS))
def test_receptive_field_is_tight(name: str) -> None:
    torch.manual_seed(0)
    model = MODELS[name]()
    factor = model.factor
    rf = model.receptive_field
    top, bottom = 4, 4  # the virtual tile spans LR rows [top, height − bottom), more than 2·rf output rows
    height = top + bottom + 2 * math.ceil(rf / factor) + 4
    height += height % 2
    inputs = make_inputs(model, height, 6)
    out_top = round(top * factor)
    out_end = round((height - bottom) * factor)
    rows = [out_top + rf, out_top + rf - 1, out_end - 1 - rf, out_end - rf]
    deps = row_dependencies(model, inputs, rows)

    def inside_top(dep: list[set[int]]) -> bool:
        return all(min(d) >= top // row_scale(model, i) for i, d in enumerate(dep) if d)

    def inside_bottom(dep: list[set[int]]) -> bool:
        return all(max(d) <= (height - bottom) // row_scale(model, i) - 1 for i, d in enumerate(dep) if d)

    assert inside_top(deps[0]), f"{name}: row {rf} from the tile top depends on rows outside the tile"
    assert not inside_top(deps[1]), f"{name}: receptive_field {rf} is not tight at the top"
    assert inside_bottom(deps[2]), f"{name}: row {rf} from the tile bottom depends on rows outside the tile"
    assert not inside_bottom(deps[3]), f"{name}: receptive_field {rf} is not tight at the bottom"


@pytest.mark.parametrize("name", ["esrgan_x2", "esrgan_x3", "carn_x4", "bicubic_x4", "joint_carn_bicubic_x2"])
def test_tile_prediction_matches_whole_image_inside_the_receptive_field(name: str) -> None:
    """Perturbing the input outside a tile does not change the prediction more than rf px inside it."""
    torch.manual_seed(1)
    model = MODELS[name]()
    f, rf = model.factor, model.receptive_field
    size = 2 * int(rf / f) + 12
    size += size % 2
    inputs = make_inputs(model, size + 8, size + 8)
    tile = [x[..., 2 // row_scale(model, i) :, 2 // row_scale(model, i) :] for i, x in enumerate(inputs)]
    tile = [t[..., : size // row_scale(model, i), : size // row_scale(model, i)] for i, t in enumerate(tile)]
    with torch.no_grad():
        whole = model(*inputs)
        part = model(*tile)
    o, n = round(2 * f), round(size * f)
    expected = whole[..., o : o + n, o : o + n]
    assert part.shape == expected.shape
    kept = (slice(None), slice(None), slice(rf, n - rf), slice(rf, n - rf))
    torch.testing.assert_close(part[kept], expected[kept], rtol=0, atol=1e-12)
    # just inside the band the tile's padding shows
    band = (slice(None), slice(None), slice(rf - 1, n - rf + 1), slice(rf - 1, n - rf + 1))
    assert (part[band] - expected[band]).abs().max() > 0


@pytest.mark.slow
def test_paper_depth_esrgan_receptive_field_exceeds_reference_margin() -> None:
    """6 RRDB ×2 (paper depth, narrow): exact field 187 output px although the reference margin is 66."""
    torch.manual_seed(0)
    model = esrgan(2.0, blocks=6)
    assert (model.margin, model.receptive_field) == (66, 187)
    top, height = 4, 4 + 2 * 94 + 8
    out_top = 2 * top
    deps = row_dependencies(
        model, make_inputs(model, height, 4), [out_top + 187, out_top + 186, out_top + 66]
    )
    assert min(deps[0][0]) >= top
    assert min(deps[1][0]) < top and min(deps[2][0]) < top
