"""Running the metrics benchmark: read the patches, distort them, score every metric, write the outputs."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from sisrlib.bands import dn_to_reflectance
from sisrlib.data.batch import Batch
from sisrlib.data.params import DataParams
from sisrlib.degradation import mtf_downscale, upsample
from sisrlib.errors import SisrError
from sisrlib.experiments.evaluation.batches import default_datamodule, resolve_device
from sisrlib.experiments.metrics_benchmark.dependencies import unavailable_reason
from sisrlib.experiments.metrics_benchmark.params import DISTORTIONS, BenchmarkParams
from sisrlib.experiments.metrics_benchmark.registry import FDA_METRICS, METRICS, select_metrics, tv_diff_spec
from sisrlib.experiments.metrics_benchmark.simulation import simulate
from sisrlib.experiments.metrics_benchmark.spec import MetricSpec
from sisrlib.experiments.metrics_benchmark.summary import write_outputs
from sisrlib.metrics import fda
from sisrlib.metrics.pixel import crop

LOGGER = logging.getLogger("sisrlib.experiments.metrics_benchmark")


@dataclass
class BenchmarkResult:
    """The long results table and the files written."""

    table: pd.DataFrame
    summary: pd.DataFrame
    skipped: dict[str, str]
    files: list[Path]


@dataclass(frozen=True)
class BenchmarkPatches:
    """The benchmark's patches of one band, reflectance: ``reference`` the HR targets ``[N, 1, H, W]``
    clipped to [0, 1]; ``lr`` the real LR inputs of the same band ``[N, 1, H/f, W/f]`` (not clipped), None
    when the band is not an input band; ``factor`` the dataset's."""

    reference: torch.Tensor
    lr: torch.Tensor | None
    factor: float


def reference_patches(params: BenchmarkParams, batches: Iterable[Batch]) -> BenchmarkPatches:
    """The first ``nb_patches`` patches of band ``params.band`` (see ``BenchmarkPatches``)."""
    chunks: list[torch.Tensor] = []
    lr_chunks: list[torch.Tensor] = []
    factor = None
    count = 0
    for batch in batches:
        if params.band not in batch.target_bands:
            raise SisrError(
                f"band {params.band} is not among the target bands {batch.target_bands}; set band to one of "
                "them"
            )
        k = batch.target_bands.index(params.band)
        factor = batch.factor
        chunk = dn_to_reflectance(batch.target[:, k : k + 1]).clamp(0.0, 1.0)
        chunks.append(chunk[: params.nb_patches - count])
        if params.band in batch.input_bands:
            i = batch.input_bands.index(params.band)
            lr_chunks.append(dn_to_reflectance(batch.inputs[:, i : i + 1])[: params.nb_patches - count])
        count += chunks[-1].shape[0]
        if count >= params.nb_patches:
            break
    if not chunks or factor is None:
        raise SisrError("the dataset yielded no patch; check the data section (root, sites, split)")
    if count < params.nb_patches:
        LOGGER.warning("only %d patches available (nb_patches = %d)", count, params.nb_patches)
    lr = torch.cat(lr_chunks) if len(lr_chunks) == len(chunks) else None
    return BenchmarkPatches(torch.cat(chunks), lr, float(factor))


def fda_input(
    reference: torch.Tensor, factor: float, params: BenchmarkParams, lr: torch.Tensor | None = None
) -> torch.Tensor:
    """The FDA "input" ``[N, 1, H, W]`` (reflectance): the real LR ``lr`` bicubic ×``factor``
    (``fda_input: sentinel2``, torchsisr's), or ``reference`` degraded by ``factor`` with MTF ``input_mtf``
    then bicubic ×``factor`` (``simulated``, ours)."""
    h, w = reference.shape[-2:]
    if params.fda_input == "sentinel2":
        if lr is None:
            raise SisrError(
                f"fda_input: sentinel2 needs band {params.band} among the input bands (the real LR patch); "
                "choose a band of both sensors or set fda_input: simulated"
            )
        source = lr.to(reference)
    else:
        source = mtf_downscale(reference, factor, params.input_mtf)
    return upsample(source, factor)[..., :h, :w]


def _mtf_label(mtf: float | None) -> str:
    return "none" if mtf is None else f"{mtf:g}"


def _with_options(specs: Sequence[MetricSpec], params: BenchmarkParams) -> list[MetricSpec]:
    """``specs`` with TV_DIFF using ``params.tv_norm``."""
    return [tv_diff_spec(params.tv_norm) if s.name == "TV_DIFF" else s for s in specs]


