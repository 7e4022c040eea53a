"""The generator summary table."""

from __future__ import annotations

from sisrlib.models.bicubic import BicubicInterpolation
from sisrlib.models.carn import CARN
from sisrlib.models.summary import PAPER_GENERATORS, model_summary, params_summary


def test_paper_table() -> None:
    table = params_summary().set_index("name")
    assert list(table.index) == list(PAPER_GENERATORS)
    assert table["margin"].tolist() == [66, 110, 66, 130, 43]
    assert table.loc["s2vx2 esrgan_6x64x32", "params"] == 4_432_004
    assert table.loc["evoland carn_3x3x64g4swTrue + bicubic", "params"] == 2_492_298
    assert (table["receptive_field"] >= table["margin"]).all()


def test_model_summary_counts_shared_weights_once() -> None:
    carn = CARN(4, 2.0, groups=2, features_per_factor=2, shared_weights=True)
    table = model_summary({"carn": carn, "bicubic": BicubicInterpolation(4, 3.0)})
    assert table["params"].tolist() == [carn.nb_params(), 0]
    assert table["factor"].tolist() == [2.0, 3.0]
    assert table["kind"].tolist() == ["CARN", "BicubicInterpolation"]
