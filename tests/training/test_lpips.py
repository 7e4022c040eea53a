"""Own LPIPS (PerBandLPIPS): fake weight files of the real layouts; known answers; gradients; bad files."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from sisrlib.errors import DataError
from sisrlib.metrics.lpips import (
    LPIPS_WEIGHTS_FILE,
    VGG16_WEIGHTS_FILE,
    PerBandLPIPS,
    load_lpips_weights,
    vgg16_features,
)
from sisrlib.training.fit import fit
from tests.helpers.lpips_fakes import LPIPS_CHANNELS, VGG16_CONVS, write_fake_weights
from tests.helpers.training_fakes import FakeDataModule, tiny_params


@pytest.fixture(scope="module")
def weights_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_fake_weights(tmp_path_factory.mktemp("lpips"))


@pytest.fixture(scope="module")
def lpips(weights_dir: Path) -> PerBandLPIPS:
    return PerBandLPIPS(weights_dir)


def images(bands: int = 3, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(2, bands, 32, 32, generator=g)


def test_vgg16_stack_has_torchvisions_module_indices() -> None:
    names = {k for k in vgg16_features().state_dict()}
    assert names == {f"{i}.{p}" for i in VGG16_CONVS for p in ("weight", "bias")}
    assert len(vgg16_features()) == 31


def test_loads_and_gives_known_answers(lpips: PerBandLPIPS, weights_dir: Path) -> None:
    x = images()
    out = lpips(x, x.clone())
    assert out.shape == (3,)
    assert torch.allclose(out, torch.zeros(3), atol=1e-7), "identical images"
    noisy = (x + 0.1 * torch.randn(x.shape, generator=torch.Generator().manual_seed(1))).clamp(0, 1)
    values = lpips(noisy, x)
    assert values.shape == (3,) and (values > 0).all()
    # band by band: band c of a 3-band batch equals the 1-band LPIPS of that band
    assert torch.allclose(lpips(noisy[:, 1:2], x[:, 1:2]), values[1:2], rtol=1e-5)
    # the VGG weights come from the file (classifier keys ignored)
    state = torch.load(weights_dir / VGG16_WEIGHTS_FILE, weights_only=True)
    assert torch.equal(lpips.features.state_dict()["28.weight"], state["features.28.weight"])
    assert len(lpips.features) == 30, "evaluated up to relu5_3"


def test_gradient_flows_to_the_prediction_only(lpips: PerBandLPIPS) -> None:
    x = images(bands=2)
    pred = (x + 0.05).clamp(0, 1).requires_grad_(True)
    lpips.train()
    assert not lpips.features.training, "the VGG stays in eval mode"
    lpips(pred, x).sum().backward()
    assert pred.grad is not None and pred.grad.abs().sum() > 0
    assert all(p.grad is None and not p.requires_grad for p in lpips.parameters())


def test_weight_files_accept_flat_vectors(tmp_path: Path) -> None:
    torch.save([torch.rand(c) for c in LPIPS_CHANNELS], tmp_path / "flat.pt")
    weights = load_lpips_weights(tmp_path / "flat.pt")
    assert [tuple(w.shape) for w in weights] == [(1, c, 1, 1) for c in LPIPS_CHANNELS]


def test_wrong_files_give_clear_errors(tmp_path: Path, weights_dir: Path) -> None:
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / VGG16_WEIGHTS_FILE).write_bytes((weights_dir / VGG16_WEIGHTS_FILE).read_bytes())
    shapes = [torch.rand(1, c, 1, 1) for c in LPIPS_CHANNELS]
    shapes[2] = torch.rand(1, 128, 1, 1)
    torch.save(shapes, bad / LPIPS_WEIGHTS_FILE)
    with pytest.raises(
        DataError, match=r"lpips_weights\.pt is not an LPIPS.*item 2 has shape \[1, 128, 1, 1\]"
    ):
        PerBandLPIPS(bad)
    torch.save(shapes[:4], bad / LPIPS_WEIGHTS_FILE)
    with pytest.raises(DataError, match=r"a list of 4 items.*list of 5 tensors"):
        PerBandLPIPS(bad)
    torch.save({"lin0": shapes[0]}, bad / LPIPS_WEIGHTS_FILE)
    with pytest.raises(DataError, match="a dict"):
        PerBandLPIPS(bad)
    (bad / LPIPS_WEIGHTS_FILE).write_text("not a torch file")
    with pytest.raises(DataError, match="could not be read as LPIPS linear-layer weights"):
        PerBandLPIPS(bad)
    torch.save([torch.rand(1, c, 1, 1) for c in LPIPS_CHANNELS], bad / LPIPS_WEIGHTS_FILE)
    state = torch.load(weights_dir / VGG16_WEIGHTS_FILE, weights_only=True)
    state["features.0.weight"] = torch.rand(64, 1, 3, 3)
    torch.save(state, bad / VGG16_WEIGHTS_FILE)
    with pytest.raises(DataError, match=r"vgg16-397923af\.pth does not hold torchvision's VGG16 features"):
        PerBandLPIPS(bad)


@pytest.mark.slow
def test_training_step_with_lpips(tmp_path: Path, weights_dir: Path) -> None:
    params = tiny_params(
        tmp_path, training={"losses": {"lpips": 1.0, "lpips_weights": str(weights_dir)}, "max_steps": 1}
    )
    result = fit(params, FakeDataModule())
    assert result.global_step == 1 and result.best_checkpoint.is_file()
