"""The evaluation's torchsisr conventions beside ours (FRU sign, TV variation, PSF kernel, perceptual and
"sim" metrics, checkpoint choice), each against a known answer."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from sisrlib.data.batch import Batch
from sisrlib.degradation import simulate_lr, upsample
from sisrlib.errors import SisrError
from sisrlib.experiments.evaluation import perceptual as perceptual_module
from sisrlib.experiments.evaluation.conventions import conventions, conventions_line
from sisrlib.experiments.evaluation.loop import evaluate_predictors, fda_fft_size
from sisrlib.experiments.evaluation.params import EvaluationParams, RunSpec
from sisrlib.experiments.evaluation.runs import resolve_checkpoint
from sisrlib.experiments.evaluation.simulation import simulated_batch
from sisrlib.metrics import fda
from sisrlib.metrics.pixel import crop, lr_fidelity, rmse, tv_variation, tv_variation_reference
from sisrlib.predictors import BicubicPredictor
from tests.helpers.training_fakes import FakeDataModule

BANDS = ("B2", "B3", "B4", "B8")


def _params(**options: object) -> EvaluationParams:
    return EvaluationParams(runs=[RunSpec(checkpoint="unused")], output_dir="unused", margin=2, **options)  # type: ignore[arg-type]


def _batch(factor: int = 2, hr: int = 32) -> Batch:
    dm = FakeDataModule(hr_size=hr, factor=factor, n=4, batch_size=2, seed=0)
    dm.setup("test")
    batch: Batch = next(iter(dm.test_dataloader()))
    return batch


def test_tv_variation_reference_known_answer_on_a_batch() -> None:
    # one bright pixel in a 3×3 image: anisotropic TV = 2 (vertical) + 2 (horizontal) = 4
    ref = torch.zeros(2, 1, 3, 3)
    ref[:, :, 1, 1] = 1.0
    pred = ref.clone()
    pred[0] *= 2.0  # TV 8 for the first image, 4 for the second
    # torchsisr: TV summed over the batch (12 vs 8), |12 − 8| / 8, divided by the batch size 2
    assert tv_variation_reference(pred, ref).tolist() == [pytest.approx(0.25)]
    # ours: 100·(mean 6 − mean 4)/4
    assert tv_variation(pred, ref).tolist() == [pytest.approx(50.0)]
    # the reference form is unsigned: a smoother prediction reads the same magnitude
    assert tv_variation_reference(ref * 0.5, ref).tolist() == [pytest.approx(0.25)]
    assert tv_variation(ref * 0.5, ref).tolist() == [pytest.approx(-50.0)]


def test_tv_variation_and_fru_sign_options_reach_the_table() -> None:
    batch = _batch()
    bicubic = BicubicPredictor(BANDS, 2.0)
    ours, _ = evaluate_predictors([bicubic], [batch], _params())
    ref, _ = evaluate_predictors([bicubic], [batch], _params(tv_variation="reference", fru_sign="reference"))
    pred = upsample(batch.inputs / 10000.0, 2.0)
    target = batch.target / 10000.0
    expected = tv_variation_reference(pred, target, 2)
    for k, band in enumerate(BANDS):
        assert ref[0][f"tv_variation_{band}"] == pytest.approx(float(expected[k]), rel=1e-5)
        assert ours[0][f"tv_variation_{band}"] < 0  # bicubic is smoother than the target: signed, negative
        assert ref[0][f"tv_variation_{band}"] > 0
    # FRU: torchsisr divides by the signed sum of the (negative) dB profile: the same magnitude, ≤ 0
    blurred = _Blurred()
    ours, _ = evaluate_predictors([blurred], [batch], _params())
    ref, _ = evaluate_predictors([blurred], [batch], _params(fru_sign="reference"))
    assert ours[0]["fru"] > 0
    for band in BANDS:
        assert ref[0][f"fru_{band}"] == pytest.approx(-ours[0][f"fru_{band}"], rel=1e-9)
    assert ref[0]["frr"] == ours[0]["frr"] and ref[0]["fro"] == ours[0]["fro"]


class _Blurred(BicubicPredictor):
    """Nearest-neighbour ×2 then a 3 × 3 box blur: below the bicubic input's spectrum (FRU > 0)."""

    def __init__(self) -> None:
        super().__init__(BANDS, 2.0)

    def predict_tensor(self, dn: torch.Tensor) -> torch.Tensor:
        up = torch.nn.functional.interpolate(dn, scale_factor=2.0, mode="nearest")
        return torch.nn.functional.avg_pool2d(up, 3, stride=1, padding=1, count_include_pad=False)


