"""The params check that `make paper` runs first: every file valid, and a paper run without its data or with a
typo stops within seconds naming the file, the key, the path or the environment variable."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from sisrlib.data.sen2venus import S2V1_SITES, S2V2_SITES, TESTING_SITES
from sisrlib.metrics.lpips import LPIPS_WEIGHTS_FILE, VGG16_WEIGHTS_FILE
from sisrlib.params import ParamsError, extends_chain, read_yaml
from sisrlib.pipeline import STAGES, check, notebook_params
from sisrlib.pipeline import main as pipeline_main
from tests.helpers.fake_data import make_sen2venus_root, make_worldstrat_index

ROOT = Path(__file__).resolve().parents[1]
PROFILES = sorted(p.name for p in (ROOT / "params").iterdir() if p.is_dir())
DATA_VARIABLES = ("SEN2VENUS_DATASET_PATH", "WORLDSTRATX2_DATASET_PATH", "WORLDSTRATX4_DATASET_PATH")


@pytest.mark.parametrize("profile", ["smoke", "quick", "embedded"])
def test_embedded_profiles_check_before_their_data_are_built(
    profile: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """From an empty working directory the embedded data do not exist yet: stage 01 builds them."""
    monkeypatch.chdir(tmp_path)
    assert check(ROOT / "params" / profile, root=ROOT) == []


def test_every_params_file_belongs_to_a_stage() -> None:
    for profile in PROFILES:
        for f in (ROOT / "params" / profile).glob("*.yaml"):
            assert f.name[:2] in STAGES, f


def test_paper_profile_without_datasets_names_the_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in DATA_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    problems = "\n".join(check(ROOT / "params" / "paper", root=ROOT))
    for name in DATA_VARIABLES:
        assert f"environment variable {name} is not set" in problems


def test_paper_profile_with_wrong_paths_names_them(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in DATA_VARIABLES:
        monkeypatch.setenv(name, str(tmp_path / f"missing_{name.lower()}"))
    problems = "\n".join(check(ROOT / "params" / "paper", root=ROOT))
    for name in DATA_VARIABLES:
        assert f"missing_{name.lower()}" in problems


def test_a_typo_names_the_file_and_the_key(tmp_path: Path) -> None:
    folder = tmp_path / "params"
    folder.mkdir()
    source = (ROOT / "params" / "quick" / "04_evaluation_s2v1x2.yaml").read_text()
    assert "\nname:" in source
    (folder / "04_evaluation_s2v1x2.yaml").write_text(source.replace("\nname:", "\nnmae:"))
    shutil.copytree(ROOT / "params" / "quick" / "base", folder / "base")
    problems = check(folder, inputs=False)
    assert len(problems) == 1
    assert "04_evaluation_s2v1x2.yaml" in problems[0] and "'nmae'" in problems[0]
    assert "mosaic_columns" in problems[0]  # the valid keys are listed


def test_a_typo_in_a_base_names_the_file_the_key_and_the_base(tmp_path: Path) -> None:
    folder = tmp_path / "params"
    shutil.copytree(ROOT / "params" / "quick", folder)
    base = folder / "base" / "04_evaluation.yaml"
    source = base.read_text()
    assert "\nmosaic_columns:" in source
    base.write_text(source.replace("\nmosaic_columns:", "\nmosaic_colums:"))
    problems = check(folder, inputs=False)
    assert len(problems) == 1, problems  # one line for the three evaluations that extend it
    assert "'mosaic_colums'" in problems[0] and str(base) in problems[0]
    for name in ("04_evaluation_s2v1x2.yaml", "04_evaluation_s2v1x4.yaml", "04_evaluation_s2v2x2.yaml"):
        assert name in problems[0]


def test_bases_are_not_runs_and_extend_no_later_stage() -> None:
    """``params/<profile>/base/NN_*.yaml`` are extended, never run (neither ``make paper`` nor the check picks
    them up); a file's bases belong to its stage or an earlier one, so that ``make`` reruns what a change of
    a base affects; every base is used."""
    used: set[Path] = set()
    for profile in PROFILES:
        for f in (ROOT / "params" / profile).glob("*.yaml"):
            for base in extends_chain(f)[1:]:
                # a base of this profile, or of another one (the published profile starts from the paper's)
                where = base.resolve().parent
                assert where.name == "base" and where.parent.parent == ROOT / "params", f"{f} extends {base}"
                assert base.name[:2] in STAGES and base.name[:2] <= f.name[:2], f"{f} extends {base}"
                used.add(base.resolve())
    for base in sorted((ROOT / "params").glob("*/base/*.yaml")):
        assert base.name[:2] in STAGES, f"{base}: a base is named after the first stage it serves (NN_*.yaml)"
        assert base.resolve() in used, f"{base} is extended by no params file"


def test_command_line_exit_status(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin"}
    shutil.copytree(ROOT / "params" / "paper", tmp_path / "paper")
    result = subprocess.run(
        [sys.executable, "-m", "sisrlib.pipeline", "check", str(tmp_path / "paper")],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
    )
    assert result.returncode == 2
    assert "SEN2VENUS_DATASET_PATH" in result.stderr


# ------------------------------------------------------------------------------------------------------------
# The paper profile on fake datasets: the check opens every dataset and finds every weight file
# ------------------------------------------------------------------------------------------------------------


def _named_testing_sites() -> set[str]:
    """The testing sites the paper's params files name explicitly (the EVOLAND run tests on its own)."""
    names: set[str] = set()
    for f in (ROOT / "params" / "paper").glob("*.yaml"):
        data = read_yaml(f).get("data") or {}
        names |= set(data.get("testing_sites") or [])
    return names


