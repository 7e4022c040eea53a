"""``sisr export CHECKPOINT [--output PATH.onnx] [--opset N]``: ONNX export for the EVOLAND tool."""

from __future__ import annotations

import argparse

from sisrlib.export import DEFAULT_OPSET, DEFAULT_TOLERANCE_DN, export_checkpoint


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoint", help="training checkpoint (.ckpt) holding the generator")
    parser.add_argument(
        "--output", "-o", default=None, help="ONNX file to write (default: the checkpoint path with .onnx)"
    )
    parser.add_argument(
        "--opset", type=int, default=DEFAULT_OPSET, help=f"ONNX opset (default {DEFAULT_OPSET})"
    )
    parser.add_argument(
        "--tolerance",
        type=float,
        default=DEFAULT_TOLERANCE_DN,
        help=f"largest accepted ONNX Runtime / torch difference in DN (default {DEFAULT_TOLERANCE_DN})",
    )


def run(args: argparse.Namespace) -> int:
    pair = export_checkpoint(args.checkpoint, args.output, args.opset, tolerance_dn=args.tolerance)
    rounded = (
        f" (the network's {pair.model_margin} rounded up to whole pixels of every band's grid)"
        if pair.model_margin is not None and pair.model_margin != pair.margin
        else ""
    )
    print(
        f"wrote {pair.onnx_path} and {pair.yaml_path}: bands {list(pair.bands)}, factor {pair.factor}, "
        f"margin {pair.margin} output px{rounded}, opset {pair.opset}; ONNX Runtime vs torch max |diff| "
        f"{pair.max_abs_diff_dn:.3g} DN"
    )
    return 0
