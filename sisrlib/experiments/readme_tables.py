"""Copy the committed result tables into ``README.md``: the README shows exactly what ``make paper`` wrote.

A table of the README that comes from a file stands between two marker lines naming that file (relative to the
project root)::

    <!-- table: figures/quick/results.md -->
    | dataset | variant | ... |
    ...
    <!-- end table -->

``python -m sisrlib.experiments.readme_tables [README]`` (``make readme``) replaces what stands between the
markers by the file's text; ``--check`` changes nothing and exits 1 naming each table that differs from its
file (``tests/experiments/test_readme_tables.py`` checks the README likewise, so a regenerated table that was
not copied fails the tests). Nothing between the markers is ever edited by hand: the prose around them is.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from sisrlib.atomic import write_text_atomic

START = re.compile(r"^<!-- table: (?P<path>\S+) -->$")
END = "<!-- end table -->"


class ReadmeTableError(ValueError):
    """A marker without its end, a nested marker, or a table file that does not exist."""


@dataclass(frozen=True)
class MarkedTable:
    """One marked table: the file it copies and the README's lines between its markers (0-based, end
    exclusive: ``lines[first:last]`` is the copy)."""

    path: str
    first: int
    last: int


def marked_tables(lines: Sequence[str], source: str = "README.md") -> list[MarkedTable]:
    """The marked tables of ``lines`` (the README's lines, without line ends), in order.

    Raises :class:`ReadmeTableError` naming ``source`` and the line when a start marker has no end before the
    next start marker or the end of the file, or an end marker has no start."""
    tables: list[MarkedTable] = []
    opened: tuple[str, int] | None = None
    for number, line in enumerate(lines):
        start = START.match(line.strip())
        if start:
            if opened is not None:
                raise ReadmeTableError(
                    f"{source}:{opened[1]}: table marker for {opened[0]} has no '{END}' before the next "
                    f"marker at line {number + 1}; add it after the table"
                )
            opened = (start["path"], number + 1)
        elif line.strip() == END:
            if opened is None:
                raise ReadmeTableError(
                    f"{source}:{number + 1}: '{END}' without a '<!-- table: PATH -->' above it"
                )
            tables.append(MarkedTable(opened[0], opened[1], number))
            opened = None
    if opened is not None:
        raise ReadmeTableError(f"{source}:{opened[1]}: table marker for {opened[0]} has no '{END}'")
    return tables


def _table_lines(root: Path, table: MarkedTable, source: str) -> list[str]:
    path = root / table.path
    if not path.is_file():
        raise ReadmeTableError(
            f"{source}:{table.first}: the marked table {table.path} does not exist under {root}; run the "
            "notebook that writes it (make paper) or correct the marker"
        )
    return path.read_text(encoding="utf-8").strip("\n").splitlines()


def synchronised(text: str, root: str | Path, source: str = "README.md") -> tuple[str, list[str]]:
    """``text`` (a README) with every marked table replaced by its file under ``root``, and the paths of the
    tables that changed."""
    lines = text.split("\n")
    changed: list[str] = []
    out: list[str] = []
    done = 0
    for table in marked_tables(lines, source):
        fresh = _table_lines(Path(root), table, source)
        out += lines[done : table.first]
        out += fresh
        if lines[table.first : table.last] != fresh:
            changed.append(table.path)
        done = table.last
    out += lines[done:]
    return "\n".join(out), changed


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m sisrlib.experiments.readme_tables [--check] [README]`` (default ``README.md``; the tables'
    paths are relative to the README's folder). Exit 0 when in sync (or rewritten), 1 when ``--check`` finds a
    stale table, 2 on a bad README or a missing table file."""
    args = list(sys.argv[1:] if argv is None else argv)
    check = "--check" in args
    args = [a for a in args if a != "--check"]
    if len(args) > 1 or any(a.startswith("-") for a in args):
        print("usage: python -m sisrlib.experiments.readme_tables [--check] [README]", file=sys.stderr)
        return 2
    readme = Path(args[0] if args else "README.md")
    try:
        text = readme.read_text(encoding="utf-8")
        new, changed = synchronised(text, readme.parent, str(readme))
    except (OSError, ReadmeTableError) as err:
        print(f"readme tables: {err}", file=sys.stderr)
        return 2
    if check:
        for path in changed:
            print(f"{readme}: the table of {path} differs from the file; run `make readme`", file=sys.stderr)
        return 1 if changed else 0
    if changed:
        write_text_atomic(readme, new)
    print(f"{readme}: {len(changed)} table(s) updated ({', '.join(changed) or 'all in sync'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
