"""The whole evaluation of a params file: every run (and the bicubic baseline once per dataset) on its test
split, into ``metrics.csv`` and the per-model outputs.

For every model (this project's checkpoint, an EVOLAND ONNX + yaml pair, or a torchsisr checkpoint, through
the one :class:`sisrlib.predictors.Predictor` contract), over its test split:

* pixel metrics against the **un-registered** HR target (as torchsisr at test time): PSNR, SSIM, RMSE, TV
  variation, per band, inside a margin of output pixels;
* LR fidelity against the real input: the prediction downscaled (MTF 0.1) vs the input (``lr_rmse``,
  ``lr_bias``);
* geometric distortion (with a registration network, the same one for every row): mean/std of the flow norm in
  LR px between the downscaled prediction (MTF 0.3) and the input (``geom_mean``, ``geom_std``), the same for
  the target (``target_geom_mean``/``target_geom_std``), and on embedded sites the end-point error of the
  target's flow against the stored true flow (``epe_true``) and the true flow's mean norm
  (``true_geom_mean``);
* Frequency Domain Analysis on the whole patches with ``size = 2 × target width``: input = the real input
  bicubic-upsampled, target, prediction → ``frr``, ``arr``, ``prr``, ``fro``, ``fru``, ``fda_noise`` per band;
* **oracle** metrics on embedded (simulated) sites only (NaN on real data): ``oracle_psnr``, ``oracle_ssim``,
  ``oracle_frr`` against the target brought exactly into the LR sensor's geometry and radiometry,
  ``oracle_geom`` (the distortion the prediction keeps, LR px: a fraction ``oracle_kept`` of the true flow
  plus a constant translation of norm ``oracle_offset``, LR px);
* optionally the perceptual metrics (``perceptual``) and the "sim" metrics (``sim``).

Outputs under ``output_dir``: ``metrics.csv`` (one row per model: ``model``, ``dataset``, ``variant``, then
``<metric>_<band>`` columns and band-averaged ``<metric>`` columns), ``runs.csv`` (model file of every row),
``conventions.json`` (the metric conventions used), and per model a folder with ``fft_profiles.npy``
``[3 (input, target, pred), rings, bands]`` (mean amplitude), ``fft_profiles_db.npy``, ``fft_freqs.npy``,
``fft_profiles.png`` and mosaics of the first test patches (``target``, ``pred``, ``input``: float32 DN
GeoTIFF and PNG). All values are reflectance unless the name says DN.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from sisrlib.data.batch import Batch
from sisrlib.data.params import DataParams
from sisrlib.experiments.dataset_analysis import DatasetAnalysisParams, analyse_dataset
from sisrlib.experiments.evaluation.batches import (
    DatamoduleFactory,
    default_datamodule,
    resolve_device,
    test_batches,
)
from sisrlib.experiments.evaluation.calibration import calibrate_dataset, fit_margin
from sisrlib.experiments.evaluation.ceilings import Reference, ceiling_references, mean_true_flow
from sisrlib.experiments.evaluation.conventions import CONVENTIONS_FILE, conventions
from sisrlib.experiments.evaluation.files import CALIBRATION_FILE, CEILINGS_FILE
from sisrlib.experiments.evaluation.loop import evaluate_predictors
from sisrlib.experiments.evaluation.oracle import OracleBatch, oracle_available
from sisrlib.experiments.evaluation.params import EvaluationParams, RunSpec
from sisrlib.experiments.evaluation.predict import bicubic_predictor, open_evaluated_model
from sisrlib.experiments.evaluation.runs import (
    dataset_of,
    expand_runs,
    registration_estimator,
    run_experiment,
    run_spec,
    variant_of,
)
from sisrlib.experiments.evaluation.writers import (
    EvaluationResult,
    ModelResult,
    metrics_frame,
    runs_frame,
    safe_name,
    write_csv,
    write_json,
    write_model_outputs,
)
from sisrlib.metrics.distortion import FlowEstimator
from sisrlib.predictors import ModelOptions, Predictor
from sisrlib.run_params import ExperimentParams

LOGGER = logging.getLogger(__name__)


def _peek(batches: Iterable[Batch]) -> tuple[Batch, Iterable[Batch]]:
    """The first batch of a non-empty iterable, and the iterable with it still first."""
    iterator = iter(batches)
    first = next(iterator)
    return first, itertools.chain([first], iterator)


@dataclass
class EvaluatedRun:
    """One model of an evaluation with what labels it and gives its test data."""

    model_file: Path
    predictor: Predictor
    #: Training params giving the test data, seed, margin, registration channel and standardisation.
    experiment: ExperimentParams
    label: str
    dataset: str
    variant: str
    registration_checkpoint: str | None


def _training_batches(datamodule: Any) -> Iterable[Batch]:
    """The batches of a datamodule's training loader (the ceilings' training offset)."""
    datamodule.setup("fit")
    yield from datamodule.train_dataloader()


def open_runs(params: EvaluationParams, device: torch.device) -> list[EvaluatedRun]:
    """Every model of ``params.runs`` opened on ``device``, with its labels (see ``RunSpec``)."""
    runs = []
    for spec, model_file in expand_runs(params.runs, params.checkpoint):
        experiment, own = run_experiment(spec, model_file)
        options = ModelOptions(
            bands=tuple(spec.model_bands) if spec.model_bands else None,
            factor=spec.model_factor,
            standardisation=spec.standardisation,
        )
        predictor = open_evaluated_model(str(model_file), device, options)
        if own is not None:
            label, variant = spec.label or own.name, spec.variant or variant_of(own)
            dataset = spec.dataset or dataset_of(own.name, variant, own.data, predictor.factor)
        else:
            label = spec.label or model_file.stem
            variant = spec.variant or label
            dataset = spec.dataset or dataset_of(
                experiment.name, variant_of(experiment), experiment.data, predictor.factor
            )
        runs.append(
            EvaluatedRun(
                model_file=model_file,
                predictor=predictor,
                experiment=experiment,
                label=label,
                dataset=dataset,
                variant=variant,
                registration_checkpoint=spec.registration_checkpoint,
            )
        )
    return runs


def test_data(data: DataParams, params: EvaluationParams) -> DataParams:
    """The data section of a run with the evaluation's ``test_batch_size`` and ``data_root`` applied."""
    changes: dict[str, Any] = {}
    if params.test_batch_size is not None:
        changes["test_batch_size"] = params.test_batch_size
    if params.data_root is not None:
        changes["root"] = params.data_root
    return dataclasses.replace(data, **changes) if changes else data


