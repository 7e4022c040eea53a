"""Metrics sensitivity benchmark: the distortion simulator, metric availability and the responses."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import torch
import yaml

from sisrlib.cli import main as cli_main
from sisrlib.data.params import DataParams
from sisrlib.degradation import mtf_downscale, upsample
from sisrlib.errors import MissingDependencyError, SisrError
from sisrlib.experiments.metrics_benchmark import dependencies, registry, runner
from sisrlib.experiments.metrics_benchmark.dependencies import missing_weights, piq_unavailable_reason
from sisrlib.experiments.metrics_benchmark.params import BenchmarkParams
from sisrlib.experiments.metrics_benchmark.registry import METRICS, select_metrics, total_variation, tv_diff
from sisrlib.experiments.metrics_benchmark.runner import benchmark, run_benchmark
from sisrlib.experiments.metrics_benchmark.simulation import REFERENCE_PATTERN, pattern_tile, simulate
from tests.helpers.lpips_fakes import write_fake_weights
from tests.helpers.training_fakes import FakeDataModule

#: The metrics that run with torch and torchmetrics only (no piq, no torchvision, no weight file).
OFFLINE = [
    "PSNR", "SSIM", "MS-SSIM", "GMSD", "MS-GMSD", "TV_DIFF", "HaarPSI", "L1", "L2", "VIF_p", "UQI", "SCC",
    "FRR", "FRR_0_80", "FRR_80_100", "FRR_Noise",
]  # fmt: skip
PIQ_ONLY = ["IW-SSIM", "DSS", "FSIM", "SR-SIM", "MDSI", "DISTS", "VSI"]
PIQ_ONLY += ["CLIP-IQA"]

DATA = DataParams(dataset="sen2venus", root="unused")


def reference(n: int = 4, size: int = 48) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    coarse = torch.rand(n, 1, size // 4, size // 4, generator=g)
    return (0.05 + 0.3 * upsample(coarse, 4) + 0.02 * torch.rand(n, 1, size, size, generator=g)).clamp(0, 1)


def fake_factory(data: Any, seed: int) -> FakeDataModule:
    return FakeDataModule(hr_size=32, factor=2, n=4, batch_size=2, seed=0)


def test_simulate_steps() -> None:
    x = reference()
    assert torch.equal(simulate(x), x), "every step None: identity"
    assert torch.equal(simulate(x, spatial=0.0, noise=0.0, pattern=0.0), x)
    assert torch.allclose(simulate(x, spectral=0.5), 0.1 + (x - 0.1) * 0.5)
    shifted = simulate(x, spatial=2**0.5)  # one pixel in x and in y
    assert torch.allclose(shifted[..., 4:-4, 4:-4], x[..., 5:-3, 5:-3], atol=1e-5)
    pattern = simulate(torch.zeros(1, 1, 8, 8), pattern=0.1)
    assert torch.allclose(pattern[0, 0, :4, :4], 0.1 * pattern_tile().float())
    assert torch.allclose(pattern[0, 0, 4:, 4:], pattern[0, 0, :4, :4])
    assert pattern_tile().abs().max() <= 0.5
    g1, g2 = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
    assert torch.equal(simulate(x, noise=0.01, generator=g1), simulate(x, noise=0.01, generator=g2))
    blurred = simulate(x, mtf=0.1)
    assert (blurred - x).abs().mean() > 0 and blurred.shape == x.shape


def test_metric_responses_move_the_expected_way() -> None:
    params = BenchmarkParams(
        data=DATA,
        output_dir="unused",
        mtfs=[0.05, 0.2, 0.6, None],
        spatial=[0.0, 0.5, 1.0, 2.0],
        spectral=[0.02, 0.1],
        noise=[0.0, 0.01],
        pattern=[0.0, 0.01],
        metrics=["PSNR", "SSIM", "L1", "FRR", "FRR_Noise"],
    )
    table, skipped = run_benchmark(reference(), 2.0, params)
    assert not skipped
    counts = table.groupby("metric").size()
    assert (counts == 4 * (4 + 2 + 2 + 2)).all(), "every metric on the same simulated patches"
    sharp = table[(table["mtf"] == "none") & (table["distortion"] == "spatial")].sort_values("level")
    psnr = sharp[sharp["metric"] == "PSNR"]["value"].tolist()
    assert psnr == sorted(psnr, reverse=True) and psnr[0] > psnr[-1] + 10, "PSNR falls as the shift grows"
    l1 = sharp[sharp["metric"] == "L1"]["value"].tolist()
    assert l1 == sorted(l1)
    at_zero = table[(table["distortion"] == "spatial") & (table["level"] == 0.0) & (table["metric"] == "FRR")]
    frr = [float(at_zero[at_zero["mtf"] == m]["value"].iloc[0]) for m in ("0.05", "0.2", "0.6", "none")]
    assert frr == sorted(frr), f"FRR rises as the MTF sharpens: {frr}"
    assert frr[-1] == pytest.approx(100.0)


def test_metrics_needing_weights_are_skipped_or_refused() -> None:
    absent = [name for name, spec in METRICS.items() if missing_weights(spec)]
    if not absent:
        pytest.skip("every weight file is present on this machine")
    chosen = {spec.name for spec in select_metrics(None)}
    assert not set(absent) & chosen
    assert {"PSNR", "SSIM", "FRR", "GMSD", "VIF_p"} <= chosen
    with pytest.raises(MissingDependencyError, match=absent[0]) as info:
        select_metrics([absent[0]])
    assert str(missing_weights(METRICS[absent[0]])[0]) in str(info.value)
    with pytest.raises(ValueError, match="unknown metric"):
        BenchmarkParams(data=DATA, output_dir="x", metrics=["NOPE"])


def test_multiscale_metric_on_small_patches_is_skipped_with_a_reason() -> None:
    params = BenchmarkParams(
        data=DATA,
        output_dir="unused",
        mtfs=[None],
        spatial=[0.0],
        spectral=[0.02],
        noise=[0.0],
        pattern=[0.0],
        metrics=["MS-SSIM", "PSNR"],
    )
    table, skipped = run_benchmark(reference(2, 32), 2.0, params)
    assert "MS-SSIM" in skipped and "161" in skipped["MS-SSIM"]
    assert set(table["metric"]) == {"PSNR"}


def test_piq_metrics_are_optional(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    assert [name for name, spec in METRICS.items() if spec.needs_piq] == PIQ_ONLY
    for module in (dependencies, registry):
        monkeypatch.setattr(module, "piq_unavailable_reason", lambda: "piq is not installed")
    with caplog.at_level(logging.WARNING, logger="sisrlib.experiments.metrics_benchmark"):
        chosen = [spec.name for spec in select_metrics(None)]
    with_weights = ("LPIPS", "BRISQUE", "BRISQUE_DIFF", "PieAPP")  # own code, run when their weights are here
    assert [name for name in chosen if name not in with_weights] == OFFLINE, (
        "order kept, piq metrics left out"
    )
    piq_messages = [r.getMessage() for r in caplog.records if "IW-SSIM" in r.getMessage()]
    assert len(piq_messages) == 1, "one message for every piq metric"
    assert all(name in piq_messages[0] for name in PIQ_ONLY)
    assert "install piq==0.8.0" in piq_messages[0] and "torchvision" in piq_messages[0]
    with pytest.raises(MissingDependencyError, match=r"DSS needs the optional packages piq and torchvision"):
        select_metrics(["PSNR", "DSS"])
    for module in (dependencies, registry):
        monkeypatch.setattr(module, "piq_unavailable_reason", lambda: None)
    assert [spec.name for spec in select_metrics(["DSS", "IW-SSIM"])] == ["DSS", "IW-SSIM"]


def test_piq_availability_is_reported() -> None:
    reason = piq_unavailable_reason()
    if reason is None:
        pytest.skip("piq and torchvision import here")
    assert "piq" in reason or "torchvision" in reason


def test_default_metrics_run_without_piq() -> None:
    params = BenchmarkParams(
        data=DATA,
        output_dir="unused",
        mtfs=[None],
        spatial=[0.0, 1.0],
        spectral=[0.02],
        noise=[0.0, 0.002, 0.01],
        pattern=[0.0],
        metrics=OFFLINE,
    )
    table, skipped = run_benchmark(reference(2, 56), 2.0, params)
    assert set(skipped) == {"MS-SSIM"} and "161" in skipped["MS-SSIM"], skipped
    noise = table[table["distortion"] == "noise"].sort_values("level")
    for metric, rising in (("GMSD", True), ("MS-GMSD", True), ("HaarPSI", False), ("VIF_p", False)):
        values = noise[noise["metric"] == metric]["value"].tolist()
        assert values == sorted(values, reverse=not rising) and values[0] != values[-1], (metric, values)
    for metric in ("UQI", "SCC", "SSIM"):
        values = noise[noise["metric"] == metric]["value"].tolist()
        assert values[0] == pytest.approx(1.0, abs=1e-4) and values[-1] < values[0], (metric, values)
    assert noise[(noise["metric"] == "PSNR") & (noise["level"] == 0.0)]["value"].item() == 80.0
    better = {name: METRICS[name].higher_is_better for name in ("GMSD", "MS-GMSD", "HaarPSI", "UQI", "SCC")}
    assert better == {"GMSD": False, "MS-GMSD": False, "HaarPSI": True, "UQI": True, "SCC": True}


def test_lpips_uses_the_training_loss_implementation(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    monkeypatch.setattr(registry, "_LAZY_MODELS", {})
    assert missing_weights(METRICS["LPIPS"])
    with pytest.raises(MissingDependencyError, match=r"LPIPS needs pretrained weights.*lpips_weights\.pt"):
        select_metrics(["LPIPS"])
    write_fake_weights(tmp_path / "hub" / "checkpoints")
    assert [spec.name for spec in select_metrics(["LPIPS"])] == ["LPIPS"]
    params = BenchmarkParams(
        data=DATA,
        output_dir="unused",
        mtfs=[None],
        spatial=[0.0],
        spectral=[0.02],
        noise=[0.0, 0.01],
        pattern=[0.0],
        metrics=["LPIPS"],
    )
    table, skipped = run_benchmark(reference(2, 40), 2.0, params)
    assert not skipped
    noise = table[table["distortion"] == "noise"].sort_values("level")["value"].tolist()
    assert noise[0] == pytest.approx(0.0, abs=1e-7) and noise[1] > 0


@pytest.mark.slow
def test_benchmark_end_to_end_and_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    params = BenchmarkParams(
        data=DATA,
        output_dir=str(tmp_path / "out"),
        figures_dir=str(tmp_path / "fig"),
        nb_patches=3,
        band="B4",
        crop=2,
        mtfs=[0.1, None],
        spatial=[0.0, 1.0],
        spectral=[0.02, 0.1],
        noise=[0.0, 0.01],
        pattern=[0.0, 0.01],
        metrics=["PSNR", "TV_DIFF", "FRR"],
    )
    result = benchmark(params, datamodule_factory=fake_factory)
    assert set(result.summary["metric"]) == {"PSNR", "TV_DIFF", "FRR"}
    summary = pd.read_csv(tmp_path / "out" / "summary.csv")
    assert {"spatial", "spectral", "noise", "pattern", "blur", "spatial_sign"} <= set(summary.columns)
    assert summary[["spatial", "spectral", "noise", "pattern", "blur"]].max(axis=1).eq(1.0).all()
    assert (tmp_path / "out" / "summary.md").read_text().startswith("| metric |")
    assert (tmp_path / "fig" / "05_benchmark_PSNR.png").is_file()
    assert (tmp_path / "fig" / "05_benchmark_summary.md").read_text().startswith("| metric |")
    assert len(pd.read_csv(tmp_path / "out" / "benchmark.csv")) == 3 * 2 * 8

    monkeypatch.setattr(runner, "default_datamodule", fake_factory)
    yaml_file = tmp_path / "05_bench.yaml"
    yaml_file.write_text(
        yaml.safe_dump(
            {
                "data": {"dataset": "sen2venus", "root": "unused"},
                "output_dir": str(tmp_path / "cli"),
                "nb_patches": 2,
                "mtfs": [None],
                "spatial": [0.0, 1.0],
                "spectral": [0.05],
                "noise": [0.0],
                "pattern": [0.0],
                "metrics": ["L2"],
            }
        )
    )
    assert cli_main(["benchmark-metrics", str(yaml_file), "--no-figures"]) == 0
    assert (tmp_path / "cli" / "summary.md").is_file()
    assert cli_main(["benchmark-metrics", str(yaml_file), "--metrics", "LPIPS"]) == (
        2 if missing_weights(METRICS["LPIPS"]) else 0
    )


def test_reference_conventions_pattern_tv_and_input() -> None:
    table = torch.tensor(REFERENCE_PATTERN, dtype=torch.float64)
    assert torch.equal(pattern_tile(kind="reference"), table) and table.abs().max() <= 0.5
    tiled = simulate(torch.zeros(1, 1, 8, 8, dtype=torch.float64), pattern=0.1, pattern_kind="reference")
    assert torch.allclose(tiled[0, 0, 4:, :4], 0.1 * table)
    flat = torch.ones(1, 1, 12, 12)
    assert torch.allclose(simulate(flat, mtf=0.1), flat), "reflected borders keep a flat patch flat"
    dark = simulate(flat, mtf=0.1, blur_padding="zeros")
    assert dark[0, 0, 0, 0] < 1.0 and torch.allclose(dark[..., 3:-3, 3:-3], flat[..., 3:-3, 3:-3])
    edge = torch.zeros(1, 1, 4, 4)
    edge[..., 2:] = 1.0  # one unit step per row: 4 horizontal differences of 1
    assert total_variation(edge, "l1").item() == 4.0 and total_variation(edge, "l2").item() == 2.0
    flat = torch.zeros_like(edge)
    assert tv_diff(flat, edge, "l1").item() == 4.0 / 16 and tv_diff(flat, edge, "l2").item() == 2.0
    x = reference(2, 48)
    grid = {"mtfs": [0.1, None], "spatial": [0.0], "spectral": [0.02], "noise": [0.0, 0.01], "pattern": [0.0]}
    ours = BenchmarkParams(data=DATA, output_dir="unused", metrics=["FRR", "TV_DIFF"], **grid)  # type: ignore[arg-type]
    real = BenchmarkParams(
        data=DATA,
        output_dir="unused",
        metrics=["FRR", "TV_DIFF"],
        fda_input="sentinel2",
        tv_norm="l2",
        **grid,  # type: ignore[arg-type]
    )
    # a "real" LR equal to our simulated one gives the same FDA input, hence the same FRR
    lr = mtf_downscale(x, 2.0, ours.input_mtf)
    a, _ = run_benchmark(x, 2.0, ours)
    b, _ = run_benchmark(x, 2.0, real, lr=lr)
    frr_a, frr_b = (t[t["metric"] == "FRR"]["value"].to_numpy() for t in (a, b))
    assert frr_a == pytest.approx(frr_b, abs=1e-4)
    tv_a, tv_b = (t[t["metric"] == "TV_DIFF"]["value"].to_numpy() for t in (a, b))
    assert (tv_a != tv_b).any(), "L2 TV (not normalised) differs from our per-pixel L1 TV"
    with pytest.raises(SisrError, match="fda_input: sentinel2"):
        run_benchmark(x, 2.0, real)
    with pytest.raises(ValueError, match="fda_input"):
        BenchmarkParams(data=DATA, output_dir="unused", fda_input="venus")  # type: ignore[arg-type]
