"""The per-patch, per-band least-squares line."""

from __future__ import annotations

import pytest
import torch

from sisrlib.linear_fit import fit_line


def test_an_exact_line_is_recovered_per_patch_and_band() -> None:
    x = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    slopes = torch.tensor([0.5, -2.0, 1.5]).view(1, 3, 1, 1)
    y = slopes * x + 3.0
    a, b = fit_line(x, y)
    assert a.shape == b.shape == (2, 3, 1, 1)
    torch.testing.assert_close(a, slopes.expand(2, 3, 1, 1), atol=1e-5, rtol=0)
    torch.testing.assert_close(b, torch.full((2, 3, 1, 1), 3.0), atol=1e-5, rtol=0)


def test_flat_patches_and_bounds() -> None:
    x = torch.ones(1, 1, 4, 4)
    a, b = fit_line(x, 2 * x + 1, flat_slope=1.0)
    assert float(a) == 1.0 and float(b) == pytest.approx(2.0)  # the intercept of the slope it kept
    x = torch.arange(16.0).view(1, 1, 4, 4)
    a, b = fit_line(x, 10 * x, slope_bounds=(0.2, 5.0))
    assert float(a) == 5.0
    assert float(b) == pytest.approx(10 * float(x.mean()) - 5 * float(x.mean()))
    with pytest.raises(ValueError, match="differ in shape"):
        fit_line(x, x[..., :2])
