"""The params check that `make paper` runs first: every file valid, and a paper run without its data or with a
typo stops within seconds naming the file, the key, the path or the environment variable."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from sisrlib.pipeline import STAGES, check

ROOT = Path(__file__).resolve().parents[1]
DATA_VARIABLES = ("SEN2VENUS_DATASET_PATH", "WORLDSTRATX2_DATASET_PATH", "WORLDSTRATX4_DATASET_PATH")


@pytest.mark.parametrize("profile", ["smoke", "quick"])
def test_embedded_profiles_check_before_their_data_are_built(
    profile: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """From an empty working directory the embedded data do not exist yet: stage 01 builds them."""
    monkeypatch.chdir(tmp_path)
    assert check(ROOT / "params" / profile) == []


def test_every_params_file_belongs_to_a_stage() -> None:
    for profile in ("smoke", "quick", "paper"):
        for f in (ROOT / "params" / profile).glob("*.yaml"):
            assert f.name[:2] in STAGES, f


def test_paper_profile_without_datasets_names_the_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in DATA_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    problems = "\n".join(check(ROOT / "params" / "paper"))
    for name in DATA_VARIABLES:
        assert f"environment variable {name} is not set" in problems


def test_paper_profile_with_wrong_paths_names_them(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in DATA_VARIABLES:
        monkeypatch.setenv(name, str(tmp_path / f"missing_{name.lower()}"))
    problems = "\n".join(check(ROOT / "params" / "paper"))
    for name in DATA_VARIABLES:
        assert f"missing_{name.lower()}" in problems


def test_a_typo_names_the_file_and_the_key(tmp_path: Path) -> None:
    folder = tmp_path / "params"
    folder.mkdir()
    source = (ROOT / "params" / "quick" / "04_evaluation_s2v1x2.yaml").read_text()
    assert "\nmosaic_columns:" in source
    (folder / "04_evaluation_s2v1x2.yaml").write_text(source.replace("\nmosaic_columns:", "\nmosaic_colums:"))
    problems = check(folder, inputs=False)
    assert len(problems) == 1
    assert "04_evaluation_s2v1x2.yaml" in problems[0] and "'mosaic_colums'" in problems[0]
    assert "mosaic_columns" in problems[0]  # the valid keys are listed


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
