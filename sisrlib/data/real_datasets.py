"""Where the real datasets are: the environment variables of ``sisr prepare-data --check-real`` and notebook
01's real mode, and the check that what they name exists (existence only: it takes well under a second)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from sisrlib.data.sen2venus import S2V1_SITES, S2V2_SITES, TESTING_SITES
from sisrlib.errors import DataError

#: Environment variables of the real datasets and what each must point to.
REAL_DATASET_VARIABLES: dict[str, str] = {
    "SEN2VENUS_DATASET_PATH": "sen2venus",
    "WORLDSTRATX2_DATASET_PATH": "worldstrat",
    "WORLDSTRATX4_DATASET_PATH": "worldstrat",
}


def real_dataset_problems(variables: Mapping[str, str]) -> list[str]:
    """Every missing environment variable or path of the real datasets (empty list: all present).

    ``variables``: name → ``"sen2venus"`` (a folder holding the site folders of the s2v1, s2v2 and test lists,
    each with an ``index.csv``) or ``"worldstrat"`` (a wsx ``index.csv``, or its folder). Checks existence
    only: it takes well under a second.
    """
    problems = []
    for var, kind in variables.items():
        value = os.environ.get(var, "")
        what = (
            "the folder of the Sen2Venµs v2 site folders"
            if kind == "sen2venus"
            else "a WorldStrat-derived index.csv (wsx2/wsx4, Zenodo 14734095)"
        )
        if not value:
            problems.append(f"environment variable {var} is not set (export {var}=/path/to/{kind}: {what})")
            continue
        path = Path(value)
        if kind == "sen2venus":
            if not path.is_dir():
                problems.append(f"{var}={value}: no such folder ({what})")
                continue
            needed = sorted(set(S2V1_SITES) | set(S2V2_SITES) | set(TESTING_SITES))
            missing = [s for s in needed if not (path / s / "index.csv").is_file()]
            if missing:
                problems.append(f"{var}={value}: missing site folder(s) with an index.csv: {missing}")
        else:
            index = path / "index.csv" if path.is_dir() else path
            if not index.is_file():
                problems.append(f"{var}={value}: no index.csv at {index} ({what})")
    return problems


def check_real_datasets(variables: Mapping[str, str]) -> dict[str, Path]:
    """The paths of the real datasets, or a DataError naming every missing variable and path."""
    problems = real_dataset_problems(variables)
    if problems:
        raise DataError("the real datasets are not available:\n  - " + "\n  - ".join(problems))
    return {var: Path(os.environ[var]) for var in variables}