def _analyse(
    exp: ExperimentParams,
    data: DataParams,
    dataset: str,
    estimator: FlowEstimator | None,
    factory: DatamoduleFactory,
    params: EvaluationParams,
) -> pd.DataFrame:
    analysis = DatasetAnalysisParams(
        data=data,
        max_batches=params.analysis_max_batches,
        registration_channel=exp.registration.channel,
        standardisation=exp.training.standardisation,
        seed=exp.seed,
    )
    table = analyse_dataset(analysis, datamodule_factory=factory, estimator=estimator)
    table.insert(0, "name", dataset)
    return table


def _estimators(
    runs: Sequence[EvaluatedRun],
    params: EvaluationParams,
    estimator: FlowEstimator | None,
    device: torch.device,
) -> dict[str, tuple[FlowEstimator | None, str | None]]:
    """One registration network per dataset, the same for every row of it."""
    out: dict[str, tuple[FlowEstimator | None, str | None]] = {}
    for dataset in dict.fromkeys(r.dataset for r in runs):
        members = [r for r in runs if r.dataset == dataset]
        path = next((r.registration_checkpoint for r in members if r.registration_checkpoint), None)
        path = path or params.registration_checkpoint
        if estimator is not None:
            out[dataset] = (estimator, "given")
            continue
        out[dataset] = registration_estimator(path, [r.experiment for r in members], device)
        if out[dataset][0] is None:
            LOGGER.warning("%s: no registration checkpoint, the geometric metrics are skipped", dataset)
    return out


