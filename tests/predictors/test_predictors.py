"""One model interface (``sisrlib.predictors.open_model``): the kind told from the file, torchsisr checkpoints
through the importer, the contract ``[B, C, h, w]`` DN -> ``[B, C, h·f, w·f]`` DN, and no torch on import."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from sisrlib.cli import main
from sisrlib.errors import SisrError
from sisrlib.predictors import ModelOptions, open_model
from sisrlib.predictors.torch_models import BicubicPredictor, TorchPredictor
from tests.helpers.export_helpers import smooth_dn, write_geotiff

FIXTURES = Path(__file__).resolve().parents[2].parent / "shared" / "reference" / "torchsisr-checkpoints"
needs_fixtures = pytest.mark.skipif(
    not FIXTURES.is_dir(), reason=f"the torchsisr checkpoint fixtures are not available ({FIXTURES})"
)


def _torchsisr(name: str) -> Path:
    (path,) = sorted((FIXTURES / name).glob("*.ckpt"))
    return path


def test_importing_the_package_pulls_no_torch() -> None:
    code = "import sys, sisrlib.predictors; print('torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


def test_bicubic_predictor_contract() -> None:
    baseline = BicubicPredictor(("B2", "B3", "B4", "B8"), 2.0)
    assert baseline.margin == 3  # sisrlib.degradation.bicubic_margin(2)
    dn = np.full((2, 4, 5, 6), 1234.0, dtype=np.float32)
    out = baseline(dn)
    assert out.shape == (2, 4, 10, 12) and out.dtype == np.float32
    np.testing.assert_allclose(out, 1234.0, rtol=1e-6)
    tensor = baseline.predict_tensor(torch.from_numpy(dn))
    np.testing.assert_allclose(tensor.numpy(), out)


@needs_fixtures
def test_a_torchsisr_checkpoint_reproduces_its_reference_outputs() -> None:
    predictor = open_model(_torchsisr("esrgan_x2_s2v"))
    assert isinstance(predictor, TorchPredictor) and predictor.name.startswith("torchsisr")
    io = torch.load(FIXTURES / "esrgan_x2_s2v" / "reference_io.pt", weights_only=True)
    out = predictor.predict_tensor(io["dn_input"])
    scale = predictor.model.out_std.detach().cpu() * 10000.0
    assert float(((out - io["dn_output"]).abs() / scale).max()) <= 1e-5
    np.testing.assert_allclose(predictor(io["dn_input"].numpy()), out.numpy(), rtol=0, atol=1e-3)


@needs_fixtures
def test_torchsisr_options_and_sisr_infer(tmp_path: Path) -> None:
    path = _torchsisr("esrgan_x2_s2v")
    bands = open_model(path).in_bands
    with pytest.raises(SisrError, match="unknown standardisation 'no-such-statistics'"):
        open_model(path, options=ModelOptions(standardisation="no-such-statistics"))
    restandardised = open_model(path, options=ModelOptions(standardisation="evoland"))
    assert restandardised.in_bands == bands
    source = write_geotiff(tmp_path / "in.tif", smooth_dn(len(bands), 12, 10), descriptions=bands)
    out = tmp_path / "sr.tif"
    argv = ["infer", "--no-progress", "--model", str(path), "--input", str(source), "--output", str(out)]
    assert main(argv) == 0 and out.is_file()


def test_a_torch_file_of_another_kind_is_refused_naming_the_three_kinds(tmp_path: Path) -> None:
    path = tmp_path / "weights.ckpt"
    torch.save({"weights": torch.zeros(3)}, path)
    with pytest.raises(SisrError, match=r"NAME\.yaml beside NAME\.onnx.*sisrlib training.*torchsisr"):
        open_model(path)