def run_benchmark(
    reference: torch.Tensor,
    factor: float,
    params: BenchmarkParams,
    metrics: Sequence[MetricSpec] | None = None,
    lr: torch.Tensor | None = None,
) -> tuple[pd.DataFrame, dict[str, str]]:
    """Run every metric on every simulated distortion of ``reference`` ``[N, 1, H, W]`` (reflectance in [0,
    1]); ``lr`` the real LR patches (needed by ``fda_input: sentinel2``).

    Returns the long table (``metric``, ``distortion``, ``level``, ``mtf``, ``value``) and the metrics skipped
    at run time with the reason (e.g. patches too small for a multi-scale metric).
    """
    specs = _with_options(list(metrics) if metrics is not None else select_metrics(params.metrics), params)
    h, w = reference.shape[-2:]
    size = params.fft_size or max(64, 2 * w)
    target_db = fda.to_db(fda.fft_profile(reference, size)[1])
    input_db = fda.to_db(fda.fft_profile(fda_input(reference, factor, params, lr), size)[1])
    ref_c = crop(reference, params.crop)
    skipped: dict[str, str] = {}
    records: list[dict[str, Any]] = []
    fda_specs = [s for s in specs if s.name in FDA_METRICS]
    pixel_specs = [s for s in specs if s.name not in FDA_METRICS]
    for m_index, mtf in enumerate(params.mtfs):
        LOGGER.info(
            "benchmark: MTF %s (%d/%d), %d metrics",
            _mtf_label(mtf),
            m_index + 1,
            len(params.mtfs),
            len(specs),
        )
        for distortion in DISTORTIONS:
            for level in getattr(params, distortion):
                generator = torch.Generator().manual_seed(params.seed + 7919 * m_index)
                distorted = simulate(
                    reference,
                    mtf=mtf,
                    generator=generator,
                    pattern_kind=params.pattern_kind,
                    blur_padding=params.blur_padding,
                    **{distortion: level},
                )
                base = {"distortion": distortion, "level": float(level), "mtf": _mtf_label(mtf)}
                if fda_specs:
                    pred_db = fda.to_db(fda.fft_profile(distorted, size)[1])
                    values = {
                        "FRR": fda.frr(pred_db, target_db, input_db)[0],
                        "FRR_0_80": fda.frr(pred_db, target_db, input_db, 0.0, 0.8)[0],
                        "FRR_80_100": fda.frr(pred_db, target_db, input_db, 0.8, 1.0)[0],
                        "FRR_Noise": fda.fda_noise(pred_db, target_db, input_db),
                    }
                    for spec in fda_specs:
                        value = float(values[spec.name].mean())
                        records.append({"metric": spec.name, **base, "value": value})
                pred_c = crop(distorted, params.crop).clamp(0.0, 1.0)
                for spec in pixel_specs:
                    if spec.name in skipped:
                        continue
                    p, r = (
                        (pred_c.expand(-1, 3, -1, -1), ref_c.expand(-1, 3, -1, -1))
                        if spec.rgb
                        else (pred_c, ref_c)
                    )
                    try:
                        with torch.no_grad():
                            value = float(spec.fn(p.contiguous(), r.contiguous()))
                    except (ValueError, AssertionError, RuntimeError) as exc:
                        reason = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
                        LOGGER.warning("metric %s skipped on %d×%d px patches: %s", spec.name, h, w, reason)
                        skipped[spec.name] = reason
                        records = [rec for rec in records if rec["metric"] != spec.name]
                        continue
                    records.append({"metric": spec.name, **base, "value": value})
    table = pd.DataFrame(records, columns=["metric", "distortion", "level", "mtf", "value"])
    return table, skipped


def benchmark(
    params: BenchmarkParams,
    datamodule_factory: Callable[[DataParams, int], Any] | None = None,
    figures: bool = True,
) -> BenchmarkResult:
    """Read the patches, run the benchmark and write every output (see the package docstring)."""
    skipped_unavailable = {
        spec.name: reason
        for spec in METRICS.values()
        if params.metrics is None and (reason := unavailable_reason(spec)) is not None
    }
    specs = select_metrics(params.metrics)
    torch.manual_seed(params.seed)
    factory = datamodule_factory or default_datamodule
    dm = factory(params.data, params.seed)
    stage = "fit" if params.split in ("train", "val") else "test"
    dm.setup(stage)
    loader = {
        "test": dm.test_dataloader,
        "train": dm.train_dataloader,
        "val": dm.val_dataloader,
    }[params.split]()
    patches = reference_patches(params, loader)
    device = resolve_device(params.device)
    lr = patches.lr.to(device) if patches.lr is not None else None
    table, skipped = run_benchmark(patches.reference.to(device), patches.factor, params, specs, lr)
    summary, files = write_outputs(table, params, figures)
    return BenchmarkResult(
        table=table, summary=summary, skipped={**skipped_unavailable, **skipped}, files=files
    )
