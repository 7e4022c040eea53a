"""The published profile (params/published/): torchsisr's published checkpoints evaluated without training.

Its params check (what `make paper PROFILE=published` runs first) is run on a FAKE support-data folder built
here: our own small networks written in torchsisr's exact layout (sisrlib.interop.torchsisr.writer, the
inverse of the importer) at the paths the profile expects (sisrlib.experiments.published.LAYOUT), beside fake
datasets. The importer reads those files back exactly.
"""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from sisrlib.bands import Standardisation
from sisrlib.data.sen2venus import S2V1_SITES, S2V2_SITES, TESTING_SITES
from sisrlib.errors import CheckpointError
from sisrlib.experiments.evaluation.params import EvaluationParams
from sisrlib.experiments.evaluation.runner import evaluate
from sisrlib.experiments.published import (
    DATASETS,
    LAYOUT,
    SUPPORT_DATA,
    VARIANTS,
    registration_checkpoint,
    render,
    sr_checkpoint,
)
from sisrlib.interop.torchsisr import (
    RUN_CONFIG,
    import_generator,
    import_registration,
    load_flow_network,
    write_torchsisr_run,
)
from sisrlib.models.esrgan import ESRGANGenerator
from sisrlib.params import load
from sisrlib.pipeline import check
from sisrlib.registration.network import FlowEstimator
from tests.helpers.fake_data import make_sen2venus_root, make_worldstrat_index

ROOT = Path(__file__).resolve().parents[2]
PUBLISHED = ROOT / "params" / "published"
DATA_VARIABLES = ("SEN2VENUS_DATASET_PATH", "WORLDSTRATX2_DATASET_PATH", "WORLDSTRATX4_DATASET_PATH")
BANDS = {2: ("B2", "B3", "B4", "B8"), 4: ("B5", "B6", "B7", "B8A")}


def test_the_params_files_are_those_of_the_layout() -> None:
    """params/published/04_evaluation_*.yaml are written from LAYOUT (one place to change)."""
    for dataset in DATASETS:
        path = PUBLISHED / f"04_evaluation_{dataset}.yaml"
        assert path.read_text(encoding="utf-8") == render(dataset), (
            f"{path} differs from LAYOUT: run python -m sisrlib.experiments.published write params/published"
        )
    assert sorted(p.name for p in PUBLISHED.glob("04_*.yaml")) == sorted(
        f"04_evaluation_{d}.yaml" for d in DATASETS
    )


def test_without_any_data_the_check_names_every_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (SUPPORT_DATA, *DATA_VARIABLES):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(ROOT)  # the params files name the paper's params relative to the project root
    problems = "\n".join(check(PUBLISHED))
    for name in (SUPPORT_DATA, *DATA_VARIABLES):
        assert f"environment variable {name} is not set" in problems, name
    assert "14734095" in problems  # where to get the support data


def test_command_line_without_the_support_data(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "sisrlib.pipeline", "check", str(PUBLISHED)],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin"},
        cwd=tmp_path,
        timeout=120,
    )
    assert result.returncode == 2
    assert SUPPORT_DATA in result.stderr and "Traceback" not in result.stderr


# ------------------------------------------------------------------------------------ a fake support data
def _stats(bands: tuple[str, ...]) -> Standardisation:
    return Standardisation(
        bands, tuple(0.1 + 0.02 * i for i in range(4)), tuple(0.05 + 0.01 * i for i in range(4))
    )


def _flow() -> FlowEstimator:
    return FlowEstimator(
        10.0, depth=2, start_filters=2, min_skip_depth=1, features=4, input_normalisation="reference_rows"
    )


def make_support_data(root: Path) -> Path:
    """Every published checkpoint of the profile, at the paths of LAYOUT, made from tiny networks of ours:
    SR runs with their run configuration, registration networks alone (as the renamed published files)."""
    torch.manual_seed(0)
    for dataset in DATASETS:
        factor = 4 if dataset.endswith("x4") else 2
        bands = BANDS[factor] if dataset.startswith("s2v") else BANDS[2]
        for variant in VARIANTS:
            net = ESRGANGenerator(4, factor=float(factor), num_blocks=1, latent_size=4, growth_channels=2)
            path = Path(sr_checkpoint(dataset, variant, root=str(root)))
            write_torchsisr_run(path, _stats(bands), net.eval(), _flow().eval())
        reg = Path(registration_checkpoint(dataset, root=str(root)))
        if not reg.exists():
            write_torchsisr_run(reg, _stats(bands), flow=_flow().eval(), pretraining=True, run_config=False)
    return root


