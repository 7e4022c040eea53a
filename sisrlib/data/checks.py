"""Fast checks that the dataset a ``data:`` section names can be used, before any run starts.

``python -m sisrlib.pipeline check`` calls :func:`dataset_problems` for every ``data:`` section of a profile,
so that a paper run whose data are missing, empty or malformed stops within seconds, not after hours of
GPU time. It opens the dataset the way the data module does, without reading it all:

* Sen2Venµs: every training and testing site named (``data.sites``, ``data.site_list``,
  ``data.testing_sites``) has a folder under ``data.root`` with a readable ``index.csv``, the columns of the
  loading configuration (``load_10m``/``load_20m``/``load_b11b12``), at least one row and no patch listed
  twice; the first patch of every site reads and is valid (no no-data, DN not reflectance); the training
  pool gives at least one training batch and, when ``validation_ratio > 0``, a validation patch;
* WorldStrat: the ``index.csv`` has the columns the reader needs, a finite correlation on every row, no pair
  listed twice, at least one pair per split (``train``, ``val``, ``test``) above ``min_correlation``, the
  first pair of every split reads and is valid, and the training split gives at least one batch;
* finally the data module itself is built (factor, bands), as the run would.

Each problem is one message that starts with the ``data.*`` key concerned and names the path, what was
expected, what was found and how to fix it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sisrlib.data.datamodule import SRDataModule
from sisrlib.data.params import DataParams
from sisrlib.data.sen2venus import (
    DEFAULT_TESTING_SITES,
    INDEX_FILE,
    SITE_LISTS,
    Sen2VenusLayout,
    Sen2VenusSite,
    available_sites,
    sen2venus_layout,
)
from sisrlib.data.worldstrat import WorldStratDataset
from sisrlib.errors import DataError

#: The splits of a WorldStrat index the data module opens.
WORLDSTRAT_SPLITS: tuple[str, ...] = ("train", "val", "test")


@dataclass
class OpenedData:
    """What was found opening each Sen2Venµs site or WorldStrat split, so that the params files of a profile
    that share a dataset (with other batch sizes, say) open each of them once. Sen2Venµs: ``(site folder,
    columns, load_truth)`` → rows of the index, or the error; WorldStrat: ``(index, split, min_correlation,
    load_truth)`` → ``(pairs, factor)``, or the error."""

    sites: dict[tuple[str, tuple[str, ...], bool], int | str] = field(default_factory=dict)
    splits: dict[tuple[str, str, float, bool], tuple[int, float] | str] = field(default_factory=dict)

    def site(self, folder: Path, layout: Sen2VenusLayout, load_truth: bool) -> int | str:
        """Rows of the site's index (its first patch read and valid), or what is wrong."""
        key = (str(folder), layout.columns, load_truth)
        if key not in self.sites:
            try:
                site = Sen2VenusSite(folder, layout, rows=[0], load_truth=load_truth)
                site.load(0)
                self.sites[key] = site.num_rows
            except (DataError, OSError) as exc:
                self.sites[key] = str(exc)
        return self.sites[key]

    def split(
        self, index: Path, split: str, min_correlation: float, load_truth: bool
    ) -> tuple[int, float] | str:
        """``(pairs, factor)`` of a WorldStrat split (its first pair read and valid), or what is wrong."""
        key = (str(index), split, min_correlation, load_truth)
        if key not in self.splits:
            try:
                ds = WorldStratDataset(index, split, min_correlation, load_truth=load_truth)
                ds.load(0)
                self.splits[key] = (len(ds), ds.factor)
            except (DataError, OSError) as exc:
                self.splits[key] = str(exc)
        return self.splits[key]


