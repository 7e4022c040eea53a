"""Parameters of the data section of a run (``data:`` in a params YAML)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal


@dataclass(frozen=True)
class DataParams:
    """Which dataset to read and how to split and batch it.

    ``root``: for ``sen2venus`` the folder holding one sub-folder per site (each with its ``index.csv``); for
    ``worldstrat`` the path of the ``index.csv``. ``${ENV_VAR}`` references are expanded (e.g.
    ``${SEN2VENUS_DATASET_PATH}``, ``${WORLDSTRATX2_DATASET_PATH}``).
    """

    dataset: Literal["sen2venus", "worldstrat"]
    root: str
    #: Training sites (sen2venus): explicit names, or null with ``site_list``.
    sites: list[str] | None = None
    #: Named site list of the paper (``s2v1``: 20 sites, ``s2v2``: 8 sites); used when ``sites`` is null.
    site_list: Literal["s2v1", "s2v2"] | None = None
    testing_sites: list[str] = field(default_factory=lambda: ["ES-IC3XG", "MAD-AMBO"])
    load_10m: bool = True
    load_20m: bool = False
    load_b11b12: bool = False
    #: WorldStrat: keep pairs whose LR/HR correlation is above this value.
    min_correlation: float = 0.2
    max_patches_per_site: int | None = 2000
    train_ratio: float = 0.95
    validation_ratio: float = 0.05
    batch_size: int = 16
    test_batch_size: int = 16
    num_workers: int = 0
    #: Keep decoded patches in memory after their first read.
    cache: bool = False