PAPER_SITES = sorted(set(S2V1_SITES) | set(S2V2_SITES) | set(TESTING_SITES) | _named_testing_sites())


@pytest.fixture(scope="module")
def paper_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Usable fake datasets for the paper profile: every Sen2Venµs site (7 patches each: the benchmark's
    batch of 128 fits in the s2v1 training split), wsx2 and wsx4 with 16 training pairs (one batch), and
    the LPIPS weight files (empty: the check only looks for them) in a torch hub cache."""
    root = tmp_path_factory.mktemp("paper_data")
    make_sen2venus_root(root / "sen2venus", PAPER_SITES, rows=7)
    splits = ["train"] * 16 + ["val", "test"]
    for factor in (2, 4):
        make_worldstrat_index(root / f"wsx{factor}", splits, factor=factor)
    hub = root / "torch" / "hub" / "checkpoints"
    hub.mkdir(parents=True)
    for name in (LPIPS_WEIGHTS_FILE, VGG16_WEIGHTS_FILE):
        (hub / name).write_bytes(b"")
    return root


def _copy(source: Path, target: Path) -> Path:
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(source, target)
    return target


@pytest.fixture()
def paper_env(paper_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private copy of the fake paper data, the variables pointing to it, and an empty working directory
    (the runs of the profile have not written anything)."""
    data = _copy(paper_data, tmp_path / "data")
    monkeypatch.setenv("SEN2VENUS_DATASET_PATH", str(data / "sen2venus"))
    monkeypatch.setenv("WORLDSTRATX2_DATASET_PATH", str(data / "wsx2" / "index.csv"))
    monkeypatch.setenv("WORLDSTRATX4_DATASET_PATH", str(data / "wsx4"))
    monkeypatch.setenv("TORCH_HOME", str(data / "torch"))
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return data


def test_paper_profile_passes_on_usable_data(paper_env: Path) -> None:
    """Checkpoints written by stages 02/03 of the profile (registration, export) are not required."""
    assert check(ROOT / "params" / "paper", root=ROOT) == []