def split_counts(pool: int, train_ratio: float, validation_ratio: float) -> tuple[int, int]:
    """``(training, validation)`` patch counts of a Sen2Venµs training pool of ``pool`` patches, as the data
    module's seeded ``random_split`` of ``[train_ratio, validation_ratio, rest]`` makes them."""
    if pool == 0:
        return 0, 0
    lengths = [train_ratio, validation_ratio]
    rest = 1.0 - train_ratio - validation_ratio
    if rest > 1e-9:
        lengths.append(rest)
    else:
        lengths[0] = 1.0 - validation_ratio
    # torch's random_split with fractions: floors, then the remainder one by one from the first part
    counts = [math.floor(pool * f) for f in lengths]
    for i in range(pool - sum(counts)):
        counts[i % len(counts)] += 1
    return counts[0], counts[1]


def _too_few_for_a_batch(key: str, count: int, data: DataParams, source: str) -> str:
    return (
        f"data.batch_size {data.batch_size}: the training split has {count} patch(es) ({source}), fewer "
        f"than one batch; the training loader drops its last incomplete batch, so not one step would run "
        f"({key}). Lower data.batch_size or use more patches"
    )


def _sen2venus_problems(data: DataParams, opened: OpenedData, needs: Sequence[str]) -> list[str]:
    root = Path(data.root)
    if not root.is_dir():
        found = "a file" if root.exists() else "nothing"
        return [
            f"data.root {root}: expected the folder of the Sen2Venµs site folders (each with an "
            f"{INDEX_FILE}), found {found}; set data.root (e.g. SEN2VENUS_DATASET_PATH) to that folder"
        ]
    try:
        layout = sen2venus_layout(data.load_10m, data.load_20m, data.load_b11b12)
    except DataError as exc:
        return [f"data.load_10m/load_20m/load_b11b12: {exc}"]
    available = available_sites(root)
    if data.testing_sites is not None:
        testing, testing_key = list(data.testing_sites), "data.testing_sites"
    else:
        testing = list(DEFAULT_TESTING_SITES[data.site_list])
        testing_key = f"data.testing_sites (null: the default {testing} of data.site_list {data.site_list})"
    if data.sites is not None:
        training, training_key = list(data.sites), "data.sites"
    elif data.site_list is not None:
        training, training_key = list(SITE_LISTS[data.site_list]), f"data.site_list {data.site_list}"
    else:
        training = [s for s in available if s not in testing]
        training_key = "data.sites (null: every site folder of data.root except the testing sites)"
    problems: list[str] = []
    if not training:
        problems.append(
            f"{training_key}: no training site under {root} (site folders found: {available or 'none'}); "
            "name the training sites or point data.root to the Sen2Venµs folder"
        )
    if not testing:
        problems.append(f"{testing_key}: no testing site, so the test split is empty; name at least one site")
    both = sorted(set(training) & set(testing))
    if both:
        problems.append(
            f"{training_key} and {testing_key}: site(s) {both} are both training and testing sites; a test "
            "site must stay unseen, remove them from one of the lists"
        )
    rows: dict[str, int] = {}
    for role, names, key in (("training", training, training_key), ("testing", testing, testing_key)):
        missing = [s for s in names if s not in available]
        if missing:
            problems.append(
                f"{key}: {role} site folder(s) {missing} not found under data.root {root} (expected a "
                f"folder holding an {INDEX_FILE} per site; found {len(available)} site folder(s)"
                f"{': ' + ', '.join(available) if available else ''}); fix data.root or the site names"
            )
        for name in names:
            if name in missing or name in rows:
                continue
            site_rows = opened.site(root / name, layout, data.load_truth)
            if isinstance(site_rows, str):
                problems.append(f"{key}: {role} site {name}: {site_rows}")
            else:
                rows[name] = site_rows
    if problems:
        return problems
    cap = data.max_patches_per_site
    pool = sum(min(rows[s], cap) if cap is not None else rows[s] for s in training)
    n_train, n_val = split_counts(pool, data.train_ratio, data.validation_ratio)
    source = (
        f"{pool} patch(es) of the training sites {training}"
        + (f" (at most data.max_patches_per_site {cap} each)" if cap is not None else "")
        + f" × data.train_ratio {data.train_ratio}"
    )
    if "train" in needs and n_train < data.batch_size:
        problems.append(_too_few_for_a_batch(training_key, n_train, data, source))
    if "val" in needs and data.validation_ratio > 0 and n_val == 0:
        problems.append(
            f"data.validation_ratio {data.validation_ratio}: the validation split of the {pool} "
            "training-site patch(es) is empty; use more patches or a larger validation_ratio (0 turns "
            "validation off)"
        )
    return problems


