"""Notebook 08's helpers: the Wald scores of the model against bicubic, the acceptance checks, the params."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from sisrlib.bands import standardisation
from sisrlib.checkpoint import LoadedGenerator
from sisrlib.experiments.evoland import (
    EVOLAND_BANDS,
    EvolandParams,
    acceptance,
    training_params_file,
    wald_scores,
)
from sisrlib.models.bicubic import BicubicInterpolation
from sisrlib.models.joint import JointSuperResolution
from sisrlib.params import from_mapping
from tests.helpers.evoland_fakes import HR, LR, evoland_batch
from tests.helpers.training_fakes import tiny_params


def _bicubic_generator(tmp_path: Path) -> LoadedGenerator:
    """A joint model that is bicubic end to end (bicubic ×2 20 m branch, bicubic ×2 SISR network)."""
    params = tiny_params(tmp_path, training={"standardisation": "evoland"})
    model = JointSuperResolution(BicubicInterpolation(10, 2.0), BicubicInterpolation(6, 2.0)).eval()
    return LoadedGenerator(
        model=model,
        standardisation=standardisation("evoland", HR),
        target_standardisation=standardisation("evoland", EVOLAND_BANDS),
        input_bands=HR,
        target_bands=EVOLAND_BANDS,
        factor=2.0,
        params=params,
        lr_bands=LR,
    )


def test_a_bicubic_model_scores_as_bicubic_under_the_wald_protocol(tmp_path: Path) -> None:
    generator = _bicubic_generator(tmp_path)
    mapping = generator.params.to_mapping()
    mapping["training"]["wald"] = {"validation_margin": 2}
    run = from_mapping(type(generator.params), mapping)
    scores = wald_scores(generator, run, [evoland_batch(2, 32, seed=s) for s in range(2)])
    assert list(scores.index) == ["model", "bicubic"]
    assert {f"psnr_{b}" for b in EVOLAND_BANDS} <= set(scores.columns)
    pd.testing.assert_series_equal(scores.loc["model"], scores.loc["bicubic"], check_names=False, atol=1e-3)


def test_acceptance_compares_each_band_with_bicubic() -> None:
    fda = pd.DataFrame(
        [
            {"model": "evoland", "frr_B2": 5.0, "frr_B5": 0.5},
            {"model": "bicubic", "frr_B2": 0.0, "frr_B5": 1.0},
        ]
    )
    wald = pd.DataFrame({"psnr_B11": [36.0, 34.0], "psnr_B12": [33.0, 34.0]}, index=["model", "bicubic"])
    checks = acceptance(fda, wald, ["B2", "B5"], ["B11", "B12"])
    assert list(checks["band"]) == ["B2", "B5", "B11", "B12"]
    assert list(checks["holds"]) == [True, False, True, False]


def _params(**changes: object) -> dict[str, object]:
    return {
        "name": "e",
        "training_params": "params/smoke/03_training_evoland.yaml",
        "evaluation": {"runs": [{"params_file": "t.yaml"}], "output_dir": "out"},
        **changes,
    }


def test_training_params_file_falls_back_to_the_project_of_the_params_file(tmp_path: Path) -> None:
    project = tmp_path / "project"
    (project / "params" / "smoke").mkdir(parents=True)
    run = project / "params" / "smoke" / "03_training_elsewhere.yaml"  # not in the working directory
    run.write_text("name: x\n")
    params = from_mapping(EvolandParams, _params(training_params="params/smoke/03_training_elsewhere.yaml"))
    assert training_params_file(params, project / "params" / "smoke" / "08_evoland_model.yaml") == run


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [("roi_pixels", [1, 2, 3], "roi_pixels"), ("crop", [0.5, 2.0], "crop"), ("threads", 0, "threads")],
)
def test_bad_notebook_params_are_named(key: str, value: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        from_mapping(EvolandParams, _params(**{key: value}))
