"""The options that ``sisr evaluate`` and ``sisr infer`` share for a torchsisr checkpoint whose run
configuration does not describe it: ``--model-bands``, ``--model-factor``, ``--standardisation``."""

from __future__ import annotations

import argparse


def add_model_options(parser: argparse.ArgumentParser) -> None:
    """Add ``--model-bands``, ``--model-factor`` and ``--standardisation`` to ``parser``."""
    parser.add_argument(
        "--model-bands",
        default=None,
        help="torchsisr checkpoints only: the model's input bands in channel order, comma-separated (e.g. "
        "B2,B3,B4,B8), when its run configuration (.hydra/config.yaml beside it) does not say",
    )
    parser.add_argument(
        "--model-factor",
        type=float,
        default=None,
        help="torchsisr checkpoints only: the super-resolution factor, when its run configuration does not "
        "say",
    )
    parser.add_argument(
        "--standardisation",
        default=None,
        help="torchsisr checkpoints only: named statistics (e.g. sen2venusx2) instead of the "
        "checkpoint's own",
    )


def model_bands(args: argparse.Namespace) -> tuple[str, ...] | None:
    """``--model-bands`` as band names (blanks dropped), or None when it is not given."""
    if not args.model_bands:
        return None
    return tuple(b.strip() for b in args.model_bands.split(",") if b.strip())