def test_paper_profile_without_lpips_weights_names_the_files_and_the_option(
    paper_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = paper_env / "empty_torch_home"
    empty.mkdir()
    monkeypatch.setenv("TORCH_HOME", str(empty))
    problems = check(ROOT / "params" / "paper", root=ROOT)
    assert len(problems) == 1, problems  # one line for the 18 SR runs that share the setting
    problem = problems[0]
    assert "training.losses.lpips is 1 (> 0)" in problem
    assert LPIPS_WEIGHTS_FILE in problem and VGG16_WEIGHTS_FILE in problem
    assert str(empty / "hub" / "checkpoints") in problem and "training.losses.lpips_weights" in problem
    assert "03_training_s2v1x2_baseline.yaml" in problem and "03_training_wsx4_geomrad.yaml" in problem
    assert "02_registration" not in problem  # pre-training does not use LPIPS
    # an explicit weights folder is looked in instead of the hub cache
    folder = ROOT / "params" / "paper"
    local = paper_env / "local_params"
    _copy(folder, local)
    weights = paper_env / "weights"
    weights.mkdir()
    base = local / "base" / "03_training.yaml"  # what every SR run of the profile extends
    assert "lpips_weights: null" in base.read_text()
    base.write_text(base.read_text().replace("lpips_weights: null", f"lpips_weights: {weights}"))
    problems = check(local, root=ROOT)
    assert len(problems) == 1 and str(weights) in problems[0]
    for name in (LPIPS_WEIGHTS_FILE, VGG16_WEIGHTS_FILE):
        (weights / name).write_bytes(b"")
    assert check(local, root=ROOT) == []


def test_paper_profile_with_empty_indexes_names_every_site(paper_env: Path) -> None:
    """The case of the report: an empty index.csv in every site and a WorldStrat index with an id column."""
    for site in PAPER_SITES:
        index = paper_env / "sen2venus" / site / "index.csv"
        index.write_text(index.read_text().splitlines()[0] + "\n")  # the header only
    (paper_env / "wsx4" / "index.csv").write_text("id\nLandcover-0000\n")
    problems = check(ROOT / "params" / "paper", root=ROOT)
    text = "\n".join(problems)
    for site in PAPER_SITES:
        assert f"site {site}: {paper_env / 'sen2venus' / site / 'index.csv'} has no rows" in text
    assert "training site ARM" in text and "testing site ES-IC3XG" in text
    assert "data.site_list s2v1" in text and "data.site_list s2v2" in text
    wsx4 = [p for p in problems if "wsx4" in p and "index.csv" in p]
    assert len(wsx4) == 1, wsx4  # one line for the 4 params files that read it
    assert "lacks the column(s) ['split', 'hr_img', 'lr_img', 'correlation']" in wsx4[0]
    assert "present columns are ['id']" in wsx4[0]
    assert "02_registration_wsx4.yaml" in wsx4[0] and "03_training_wsx4_geom.yaml" in wsx4[0]
    assert not any("wsx2" in p for p in problems)  # untouched


def test_paper_profile_problems_with_sites_splits_patches_and_batches(paper_env: Path) -> None:
    s2v = paper_env / "sen2venus"
    shutil.rmtree(s2v / "ATTO")  # an s2v2 site
    (s2v / "ARM" / "ARM.zip").unlink()  # an s2v1 site whose patches are gone
    index = pd.read_csv(s2v / "NARYN" / "index.csv", sep="\t")
    index.drop(columns=["b2b3b4b8_05m"]).to_csv(s2v / "NARYN" / "index.csv", sep="\t", index=False)
    wsx2 = pd.read_csv(paper_env / "wsx2" / "index.csv", sep="\t")
    wsx2.loc[wsx2["split"] == "val", "correlation"] = 0.1  # below min_correlation
    wsx2.to_csv(paper_env / "wsx2" / "index.csv", sep="\t", index=False)
    text = "\n".join(check(ROOT / "params" / "paper", root=ROOT))
    assert "data.site_list s2v2: training site folder(s) ['ATTO'] not found under data.root" in text
    assert "training site ARM: site ARM, row 0, column b2b3b4b8_10m" in text
    assert f"zip archive {s2v / 'ARM' / 'ARM.zip'} does not exist" in text
    assert "training site NARYN" in text and "lacks the column(s) ['b2b3b4b8_05m']" in text
    assert "no pair with split == 'val' and correlation > 0.2" in text
    assert "02_registration_wsx2.yaml" in text


def test_too_few_training_patches_for_one_batch(paper_env: Path, tmp_path: Path) -> None:
    folder = tmp_path / "params"
    folder.mkdir()
    shutil.copytree(ROOT / "params" / "paper" / "base", folder / "base")
    source = (ROOT / "params" / "paper" / "02_registration_s2vx2.yaml").read_text()
    assert "\ndata:\n" in source and "\n  batch_size:" not in source  # from base/02_run.yaml
    (folder / "02_registration_s2vx2.yaml").write_text(
        source.replace("\ndata:\n", "\ndata:\n  batch_size: 1000\n")
    )
    problems = check(folder)
    assert len(problems) == 1
    assert "data.batch_size 1000: the training split has 133 patch(es)" in problems[0]
    assert "140 patch(es) of the training sites" in problems[0] and "Lower data.batch_size" in problems[0]


def test_registration_checkpoints_are_required_unless_the_profile_writes_them(
    paper_env: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "params"
    folder.mkdir()
    shutil.copytree(ROOT / "params" / "paper" / "base", folder / "base")
    training = "03_training_s2v1x2_geomrad.yaml"
    shutil.copy(ROOT / "params" / "paper" / training, folder / training)
    problems = check(folder)
    assert len(problems) == 1
    assert (
        f"{training}: registration.checkpoint build/paper/runs/registration_s2vx2/checkpoints/best.ckpt"
        in (problems[0])
    )
    assert "does not exist" in problems[0] and "02_registration" in problems[0]
    shutil.copy(ROOT / "params" / "paper" / "02_registration_s2vx2.yaml", folder)
    assert check(folder) == []  # stage 02 of the same profile writes it
    (folder / "02_registration_s2vx2.yaml").unlink()
    checkpoint = Path("build/paper/runs/registration_s2vx2/checkpoints/best.ckpt")
    checkpoint.parent.mkdir(parents=True)
    checkpoint.write_bytes(b"")
    assert check(folder) == []  # there already


def test_check_reads_one_patch_per_site_and_split(paper_env: Path, tmp_path: Path) -> None:
    """What keeps the check at seconds on the real datasets: one patch per site and split, each once (for
    the paper's runs; the EVOLAND run's own band configuration reads its sites' patches again)."""
    from sisrlib.data import raster

    folder = _copy(ROOT / "params" / "paper", tmp_path / "paper_runs")
    for f in folder.glob("*.yaml"):
        if (read_yaml(f).get("data") or {}).get("load_b11b12"):  # the EVOLAND run (10 m + 20 m + B11/B12)
            f.unlink()
    reads: list[str] = []
    original = raster.RasterReader.read

    def counting(self: raster.RasterReader, path: str, what: str = "") -> object:
        reads.append(path)
        return original(self, path, what)

    with pytest.MonkeyPatch.context() as m:
        m.setattr(raster.RasterReader, "read", counting)
        assert check(folder, root=ROOT) == []
    # 26 sites × (input + target) for x2 and x4; 3 splits × (LR + HR) for wsx2 and wsx4
    assert len(reads) == 26 * 2 * 2 + 2 * 3 * 2
    assert len(set(reads)) == len(reads)


def test_notebook_params_resolve_against_the_project_root_without_moving(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A notebook's default ``params_file`` (``../params/…``, relative to ``notebooks/``) loads from the
    project root, where `make paper` and `make lab` run the kernels; the working directory never changes."""
    monkeypatch.chdir(ROOT)
    params = notebook_params("../params/smoke/07_report.yaml")
    assert Path.cwd() == ROOT
    assert params == notebook_params("params/smoke/07_report.yaml")
    assert params == notebook_params(ROOT / "params" / "smoke" / "07_report.yaml")
    assert params == notebook_params("params/smoke/07_report.yaml", root=ROOT)


def test_notebook_params_refuse_a_kernel_inside_the_notebooks_folder(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT / "notebooks")
    with pytest.raises(ParamsError) as err:
        notebook_params("../params/smoke/07_report.yaml")
    assert "inside the notebooks folder" in str(err.value) and "make lab" in str(err.value)
    assert Path.cwd() == ROOT / "notebooks"


def test_command_line_with_a_project_root(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--root`` names the project root the params files' own references are resolved against, from any
    working directory; bad arguments print the usage."""
    monkeypatch.chdir(tmp_path)
    assert pipeline_main(["check", str(ROOT / "params" / "smoke"), "--root", str(ROOT)]) == 0
    assert "every file of" in capsys.readouterr().out
    assert pipeline_main(["check"]) == 2
    assert "usage: python -m sisrlib.pipeline check PARAMS_DIR [--root DIR]" in capsys.readouterr().err


@pytest.mark.skipif(shutil.which("make") is None, reason="needs GNU make")
def test_make_reruns_a_profile_when_a_base_it_extends_in_another_profile_changes() -> None:
    """params/embedded/ extends params/quick/base/: those bases are prerequisites of its notebooks."""
    done = subprocess.run(
        ["make", "-pn", "--no-print-directory", "PROFILE=embedded", "paper-notebooks"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    rule = next(
        line
        for line in done.stdout.splitlines()
        if line.startswith("build/embedded/03_training_wsx2_geom.ipynb:")
    )
    prerequisites = rule.split(":", 1)[1].split("|")[0].split()
    for base in ("params/quick/base/03_training.yaml", "params/quick/base/03_training_x2.yaml"):
        assert base in prerequisites
    assert "params/embedded/base/03_training_wsx2.yaml" in prerequisites
    assert "build/embedded/02_registration_wsx2.ipynb" in prerequisites
