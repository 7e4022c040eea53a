"""Sen2Venµs v2 reader (as torchsisr reads it): one folder per site, a tab-separated ``index.csv`` whose
cells are paths relative to the site folder that go through a zip archive (``/vsizip/<site folder>/<cell>``).

Loading configurations (:func:`sen2venus_layout`), values in DN (reflectance × 10000) as float32:

======================  ========================================  =================================  ======
configuration           inputs ``[C, h, w]``                      target ``[C_t, H, W]`` (5 m)       factor
======================  ========================================  =================================  ======
10 m only               B2 B3 B4 B8 (10 m, 128 px)                B2 B3 B4 B8 (256 px)               2
20 m only               B5 B6 B7 B8A [+ B11 B12] (20 m, 64 px)    B5 B6 B7 B8A (256 px)              4
10 m + 20 m             B2 B3 B4 B8 (10 m); ``lr_inputs``         B2 B3 B4 B8 B5 B6 B7 B8A (256 px)  2
                        B5 B6 B7 B8A [+ B11 B12] (20 m, 64 px)
======================  ========================================  =================================  ======

(pixel sizes are those of the real dataset; the embedded sites use the same columns with smaller patches.)
B11/B12 never have a 5 m target; B11/B12 without the 20 m bands, or no band group at all, is an error.

Optional columns (embedded, simulated sites only): ``true_flow_10m`` / ``true_flow_20m`` (2-band float32
raster on the input grid of that group, input pixels, registration convention ``warp(simulate_lr(target),
flow) ≈ inputs``) and ``true_radiometry_10m`` / ``true_radiometry_20m`` (float32 DN on the input grid, the
bands of the group's input columns in order: B2 B3 B4 B8, or B5 B6 B7 B8A B11 B12); plain ``true_flow`` /
``true_radiometry`` are accepted too. They are returned as ``Sample.true_flow`` / ``Sample.true_radiometry``
for the group of the ``inputs`` tensor.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset

from sisrlib.bands import SEN2VENUS_GROUPS
from sisrlib.data.indexes import check_unique_cells
from sisrlib.data.raster import RasterReader, check_patch, vsizip_path
from sisrlib.data.sample import Sample
from sisrlib.errors import DataError

#: The 20 training sites of the "s2v1" experiments (and of the full EVOLAND data module), as in torchsisr.
S2V1_SITES: tuple[str, ...] = (
    "ARM", "BAMBENW2", "BENGA", "ESGISB-2", "ESGISB-1", "ESGISB-3", "ESTUAMAR", "FR-BIL", "FR-LAM", "ALSACE",
    "KUDALIAR", "LERIDA-1", "NARYN", "SO1", "SUDOUE-2", "SUDOUE-3", "SUDOUE-4", "SUDOUE-6", "JAM2018",
    "SUDOUE-5",
)  # fmt: skip
#: The 8 training sites of the "s2v2" experiments (low viewing angles), as in torchsisr.
S2V2_SITES: tuple[str, ...] = ("K34-AMAZ", "ATTO", "BAMBENW2", "FR-LQ1", "ANJI", "ARM", "ALSACE", "ESGISB-2")
#: Test sites of the paper's s2v1/s2v2 experiments.
TESTING_SITES: tuple[str, ...] = ("ES-IC3XG", "MAD-AMBO")

#: Embedded (simulated) training sites with a strong geometric distortion, "s2v1-like" (see ``embedded.py``).
EMBEDDED_S2V1_SITES: tuple[str, ...] = ("EMB-S2V1-N", "EMB-S2V1-S")
#: Embedded training sites with a weak geometric distortion, "s2v2-like".
EMBEDDED_S2V2_SITES: tuple[str, ...] = ("EMB-S2V2-N", "EMB-S2V2-S")

#: Named training-site lists (``DataParams.site_list``).
SITE_LISTS: dict[str, tuple[str, ...]] = {
    "s2v1": S2V1_SITES,
    "s2v2": S2V2_SITES,
    "embedded-s2v1": EMBEDDED_S2V1_SITES,
    "embedded-s2v2": EMBEDDED_S2V2_SITES,
}

#: Test sites used when ``DataParams.testing_sites`` is null. On the embedded data each test site carries one
#: distortion regime (ES-IC3XG strong like the s2v1-like sites, MAD-AMBO weak like the s2v2-like sites), so a
#: model is tested on the kind of distortion it was trained with.
DEFAULT_TESTING_SITES: dict[str | None, tuple[str, ...]] = {
    None: TESTING_SITES,
    "s2v1": TESTING_SITES,
    "s2v2": TESTING_SITES,
    "embedded-s2v1": ("ES-IC3XG",),
    "embedded-s2v2": ("MAD-AMBO",),
}

INDEX_FILE = "index.csv"


@dataclass(frozen=True)
class Sen2VenusLayout:
    """Which ``index.csv`` columns make the inputs, the optional 20 m inputs and the target (module doc)."""

    input_columns: tuple[str, ...]
    target_columns: tuple[str, ...]
    lr_columns: tuple[str, ...] = ()
    #: "10m" or "20m": the band group whose ``true_flow_*``/``true_radiometry_*`` columns match ``inputs``.
    truth_group: str = "10m"

    @staticmethod
    def _bands(columns: Sequence[str]) -> tuple[str, ...]:
        return tuple(b for c in columns for b in SEN2VENUS_GROUPS[c].bands)

    @property
    def input_bands(self) -> tuple[str, ...]:
        return self._bands(self.input_columns)

    @property
    def lr_bands(self) -> tuple[str, ...]:
        return self._bands(self.lr_columns)

    @property
    def target_bands(self) -> tuple[str, ...]:
        return self._bands(self.target_columns)

    @property
    def input_resolution_m(self) -> float:
        return SEN2VENUS_GROUPS[self.input_columns[0]].resolution_m

    @property
    def lr_resolution_m(self) -> float | None:
        return SEN2VENUS_GROUPS[self.lr_columns[0]].resolution_m if self.lr_columns else None

    @property
    def target_resolution_m(self) -> float:
        return SEN2VENUS_GROUPS[self.target_columns[0]].resolution_m

    @property
    def factor(self) -> float:
        """Input pixel size / target pixel size (2 or 4)."""
        return self.input_resolution_m / self.target_resolution_m

    @property
    def columns(self) -> tuple[str, ...]:
        return self.input_columns + self.lr_columns + self.target_columns

    @property
    def truth_columns(self) -> tuple[tuple[str, str], tuple[str, str]]:
        """Accepted column names of the true flow and of the true radiometry, preferred first."""
        g = self.truth_group
        return (f"true_flow_{g}", "true_flow"), (f"true_radiometry_{g}", "true_radiometry")


def sen2venus_layout(load_10m: bool, load_20m: bool, load_b11b12: bool) -> Sen2VenusLayout:
    """The columns of a loading configuration; an unsupported one is a DataError listing the valid ones."""
    swir = ("b11b12_20m",) if load_b11b12 else ()
    if load_10m and not load_20m and not load_b11b12:
        return Sen2VenusLayout(("b2b3b4b8_10m",), ("b2b3b4b8_05m",), (), "10m")
    if load_20m and not load_10m:
        return Sen2VenusLayout(("b5b6b7b8a_20m", *swir), ("b5b6b7b8a_05m",), (), "20m")
    if load_10m and load_20m:
        return Sen2VenusLayout(
            ("b2b3b4b8_10m",), ("b2b3b4b8_05m", "b5b6b7b8a_05m"), ("b5b6b7b8a_20m", *swir), "10m"
        )
    raise DataError(
        f"unsupported Sen2Venµs configuration load_10m={load_10m}, load_20m={load_20m}, "
        f"load_b11b12={load_b11b12}; valid ones are: 10 m only (x2), 20 m only with or without B11/B12 (x4), "
        "10 m + 20 m with or without B11/B12 (B11/B12 need the 20 m bands; B11/B12 have no 5 m target)"
    )


def available_sites(root: str | Path) -> list[str]:
    """Sorted names of the sub-folders of ``root`` that hold an ``index.csv`` (the site folders)."""
    r = Path(root)
    if not r.is_dir():
        raise DataError(
            f"Sen2Venµs root {r} is not a folder (set the dataset path, e.g. SEN2VENUS_DATASET_PATH)"
        )
    return sorted(p.name for p in r.iterdir() if p.is_dir() and (p / INDEX_FILE).is_file())


def check_sites(root: str | Path, sites: Sequence[str], role: str = "site") -> None:
    """Raise a DataError naming every unknown site and listing the available ones."""
    available = available_sites(root)
    unknown = [s for s in sites if s not in available]
    if unknown:
        raise DataError(
            f"unknown Sen2Venµs {role}(s) {unknown} under {root}; available sites (folders with an "
            f"{INDEX_FILE}) "
            f"are: {available if available else 'none'}"
        )


def read_index(folder: str | Path, required: Sequence[str]) -> pd.DataFrame:
    """Read a site's tab-separated ``index.csv`` and check it: the ``required`` columns are there, it has
    rows, and no patch file of those columns is listed by two rows (it could land in two splits)."""
    path = Path(folder) / INDEX_FILE
    if not path.is_file():
        raise DataError(
            f"site {Path(folder).name}: missing {path} (a Sen2Venµs site folder holds a tab-separated "
            f"{INDEX_FILE} "
            "with one row per patch)"
        )
    try:
        index = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise DataError(
            f"site {Path(folder).name}: {path} is not a readable tab-separated file ({exc})"
        ) from exc
    missing = [c for c in required if c not in index.columns]
    if missing:
        raise DataError(
            f"site {Path(folder).name}: {path} lacks the column(s) {missing} needed by this configuration; "
            f"present columns are {list(index.columns)}"
        )
    if len(index) == 0:
        raise DataError(f"site {Path(folder).name}: {path} has no rows")
    check_unique_cells(index, required, f"site {Path(folder).name}: {path}")
    return index


def site_seed(seed: int, name: str) -> int:
    """A per-site seed derived from the run seed and the site name (stable across Python runs)."""
    return (int(seed) * 1_000_003 + zlib.crc32(name.encode("utf-8"))) % (2**63 - 1)


def subsample(n: int, max_count: int | None, seed: int) -> list[int]:
    """``min(n, max_count)`` sorted row indices, drawn without replacement with a seeded generator."""
    if max_count is None or n <= max_count:
        return list(range(n))
    if max_count < 1:
        raise DataError(f"max_patches_per_site must be >= 1, got {max_count}")
    g = torch.Generator().manual_seed(seed)
    return sorted(torch.randperm(n, generator=g)[:max_count].tolist())


class Sen2VenusSite(Dataset[Sample]):
    """The patches of one Sen2Venµs site (optionally a subset of its rows), as :class:`Sample` s.

    ``cache``: keep every decoded sample in memory after its first read (per process). ``load_truth``: read
    the ``true_flow_*``/``true_radiometry_*`` columns when the index has them.
    """

    def __init__(
        self,
        folder: str | Path,
        layout: Sen2VenusLayout,
        rows: Sequence[int] | None = None,
        cache: bool = False,
        load_truth: bool = True,
        reader: RasterReader | None = None,
    ) -> None:
        self.folder = Path(folder).resolve()
        self.name = self.folder.name
        self.layout = layout
        index = read_index(self.folder, layout.columns)
        self.num_rows = len(index)
        self.rows = list(range(len(index))) if rows is None else [int(r) for r in rows]
        bad = [r for r in self.rows if not 0 <= r < len(index)]
        if bad:
            raise DataError(f"site {self.name}: row(s) {bad[:5]} out of range (index has {len(index)} rows)")
        self._cells = {c: index[c].tolist() for c in layout.columns}
        self.flow_column: str | None = None
        self.radiometry_column: str | None = None
        if load_truth:
            flow_names, rad_names = layout.truth_columns
            self.flow_column = next((c for c in flow_names if c in index.columns), None)
            self.radiometry_column = next((c for c in rad_names if c in index.columns), None)
            for c in (self.flow_column, self.radiometry_column):
                if c is not None:
                    self._cells[c] = index[c].tolist()
        self.reader = reader or RasterReader()
        self.cache = cache
        self._cache: dict[int, Sample] = {}

    def __len__(self) -> int:
        return len(self.rows)

    def path(self, row: int, column: str) -> str:
        """The GDAL path of a cell (``/vsizip/<site folder>/<cell>``)."""
        return vsizip_path(self.folder, self._cells[column][row])

    def _what(self, row: int, column: str) -> str:
        return f"site {self.name}, row {row}, column {column}, file {self._cells[column][row]}"

    def read_cell(self, row: int, column: str, validate: bool = True) -> np.ndarray:
        """The raster of one cell, ``[bands, rows, cols]`` as stored; patches are validated (no data, 0)."""
        cell = self._cells[column][row]
        if not cell:
            raise DataError(f"{self._what(row, column)}: empty cell")
        what = self._what(row, column)
        array = self.reader.read(self.path(row, column), what)
        if validate:
            check_patch(array, what)
        return array

    def _read_group(self, row: int, columns: Sequence[str]) -> torch.Tensor:
        arrays = [self.read_cell(row, c) for c in columns]
        shapes = {a.shape[1:] for a in arrays}
        if len(shapes) != 1:
            raise DataError(
                f"site {self.name}, row {row}: columns {list(columns)} have different sizes "
                f"{[a.shape for a in arrays]}"
            )
        stacked = arrays[0] if len(arrays) == 1 else np.concatenate(arrays, axis=0)
        return torch.from_numpy(stacked.astype(np.float32, copy=False))

    def load(self, row: int) -> Sample:
        """Read the patch of index row ``row`` (not a position in ``rows``)."""
        lay = self.layout
        inputs = self._read_group(row, lay.input_columns)
        target = self._read_group(row, lay.target_columns)
        lr_inputs = self._read_group(row, lay.lr_columns) if lay.lr_columns else None
        factor = lay.factor
        h, w = inputs.shape[-2:]
        if (target.shape[-2], target.shape[-1]) != (round(h * factor), round(w * factor)):
            raise DataError(
                f"site {self.name}, row {row}: target {tuple(target.shape)} is not {factor:g} times the "
                "input "
                f"{tuple(inputs.shape)}"
            )
        if lr_inputs is not None and (2 * lr_inputs.shape[-2], 2 * lr_inputs.shape[-1]) != (h, w):
            raise DataError(
                f"site {self.name}, row {row}: 20 m inputs {tuple(lr_inputs.shape)} are not half the size of "
                "the "
                f"10 m inputs {tuple(inputs.shape)}"
            )
        if len(lay.input_bands) != inputs.shape[0] or len(lay.target_bands) != target.shape[0]:
            raise DataError(
                f"site {self.name}, row {row}: expected {len(lay.input_bands)} input and "
                f"{len(lay.target_bands)} "
                f"target bands, read {inputs.shape[0]} and {target.shape[0]}"
            )
        true_flow = true_rad = None
        if self.flow_column is not None:
            flow = self.read_cell(row, self.flow_column, validate=False)
            if flow.shape != (2, h, w):
                raise DataError(
                    f"{self._what(row, self.flow_column)}: expected a [2, {h}, {w}] flow, got {flow.shape}"
                )
            true_flow = torch.from_numpy(flow.astype(np.float32, copy=False))
        if self.radiometry_column is not None:
            rad = self.read_cell(row, self.radiometry_column, validate=False)
            c = inputs.shape[0]
            if rad.shape[0] < c or rad.shape[1:] != (h, w):
                raise DataError(
                    f"{self._what(row, self.radiometry_column)}: expected at least [{c}, {h}, {w}], "
                    f"got {rad.shape}"
                )
            true_rad = torch.from_numpy(rad[:c].astype(np.float32, copy=False))
        return Sample(
            inputs=inputs,
            target=target,
            input_bands=lay.input_bands,
            target_bands=lay.target_bands,
            input_resolution_m=lay.input_resolution_m,
            target_resolution_m=lay.target_resolution_m,
            lr_inputs=lr_inputs,
            lr_bands=lay.lr_bands,
            lr_resolution_m=lay.lr_resolution_m,
            true_flow=true_flow,
            true_radiometry=true_rad,
            id=f"{self.name}:{row}",
        )

    def __getitem__(self, i: int) -> Sample:
        if self.cache and i in self._cache:
            return self._cache[i]
        sample = self.load(self.rows[i])
        if self.cache:
            self._cache[i] = sample
        return sample


def open_sites(
    root: str | Path,
    sites: Sequence[str],
    layout: Sen2VenusLayout,
    max_patches_per_site: int | None,
    seed: int,
    cache: bool = False,
    load_truth: bool = True,
    role: str = "site",
) -> list[Sen2VenusSite]:
    """One :class:`Sen2VenusSite` per name, each capped at ``max_patches_per_site`` rows (seeded subset)."""
    check_sites(root, sites, role)
    out = []
    for name in sites:
        folder = Path(root) / name
        full = Sen2VenusSite(folder, layout, cache=cache, load_truth=load_truth)
        rows = subsample(full.num_rows, max_patches_per_site, site_seed(seed, name))
        full.rows = rows
        out.append(full)
    return out
