"""``sisr benchmark-metrics PARAMS [--output DIR] [--metrics M ...]``: metrics sensitivity benchmark."""

from __future__ import annotations

import argparse
import dataclasses
import logging

from sisrlib.experiments.metrics_benchmark.params import BenchmarkParams
from sisrlib.experiments.metrics_benchmark.runner import benchmark
from sisrlib.experiments.metrics_benchmark.summary import summary_markdown
from sisrlib.params import load


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("params", help="benchmark params YAML (params/<profile>/05_*.yaml)")
    parser.add_argument(
        "--output", "-o", default=None, help="output folder (default: the params' output_dir)"
    )
    parser.add_argument(
        "--metrics",
        nargs="+",
        default=None,
        help="metrics to run (default: the params' list, else every metric available offline)",
    )
    parser.add_argument("--patches", type=int, default=None, help="number of HR patches")
    parser.add_argument("--no-figures", action="store_true", help="write the tables only")


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    params = load(BenchmarkParams, args.params)
    changes: dict[str, object] = {}
    if args.output is not None:
        changes["output_dir"] = args.output
    if args.metrics is not None:
        changes["metrics"] = list(args.metrics)
    if args.patches is not None:
        changes["nb_patches"] = args.patches
    if changes:
        params = dataclasses.replace(params, **changes)  # type: ignore[arg-type]
    result = benchmark(params, figures=not args.no_figures)
    print(summary_markdown(result.summary))
    for name, reason in result.skipped.items():
        print(f"skipped {name}: {reason}")
    print(f"wrote {len(result.files)} files under {params.output_dir}")
    return 0
