"""``sisr fit-linear PARAMS --output PATH.onnx [--kernel-size K] [--target registered|raw]``: the
least-squares linear filter of a run's data, exported as an EVOLAND ONNX pair for ``sisr evaluate``."""

from __future__ import annotations

import argparse

from sisrlib.commands.train import add_arguments as add_run_arguments
from sisrlib.commands.train import load_params
from sisrlib.experiments.least_squares import fit_least_squares
from sisrlib.export import check_export_output, export_dn_model


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_run_arguments(parser, "params YAML of a super-resolution run (params/<profile>/03_training_*.yaml)")
    parser.add_argument("--output", "-o", required=True, help="ONNX file to write (its .yaml goes beside)")
    parser.add_argument("--kernel-size", type=int, default=7, help="filter size in LR px, odd (default 7)")
    parser.add_argument(
        "--target",
        choices=("registered", "raw"),
        default="registered",
        help="fit against the target registered by the stored true flow (simulated sites; the default) "
        "or as read",
    )


def run(args: argparse.Namespace) -> int:
    params = load_params(args)
    if params.training.mode != "sr":
        raise ValueError(
            f"{args.params}: training.mode is {params.training.mode!r}; expected an SR run's params"
        )
    check_export_output(args.output)  # before the fit: a bad output path fails at once
    fit = fit_least_squares(params, args.kernel_size, args.target)
    pair = export_dn_model(fit.model, args.output)
    residual = ", ".join(f"{b} {v:.4f}" for b, v in zip(pair.bands, fit.rms_residual, strict=True))
    print(
        f"wrote {pair.onnx_path} and {pair.yaml_path}: {args.kernel_size}×{args.kernel_size} least-squares "
        f"filter against the {args.target} target, fitted on {fit.rows} LR px; RMS residual (standardised) "
        f"{residual}. Evaluate it with: sisr evaluate {pair.yaml_path} EVALUATION_PARAMS.yaml "
        f"--data {args.params}"
    )
    return 0
