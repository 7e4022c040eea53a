"""``sisr train PARAMS [--set key=value ...]``: train a super-resolution model from a params file."""

from __future__ import annotations

import argparse

from sisrlib.run_params import ExperimentParams, load_experiment, parse_override
from sisrlib.training.fit import fit, is_rank_zero

TRAINING_PARAMS_HELP = "params YAML of the run (params/<profile>/03_training_*.yaml)"


def add_arguments(parser: argparse.ArgumentParser, params_help: str = TRAINING_PARAMS_HELP) -> None:
    parser.add_argument("params", help=params_help)
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a params value by its dotted key, e.g. --set training.max_steps=100 (repeatable)",
    )


def load_params(args: argparse.Namespace) -> ExperimentParams:
    overrides = dict(parse_override(text) for text in args.overrides)
    return load_experiment(args.params, overrides)


def report(params: ExperimentParams, verb: str) -> int:
    """Run :func:`fit` and print where its outputs are (rank 0 only under DDP/srun)."""
    result = fit(params)
    if not is_rank_zero():
        return 0
    if result.skipped:
        print(
            f"{params.name}: already {verb} ({result.global_step} steps in {result.last_checkpoint}); skipped"
        )
    else:
        print(
            f"{params.name}: {verb} for {result.global_step} steps; best checkpoint "
            f"{result.best_checkpoint}, "
            f"logs {result.log_dir}"
        )
    return 0


def run(args: argparse.Namespace) -> int:
    params = load_params(args)
    if params.training.mode != "sr":
        raise ValueError(
            f"{args.params}: training.mode is {params.training.mode!r}; use `sisr pretrain-registration` for "
            "registration pre-training params"
        )
    return report(params, "trained")
