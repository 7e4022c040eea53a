"""Every notebook has its jupytext percent pair, and the two agree cell by cell.

The ``.py`` pair (``notebooks/**/NAME.py``) is what people edit and review; ``jupytext --sync`` writes the
change into ``NAME.ipynb``, which papermill and nbval execute. A pair edited on one side only fails here.
"""

from __future__ import annotations

import fnmatch
import tomllib
from pathlib import Path
from typing import Any

import jupytext
import pytest

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "notebooks"
PAIRING = "ipynb,py:percent"

IPYNB = sorted(NOTEBOOKS.rglob("*.ipynb"))
PY = sorted(p for p in NOTEBOOKS.rglob("*.py") if ".ipynb_checkpoints" not in p.parts)


def _rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


def _cells(path: Path) -> list[tuple[str, str, bool]]:
    """(cell type, source, tagged `parameters`) of every code and markdown cell of a notebook or its pair."""
    notebook: Any = jupytext.read(path)
    return [
        (cell.cell_type, cell.source.strip(), "parameters" in cell.metadata.get("tags", []))
        for cell in notebook.cells
        if cell.cell_type in ("code", "markdown")
    ]


def test_there_are_notebooks() -> None:
    assert IPYNB, "no notebook under notebooks/"


@pytest.mark.parametrize("ipynb", IPYNB, ids=_rel)
def test_notebook_has_its_pair_and_they_agree(ipynb: Path) -> None:
    pair = ipynb.with_suffix(".py")
    fix = f"create it with: .venv/bin/jupytext --set-formats {PAIRING} {_rel(ipynb)}"
    assert pair.is_file(), f"{_rel(ipynb)} has no jupytext pair {_rel(pair)}; {fix}"
    formats = jupytext.read(ipynb).metadata.get("jupytext", {}).get("formats")
    assert formats == PAIRING, (
        f"{_rel(ipynb)}: metadata jupytext.formats is {formats!r}, expected {PAIRING!r}; {fix}"
    )
    in_ipynb, in_py = _cells(ipynb), _cells(pair)
    sync = f"after editing {_rel(pair)} run: .venv/bin/jupytext --sync {_rel(pair)}"
    assert len(in_ipynb) == len(in_py), (
        f"{_rel(ipynb)} has {len(in_ipynb)} cells, {_rel(pair)} has {len(in_py)}; {sync}"
    )
    for i, (a, b) in enumerate(zip(in_ipynb, in_py, strict=True)):
        assert a[0] == b[0], f"cell {i}: {a[0]} in {_rel(ipynb)}, {b[0]} in {_rel(pair)}; {sync}"
        assert a[1] == b[1], f"cell {i} differs between {_rel(ipynb)} and {_rel(pair)}; {sync}"
        assert a[2] == b[2], (
            f"cell {i}: the `parameters` tag differs between {_rel(ipynb)} and {_rel(pair)}; {sync}"
        )
    tagged = [i for i, cell in enumerate(in_py) if cell[2]]
    assert len(tagged) == 1, (
        f"{_rel(pair)}: expected one cell tagged `parameters` (papermill), found {len(tagged)}"
    )


@pytest.mark.parametrize("py", PY, ids=_rel)
def test_pair_has_its_notebook(py: Path) -> None:
    ipynb = py.with_suffix(".ipynb")
    assert ipynb.is_file(), (
        f"{_rel(py)} has no notebook {_rel(ipynb)}; create it with: "
        f".venv/bin/jupytext --set-formats {PAIRING} {_rel(py)}"
    )


@pytest.mark.parametrize("py", PY, ids=_rel)
def test_pair_is_not_collected_as_a_test_module(py: Path) -> None:
    """pytest imports ``test_*.py`` / ``*_test.py`` files; a notebook pair must never run as a test module."""
    assert not (py.name.startswith("test_") or py.stem.endswith("_test")), f"rename {_rel(py)}"
    addopts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]["addopts"]
    ignored = [
        opt.removeprefix("--ignore-glob=") for opt in addopts.split() if opt.startswith("--ignore-glob=")
    ]
    assert any(fnmatch.fnmatch(str(py), pattern) for pattern in ignored), (
        f"{_rel(py)} is not covered by the --ignore-glob patterns of pyproject.toml"
    )
