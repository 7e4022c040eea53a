"""Every pipeline notebook runs headlessly with its smoke-profile params, in stage order, as `make paper`
runs them.

The notebooks run in a fresh temporary working directory, so the smoke data, runs and figures they write do
not touch the checkout and nothing is reused from an earlier run.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from sisrlib.pipeline import STAGES, load_stage_params, stage_of

ROOT = Path(__file__).resolve().parents[2]
SMOKE = sorted((ROOT / "params" / "smoke").glob("*.yaml"))


def test_every_smoke_params_file_is_valid() -> None:
    assert SMOKE, "params/smoke holds no params file"
    for f in SMOKE:
        load_stage_params(f)


def test_every_stage_has_a_notebook_and_smoke_params() -> None:
    stages = {stage_of(f) for f in SMOKE}
    for stage, (stem, _) in STAGES.items():
        assert (ROOT / "notebooks" / f"{stem}.ipynb").is_file(), f"notebooks/{stem}.ipynb is missing"
        assert stage in stages, f"params/smoke has no file for stage {stage} ({stem})"


@pytest.mark.slow
def test_smoke_pipeline_executes(tmp_path: Path) -> None:
    import papermill as pm

    for f in SMOKE:
        stem = STAGES[stage_of(f)][0]
        out = tmp_path / "executed" / f"{f.stem}.ipynb"
        out.parent.mkdir(parents=True, exist_ok=True)
        pm.execute_notebook(
            str(ROOT / "notebooks" / f"{stem}.ipynb"),
            str(out),
            parameters={"params_file": str(f)},
            kernel_name="sisr",
            cwd=str(tmp_path),
            progress_bar=False,
        )
        assert out.is_file()
    # the smoke sites are simulated: the evaluation scored the ceilings beside the models
    ceilings = tmp_path / "build" / "smoke" / "evaluation" / "smoke" / "ceilings.csv"
    assert ceilings.is_file()
    assert set(pd.read_csv(ceilings)["reference"]) == {"hr_radiometry", "training_offset", "test_offset"}
