"""Ceilings of simulated sites: reference images built from the truth, scored like the predictors."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import pandas as pd
import pytest
import torch

from sisrlib.bands import reflectance_to_dn
from sisrlib.data.batch import Batch
from sisrlib.errors import SisrError
from sisrlib.experiments import report
from sisrlib.experiments.evaluation.ceilings import (
    ceiling_references,
    hr_radiometry,
    mean_true_flow,
    registered_target,
    systematic_offset,
)
from sisrlib.experiments.evaluation.files import CEILINGS_FILE
from sisrlib.experiments.evaluation.loop import evaluate_predictors
from sisrlib.experiments.evaluation.oracle import oracle_batch
from sisrlib.experiments.evaluation.params import EvaluationParams, RunSpec
from sisrlib.predictors import BicubicPredictor
from tests.metrics.test_oracle import BANDS, FACTOR, _batch, _Fixed

PARAMS = EvaluationParams(runs=[RunSpec(checkpoint="unused")], output_dir="unused", margin=8)


def _with_flow(batch: Batch, flow: torch.Tensor) -> Batch:
    return dataclasses.replace(batch, true_flow=flow)


def test_mean_true_flow_is_the_pixel_mean_over_every_batch() -> None:
    batch = _batch()
    b, _, h, w = batch.true_flow.shape  # type: ignore[union-attr]
    first = _with_flow(batch, torch.tensor([1.0, 2.0]).view(1, 2, 1, 1).expand(b, 2, h, w))
    second = _with_flow(batch, torch.tensor([3.0, -4.0]).view(1, 2, 1, 1).expand(b, 2, h, w))
    assert torch.allclose(mean_true_flow([first, second]), torch.tensor([2.0, -1.0]))
    with pytest.raises(SisrError, match="no true flow"):
        mean_true_flow([_batch(with_truth=False)])
    with pytest.raises(SisrError, match="no batch"):
        mean_true_flow([])


def test_the_registered_target_samples_the_target_at_the_true_flow() -> None:
    batch = _batch()
    b, _, h, w = batch.true_flow.shape  # type: ignore[union-attr]
    # one LR px to the right, one up: the HR target read FACTOR px right and FACTOR px up
    flow = torch.tensor([1.0, -1.0]).view(1, 2, 1, 1).expand(b, 2, h, w)
    registered = registered_target(_with_flow(batch, flow), torch.float64)
    assert registered.dtype == torch.float64 and registered.shape == batch.target.shape
    expected = batch.target.double()[..., : -2 * FACTOR, 2 * FACTOR :]
    torch.testing.assert_close(registered[..., FACTOR:-FACTOR, FACTOR:-FACTOR], expected, atol=1e-3, rtol=0)
    with pytest.raises(SisrError, match=r"needs the stored true flow, which only simulated .*sites carry$"):
        registered_target(_batch(with_truth=False))
    with pytest.raises(SisrError, match=r"sites carry; use the raw target$"):
        registered_target(_batch(with_truth=False), hint="use the raw target")


def test_references_without_distortion_are_the_oracle_target() -> None:
    batch = _batch()
    flat = _with_flow(batch, torch.zeros_like(batch.true_flow))  # type: ignore[arg-type]
    oracle = oracle_batch(batch, 4, 0.3)
    # no offset kept: the oracle target itself, bit for bit
    assert torch.equal(systematic_offset(torch.zeros(2))(batch, oracle), oracle.target_r.float())
    # no true flow: the target in its own geometry and radiometry
    assert torch.allclose(reflectance_to_dn(hr_radiometry(flat, oracle)), batch.target.float(), atol=1e-3)
    with pytest.raises(ValueError, match=r"\[2\] flow vector"):
        systematic_offset(torch.zeros(2, 1))


def test_ceilings_are_scored_like_predictors_of_the_same_image() -> None:
    batch = _batch()
    oracle = oracle_batch(batch, 4, PARAMS.geometric_mtf)
    offset = mean_true_flow([batch])
    references = ceiling_references(torch.zeros(2), offset)
    same = [_Fixed(reflectance_to_dn(ref(batch, oracle))) for ref in references.values()]
    rows, extras = evaluate_predictors(
        [*same, BicubicPredictor(BANDS, FACTOR)], [batch], PARAMS, references=references
    )
    scored = extras["references"]
    assert list(scored) == ["hr_radiometry", "training_offset", "test_offset"]
    for row, name in zip(rows, scored, strict=False):
        for key in ("oracle_psnr", "oracle_geom", "oracle_kept", "oracle_offset", "psnr", "lr_rmse", "frr"):
            assert scored[name][key] == pytest.approx(row[key], rel=1e-4, abs=1e-6), (name, key)
    hr, none, kept = scored["hr_radiometry"], scored["training_offset"], scored["test_offset"]
    # the HR radiometry in the input's geometry: no distortion kept, but below the oracle's PSNR (> 90 dB)
    assert abs(hr["oracle_kept"]) < 0.03 and 30 < hr["oracle_psnr"] < 90
    # no offset learnt: the oracle target itself, no distortion kept
    assert none["oracle_psnr"] > 90 and abs(none["oracle_kept"]) < 0.03 and none["oracle_geom"] < 0.03
    # the site's mean flow kept (the training offset of a model without registration): read as a translation
    # of that norm, not as a fraction of the true flow
    norm = float(offset.norm())
    assert kept["oracle_offset"] == pytest.approx(norm, abs=0.05)
    assert kept["oracle_geom"] == pytest.approx(norm, abs=0.05)
    assert abs(kept["oracle_kept"]) < 0.1


def test_no_ceiling_rows_without_truth() -> None:
    references = ceiling_references(torch.zeros(2), torch.zeros(2))
    _, extras = evaluate_predictors(
        [BicubicPredictor(BANDS, FACTOR)], [_batch(with_truth=False)], PARAMS, references=references
    )
    assert extras["references"] == {}


def test_report_quotes_the_ceilings_in_the_mechanism_table(tmp_path: Path) -> None:
    folder = tmp_path / "s2v1x2"
    folder.mkdir()
    (folder / "metrics.csv").write_text("model,dataset,variant\n")
    pd.DataFrame(
        [
            {"dataset": "s2v1x2", "reference": "hr_radiometry", "oracle_psnr": 47.4, "oracle_geom": 0.01},
            {"dataset": "s2v1x2", "reference": "training_offset", "oracle_geom": 0.42, "geom_mean": 0.7},
            {"dataset": "s2v1x2", "reference": "test_offset", "oracle_geom": 0.375, "geom_mean": 0.63},
        ]
    ).to_csv(folder / CEILINGS_FILE, index=False)
    ceilings = report.gather_ceilings([folder / "metrics.csv"])
    assert list(ceilings["reference"]) == ["hr_radiometry", "training_offset", "test_offset"]
    assert report.ceiling_value(ceilings, "s2v1x2", "test_offset", "oracle_geom") == 0.375
    assert math.isnan(report.ceiling_value(ceilings, "s2v1x4", "test_offset", "oracle_geom"))
    rows = [
        {"dataset": "s2v1x2", "variant": v, "oracle_geom": g, "oracle_psnr": p, "geom_mean": 0.5}
        for v, g, p in (("bicubic", 0.01, 46.9), ("baseline", 0.385, 40.1), ("geom", 0.013, 44.0))
    ]
    checks = report.mechanism_frame(report.check_mechanism(pd.DataFrame(rows), ceilings))
    detail = dict(zip(checks["claim"], checks["detail"], strict=True))
    assert detail["baseline: residual distortion oracle_geom ≥ 0.6 LR px"] == (
        f"0.385 >= 0.6 ({report.TRAINING_OFFSET_REFERENCE}: 0.42; {report.TEST_OFFSET_REFERENCE}: 0.375)"
    )
    assert detail["geom: oracle PSNR above bicubic's"] == f"44 > 46.9 ({report.HR_RADIOMETRY_CEILING}: 47.4)"
    # geom+rad corrects the radiometry: no HR-radiometry ceiling quoted; no ceiling file: plain numbers
    assert "ceiling" not in detail.get("geom+rad: oracle PSNR above bicubic's", "")
    plain = report.mechanism_frame(report.check_mechanism(pd.DataFrame(rows)))
    assert not plain["detail"].str.contains("ceiling").any()
    assert report.gather_ceilings([tmp_path / "elsewhere" / "metrics.csv"]).empty