class _DarkBorder(BicubicPredictor):
    """Bicubic inside, zero on a border of ``width`` HR px: a model whose margin is garbage."""

    def __init__(self, width: int) -> None:
        super().__init__(BANDS, 2.0)
        self.width = width

    def predict_tensor(self, dn: torch.Tensor) -> torch.Tensor:
        up = super().predict_tensor(dn)
        inside = torch.zeros_like(up)
        w = self.width
        inside[..., w:-w, w:-w] = up[..., w:-w, w:-w]
        return inside


def test_fda_margin_option_decides_whether_the_border_reaches_the_profiles() -> None:
    batch = _batch()
    border, bicubic = _DarkBorder(2), BicubicPredictor(BANDS, 2.0)
    # cropped (ours): the profiles see what the other metrics see, where this model is bicubic, exactly
    ours, _ = evaluate_predictors([border, bicubic], [batch], _params())
    for name in ("frr", "fru", "fro", "hf_excess_db"):
        assert ours[0][name] == pytest.approx(ours[1][name], abs=1e-9), name
    assert ours[1]["frr"] == 0 and ours[1]["hf_excess_db"] == 0
    # reference (torchsisr's): the whole patch, so the dark border changes the spectrum
    ref, _ = evaluate_predictors([border, bicubic], [batch], _params(fda_margin="reference"))
    assert ref[0]["hf_excess_db"] != pytest.approx(0.0, abs=1e-3)
    assert ref[1]["hf_excess_db"] == 0
    # the pixel metrics never saw the border: the same either way
    assert ref[0]["psnr"] == ours[0]["psnr"]


def test_fda_fft_size_is_twice_the_pixels_seen_as_torchsisr_pads_its_patch() -> None:
    assert fda_fft_size(128, 128, 0) == 256  # torchsisr: 2 × W of the whole patch
    assert fda_fft_size(128, 128, 16) == 192  # the quick profile's crop: 96 px, padded by 2 as well
    assert fda_fft_size(30, 30, 2) == 52  # 2 × 26, a multiple of 4
    assert fda_fft_size(31, 31, 2) == 56  # 2 × 27 = 54, rounded up to a multiple of 4
    with pytest.raises(SisrError, match="leaves 0 px of a 32×32 patch; lower the evaluation margin"):
        fda_fft_size(32, 32, 16)


@pytest.mark.parametrize(("fda_margin", "crop_px"), [("cropped", 2), ("reference", 0)])
def test_fda_profiles_are_the_pixels_seen_padded_to_twice_their_width(fda_margin: str, crop_px: int) -> None:
    """Known answer: the bicubic row's profiles are those of the crop (or the whole patch) of the bicubic
    prediction, the target and the input, each zero-padded to twice the analysed width."""
    batch = _batch()
    bicubic = BicubicPredictor(BANDS, 2.0)
    _, extras = evaluate_predictors([bicubic], [batch], _params(fda_margin=fda_margin))
    size = 2 * (32 - 2 * crop_px)
    up = upsample(batch.inputs / 10000.0, 2.0)
    freqs, expected_input = fda.fft_profile(crop(up, crop_px), size)
    _, expected_target = fda.fft_profile(crop(batch.target / 10000.0, crop_px), size)
    profiles = extras["profiles"][0]  # [input, target, prediction] × [R, C]
    assert np.allclose(extras["freqs"], freqs.numpy())
    assert len(extras["freqs"]) == size // 4
    for got, want in (
        (profiles[0], expected_input),
        (profiles[1], expected_target),
        (profiles[2], expected_input),
    ):
        assert np.allclose(got, want.T.numpy(), rtol=1e-4, equal_nan=True)


def test_psf_kernel_option_reaches_lr_fidelity() -> None:
    batch = _batch(factor=4, hr=64)
    bicubic = BicubicPredictor(BANDS, 4.0)
    exact, _ = evaluate_predictors([bicubic], [batch], _params())
    reference, _ = evaluate_predictors([bicubic], [batch], _params(psf_kernel="reference"))
    pred = upsample(batch.inputs / 10000.0, 4.0)
    want, _ = lr_fidelity(pred, batch.inputs / 10000.0, 4.0, 0.1, 2, kernel="reference")
    for k, band in enumerate(BANDS):
        assert reference[0][f"lr_rmse_{band}"] == pytest.approx(float(want[k]), rel=1e-5)
    # at ×4 torchsisr's 7 × 7 kernel truncates the MTF-0.1 PSF: a different downscaling
    assert reference[0]["lr_rmse"] != pytest.approx(exact[0]["lr_rmse"], rel=1e-3)


