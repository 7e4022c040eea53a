"""``sisr evaluate MODEL [PARAMS] [--data TRAINING_PARAMS] [--output DIR] [--bicubic]``: test-set metrics of
one model.

MODEL is any model of the one predictor contract: this project's training checkpoint (``.ckpt``), a run
folder holding ``checkpoints/best.ckpt`` (``--checkpoint`` or ``checkpoint:`` of PARAMS picks another one),
a training params YAML, an exported model in the EVOLAND contract (``NAME.yaml`` beside ``NAME.onnx``, by any
producer), or a torchsisr Lightning checkpoint. PARAMS is an optional evaluation params file
(``params/<profile>/04_*.yaml``) whose options are used (its list of runs is replaced by MODEL). A model that
carries no test data (ONNX, torchsisr) is evaluated on the data of ``--data`` (a training params file), else
of PARAMS' first run. Writes ``metrics.csv`` (the model's row, and a ``bicubic`` row with ``--bicubic``),
``conventions.json``, FFT profiles and mosaics under ``--output``, never into PARAMS' ``figures_dir`` (the
profile's figures, which ``make paper`` writes).
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
from pathlib import Path

from sisrlib.commands.model_options import add_model_options, model_bands
from sisrlib.errors import SisrError
from sisrlib.experiments.evaluation.conventions import conventions_line
from sisrlib.experiments.evaluation.params import CHECKPOINT_FILES, EvaluationParams, RunSpec
from sisrlib.experiments.evaluation.runner import evaluate
from sisrlib.experiments.evaluation.runs import is_project_checkpoint, resolve_checkpoint, run_spec
from sisrlib.experiments.evaluation.tables import format_table
from sisrlib.params import load


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "model",
        help="model: checkpoint (.ckpt, ours or torchsisr's), run folder, training params YAML, or an "
        "exported NAME.yaml beside NAME.onnx (EVOLAND contract)",
    )
    parser.add_argument(
        "params", nargs="?", default=None, help="evaluation params YAML (04_*.yaml) for options"
    )
    parser.add_argument(
        "--data",
        default=None,
        help="training params YAML whose test data, margin and registration channel to use for a model that "
        "carries none (ONNX, torchsisr; default: the first run of PARAMS)",
    )
    add_model_options(parser)
    parser.add_argument(
        "--output", "-o", default=None, help="output folder (default: build/evaluation/<model>)"
    )
    parser.add_argument(
        "--checkpoint",
        choices=tuple(CHECKPOINT_FILES),
        default=None,
        help="which checkpoint of a run folder or training params file (default: the params' or best)",
    )
    parser.add_argument("--bicubic", action="store_true", help="also evaluate the bicubic baseline")
    parser.add_argument(
        "--registration", default=None, help="registration checkpoint for the geometric metrics"
    )
    parser.add_argument(
        "--max-batches", type=int, default=None, help="evaluate at most this many test batches"
    )
    parser.add_argument("--device", default=None, help="cpu, cuda or auto (default: the params' or cpu)")


def check_output_folder(output: str | Path, where: str = "--output") -> None:
    """Refuse, before any work, an output that names an existing file (the results are a folder of files:
    ``metrics.csv``, ``runs.csv``, one folder per model); a missing folder is created by the evaluation."""
    path = Path(output)
    if path.exists() and not path.is_dir():
        raise SisrError(
            f"{where} {path} is an existing file, expected a folder for metrics.csv, runs.csv and the "
            "per-model figures; choose a folder (e.g. build/evaluation/<run>), nothing was written"
        )


def _needs_data(spec: RunSpec, params: EvaluationParams) -> bool:
    """Whether the model of ``spec`` carries no training params (its test data must come from elsewhere)."""
    if spec.params_file is not None:
        return False
    model_file = resolve_checkpoint(spec, params.checkpoint)
    return not (model_file.suffix == ".ckpt" and is_project_checkpoint(model_file))


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    target = str(args.model)
    spec = dataclasses.replace(
        run_spec(target),
        model_bands=list(bands) if (bands := model_bands(args)) is not None else None,
        model_factor=args.model_factor,
        standardisation=args.standardisation,
    )
    if args.params is not None:
        params = load(EvaluationParams, args.params)
        if args.checkpoint is not None:
            params = dataclasses.replace(params, checkpoint=args.checkpoint)
        data = args.data
        if data is None and _needs_data(spec, params):
            data = next((r.params_file for r in params.runs if r.params_file is not None), None)
        spec = dataclasses.replace(spec, data_params=data)
        # One model's results go under --output only: PARAMS' figures_dir is the profile's (make paper's).
        params = dataclasses.replace(params, runs=[spec], bicubic=bool(args.bicubic), figures_dir=None)
    else:
        spec = dataclasses.replace(spec, data_params=args.data)
        path = Path(target.rstrip("/"))
        stem = path.parent.parent.name if path.parent.name == "checkpoints" else path.stem
        params = EvaluationParams(
            runs=[spec], output_dir=f"build/evaluation/{stem}", bicubic=bool(args.bicubic)
        )
    changes: dict[str, object] = {}
    if args.checkpoint is not None:
        changes["checkpoint"] = args.checkpoint
    if args.output is not None:
        changes["output_dir"] = args.output
    if args.registration is not None:
        changes["registration_checkpoint"] = args.registration
    if args.max_batches is not None:
        changes["max_test_batches"] = args.max_batches
    if args.device is not None:
        changes["device"] = args.device
    if changes:
        params = dataclasses.replace(params, **changes)  # type: ignore[arg-type]
    check_output_folder(params.output_dir, "--output" if args.output is not None else "output_dir")
    result = evaluate(params)
    print(format_table(result.table).to_string(index=False))
    print(conventions_line(result.conventions))
    print(f"wrote {result.metrics_csv}")
    return 0