def _worldstrat_problems(data: DataParams, opened: OpenedData, needs: Sequence[str]) -> list[str]:
    root = Path(data.root)
    index = root / "index.csv" if root.is_dir() else root
    if not index.is_file():
        return [
            f"data.root {root}: expected a WorldStrat-derived index.csv (wsx2/wsx4, or its folder), found "
            f"{'a folder without index.csv' if root.is_dir() else 'nothing'}; set data.root (e.g. "
            "WORLDSTRATX2_DATASET_PATH / WORLDSTRATX4_DATASET_PATH) to it"
        ]
    problems: list[str] = []
    factors: dict[str, float] = {}
    for split in WORLDSTRAT_SPLITS:
        found = opened.split(index, split, data.min_correlation, data.load_truth)
        if isinstance(found, str):
            message = f"data.root: {found}"
            if message not in problems:
                problems.append(message)
            continue
        pairs, factors[split] = found
        if split == "train" and "train" in needs and pairs < data.batch_size:
            source = f"pairs of {index} with split train and correlation > data.min_correlation"
            problems.append(_too_few_for_a_batch("data.root", pairs, data, source))
    if len(set(factors.values())) > 1:
        problems.append(
            f"data.root {index}: the splits have different factors (HR/LR size) {factors}; every pair of a "
            "WorldStrat index must have the same factor"
        )
    return problems


@dataclass(frozen=True)
class DatasetCheck:
    """What :func:`check_dataset` found: the problems (empty: usable) and the data's factor (input pixel
    size / target pixel size; None when the dataset cannot be opened)."""

    problems: tuple[str, ...]
    factor: float | None = None


def check_dataset(
    data: DataParams,
    seed: int = 0,
    opened: OpenedData | None = None,
    needs: Sequence[str] = ("train", "val", "test"),
) -> DatasetCheck:
    """Open the dataset of ``data`` as a run would, in seconds (see the module docstring).

    ``needs``: the splits the stage iterates (training and registration runs: all three, the validation
    split only when ``validation_ratio > 0``; the metrics benchmark: its ``split``): ``train`` must give at
    least one batch (the training loader drops its last incomplete batch), ``val`` at least one patch. Every
    site and every WorldStrat split is opened whatever ``needs`` says (the data module opens them all).
    ``seed``: the run's seed; ``opened``: what earlier checks opened (reused).
    """
    opened = opened if opened is not None else OpenedData()
    if data.dataset == "sen2venus":
        problems = _sen2venus_problems(data, opened, needs)
    else:
        problems = _worldstrat_problems(data, opened, needs)
    if problems:
        return DatasetCheck(tuple(problems))
    try:
        factor = SRDataModule(data, seed).factor
    except (DataError, OSError) as exc:
        return DatasetCheck((f"data: {exc}",))
    return DatasetCheck((), factor)


def dataset_problems(data: DataParams, needs: Sequence[str] = ("train", "val", "test")) -> list[str]:
    """Every problem found opening the dataset of ``data`` (empty list: usable); see :func:`check_dataset`."""
    return list(check_dataset(data, needs=needs).problems)


__all__ = [
    "WORLDSTRAT_SPLITS",
    "DatasetCheck",
    "OpenedData",
    "check_dataset",
    "dataset_problems",
    "split_counts",
]