def test_sim_metrics_known_answer() -> None:
    batch = _batch()
    rows, _ = evaluate_predictors([BicubicPredictor(BANDS, 2.0)], [batch], _params(sim=True, sim_mtf=0.4))
    target = batch.target / 10000.0
    sim = simulate_lr(batch.target, 2.0, 0.4)
    want = rmse(upsample(sim, 2.0) / 10000.0, target, 2)
    for k, band in enumerate(BANDS):
        assert rows[0][f"sim_rmse_{band}"] == pytest.approx(float(want[k]), rel=1e-5)
    assert rows[0]["sim_psnr"] > 0 and 0 < rows[0]["sim_ssim"] <= 1
    # the simulated batch keeps the real input of bands the target lacks, and its DN units
    partial = dataclasses.replace(batch, target=batch.target[:, :3], target_bands=BANDS[:3])
    simulated = simulated_batch(partial, 0.4)
    assert torch.equal(simulated.inputs[:, 3], batch.inputs[:, 3].float())
    assert torch.allclose(simulated.inputs[:, :3], simulate_lr(batch.target[:, :3], 2.0, 0.4))


def test_perceptual_metrics_computed_when_available_named_when_not(monkeypatch: pytest.MonkeyPatch) -> None:
    batch = _batch()
    monkeypatch.setattr(
        perceptual_module,
        "perceptual_unavailable",
        lambda name, weights_dir=None, option=None: None if name == "brisque" else f"no {name} weights",
    )
    # a stand-in score with a known answer: the mean reflectance of each band of each image
    monkeypatch.setattr(
        perceptual_module,
        "perceptual_scores",
        lambda name, pred, ref, weights_dir=None: pred.mean(dim=(2, 3)),
    )
    rows, extras = evaluate_predictors(
        [BicubicPredictor(BANDS, 2.0)], [batch], _params(perceptual=["lpips", "brisque"])
    )
    pred = upsample(batch.inputs / 10000.0, 2.0)[..., 2:-2, 2:-2]  # margin 2
    want = pred.mean(dim=(0, 2, 3))
    for k, band in enumerate(BANDS):
        assert rows[0][f"brisque_{band}"] == pytest.approx(float(want[k]), rel=1e-5)
        assert math.isnan(rows[0][f"lpips_{band}"])
    assert math.isnan(rows[0]["lpips"]) and extras["notes"] == {"lpips": "no lpips weights"}
    line = conventions_line(conventions(_params(perceptual=["lpips", "brisque"]), extras["notes"]))
    assert "lpips not computed (no lpips weights)" in line and "brisque" in line


def test_unknown_perceptual_metric_is_refused() -> None:
    with pytest.raises(ValueError, match="perceptual: unknown metric 'niqe'"):
        _params(perceptual=["niqe"])


def test_checkpoint_choice(tmp_path: Path) -> None:
    folder = tmp_path / "run"
    (folder / "checkpoints").mkdir(parents=True)
    for name in ("best", "last", "best_total"):
        (folder / "checkpoints" / f"{name}.ckpt").write_bytes(b"x")
    spec = RunSpec(checkpoint=str(folder))
    assert resolve_checkpoint(spec).name == "best.ckpt"
    assert resolve_checkpoint(spec, "last").name == "last.ckpt"
    assert resolve_checkpoint(spec, "best_total").name == "best_total.ckpt"
    with pytest.raises(FileNotFoundError, match=r"best_brisque\.ckpt .*checkpoint: best_brisque"):
        resolve_checkpoint(spec, "best_brisque")


def test_conventions_say_which_are_used(tmp_path: Path) -> None:
    ours = conventions_line(conventions(_params()))
    assert "(ours)" in ours and "torchsisr" not in ours and "checkpoint best" in ours
    paper = conventions(
        _params(
            psf_kernel="reference",
            fru_sign="reference",
            tv_variation="reference",
            fda_margin="reference",
            checkpoint="best_total",
        )
    )
    line = conventions_line(paper)
    assert line.count("torchsisr's") == 4 and "checkpoint best_total" in line
    assert "FFT profiles of the whole patch" in line and "less the margin (ours)" in ours
    assert json.loads(json.dumps(paper)) == paper
    assert np.isfinite(paper["lr_mtf"])
