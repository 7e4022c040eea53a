"""The results table's mechanism checks (acceptance claims with their numbers) and the dose-response."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from sisrlib.experiments import report
from sisrlib.figures import report as report_figures


def _row(dataset: str, variant: str, **values: float) -> dict[str, object]:
    return {"model": f"{dataset}_{variant}", "dataset": dataset, "variant": variant, **values}


GOOD = {"fru": 1.5, "frr": 25.0, "hf_excess_db": 0.8, "geom_mean": 0.2, "oracle_geom": 0.15, "lr_rmse": 0.01}


def _table(with_weak: bool = True) -> pd.DataFrame:
    rows = []
    for dataset, true, scale in (("s2v1x2", 0.9, 1.0), ("s2v2x2", 0.25, 0.3)):
        if dataset == "s2v2x2" and not with_weak:
            continue
        base = {"true_geom_mean": true}
        rows += [
            _row(
                dataset,
                "bicubic",
                frr=0.0,
                fru=0.0,
                geom_mean=0.1,
                oracle_geom=0.01,
                oracle_psnr=38.0,
                **base,
            ),
            _row(
                dataset,
                "baseline",
                frr=1.0,
                fru=6.0,
                geom_mean=0.2 + 0.6 * scale,
                oracle_geom=0.2 + 0.6 * scale,
                oracle_psnr=37.0,
                lr_rmse=0.02,
                **base,
            ),
            _row(
                dataset, "geom", **{**GOOD, "frr": 1.0 + 24.0 * scale}, oracle_psnr=37.0 + 3 * scale, **base
            ),
            _row(dataset, "geomrad", **{**GOOD, "lr_rmse": 0.008}, oracle_psnr=37.0 + 3 * scale, **base),
        ]
    return pd.DataFrame(rows)


def test_the_acceptance_claims_are_listed_with_their_numbers() -> None:
    checks = report.mechanism_frame(report.check_mechanism(_table()))
    strong = checks[checks["dataset"] == "s2v1x2"]
    assert strong["holds"].all(), strong[~strong["holds"]]
    claims = set(strong["claim"])
    expected = (
        "geom: FRU ≤ 2 %",
        "geom+rad: FRR ≥ 15 %",
        "geom: residual distortion oracle_geom ≤ 0.3 LR px",
        "baseline: residual distortion geom_mean ≥ 0.6 LR px",
        "geom+rad: oracle PSNR above bicubic's",
    )
    for text in expected:
        assert text in claims
    # the weak sites get only the paper's general mechanism, the pair gets the dose-response claims
    weak = checks[checks["dataset"] == "s2v2x2"]
    assert not any("FRU" in c for c in weak["claim"])
    pair = checks[checks["dataset"] == "s2v1x2 vs s2v2x2"]
    assert len(pair) == len(report.GAINS) and pair["holds"].all()
    assert all(" > " in d for d in pair["detail"])


def test_a_failing_claim_says_so_with_the_numbers() -> None:
    table = _table()
    table.loc[(table["dataset"] == "s2v1x2") & (table["variant"] == "geom"), "fru"] = 9.3
    checks = report.mechanism_frame(report.check_mechanism(table))
    row = checks[(checks["dataset"] == "s2v1x2") & (checks["claim"] == "geom: FRU ≤ 2 %")].iloc[0]
    assert not row["holds"] and row["detail"] == "9.3 <= 2"


def test_on_worldstrat_like_pairs_geomrad_must_remove_two_thirds_of_geoms_lr_bias() -> None:
    rows = [_row("wsx4", variant, lr_bias=bias) for variant, bias in (("geom", -0.03), ("geomrad", 0.0101))]
    checks = report.mechanism_frame(report.check_mechanism(pd.DataFrame(rows)))
    row = checks[checks["claim"] == "geom+rad: |LR bias| ≤ |geom's| / 3"].iloc[0]
    assert row["dataset"] == "wsx4" and not row["holds"] and row["detail"] == "0.0101 <= 0.01"
    rows[1]["lr_bias"] = -0.0099  # the sign does not matter, the size does
    checks = report.mechanism_frame(report.check_mechanism(pd.DataFrame(rows)))
    assert checks[checks["claim"] == "geom+rad: |LR bias| ≤ |geom's| / 3"]["holds"].all()
    # the Sen2Venµs-like datasets do not get this claim
    s2v = report.mechanism_frame(report.check_mechanism(_table()))
    assert not any("LR bias" in c for c in s2v["claim"])


def test_an_absent_dataset_or_column_is_handled() -> None:
    checks = report.mechanism_frame(report.check_mechanism(_table(with_weak=False)))
    assert not any(" vs " in d for d in checks["dataset"])  # no weak sites: no dose-response claim
    smoke = pd.DataFrame([_row("x2", "bicubic", frr=0.0), _row("x2", "geomrad", frr=50.0)])
    checks = report.mechanism_frame(report.check_mechanism(smoke))
    assert set(checks["dataset"]) == {"x2"} and "missing values" in set(checks["detail"])
    assert report_figures.plot_dose_response(smoke, "unused") is None  # no baseline, no truth: no figure


def test_the_dose_response_has_one_point_per_dataset_and_variant(tmp_path: Path) -> None:
    frame = report.dose_response(_table())
    assert list(frame["dataset"]) == ["s2v1x2", "s2v1x2", "s2v2x2", "s2v2x2"]
    strong = frame[(frame["dataset"] == "s2v1x2") & (frame["variant"] == "geom")].iloc[0]
    assert strong["true_distortion"] == 0.9
    assert math.isclose(strong["distortion removed (LR px)"], 0.8 - 0.2)
    assert math.isclose(strong["oracle PSNR gained (dB)"], 3.0)
    path = report_figures.plot_dose_response(_table(), tmp_path)
    assert path is not None and path.is_file()
    real = _table().drop(columns="true_geom_mean")
    assert report_figures.plot_dose_response(real, tmp_path / "real") is None


def test_the_calibration_tables_beside_the_metrics_are_gathered(tmp_path: Path) -> None:
    metrics = tmp_path / "s2v1x2" / "metrics.csv"
    metrics.parent.mkdir()
    _table().to_csv(metrics, index=False)
    assert report.gather_calibration([metrics]).empty  # no calibration written: an empty table
    rows = [("none", 0.0, 0.0, 0.14), ("shift", 0.5, 0.5, 0.5), ("blur", 0.1, 0.0, 0.15)]
    calibration = pd.DataFrame(
        [
            {"kind": k, "level": lv, "true_px": t, "read_px": r, "read_std_px": 0.1, "dataset": "s2v1x2"}
            for k, lv, t, r in rows
        ]
    )
    calibration.to_csv(metrics.parent / "distortion_calibration.csv", index=False)
    table = report.gather_calibration([metrics])
    assert list(table["kind"]) == ["none", "shift", "blur"]
    assert table["above_floor_px"].round(6).tolist() == [0.0, 0.36, 0.01]
