"""The least-squares linear filter: it recovers a known filter exactly, registers with the true flow, and
refuses what it cannot fit; ``sisr fit-linear`` writes a verified ONNX pair."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
import yaml

from sisrlib.bands import BANDS_10M, reflectance_to_dn, standardisation
from sisrlib.cli import main
from sisrlib.data.batch import Batch
from sisrlib.errors import SisrError
from sisrlib.experiments import least_squares
from sisrlib.experiments.least_squares import fit_least_squares, solve_polyphase
from sisrlib.flow import upsample_flow, warp
from sisrlib.models.linear import PolyphaseLinear
from sisrlib.params import to_mapping
from tests.helpers.training_fakes import tiny_params

STD = standardisation("sen2venusx2")


def _known_filter(seed: int = 0) -> PolyphaseLinear:
    torch.manual_seed(seed)
    return PolyphaseLinear(4, 2.0, kernel_size=3).double()


class LinearPairs:
    """A data module whose target is ``net`` applied to the input (standardised units), then displaced by
    a constant true flow of ``shift`` LR px, or not (``shift`` None: no true flow stored)."""

    def __init__(self, net: PolyphaseLinear, shift: float | None) -> None:
        self.net, self.shift = net, shift
        self.factor = 2.0
        self.input_bands = self.target_bands = BANDS_10M

    def setup(self, stage: str | None = None) -> None:
        gen = torch.Generator().manual_seed(1)
        self.batches = []
        for _ in range(3):
            x = torch.randn(2, 4, 12, 12, generator=gen, dtype=torch.float64)
            with torch.no_grad():
                hr = STD.unstandardise(self.net(x))
            flow = None
            if self.shift is not None:
                flow = torch.zeros(2, 2, 12, 12, dtype=torch.float64)
                flow[:, 0] = self.shift
                # stored so that warping the target by the true flow gives back net(x)
                hr = warp(hr, upsample_flow(-flow, 2))
            self.batches.append(
                Batch(
                    inputs=reflectance_to_dn(STD.unstandardise(x)).float(),
                    target=reflectance_to_dn(hr).float(),
                    input_bands=BANDS_10M,
                    target_bands=BANDS_10M,
                    input_resolution_m=10.0,
                    target_resolution_m=5.0,
                    true_flow=None if flow is None else flow.float(),
                )
            )

    def train_dataloader(self) -> list[Batch]:
        return self.batches[:2]

    def val_dataloader(self) -> list[Batch]:
        return self.batches[2:]


def test_solve_recovers_a_known_filter_exactly() -> None:
    net = _known_filter()
    gen = torch.Generator().manual_seed(2)
    inputs = [torch.randn(3, 4, 10, 9, generator=gen, dtype=torch.float64) for _ in range(2)]
    with torch.no_grad():
        pairs = [(x, net(x)) for x in inputs]
    weight, bias, rows, residual = solve_polyphase(pairs, 2, 3)
    torch.testing.assert_close(weight, net.conv.weight.detach(), atol=1e-8, rtol=0)
    torch.testing.assert_close(bias, net.conv.bias.detach(), atol=1e-8, rtol=0)
    assert rows == 2 * 3 * 8 * 7  # the LR positions whose 3×3 neighbourhood lies inside the patch
    assert residual.shape == (4,) and float(residual.max()) < 1e-6


def test_fit_registers_the_target_with_the_true_flow(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    net = _known_filter(3)
    monkeypatch.setattr(least_squares, "build_datamodule", lambda data, seed: LinearPairs(net, 0.0))
    fit = fit_least_squares(tiny_params(tmp_path), kernel_size=3, target="registered")
    torch.testing.assert_close(fit.model.model.conv.weight.double(), net.conv.weight, atol=1e-4, rtol=0)
    x_dn = torch.rand(1, 4, 9, 9) * 3000
    expected = reflectance_to_dn(STD.unstandardise(net(STD.standardise(x_dn.double() / 10000))))
    with torch.no_grad():
        torch.testing.assert_close(fit.model(x_dn).double(), expected, atol=0.05, rtol=0)
    # displaced targets: the registered fit undoes the displacement, the raw one cannot
    monkeypatch.setattr(least_squares, "build_datamodule", lambda data, seed: LinearPairs(net, 0.5))
    registered = fit_least_squares(tiny_params(tmp_path), kernel_size=3, target="registered")
    raw = fit_least_squares(tiny_params(tmp_path), kernel_size=3, target="raw")
    assert max(registered.rms_residual) < 0.05 < min(raw.rms_residual)


def test_fit_refuses_what_it_cannot_fit(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(
        least_squares, "build_datamodule", lambda data, seed: LinearPairs(_known_filter(), None)
    )
    with pytest.raises(SisrError, match=r"needs the stored true flow, which only simulated"):
        fit_least_squares(tiny_params(tmp_path), kernel_size=3, target="registered")
    with pytest.raises(SisrError, match=r"patches of 12×12 LR px are too small for a 13×13 filter"):
        fit_least_squares(tiny_params(tmp_path), kernel_size=13, target="raw")
    with pytest.raises(ValueError, match=r"target must be 'registered' or 'raw', got 'warped'"):
        fit_least_squares(tiny_params(tmp_path), target="warped")  # type: ignore[arg-type]


def test_cli_writes_a_verified_onnx_pair(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(
        least_squares, "build_datamodule", lambda data, seed: LinearPairs(_known_filter(), 0.25)
    )
    params = tmp_path / "03_training_fake.yaml"
    params.write_text(yaml.safe_dump(to_mapping(tiny_params(tmp_path))))
    missing = tmp_path / "missing" / "lin.onnx"
    assert main(["fit-linear", str(params), "-o", str(missing)]) == 2
    assert "does not exist" in capsys.readouterr().err
    out = tmp_path / "lin.onnx"
    assert main(["fit-linear", str(params), "-o", str(out), "--kernel-size", "3"]) == 0
    printed = capsys.readouterr().out
    assert "3×3 least-squares filter against the registered target" in printed
    sidecar: dict[str, Any] = yaml.safe_load(out.with_suffix(".yaml").read_text())
    assert sidecar["bands"] == list(BANDS_10M) and sidecar["factor"] == 2.0 and sidecar["model"] == "lin.onnx"
    registration = tmp_path / "02_registration.yaml"
    registration.write_text(
        yaml.safe_dump(to_mapping(tiny_params(tmp_path, training={"mode": "pretrain_registration"})))
    )
    assert main(["fit-linear", str(registration), "-o", str(tmp_path / "other.onnx")]) == 2
    assert "expected an SR run's params" in capsys.readouterr().err
