"""WorldStrat-derived wsx4 / wsx2 datasets (torchsisr's): the reader, and the builder from the original data.

**Derived format** (what the reader reads, what the builder writes): a folder with a tab-separated
``index.csv`` holding the split columns of WorldStrat (notably ``split`` = train/val/test), ``hr_img`` and
``lr_img`` (paths of ``<id>_hr.tif`` / ``<id>_lr.tif``, relative to the index's folder or absolute) and
``correlation`` (|Pearson r| of the band means of the LR and of the HR brought to the LR grid). Bands are
B2 B3 B4 B8 in both images. The LR (Sentinel-2 L2A) is in DN (reflectance × 10000, int16), 128 × 128 px at
10 m; the HR (SPOT 6/7 pan-sharpened) is **in SPOT's own radiometric units**, as stored (int16), 512 × 512 px
at 2.5 m (wsx4) or 256 × 256 px at 5 m (wsx2). Optional ``true_flow`` / ``true_radiometry`` columns (embedded
sites only) are read like the Sen2Venµs ones.

**Original WorldStrat layout** (Zenodo 6810792, as used by the reference script and checked against the
WorldStrat code: ``SentinelDownloader.download_revisit``/``save_metadata_alt`` and the readers of
``src/datasets.py``)::

    <root>/stratified_train_val_test_split.csv        comma-separated, columns tile, …, split
    <root>/lr_dataset_l2a/<tile>/L2A/<tile>-<n>-L2A_data.tiff   12-band S2 L2A stack (B1…B12 without B10),
                                                      reflectance (float, [0, 1]), ~158 × 158 px at 10 m
    <root>/lr_dataset_l2a/<tile>/L2A/<tile>-<n>.metadata        JSON (hence YAML) with a ``delta`` entry:
                                                      days between the S2 revisit and the SPOT acquisition
    <root>/hr_dataset/<tile>/<tile>_ps.tiff           SPOT pan-sharpened, bands R G B NIR, 1.5 m, 1054 × 1054
    px

(``lr_dataset`` instead of ``lr_dataset_l2a`` and ``hr_dataset/12bit/<tile>`` are accepted too, as distributed
on Kaggle.) **Builder** (:func:`build_worldstrat_dataset`), per tile of the split file present on disk: the
revisit with the smallest |delta| is kept if < ``max_delta`` days; LR = bands [1, 2, 3, 7] (B2 B3 B4 B8) ×
10000, rows/cols ``lr_offset … lr_offset + lr_size``; HR = ``mtf_downscale`` (its float64 equivalent
``separable_mtf_downscale``) of the pan-sharpened image from 1.5 m to ``10 / factor`` m (Gaussian PSF with MTF
``hr_mtf`` = 0.1 at the target Nyquist), bands reordered [2, 1, 0, 3] (blue, green, red, NIR), crop starting
at ``lr_offset · factor`` of size ``lr_size · factor``, int16.

For **×2** (not in the reference, whose script is hard-coded for ×4): the HR is degraded to 5 m instead of
2.5 m and cut from the *same ground window* as the ×4 crop (offset 20, 256 × 256 px at 5 m = 1280 m = the
128 LR pixels); the LR is identical. This is our choice: the published wsx2's exact recipe is not documented.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import yaml
from rasterio.transform import Affine
from torch.utils.data import Dataset

from sisrlib.atomic import atomic_output, write_text_atomic
from sisrlib.bands import BANDS_10M
from sisrlib.data.indexes import check_unique_cells
from sisrlib.data.raster import RasterReader, check_patch, write_geotiff
from sisrlib.data.sample import Sample
from sisrlib.data.simulation import separable_mtf_downscale
from sisrlib.degradation import PSF_KERNELS, PsfKernel
from sisrlib.errors import DataError

WORLDSTRAT_BANDS: tuple[str, ...] = BANDS_10M
#: Nominal pixel size of the LR (Sentinel-2) images, in metres.
LR_RESOLUTION_M = 10.0
REQUIRED_COLUMNS: tuple[str, ...] = ("split", "hr_img", "lr_img", "correlation")


def _resolve(base: Path, cell: str) -> str:
    p = Path(cell)
    return str(p if p.is_absolute() else base / p)


class WorldStratDataset(Dataset[Sample]):
    """The pairs of one split of a derived WorldStrat index: inputs = S2 LR (DN), target = HR as stored.

    Keeps the rows with ``split == split`` and ``correlation > min_correlation`` (the reference's filter).
    The factor is read from the first pair (HR size / LR size); every pair must share it. An index with a
    correlation that is not a finite number, or with an image listed by two rows, is refused (naming the
    rows): such rows used to be dropped silently, or to land in two splits.
    """

    def __init__(
        self,
        index_path: str | Path,
        split: str,
        min_correlation: float = 0.2,
        cache: bool = False,
        load_truth: bool = True,
        reader: RasterReader | None = None,
    ) -> None:
        self.index_path = Path(index_path)
        if self.index_path.is_dir():
            self.index_path = self.index_path / "index.csv"
        if not self.index_path.is_file():
            raise DataError(
                f"WorldStrat index {self.index_path} does not exist (set the dataset path, e.g. "
                "WORLDSTRATX4_DATASET_PATH, to the index.csv of a wsx2/wsx4 folder)"
            )
        try:
            index = pd.read_csv(
                self.index_path, sep="\t", keep_default_na=False, dtype={"hr_img": str, "lr_img": str}
            )
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
            raise DataError(
                f"WorldStrat index {self.index_path} is not a readable tab-separated file ({exc})"
            ) from exc
        missing = [c for c in REQUIRED_COLUMNS if c not in index.columns]
        if missing:
            raise DataError(
                f"WorldStrat index {self.index_path} lacks the column(s) {missing}; present columns are "
                f"{list(index.columns)}"
            )
        corr = pd.to_numeric(index["correlation"], errors="coerce")
        bad = np.flatnonzero(~np.isfinite(corr.to_numpy(dtype=np.float64)))
        if bad.size:
            shown = ", ".join(
                f"row {r} ({index['lr_img'].iloc[r]}): {index['correlation'].iloc[r]!r}" for r in bad[:10]
            )
            more = f" and {bad.size - 10} more" if bad.size > 10 else ""
            raise DataError(
                f"WorldStrat index {self.index_path}: the correlation of {bad.size} row(s) is not a finite "
                f"number: {shown}{more} (rows are 0-based, header excluded). Every row needs the |Pearson r| "
                "of its pair (the min_correlation filter reads it); rebuild the index "
                "(python -m sisrlib.data.worldstrat) or remove those rows"
            )
        check_unique_cells(index, ("hr_img", "lr_img"), f"WorldStrat index {self.index_path}")
        keep = (index["split"].astype(str) == split) & (corr > min_correlation)
        self.split = split
        self.min_correlation = min_correlation
        self.rows = index[keep].reset_index(drop=True)
        if len(self.rows) == 0:
            splits = sorted(set(index["split"].astype(str)))
            raise DataError(
                f"WorldStrat index {self.index_path}: no pair with split == {split!r} and correlation > "
                f"{min_correlation} (splits present: {splits}; "
                f"{int((index['split'] == split).sum())} pairs in "
                "that split before the correlation filter)"
            )
        base = self.index_path.parent
        self._hr = [_resolve(base, c) for c in self.rows["hr_img"]]
        self._lr = [_resolve(base, c) for c in self.rows["lr_img"]]
        self._ids = [Path(c).name.removesuffix("_lr.tif") for c in self.rows["lr_img"]]
        self._flow = (
            [_resolve(base, c) for c in self.rows["true_flow"]]
            if load_truth and "true_flow" in index
            else None
        )
        self._rad = (
            [_resolve(base, c) for c in self.rows["true_radiometry"]]
            if load_truth and "true_radiometry" in index
            else None
        )
        self.reader = reader or RasterReader()
        self.cache = cache
        self._cache: dict[int, Sample] = {}
        _, lr_h, _ = self.reader.shape(self._lr[0], f"WorldStrat pair {self._ids[0]} (lr_img)")
        _, hr_h, _ = self.reader.shape(self._hr[0], f"WorldStrat pair {self._ids[0]} (hr_img)")
        self.factor = hr_h / lr_h

    @property
    def input_bands(self) -> tuple[str, ...]:
        return WORLDSTRAT_BANDS

    @property
    def target_bands(self) -> tuple[str, ...]:
        return WORLDSTRAT_BANDS

    def __len__(self) -> int:
        return len(self.rows)

    def load(self, i: int) -> Sample:
        what = f"WorldStrat pair {self._ids[i]} (split {self.split}, row {i})"
        lr = self.reader.read(self._lr[i], f"{what}, lr_img")
        hr = self.reader.read(self._hr[i], f"{what}, hr_img")
        check_patch(lr, f"{what}, lr_img {self._lr[i]}")
        check_patch(hr, f"{what}, hr_img {self._hr[i]}")
        if lr.shape[0] != 4 or hr.shape[0] != 4:
            raise DataError(
                f"{what}: expected 4 bands (B2 B3 B4 B8) in both images, got {lr.shape} and {hr.shape}"
            )
        h, w = lr.shape[1:]
        if hr.shape[1:] != (round(h * self.factor), round(w * self.factor)):
            raise DataError(f"{what}: HR {hr.shape} is not {self.factor:g} times the LR {lr.shape}")
        flow = rad = None
        if self._flow is not None:
            f = self.reader.read(self._flow[i], f"{what}, true_flow")
            if f.shape != (2, h, w):
                raise DataError(f"{what}: expected a [2, {h}, {w}] true_flow, got {f.shape}")
            flow = torch.from_numpy(f.astype(np.float32, copy=False))
        if self._rad is not None:
            r = self.reader.read(self._rad[i], f"{what}, true_radiometry")
            if r.shape != lr.shape:
                raise DataError(f"{what}: expected a {lr.shape} true_radiometry, got {r.shape}")
            rad = torch.from_numpy(r.astype(np.float32, copy=False))
        return Sample(
            inputs=torch.from_numpy(lr.astype(np.float32, copy=False)),
            target=torch.from_numpy(hr.astype(np.float32, copy=False)),
            input_bands=WORLDSTRAT_BANDS,
            target_bands=WORLDSTRAT_BANDS,
            input_resolution_m=LR_RESOLUTION_M,
            target_resolution_m=LR_RESOLUTION_M / self.factor,
            true_flow=flow,
            true_radiometry=rad,
            id=self._ids[i],
        )

    def __getitem__(self, i: int) -> Sample:
        if self.cache and i in self._cache:
            return self._cache[i]
        sample = self.load(i)
        if self.cache:
            self._cache[i] = sample
        return sample


# ------------------------------------------------------------------------------------------------------------
# Builder from the original WorldStrat
# ------------------------------------------------------------------------------------------------------------


def worldstrat_correlation(
    lr: torch.Tensor, hr: torch.Tensor, factor: float, mtf: float = 0.1, kernel: PsfKernel = "exact"
) -> float:
    """|Pearson r| between the band mean of ``lr`` ``[C, h, w]`` and the band mean of ``hr`` ``[C, H, W]``
    brought to the LR grid by ``mtf_downscale(·, factor, mtf, kernel=kernel)`` (the reference's pair-quality
    score, whose kernel is ``"reference"``; computed in float64 with the equivalent
    :func:`~sisrlib.data.simulation.separable_mtf_downscale`)."""
    lr_mean = lr.double().mean(0).flatten()
    hr_low = separable_mtf_downscale(hr.double()[None], factor, mtf, kernel=kernel)[0].mean(0)
    hr_low = hr_low[: lr.shape[-2], : lr.shape[-1]].flatten()
    if hr_low.numel() != lr_mean.numel():
        raise DataError(f"correlation: HR {tuple(hr.shape)} ↓{factor:g} does not match LR {tuple(lr.shape)}")
    a = lr_mean - lr_mean.mean()
    b = hr_low - hr_low.mean()
    denom = math.sqrt(float((a * a).sum()) * float((b * b).sum()))
    if denom == 0.0:
        return 0.0
    return abs(float((a * b).sum()) / denom)


def parse_delta_days(value: Any) -> float:
    """Days between the S2 and SPOT acquisitions from a ``.metadata`` ``delta`` entry: a number of days, or a
    timedelta string such as ``"3 days 02:00:00"``."""
    if isinstance(value, int | float):
        return float(value)
    text = str(value).strip()
    try:
        return float(text)
    except ValueError:
        pass
    try:
        return pd.Timedelta(text).total_seconds() / 86400.0
    except (ValueError, TypeError) as exc:
        raise DataError(f"cannot read a number of days from delta = {value!r}") from exc


@dataclass
class WorldStratBuildReport:
    """What :func:`build_worldstrat_dataset` wrote and what it skipped (tile → reason)."""

    index_path: Path
    pairs: int
    skipped: dict[str, str] = field(default_factory=dict)


def _find_dir(root: Path, candidates: Sequence[str], what: str) -> Path:
    for c in candidates:
        if (root / c).is_dir():
            return root / c
    raise DataError(f"original WorldStrat {root}: no {what} folder (looked for {', '.join(candidates)})")


def _read_float(reader: RasterReader, path: Path, what: str) -> np.ndarray:
    return reader.read(str(path), what).astype(np.float64)


def build_worldstrat_dataset(
    original_root: str | Path,
    out_dir: str | Path,
    factor: int = 4,
    max_delta: float = 5.0,
    lr_offset: int = 10,
    lr_size: int = 128,
    hr_source_resolution_m: float = 1.5,
    hr_mtf: float = 0.1,
    psf_half_width: int | None = None,
    tiles: Sequence[str] | None = None,
    psf_kernel: PsfKernel = "exact",
) -> WorldStratBuildReport:
    """Derive wsx4 (``factor=4``, HR 2.5 m) or wsx2 (``factor=2``, HR 5 m) from the original WorldStrat.

    See the module docstring for the layouts and the recipe. ``psf_kernel``: the PSF of the HR downscaling and
    of the correlation score, ``exact`` (half-width ⌈4σ⌉, the Gaussian without truncation) or ``reference``
    (torchsisr's 7×7 kernel, what the published wsx sets used); ``psf_half_width`` overrides the half-width
    of ``exact``. ``tiles`` restricts the build to some tiles. Writes ``<out_dir>/<tile>_lr.tif``,
    ``<tile>_hr.tif`` and ``index.csv``; returns a report.
    """
    if factor not in (2, 4):
        raise DataError(f"factor must be 2 or 4, got {factor}")
    root = Path(original_root)
    split_csv = root / "stratified_train_val_test_split.csv"
    if not split_csv.is_file():
        raise DataError(f"original WorldStrat {root}: missing {split_csv.name}")
    lr_root = _find_dir(root, ("lr_dataset_l2a", "lr_dataset"), "LR (Sentinel-2 L2A)")
    hr_root = _find_dir(root, ("hr_dataset/12bit", "hr_dataset"), "HR (SPOT)")
    splits = pd.read_csv(split_csv)
    splits = splits.loc[:, [c for c in splits.columns if not str(c).startswith("Unnamed")]]
    if "tile" not in splits.columns or "split" not in splits.columns:
        raise DataError(f"{split_csv} needs the columns tile and split; present: {list(splits.columns)}")
    splits = splits.drop_duplicates(subset="tile").set_index("tile", drop=False)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    reader = RasterReader()
    hr_res = LR_RESOLUTION_M / factor
    hr_offset, hr_size = lr_offset * factor, lr_size * factor
    report = WorldStratBuildReport(out / "index.csv", 0)
    records: list[dict[str, Any]] = []
    tile_dirs = sorted(p for p in lr_root.iterdir() if p.is_dir())
    for tile_dir in tile_dirs:
        tile = tile_dir.name
        if tiles is not None and tile not in tiles:
            continue
        if tile not in splits.index:
            report.skipped[tile] = "not in the split file"
            continue
        best: tuple[float, Path] | None = None
        for meta in sorted((tile_dir / "L2A").glob("*.metadata")):
            try:
                content = yaml.safe_load(meta.read_text(encoding="utf-8"))
                delta = abs(parse_delta_days(content["delta"]))
            except (yaml.YAMLError, KeyError, TypeError, DataError) as exc:
                report.skipped[f"{tile}/{meta.name}"] = f"unreadable metadata ({exc})"
                continue
            if best is None or delta < best[0]:
                best = (delta, meta)
        if best is None or best[0] >= max_delta:
            report.skipped[tile] = "no revisit within max_delta" if best else "no revisit metadata"
            continue
        lr_path = best[1].with_name(best[1].name.removesuffix(".metadata") + "-L2A_data.tiff")
        hr_path = hr_root / tile / f"{tile}_ps.tiff"
        if not lr_path.is_file() or not hr_path.is_file():
            report.skipped[tile] = f"missing {lr_path.name if not lr_path.is_file() else hr_path.name}"
            continue
        lr_all = _read_float(reader, lr_path, f"tile {tile} LR")
        if lr_all.shape[0] < 8 or min(lr_all.shape[1:]) < lr_offset + lr_size:
            report.skipped[tile] = f"LR image {lr_all.shape} too small for the crop"
            continue
        lr = np.rint(
            lr_all[[1, 2, 3, 7], lr_offset : lr_offset + lr_size, lr_offset : lr_offset + lr_size] * 10000
        )
        ps = torch.from_numpy(_read_float(reader, hr_path, f"tile {tile} HR"))
        if ps.shape[0] < 4:
            report.skipped[tile] = f"HR image has {ps.shape[0]} bands, expected 4 (R G B NIR)"
            continue
        hr_full = separable_mtf_downscale(
            ps[None], hr_res / hr_source_resolution_m, hr_mtf, psf_half_width, kernel=psf_kernel
        )[0]
        if min(hr_full.shape[1:]) < hr_offset + hr_size:
            report.skipped[tile] = f"HR image {tuple(ps.shape)} too small for the crop"
            continue
        hr = hr_full[[2, 1, 0, 3], hr_offset : hr_offset + hr_size, hr_offset : hr_offset + hr_size]
        hr_i16 = np.clip(np.rint(hr.numpy()), -32768, 32767).astype(np.int16)
        lr_i16 = np.clip(lr, -32768, 32767).astype(np.int16)
        corr = worldstrat_correlation(
            torch.from_numpy(lr_i16.astype(np.float64)), torch.from_numpy(hr_i16), factor, kernel=psf_kernel
        )
        write_geotiff(out / f"{tile}_lr.tif", lr_i16, Affine(LR_RESOLUTION_M, 0, 0, 0, -LR_RESOLUTION_M, 0))
        write_geotiff(out / f"{tile}_hr.tif", hr_i16, Affine(hr_res, 0, 0, 0, -hr_res, 0))
        record: dict[str, Any] = {str(k): v for k, v in splits.loc[tile].items()}
        record.update(
            hr_img=f"{tile}_hr.tif",
            lr_img=f"{tile}_lr.tif",
            correlation=corr,
            revisit=best[1].stem,
            delta=best[0],
        )
        records.append(record)
    if not records:
        raise DataError(f"original WorldStrat {root}: no tile could be used; skipped: {report.skipped}")
    report.pairs = len(records)
    write_text_atomic(
        out / "build_report.json",
        json.dumps({"factor": factor, "pairs": report.pairs, "skipped": report.skipped}, indent=1),
    )
    with atomic_output(report.index_path) as tmp:
        pd.DataFrame.from_records(records).to_csv(tmp, sep="\t", index=False)
    return report


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m sisrlib.data.worldstrat ORIGINAL_ROOT OUT_DIR --factor {2,4}``."""
    p = argparse.ArgumentParser(description="Build wsx4 / wsx2 from the original WorldStrat dataset")
    p.add_argument("original_root")
    p.add_argument("out_dir")
    p.add_argument("--factor", type=int, choices=(2, 4), default=4)
    p.add_argument(
        "--max-delta", type=float, default=5.0, help="maximum |days| between S2 and SPOT (default 5)"
    )
    p.add_argument(
        "--psf-kernel",
        choices=PSF_KERNELS,
        default="exact",
        help="PSF of the HR downscaling: exact (default, half-width 4 sigma) or reference (torchsisr's 7x7)",
    )
    args = p.parse_args(argv)
    try:
        report = build_worldstrat_dataset(
            args.original_root, args.out_dir, args.factor, args.max_delta, psf_kernel=args.psf_kernel
        )
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {report.pairs} pairs to {report.index_path} ({len(report.skipped)} skipped)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
