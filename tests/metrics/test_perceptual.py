"""Perceptual test metrics (LPIPS, PieAPP, BRISQUE): known answers with fake weights of the real layouts, and
the message naming the missing weight files (nothing is downloaded)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from sisrlib.errors import DataError, MissingDependencyError
from sisrlib.metrics import perceptual
from sisrlib.metrics.brisque import (
    BRISQUE_WEIGHTS_FILE,
    FEATURE_RANGES,
    SVR_RHO,
    brisque_features,
    brisque_score,
    halve,
    load_brisque_svr,
)
from sisrlib.metrics.perceptual import PERCEPTUAL_METRICS, perceptual_scores, perceptual_unavailable
from sisrlib.metrics.pieapp import PieAPPNetwork, load_pieapp, patches, pieapp_score
from tests.helpers.lpips_fakes import write_fake_weights


def images(b: int = 2, c: int = 2, size: int = 64, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (0.2 + 0.1 * torch.rand(b, c, size, size, generator=g)).clamp(0, 1)


@pytest.fixture()
def empty_hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    return tmp_path / "hub" / "checkpoints"


def test_unavailable_names_the_files_and_how_to_supply_them(empty_hub: Path) -> None:
    assert PERCEPTUAL_METRICS == ("lpips", "pieapp", "brisque")
    for name, files in (
        ("lpips", ("lpips_weights.pt", "vgg16-397923af.pth")),
        ("pieapp", ("PieAPPv0.1.pth",)),
        ("brisque", (BRISQUE_WEIGHTS_FILE,)),
    ):
        reason = perceptual_unavailable(name, option="evaluation.perceptual_weights")
        assert reason is not None
        assert all(f in reason for f in files) and str(empty_hub) in reason
        assert "Nothing is downloaded" in reason and "evaluation.perceptual_weights" in reason
        with pytest.raises(MissingDependencyError, match=files[0]):
            perceptual_scores(name, images(), images())
    with pytest.raises(ValueError, match="unknown perceptual metric"):
        perceptual_unavailable("psnr")


def test_lpips_identical_images_score_zero(tmp_path: Path, empty_hub: Path) -> None:
    folder = write_fake_weights(tmp_path / "weights")
    assert perceptual_unavailable("lpips", folder) is None
    x = images()
    same = perceptual_scores("lpips", x, x, folder)
    assert same.shape == (2, 2) and torch.allclose(same, torch.zeros(2, 2), atol=1e-6)
    other = perceptual_scores("lpips", x, images(seed=1), folder)
    assert (other > 0).all()
    write_fake_weights(empty_hub)  # the torch hub cache is the default folder
    assert perceptual_unavailable("lpips") is None


def test_brisque_svr_known_answers(tmp_path: Path, empty_hub: Path) -> None:
    x = images(1, 1, 48)
    features = brisque_features(x)
    assert features.shape == (1, 36) and torch.isfinite(features).all()
    ranges = torch.tensor(FEATURE_RANGES, dtype=torch.float64)
    scaled = -1 + 2 * (features - ranges[:, 0]) / (ranges[:, 1] - ranges[:, 0])
    # one support vector at the image's own features, coefficient 2: kernel 1, score 2 − ρ
    assert brisque_score(x, torch.tensor([2.0]), scaled).item() == pytest.approx(2.0 - SVR_RHO)
    assert brisque_score(x, torch.zeros(1), torch.zeros(1, 36)).item() == pytest.approx(-SVR_RHO)
    empty_hub.mkdir(parents=True, exist_ok=True)
    torch.save((torch.tensor([2.0]), scaled.float()), empty_hub / BRISQUE_WEIGHTS_FILE)
    scores = perceptual_scores("brisque", x, None)
    assert scores.shape == (1, 1) and scores.item() == pytest.approx(2.0 - SVR_RHO, rel=1e-5)
    (tmp_path / BRISQUE_WEIGHTS_FILE).write_text("not a torch file")
    with pytest.raises(DataError, match="BRISQUE"):
        load_brisque_svr(tmp_path / BRISQUE_WEIGHTS_FILE)
    with pytest.raises(ValueError, match="at least 16"):
        brisque_features(images(1, 1, 8))


def test_halving_keeps_a_flat_image_and_halves_the_size() -> None:
    assert torch.equal(
        halve(torch.full((1, 1, 10, 9), 3.0, dtype=torch.float64)), torch.full((1, 1, 5, 4), 3.0).double()
    )
    ramp = torch.arange(16, dtype=torch.float64).view(1, 1, 1, 16).expand(1, 1, 16, 16)
    out = halve(ramp)[0, 0, 0]
    assert out[2:6].tolist() == pytest.approx([4.5, 6.5, 8.5, 10.5]), "a ramp's interior: each pair's mean"


def test_pieapp_known_answers(tmp_path: Path) -> None:
    assert patches(torch.zeros(1, 1, 100, 100)).shape == (1, 4, 1, 64, 64)
    torch.manual_seed(0)
    net = PieAPPNetwork()
    for layer in (net.fc1_score, net.fc2_score, net.ref_score_subtract):
        torch.nn.init.zeros_(layer.bias)
    torch.nn.init.ones_(net.fc2_weight.bias)
    net.eval()
    x = images(2, 1, 64)
    assert torch.allclose(pieapp_score(net, x, x), torch.zeros(2))
    assert (pieapp_score(net, x, images(2, 1, 64, seed=3)) != 0).all()
    torch.save([1, 2], tmp_path / "bad.pth")
    with pytest.raises(DataError, match="not a state dict"):
        load_pieapp(tmp_path / "bad.pth")
    assert perceptual.WEIGHT_FILES.keys() == set(PERCEPTUAL_METRICS)
