"""``sisr pretrain-registration PARAMS [--set key=value ...]``: pre-train the optical-flow network."""

from __future__ import annotations

import argparse

from sisrlib.commands.train import add_arguments as _add_arguments
from sisrlib.commands.train import load_params, report


def add_arguments(parser: argparse.ArgumentParser) -> None:
    _add_arguments(parser, "params YAML of the pre-training (params/<profile>/02_registration_*.yaml)")


def run(args: argparse.Namespace) -> int:
    params = load_params(args)
    if params.training.mode != "pretrain_registration":
        raise ValueError(
            f"{args.params}: training.mode is {params.training.mode!r}; registration pre-training params "
            "need training.mode: pretrain_registration (use `sisr train` for SR runs)"
        )
    return report(params, "pre-trained")