@pytest.fixture(scope="module")
def published_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The fake support data and fake datasets (every Sen2Venµs site, one patch each; wsx2, wsx4)."""
    root = tmp_path_factory.mktemp("published")
    make_support_data(root / "support")
    make_sen2venus_root(root / "sen2venus", sorted(set(S2V1_SITES) | set(S2V2_SITES) | set(TESTING_SITES)), 1)
    for factor in (2, 4):
        make_worldstrat_index(root / f"wsx{factor}", ["train", "val", "test"], factor=factor, lr_size=16)
    return root


@pytest.fixture()
def published_env(published_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private copy of the fake support data, the variables pointing to it and to the fake datasets."""
    support = Path(shutil.copytree(published_data / "support", tmp_path / "support"))
    monkeypatch.setenv(SUPPORT_DATA, str(support))
    monkeypatch.setenv("SEN2VENUS_DATASET_PATH", str(published_data / "sen2venus"))
    monkeypatch.setenv("WORLDSTRATX2_DATASET_PATH", str(published_data / "wsx2" / "index.csv"))
    monkeypatch.setenv("WORLDSTRATX4_DATASET_PATH", str(published_data / "wsx4" / "index.csv"))
    monkeypatch.chdir(ROOT)
    return support


def test_the_check_passes_on_the_support_data(published_env: Path) -> None:
    assert check(PUBLISHED) == []


def test_the_importer_reads_the_fake_support_data_back(published_env: Path) -> None:
    """The files of the fake support data are torchsisr checkpoints: the importer takes bands and factor
    from the run configuration beside an SR checkpoint, max_range from the caller for a registration one."""
    sr = import_generator(sr_checkpoint("s2v1x4", "geom", root=str(published_env)))
    assert (sr.bands, sr.factor) == (BANDS[4], 4.0)
    assert str(RUN_CONFIG) in sr.provenance["bands"]
    flow = import_registration(registration_checkpoint("wsx2", root=str(published_env)), max_range=20.0)
    assert flow.max_range == 20.0 and flow.net.input_normalisation == "reference_rows"
    with pytest.raises(CheckpointError, match=r"holds no generator\.sisr_model\.\* weights"):
        import_generator(registration_checkpoint("wsx2", root=str(published_env)), bands=list(BANDS[2]))


def test_missing_and_damaged_files_are_named(published_env: Path) -> None:
    missing = Path(sr_checkpoint("wsx4", "geomrad", root=str(published_env)))
    missing.unlink()
    damaged = Path(registration_checkpoint("s2v1x2", root=str(published_env)))
    damaged.write_bytes(damaged.read_bytes()[:100])  # an interrupted download
    no_config = Path(sr_checkpoint("s2v2x2", "baseline", root=str(published_env)))
    (no_config.parent / RUN_CONFIG).unlink()
    problems = "\n".join(check(PUBLISHED))
    assert f"{missing} does not exist" in problems
    assert f"{damaged} is not a torch checkpoint" in problems
    assert f"no run configuration {no_config.parent / RUN_CONFIG}" in problems


def test_unset_dataset_variables_and_a_wrong_support_folder_are_named(
    published_env: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("SEN2VENUS_DATASET_PATH")
    problems = "\n".join(check(PUBLISHED))
    assert "environment variable SEN2VENUS_DATASET_PATH is not set" in problems
    assert "04_evaluation_s2v1x2.yaml" in problems and "WORLDSTRAT" not in problems
    monkeypatch.setenv(SUPPORT_DATA, str(tmp_path / "nowhere"))
    assert f"{SUPPORT_DATA}={tmp_path / 'nowhere'} is not a folder" in "\n".join(check(PUBLISHED))


def test_layout_paths() -> None:
    assert sr_checkpoint("s2v1x4", "geomrad", root="R") == (
        "R/xsensor_paper/checkpoints/s2v1x4_esrgan_5x64x32/spatTrue_radTrue/last.ckpt"
    )
    assert (
        registration_checkpoint("s2v2x2", root="R")
        == "R/pretrained_registration_models/s2vx2_registration_model.ckpt"
    )
    assert LAYOUT.sr_checkpoint == "last.ckpt"


def test_the_published_evaluation_runs_on_the_support_data(published_env: Path, tmp_path: Path) -> None:
    """Stage 04 of the profile on the fake wsx2 data: the three torchsisr checkpoints and bicubic, the
    geometric metrics with the published registration network (no run configuration beside it: its max_range
    comes from the paper's params)."""
    params = load(EvaluationParams, PUBLISHED / "04_evaluation_wsx2.yaml")
    assert (params.psf_kernel, params.fru_sign, params.tv_variation) == ("reference",) * 3
    data_params = tmp_path / "03_training_wsx2_baseline.yaml"  # the paper's, without its 10 loader workers
    paper = ROOT / "params" / "paper" / "03_training_wsx2_baseline.yaml"
    data_params.write_text(f"extends: {paper}\ndata:\n  num_workers: 0\n", encoding="utf-8")
    runs = [dataclasses.replace(run, data_params=str(data_params)) for run in params.runs]
    params = dataclasses.replace(
        params, runs=runs, output_dir=str(tmp_path / "out"), figures_dir=None, device="cpu"
    )
    result = evaluate(params)
    table = result.table.set_index("model")
    assert list(table.index) == [
        "torchsisr_wsx2_baseline",
        "bicubic",
        "torchsisr_wsx2_geom",
        "torchsisr_wsx2_geomrad",
    ]
    assert set(table["dataset"]) == {"wsx2"}
    assert table["geom_mean"].notna().all() and table["psnr"].notna().all()
    flow = load_flow_network(registration_checkpoint("wsx2", root=str(published_env)), max_range=20.0)
    assert flow.max_range == 20.0 and flow.input_normalisation == "reference_rows"
