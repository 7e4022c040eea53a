"""One cross-sensor pair as read from disk (:class:`Sample`) and the collate function that stacks samples
into a :class:`~sisrlib.data.batch.Batch`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from sisrlib.data.batch import Batch
from sisrlib.errors import DataError


@dataclass
class Sample:
    """One pair, unbatched, in DN (reflectance × 10000) float32 — what the datasets' ``__getitem__`` returns.

    ``inputs`` ``[C, h, w]``, ``target`` ``[C_t, H, W]``, ``lr_inputs`` ``[K, h/2, w/2]`` or None,
    ``true_flow`` ``[2, h, w]`` (input pixels) and ``true_radiometry`` ``[C, h, w]`` (DN) or None (embedded
    sites only, see :class:`~sisrlib.data.batch.Batch`). ``id`` names the pair (``SITE:row`` or the WorldStrat
    id).
    """

    inputs: torch.Tensor
    target: torch.Tensor
    input_bands: tuple[str, ...]
    target_bands: tuple[str, ...]
    input_resolution_m: float
    target_resolution_m: float
    lr_inputs: torch.Tensor | None = None
    lr_bands: tuple[str, ...] = ()
    lr_resolution_m: float | None = None
    true_flow: torch.Tensor | None = None
    true_radiometry: torch.Tensor | None = None
    id: str = ""


def _stack(samples: Sequence[Sample], name: str) -> torch.Tensor | None:
    values = [getattr(s, name) for s in samples]
    present = [v is not None for v in values]
    if not any(present):
        return None
    if not all(present):
        # A mixed batch (e.g. real and embedded sites together): the truth is only meaningful for all or none.
        return None
    shapes = {tuple(v.shape) for v in values}
    if len(shapes) != 1:
        raise DataError(
            f"collate: {name} shapes differ inside the batch: {sorted(shapes)} (ids {_ids(samples)})"
        )
    return torch.stack(values)


def _ids(samples: Sequence[Sample]) -> list[str]:
    return [s.id for s in samples][:8]


def collate_batch(samples: Sequence[Sample]) -> Batch:
    """Stack samples into a :class:`Batch` (the DataLoader ``collate_fn``).

    All samples must share bands, resolutions and shapes; ``true_flow``/``true_radiometry`` are kept only when
    every sample has them.
    """
    if len(samples) == 0:
        raise DataError("collate: empty list of samples")
    first = samples[0]
    for s in samples[1:]:
        if (s.input_bands, s.target_bands, s.lr_bands) != (
            first.input_bands,
            first.target_bands,
            first.lr_bands,
        ):
            raise DataError(
                f"collate: samples {first.id!r} and {s.id!r} have different bands "
                f"({first.input_bands}/{first.target_bands} vs {s.input_bands}/{s.target_bands})"
            )
        if (s.input_resolution_m, s.target_resolution_m) != (
            first.input_resolution_m,
            first.target_resolution_m,
        ):
            raise DataError(f"collate: samples {first.id!r} and {s.id!r} have different resolutions")
    inputs = _stack(samples, "inputs")
    target = _stack(samples, "target")
    assert inputs is not None and target is not None
    return Batch(
        inputs=inputs,
        target=target,
        input_bands=first.input_bands,
        target_bands=first.target_bands,
        input_resolution_m=first.input_resolution_m,
        target_resolution_m=first.target_resolution_m,
        lr_inputs=_stack(samples, "lr_inputs"),
        lr_bands=first.lr_bands,
        lr_resolution_m=first.lr_resolution_m,
        true_flow=_stack(samples, "true_flow"),
        true_radiometry=_stack(samples, "true_radiometry"),
        ids=tuple(s.id for s in samples),
    )


def select_bands(sample: Sample, bands: Sequence[str]) -> Sample:
    """Keep only ``bands`` (by name) in the target and in the inputs that carry them.

    Every requested band must be a target band; input-only bands (B11, B12) stay in the inputs.
    """
    missing = [b for b in bands if b not in sample.target_bands]
    if missing:
        raise DataError(
            f"band(s) {missing} are not available in this dataset configuration; target bands are "
            f"{list(sample.target_bands)}"
        )

    def keep(available: tuple[str, ...]) -> list[int]:
        # requested bands in the requested order, then the input-only bands (no target) in stored order
        wanted = [available.index(b) for b in bands if b in available]
        return wanted + [i for i, b in enumerate(available) if b not in sample.target_bands]

    t_idx = [sample.target_bands.index(b) for b in bands]
    i_idx = keep(sample.input_bands)
    if not [i for i in i_idx if sample.input_bands[i] in sample.target_bands]:
        raise DataError(
            f"none of the requested bands {list(bands)} is an input band {list(sample.input_bands)}"
        )
    l_idx = keep(sample.lr_bands)
    lr_inputs = sample.lr_inputs
    lr_bands = sample.lr_bands
    if lr_inputs is not None:
        lr_inputs = lr_inputs[l_idx] if l_idx else None
        lr_bands = tuple(sample.lr_bands[i] for i in l_idx) if l_idx else ()
    return Sample(
        inputs=sample.inputs[i_idx],
        target=sample.target[t_idx],
        input_bands=tuple(sample.input_bands[i] for i in i_idx),
        target_bands=tuple(bands),
        input_resolution_m=sample.input_resolution_m,
        target_resolution_m=sample.target_resolution_m,
        lr_inputs=lr_inputs,
        lr_bands=lr_bands,
        lr_resolution_m=sample.lr_resolution_m if lr_inputs is not None else None,
        true_flow=sample.true_flow,
        true_radiometry=None if sample.true_radiometry is None else sample.true_radiometry[i_idx],
        id=sample.id,
    )
