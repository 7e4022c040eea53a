"""Test batches, paths and devices shared by the evaluation and the dataset analysis.

Paths are taken as given: relative paths are relative to the current directory (or to an explicit ``root``);
nothing here assumes where the repository lies.
"""

from __future__ import annotations

import glob
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import torch

from sisrlib.bands import dn_to_reflectance
from sisrlib.data.batch import Batch
from sisrlib.data.datamodule import build_datamodule
from sisrlib.data.params import DataParams
from sisrlib.degradation import upsample
from sisrlib.errors import SisrError

#: ``factory(data_params, seed)`` → a datamodule whose ``test_dataloader()`` yields ``Batch``.
DatamoduleFactory = Callable[[DataParams, int], Any]


def resolve_path(path: str | Path, root: str | Path | None = None) -> Path:
    """``path`` as a ``Path``: absolute paths as given, relative ones relative to ``root`` when given, else to
    the current directory."""
    p = Path(path)
    if p.is_absolute() or root is None:
        return p
    return Path(root) / p


def is_glob(text: str) -> bool:
    """Whether ``text`` is a glob pattern (``*``, ``?`` or ``[``)."""
    return any(ch in text for ch in "*?[")


def glob_paths(pattern: str, root: str | Path | None = None) -> list[Path]:
    """The sorted paths matching ``pattern`` (relative patterns relative to ``root`` or the current
    directory)."""
    return [Path(m) for m in sorted(glob.glob(str(resolve_path(pattern, root))))]


def resolve_device(name: str) -> torch.device:
    """``"auto"`` → cuda when available, else cpu; any other name as ``torch.device(name)``."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def default_datamodule(data: DataParams, seed: int) -> Any:
    """The test datamodule of a data section (``sisrlib.data.build_datamodule``)."""
    return build_datamodule(data, seed)


def test_batches(datamodule: Any, max_batches: int | None) -> Iterable[Batch]:
    """The first ``max_batches`` batches (all with None) of a datamodule's test loader."""
    datamodule.setup("test")
    for k, batch in enumerate(datamodule.test_dataloader()):
        if max_batches is not None and k >= max_batches:
            break
        if not isinstance(batch, Batch):
            raise SisrError(
                f"the test loader yielded {type(batch).__name__}, expected sisrlib.data.batch.Batch"
            )
        yield batch


def input_band_available(batch: Batch, band: str) -> bool:
    """Whether ``band`` is among the batch's input bands (10 m) or its LR (20 m) bands."""
    return band in batch.input_bands or (batch.lr_inputs is not None and band in batch.lr_bands)


def bicubic_input(batch: Batch, bands: Sequence[str]) -> torch.Tensor:
    """The real input bicubic-upsampled to the target grid, bands ``bands`` (each from its own grid:
    ``inputs`` or ``lr_inputs``), reflectance ``[B, len(bands), H, W]``. The interpolation runs on the DN, as
    the bicubic baseline predictor (``sisrlib.predictors.BicubicPredictor``) does, so that on single-grid data
    the baseline's prediction and this input are the same tensor (its FRR is exactly 0)."""
    size = batch.target.shape[-2:]
    out = []
    for band in bands:
        if band in batch.input_bands:
            src = batch.inputs[:, [batch.input_bands.index(band)]]
        elif batch.lr_inputs is not None and band in batch.lr_bands:
            src = batch.lr_inputs[:, [batch.lr_bands.index(band)]]
        else:
            raise SisrError(
                f"band {band} of the target is in neither the input bands {batch.input_bands} nor the LR "
                f"bands {batch.lr_bands}"
            )
        factor = size[-1] / src.shape[-1]
        up = dn_to_reflectance(upsample(src.float(), factor))
        out.append(up[..., : size[0], : size[1]])
    return torch.cat(out, dim=1)
