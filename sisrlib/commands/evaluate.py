"""``sisr evaluate CHECKPOINT [PARAMS] [--output DIR] [--bicubic]``: test-set metrics of a trained run.

CHECKPOINT is a training checkpoint (``.ckpt``), a run folder holding ``checkpoints/best.ckpt``, or a training
params YAML. PARAMS is an optional evaluation params file (``params/<profile>/04_*.yaml``) whose options are
used (its list of runs is replaced by CHECKPOINT). Writes ``metrics.csv`` (the model's row, and a ``bicubic``
row with ``--bicubic``), FFT profiles and mosaics under ``--output``.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
from pathlib import Path

from sisrlib.errors import SisrError
from sisrlib.evaluation import EvaluationParams, RunSpec, evaluate, format_table
from sisrlib.params import load


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoint", help="checkpoint (.ckpt), run folder, or training params YAML")
    parser.add_argument(
        "params", nargs="?", default=None, help="evaluation params YAML (04_*.yaml) for options"
    )
    parser.add_argument(
        "--output", "-o", default=None, help="output folder (default: build/evaluation/<run>)"
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


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    target = str(args.checkpoint)
    spec = RunSpec(params_file=target) if target.endswith((".yaml", ".yml")) else RunSpec(checkpoint=target)
    if args.params is not None:
        params = load(EvaluationParams, args.params)
        params = dataclasses.replace(params, runs=[spec], bicubic=bool(args.bicubic))
    else:
        path = Path(target.rstrip("/"))
        stem = path.parent.parent.name if path.parent.name == "checkpoints" else path.stem
        params = EvaluationParams(
            runs=[spec], output_dir=f"build/evaluation/{stem}", bicubic=bool(args.bicubic)
        )
    changes: dict[str, object] = {}
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
    print(f"wrote {result.metrics_csv}")
    return 0
