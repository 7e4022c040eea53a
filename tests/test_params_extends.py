"""A params file may start from a base file (``extends:``): mappings merge recursively, the file wins, lists
replace, chains work, and a missing base or a cycle is an error naming the files."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from sisrlib.params import ParamsError, extends_chain, load, merge, read_yaml


@dataclass
class Section:
    a: int = 0
    b: str = ""
    items: list[int] = field(default_factory=list)


@dataclass
class Run:
    name: str = ""
    section: Section = field(default_factory=Section)
    root: str = ""


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_merge_is_recursive_the_child_wins_and_lists_replace() -> None:
    base = {"x": 1, "s": {"a": 1, "b": "base", "items": [1, 2, 3], "deep": {"k": 1, "m": 2}}}
    child = {"s": {"a": 2, "items": [9], "deep": {"m": 3}}, "y": None}
    assert merge(base, child) == {
        "x": 1,
        "s": {"a": 2, "b": "base", "items": [9], "deep": {"k": 1, "m": 3}},
        "y": None,
    }
    assert base["s"]["a"] == 1 and base["s"]["deep"] == {"k": 1, "m": 2}  # neither argument is modified
    # a scalar or null replaces a whole mapping, and a mapping replaces a scalar
    assert merge({"s": {"a": 1}}, {"s": None}) == {"s": None}
    assert merge({"s": 1}, {"s": {"a": 1}}) == {"s": {"a": 1}}


def test_a_chain_of_bases_relative_to_each_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _write(
        tmp_path / "base" / "common.yaml", "name: common\nsection:\n  a: 1\n  b: common\n  items: [1, 2]\n"
    )
    _write(tmp_path / "base" / "x2.yaml", "extends: common.yaml\nsection:\n  b: x2\nroot: ${DATA_ROOT}/x2\n")
    run = _write(tmp_path / "03_run.yaml", "extends: base/x2.yaml\nname: run\nsection:\n  items: [7]\n")
    assert extends_chain(run) == [run, tmp_path / "base" / "x2.yaml", tmp_path / "base" / "common.yaml"]
    assert read_yaml(run) == {
        "name": "run",
        "section": {"a": 1, "b": "x2", "items": [7]},
        "root": "${DATA_ROOT}/x2",
    }
    monkeypatch.setenv("DATA_ROOT", "/data")
    monkeypatch.chdir(tmp_path / "base")  # bases are found relative to the file, not the working directory
    assert load(Run, run) == Run(name="run", section=Section(a=1, b="x2", items=[7]), root="/data/x2")
    # overrides apply to the merged mapping
    assert load(Run, run, {"section.a": 5}).section == Section(a=5, b="x2", items=[7])


def test_a_file_without_extends_reads_as_before(tmp_path: Path) -> None:
    run = _write(tmp_path / "run.yaml", "name: run\nsection:\n  a: 3\n")
    assert extends_chain(run) == [run]
    assert read_yaml(run) == {"name": "run", "section": {"a": 3}}


def test_a_missing_base_names_the_file_and_the_key(tmp_path: Path) -> None:
    run = _write(tmp_path / "03_run.yaml", "extends: base/nope.yaml\nname: run\n")
    with pytest.raises(ParamsError) as err:
        read_yaml(run)
    message = str(err.value)
    assert str(run) in message and "extends" in message and "'base/nope.yaml'" in message
    assert (
        str(tmp_path / "base" / "nope.yaml") in message and "relative to the folder of 03_run.yaml" in message
    )


@pytest.mark.parametrize("value", ["", "[a.yaml]", "3", "null"])
def test_extends_must_name_a_file(tmp_path: Path, value: str) -> None:
    run = _write(tmp_path / "run.yaml", f"extends: {value}\nname: run\n")
    with pytest.raises(ParamsError, match=r"extends: expected the path of a base params file"):
        read_yaml(run)


def test_a_cycle_is_refused_naming_the_files(tmp_path: Path) -> None:
    a = _write(tmp_path / "a.yaml", "extends: sub/b.yaml\nname: a\n")
    b = _write(tmp_path / "sub" / "b.yaml", "extends: ../a.yaml\nname: b\n")
    with pytest.raises(ParamsError) as err:
        read_yaml(a)
    message = str(err.value)
    assert "cycle" in message and str(a) in message and str(b) in message
    selfish = _write(tmp_path / "self.yaml", "extends: self.yaml\n")
    with pytest.raises(ParamsError, match="cycle"):
        read_yaml(selfish)


def test_an_error_in_a_merged_value_points_to_the_bases(tmp_path: Path) -> None:
    base = _write(tmp_path / "base.yaml", "section:\n  a: not a number\n")
    run = _write(tmp_path / "run.yaml", "extends: base.yaml\nname: run\n")
    with pytest.raises(ParamsError) as err:
        load(Run, run)
    message = str(err.value)
    assert f"{run}.section.a: expected an integer" in message
    assert message.endswith(f"(section.a is set in {base})")
    # an unknown key of a base is refused like one of the file itself
    _write(tmp_path / "base.yaml", "section:\n  c: 1\n")
    with pytest.raises(ParamsError, match=r"unknown key\(s\) 'c'") as err:
        load(Run, run)
    assert str(err.value).endswith(f"(section.c is set in {base})")
    # a bad override is reported as without a base
    _write(tmp_path / "base.yaml", "section:\n  a: 1\n")
    with pytest.raises(ParamsError) as err:
        load(Run, run, {"section.a": "x"})
    assert str(err.value) == f"{run}.section.a: expected an integer, got 'x'"
    # a bad value of the file itself is reported as without a base
    _write(tmp_path / "base.yaml", "section:\n  a: 1\n")
    _write(run, "extends: base.yaml\nname: 3\n")
    with pytest.raises(ParamsError) as err:
        load(Run, run)
    assert str(err.value) == f"{run}.name: expected a string, got 3"
