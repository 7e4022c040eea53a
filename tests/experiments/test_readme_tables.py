"""The README's result tables are the files ``make paper`` wrote (sisrlib.experiments.readme_tables)."""

from __future__ import annotations

from pathlib import Path

import pytest

from sisrlib.experiments.readme_tables import ReadmeTableError, main, marked_tables, synchronised

ROOT = Path(__file__).resolve().parents[2]


def _project(tmp_path: Path, readme: str, tables: dict[str, str]) -> Path:
    for name, text in tables.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text, encoding="utf-8")
    (tmp_path / "README.md").write_text(readme, encoding="utf-8")
    return tmp_path / "README.md"


README = """# Title

Prose before.

<!-- table: figures/a.md -->
| old | table |
|---|---|
<!-- end table -->

Prose between.
<!-- table: figures/b.md -->
<!-- end table -->
Prose after.
"""


def test_every_committed_table_of_the_readme_is_its_file() -> None:
    """The README shows what make paper wrote: a table regenerated and not copied fails here."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    tables = marked_tables(text.split("\n"))
    assert len(tables) >= 10, "the README's result tables are marked"
    new, changed = synchronised(text, ROOT)
    assert changed == [], f"run `make readme`: {changed} differ from their files"
    assert new == text


def test_synchronised_replaces_only_what_stands_between_the_markers(tmp_path: Path) -> None:
    readme = _project(
        tmp_path, README, {"figures/a.md": "| new | table |\n|---|---|\n| 1 | 2 |\n", "figures/b.md": "B\n"}
    )
    new, changed = synchronised(readme.read_text(), tmp_path)
    assert changed == ["figures/a.md", "figures/b.md"]
    assert new == README.replace(
        "| old | table |\n|---|---|\n", "| new | table |\n|---|---|\n| 1 | 2 |\n"
    ).replace("b.md -->\n", "b.md -->\nB\n")
    again, changed_again = synchronised(new, tmp_path)
    assert again == new and changed_again == []


def test_main_rewrites_then_checks_clean(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    readme = _project(tmp_path, README, {"figures/a.md": "| a |\n", "figures/b.md": "| b |\n"})
    assert main(["--check", str(readme)]) == 1
    err = capsys.readouterr().err
    assert "figures/a.md differs from the file" in err and "make readme" in err
    assert readme.read_text() == README, "--check changes nothing"
    assert main([str(readme)]) == 0
    assert "| a |" in readme.read_text() and "| old |" not in readme.read_text()
    assert main(["--check", str(readme)]) == 0


@pytest.mark.parametrize(
    ("readme", "message"),
    [
        ("<!-- table: x.md -->\n| a |\n", "README.md:1: table marker for x.md has no '<!-- end table -->'"),
        (
            "<!-- table: x.md -->\n<!-- table: y.md -->\n<!-- end table -->\n",
            "before the next marker at line 2",
        ),
        ("| a |\n<!-- end table -->\n", "README.md:2: '<!-- end table -->' without"),
    ],
)
def test_broken_markers_name_the_line(readme: str, message: str) -> None:
    with pytest.raises(ReadmeTableError, match=message.replace("|", r"\|")):
        marked_tables(readme.split("\n"))


def test_missing_table_file_is_named_with_the_fix(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    readme = _project(tmp_path, "<!-- table: figures/none.md -->\n<!-- end table -->\n", {})
    assert main([str(readme)]) == 2
    err = capsys.readouterr().err
    assert "figures/none.md does not exist" in err and "make paper" in err
    assert readme.read_text() == "<!-- table: figures/none.md -->\n<!-- end table -->\n"