def evaluate(
    params: EvaluationParams,
    datamodule_factory: DatamoduleFactory | None = None,
    estimator: FlowEstimator | None = None,
) -> EvaluationResult:
    """Evaluate every run of ``params`` (and the bicubic baseline once per dataset) and write the outputs.

    ``datamodule_factory(data_params, seed)`` builds the test datamodule (default
    ``sisrlib.data.build_datamodule``); ``estimator`` overrides the registration network used for the
    geometric metrics.
    """
    device = resolve_device(params.device)
    factory = datamodule_factory or default_datamodule
    output_dir = Path(params.output_dir)
    figures_dir = Path(params.figures_dir) if params.figures_dir else None
    runs = open_runs(params, device)
    estimators = _estimators(runs, params, estimator, device)
    results: list[ModelResult] = []
    samples: dict[str, dict[str, torch.Tensor]] = {}
    sample_bands: dict[str, tuple[str, ...]] = {}
    bicubic_done: set[str] = set()
    analyses: list[pd.DataFrame] = []
    calibrations: list[pd.DataFrame] = []
    ceilings: list[dict[str, Any]] = []
    oracle_caches: dict[str, dict[Any, OracleBatch]] = {}
    notes: dict[str, str] = {}
    for run in runs:
        exp = run.experiment
        data = test_data(exp.data, params)
        dataset_estimator = estimators[run.dataset][0]
        eval_params = params
        if params.margin is None:
            eval_params = dataclasses.replace(params, margin=exp.training.validation_margin)
        eval_params, batches = fit_margin(
            test_batches(factory(data, exp.seed), params.max_test_batches), eval_params
        )
        predictors: list[Predictor] = [run.predictor]
        with_bicubic = params.bicubic and run.dataset not in bicubic_done
        first, batches = _peek(batches)
        references: Mapping[str, Reference] = {}
        offsets: dict[str, torch.Tensor] = {}
        if with_bicubic:
            predictors.append(bicubic_predictor(first, device))
            if params.ceilings and oracle_available(first):
                offsets = {
                    "training_offset": mean_true_flow(_training_batches(factory(data, exp.seed))),
                    "test_offset": mean_true_flow(
                        test_batches(factory(data, exp.seed), params.max_test_batches)
                    ),
                }
                references = ceiling_references(offsets["training_offset"], offsets["test_offset"])
        LOGGER.info("evaluating %s (%s) on %s", run.label, run.model_file, run.dataset)
        rows, extras = evaluate_predictors(
            predictors,
            batches,
            eval_params,
            estimator=dataset_estimator,
            registration_channel=exp.registration.channel if dataset_estimator is not None else None,
            standardisation_name=exp.training.standardisation,
            device=device,
            oracle_cache=oracle_caches.setdefault(run.dataset, {}),
            references=references,
        )
        for reference, row in extras.get("references", {}).items():
            offset = float(offsets[reference].norm()) if reference in offsets else math.nan
            ceilings.append({"dataset": run.dataset, "reference": reference, "offset_px": offset, **row})
        notes.update(extras.get("notes", {}))
        names = [(run.label, run.variant, str(run.model_file))]
        if with_bicubic:
            names.append(("bicubic", "bicubic", ""))
        found = extras.get("samples", {})
        shown = samples.setdefault(run.dataset, {})
        sample_bands.setdefault(run.dataset, tuple(extras["bands"]))
        if "input" in found:
            shown.setdefault("input", found["input"])
        for k, (model, var, _) in enumerate(names):
            if k in found:
                shown[var or model] = found[k]
        for key, panel in (("oracle", "oracle target"), ("target", "target")):
            if key in found:
                shown.setdefault(panel, found[key])
        for k, (model, var, source) in enumerate(names):
            # figures/<profile>/04_<evaluation>_<variant>_{fft_profiles,mosaic}.png (made by notebook 04)
            prefix = "04_" + safe_name(f"{params.name}_{var or model}")
            result = ModelResult(
                model=model,
                dataset=run.dataset,
                variant=var,
                checkpoint=source,
                row=rows[k],
                bands=tuple(extras["bands"]),
                fda_bands=tuple(extras["fda_bands"]),
                freqs=extras["freqs"],
                profiles=extras["profiles"].get(k),
                output_dir=output_dir / safe_name(f"{run.dataset}_{model}"),
                patches=int(extras["patches"]),
            )
            write_model_outputs(
                result,
                extras["mosaics"],
                k,
                figures_dir,
                prefix,
                params.mosaic_columns,
                1.0,
                plot=params.figures and model != "bicubic",
            )
            results.append(result)
        if with_bicubic:
            bicubic_done.add(run.dataset)
            if params.dataset_analysis:
                analyses.append(_analyse(exp, data, run.dataset, dataset_estimator, factory, params))
            if params.calibration and dataset_estimator is not None:
                calibrations.append(
                    calibrate_dataset(
                        next(iter(test_batches(factory(data, exp.seed), 1))),
                        dataset_estimator,
                        exp.registration.channel,
                        exp.training.standardisation,
                        eval_params,
                        device,
                    ).assign(dataset=run.dataset)
                )
    if analyses:
        write_csv(pd.concat(analyses, ignore_index=True), output_dir / "dataset_analysis.csv")
    if calibrations:
        write_csv(pd.concat(calibrations, ignore_index=True), output_dir / CALIBRATION_FILE)
    if ceilings:
        write_csv(pd.DataFrame(ceilings), output_dir / CEILINGS_FILE)
    table = metrics_frame(results)
    metrics_csv = write_csv(table, output_dir / "metrics.csv")
    write_csv(runs_frame(results, {d: e[1] for d, e in estimators.items()}), output_dir / "runs.csv")
    used = conventions(params, notes)
    write_json(used, output_dir / CONVENTIONS_FILE)
    return EvaluationResult(
        table=table,
        metrics_csv=metrics_csv,
        models=results,
        output_dir=output_dir,
        samples=samples,
        sample_bands=sample_bands,
        conventions=used,
    )


def evaluate_runs(
    runs: Sequence[str | RunSpec],
    output_dir: str | Path,
    registration_checkpoint: str | None = None,
    figures_dir: str | Path | None = None,
    max_test_batches: int | None = None,
    bicubic: bool = True,
    datamodule_factory: DatamoduleFactory | None = None,
    **options: Any,
) -> EvaluationResult:
    """Evaluate several runs (training params files ``*.yaml`` or model files: checkpoints ``*.ckpt``, run
    folders, EVOLAND ``NAME.yaml``) and the bicubic baseline into one ``metrics.csv`` under ``output_dir``.
    ``options`` are other ``EvaluationParams`` fields (``margin``, ``fft_size``, ``device``, ...)."""
    specs = [run if isinstance(run, RunSpec) else run_spec(str(run)) for run in runs]
    params = EvaluationParams(
        runs=specs,
        output_dir=str(output_dir),
        registration_checkpoint=registration_checkpoint,
        figures_dir=str(figures_dir) if figures_dir is not None else None,
        max_test_batches=max_test_batches,
        bicubic=bicubic,
        **options,
    )
    return evaluate(params, datamodule_factory=datamodule_factory)
