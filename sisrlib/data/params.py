"""Parameters of the data section of a run (``data:`` in a params YAML)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

SiteListName = Literal["s2v1", "s2v2", "embedded-s2v1", "embedded-s2v2"]


@dataclass(frozen=True)
class DataParams:
    """Which dataset to read and how to split and batch it.

    ``root``: for ``sen2venus`` the folder holding one sub-folder per site (each with its ``index.csv``); for
    ``worldstrat`` the path of the ``index.csv``. ``${ENV_VAR}`` references are expanded (e.g.
    ``${SEN2VENUS_DATASET_PATH}``, ``${WORLDSTRATX2_DATASET_PATH}``). The embedded sites built by ``sisr
    prepare-data`` live in ``data/embedded/sen2venus`` and ``data/embedded/worldstrat/x{2,4}/index.csv``.
    """

    dataset: Literal["sen2venus", "worldstrat"]
    root: str
    #: Training sites (sen2venus): explicit names, or null with ``site_list``; both null: every site folder of
    #: ``root`` except the testing sites.
    sites: list[str] | None = None
    #: Named site list: the paper's ``s2v1`` (20 sites) / ``s2v2`` (8 sites), or the embedded
    #: ``embedded-s2v1`` (strong geometric distortion) / ``embedded-s2v2`` (weak); used when ``sites`` is
    #: null.
    site_list: SiteListName | None = None
    #: Test sites; null: the site list's default (ES-IC3XG and MAD-AMBO for the paper's lists; on embedded
    #: data ES-IC3XG for ``embedded-s2v1`` and MAD-AMBO for ``embedded-s2v2``, which carry the matching
    #: distortion).
    testing_sites: list[str] | None = None
    load_10m: bool = True
    load_20m: bool = False
    load_b11b12: bool = False
    #: WorldStrat: keep pairs whose LR/HR correlation is above this value.
    min_correlation: float = 0.2
    #: Sen2Venµs: at most this many patches per site (seeded subset), training and testing sites alike.
    max_patches_per_site: int | None = 2000
    train_ratio: float = 0.95
    validation_ratio: float = 0.05
    batch_size: int = 16
    test_batch_size: int = 16
    num_workers: int = 0
    #: Keep decoded validation/test patches in memory after their first read (the reference's CacheDataset).
    cache: bool = False
    #: Keep decoded training patches in memory too (small datasets, e.g. the embedded sites on CPU).
    cache_train: bool = False
    #: Read the true flow / radiometric fields when the index has them (embedded sites).
    load_truth: bool = True
    #: Drop the last incomplete validation/test batch ([QUIRK] the reference did; dropping test patches is
    #: wrong).
    drop_last_eval: bool = False
    #: Expected upsampling factor (null: whatever the data has); a mismatch is an error.
    factor: float | None = None
    #: Keep only these bands (by name, in this order) in the target and in the inputs; null keeps all.
    bands: list[str] | None = None

    def __post_init__(self) -> None:
        if not 0.0 <= self.train_ratio <= 1.0 or not 0.0 <= self.validation_ratio <= 1.0:
            raise ValueError(
                "train_ratio and validation_ratio must lie in [0, 1], got "
                f"{self.train_ratio}, {self.validation_ratio}"
            )
        if self.train_ratio + self.validation_ratio > 1.0 + 1e-9:
            raise ValueError(
                "train_ratio + validation_ratio must be <= 1, got "
                f"{self.train_ratio} + {self.validation_ratio}"
            )
        if self.batch_size < 1 or self.test_batch_size < 1:
            raise ValueError(f"batch sizes must be >= 1, got {self.batch_size}, {self.test_batch_size}")
        if self.num_workers < 0:
            raise ValueError(f"num_workers must be >= 0, got {self.num_workers}")
        if self.max_patches_per_site is not None and self.max_patches_per_site < 1:
            raise ValueError(f"max_patches_per_site must be >= 1 or null, got {self.max_patches_per_site}")
        if self.factor is not None and self.factor <= 0:
            raise ValueError(f"factor must be > 0 or null, got {self.factor}")
        if self.sites is not None and self.site_list is not None:
            raise ValueError("give either sites or site_list, not both")
