"""The linear polyphase filter: known answers (nearest and bicubic-like placements), errors."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from sisrlib.models.linear import PolyphaseLinear


def test_centre_tap_on_every_phase_is_nearest_upsampling() -> None:
    model = PolyphaseLinear(2, 3.0, kernel_size=5)
    with torch.no_grad():
        model.conv.weight.zero_()
        model.conv.bias.zero_()
        for band in range(2):
            for phase in range(9):
                model.conv.weight[band * 9 + phase, band, 2, 2] = 1.0
    x = torch.randn(2, 2, 7, 6)
    torch.testing.assert_close(model(x), F.interpolate(x, scale_factor=3, mode="nearest"))


def test_each_phase_has_its_own_filter() -> None:
    """Phase (0, 1) of band 0 reads the right-hand LR neighbour; every other HR pixel is the bias."""
    model = PolyphaseLinear(1, 2.0, kernel_size=3)
    with torch.no_grad():
        model.conv.weight.zero_()
        model.conv.bias.copy_(torch.tensor([0.0, -1.0, -1.0, -1.0]))
        model.conv.weight[1, 0, 1, 2] = 2.0
    x = torch.arange(12.0).view(1, 1, 3, 4)
    y = model(x)
    assert y.shape == (1, 1, 6, 8)
    right = F.pad(x, (0, 1))[..., 1:]  # zero padding beyond the last column
    torch.testing.assert_close(y[..., 0::2, 1::2] + 1.0, 2.0 * right)
    assert torch.equal(y[..., 1::2, :], torch.full((1, 1, 3, 8), -1.0))
    assert model.margin == 2


def test_other_output_bands_and_margin() -> None:
    model = PolyphaseLinear(4, 4.0, out_bands=3, kernel_size=7)
    assert model(torch.zeros(1, 4, 5, 5)).shape == (1, 3, 20, 20)
    assert (model.margin, model.receptive_field) == (12, 12)
    assert sum(p.numel() for p in model.parameters()) == 4 * 3 * 16 * 49 + 3 * 16


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"factor": 2.5}, r"factor must be an integer >= 1, got 2.5"),
        ({"kernel_size": 4}, r"kernel_size must be an odd integer >= 1, got 4"),
        ({"kernel_size": 0}, r"kernel_size must be an odd integer >= 1, got 0"),
    ],
)
def test_errors(kwargs: dict[str, float], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        PolyphaseLinear(4, **kwargs)  # type: ignore[arg-type]
