"""Write a notebook from a list of (cell type, source) pairs, without outputs, with the project kernel.

Usage from another script: ``write_notebook(path, cells)``; the first code cell is tagged ``parameters``.
"""

from __future__ import annotations

from pathlib import Path

import nbformat


def write_notebook(path: str | Path, cells: list[tuple[str, str]]) -> None:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "sisr", "display_name": "Python (sisr)", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    tagged = False
    for kind, source in cells:
        if kind == "md":
            nb.cells.append(nbformat.v4.new_markdown_cell(source.strip()))
        else:
            meta = {}
            if not tagged:
                meta = {"tags": ["parameters"]}
                tagged = True
            nb.cells.append(nbformat.v4.new_code_cell(source.strip(), metadata=meta))
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"cell-{i:02d}"
    nbformat.write(nb, str(path))
