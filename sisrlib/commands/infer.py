"""``sisr infer``: super-resolve a GeoTIFF or a Sentinel-2 product (L2A or L1C SAFE, Theia), tile by tile.

With an exported model (NAME.yaml) nothing here imports torch: the bicubic baseline and checkpoints load
their torch-backed predictors only when asked for.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path

from sisrlib.commands.model_options import add_model_options, model_bands
from sisrlib.inference.engine import DEFAULT_TILE_SIZE, super_resolve
from sisrlib.inference.inputs import open_source
from sisrlib.inference.output import (
    COMPRESSIONS,
    DEFAULT_COMPRESSION,
    Terminated,
    check_output_path,
    sigterm_raises,
)
from sisrlib.inference.tiling import parse_tile_size
from sisrlib.predictors import DEVICES, ModelOptions, Predictor, open_model, read_model_yaml
from sisrlib.predictors.onnx import resolve_sidecar


def _positive_float(option: str, value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if not (math.isfinite(number) and number > 0):
        raise ValueError(f"{option} {value!r}: expected a positive finite number")
    return number


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model",
        required=True,
        help="exported model yaml (NAME.yaml beside NAME.onnx, EVOLAND contract), this project's training "
        "checkpoint (.ckpt), or a torchsisr Lightning checkpoint",
    )
    parser.add_argument(
        "--input",
        required=True,
        help="multi-band GeoTIFF of DN, Sentinel-2 SAFE folder or .zip (Sen2Cor L2A, or L1C), or Theia L2A "
        "product; 20 m bands of a product fed to a model with 10 m bands are brought to 10 m with GDAL's "
        "cubic, as the EVOLAND tool does",
    )
    parser.add_argument(
        "--output",
        required=True,
        help="GeoTIFF file to write (int16 DN, no data -10000); never the model or the input",
    )
    parser.add_argument(
        "--bands",
        default=None,
        help="names of the GeoTIFF's bands in file order, comma-separated (e.g. B2,B3,B4,B8), for files "
        "whose band descriptions are not band names; default: the band descriptions",
    )
    parser.add_argument(
        "--input-scale",
        default=None,
        metavar="S",
        help="GeoTIFF only: DN = value x S (e.g. 10000 for reflectance 0-1); default: the values are DN, "
        "and a float GeoTIFF of reflectance is refused",
    )
    roi = parser.add_mutually_exclusive_group()
    roi.add_argument(
        "--roi",
        nargs=4,
        type=float,
        metavar=("LEFT", "BOTTOM", "RIGHT", "TOP"),
        help="region in the input's CRS",
    )
    roi.add_argument(
        "--roi-pixels",
        nargs=4,
        type=int,
        metavar=("COL", "ROW", "WIDTH", "HEIGHT"),
        help="region in input pixels",
    )
    parser.add_argument(
        "--tile-size",
        default=DEFAULT_TILE_SIZE,
        help="tile edge in output pixels, or auto (default): the largest multiple of 256 up to 2048 whose "
        "estimated memory stays within 768 MiB and --max-memory",
    )
    parser.add_argument(
        "--max-memory",
        default=None,
        metavar="GIB",
        help="refuse settings whose estimated peak memory exceeds GIB GiB (default: half of this machine's "
        "memory)",
    )
    parser.add_argument(
        "--keep-filled",
        action="store_true",
        help="keep the prediction of output pixels within the model's margin of an input no-data pixel "
        "(computed from a fill value); by default they are written as no data",
    )
    parser.add_argument(
        "--truncate",
        action="store_true",
        help="truncate the float predictions toward zero when writing int16 DN (1.7 -> 1), as the EVOLAND "
        "sentinel2_superresolution tool does; by default they are rounded to the nearest DN (they differ "
        "by at most 1 DN)",
    )
    parser.add_argument(
        "--compress",
        choices=COMPRESSIONS,
        default=DEFAULT_COMPRESSION,
        help=f"output compression (default {DEFAULT_COMPRESSION}: level 1 with the horizontal predictor; "
        "none writes fastest and largest, as the EVOLAND tool does)",
    )
    parser.add_argument(
        "--threads", type=int, default=min(8, os.cpu_count() or 1), help="CPU threads (default min(8, cores))"
    )
    parser.add_argument(
        "--bicubic", action="store_true", help="write the bicubic baseline instead of the model"
    )
    parser.add_argument(
        "--device",
        choices=DEVICES,
        default="cpu",
        help="cpu (default) or cuda: ONNX Runtime's CUDA execution provider, or torch's CUDA for checkpoints",
    )
    add_model_options(parser)
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def _model_files(model: Path) -> list[Path]:
    """The model path and, for an exported pair, its sibling ``.onnx`` / ``.yaml`` (checked first)."""
    if model.suffix.lower() in (".yaml", ".yml", ".onnx"):
        return [model, model.with_suffix(".onnx"), model.with_suffix(".yaml"), model.with_suffix(".yml")]
    return [model]


def load_predictor(args: argparse.Namespace) -> Predictor:
    """The model of ``--model`` (:func:`sisrlib.predictors.open_model`), or with ``--bicubic`` the bicubic
    baseline on its bands and factor."""
    options = ModelOptions(
        bands=model_bands(args),
        factor=args.model_factor,
        standardisation=args.standardisation,
    )
    if args.bicubic and Path(args.model).suffix.lower() in (".yaml", ".yml", ".onnx"):
        card = read_model_yaml(resolve_sidecar(args.model))  # no ONNX session for the baseline
        files: tuple[Path, ...] = (card.yaml_path, card.onnx_path)
        bands, factor = card.bands, card.factor
    else:
        predictor = open_model(args.model, device=args.device, threads=args.threads, options=options)
        if not args.bicubic:
            return predictor
        bands, factor, files = predictor.in_bands, predictor.factor, predictor.files
    from sisrlib.predictors.torch_models import BicubicPredictor  # torch, only for the baseline

    baseline = BicubicPredictor(bands, factor, args.device)
    baseline.files = files
    return baseline


def run(args: argparse.Namespace) -> int:
    """Check every path and option, then infer; SIGTERM removes the partial output and exits 143."""
    tile_size = parse_tile_size(args.tile_size)
    input_scale = None if args.input_scale is None else _positive_float("--input-scale", args.input_scale)
    max_memory = (
        None if args.max_memory is None else int(_positive_float("--max-memory", args.max_memory) * 1024**3)
    )
    inputs = [Path(args.input)]
    if inputs[0].is_dir():
        inputs = [p for p in inputs[0].rglob("*") if p.is_file()]
    protected = [
        *(("the model file", p) for p in _model_files(Path(args.model))),
        *(("the input file", p) for p in inputs),
    ]
    output = check_output_path(args.output, protected)
    band_names = [b for b in args.bands.split(",") if b.strip()] if args.bands else None
    try:
        with sigterm_raises():
            predictor = load_predictor(args)
            with open_source(args.input, predictor.bands, band_names, input_scale) as source:
                summary = super_resolve(
                    predictor,
                    source,
                    output,
                    roi=args.roi,
                    roi_pixels=args.roi_pixels,
                    tile_size=tile_size,
                    progress=not args.no_progress,
                    keep_filled=args.keep_filled,
                    max_memory=max_memory,
                    truncate=args.truncate,
                    compress=args.compress,
                )
    except Terminated as exc:
        print(f"sisr infer: {exc}", file=sys.stderr)
        return 143
    print(
        f"wrote {summary.output}: {summary.region.width} x {summary.region.height} px, bands "
        f"{list(summary.bands)}, x{summary.factor} ({predictor.name}), {summary.tiles} tiles in "
        f"{summary.seconds:.1f} s ({summary.megapixels / max(summary.seconds, 1e-9):.2f} Mpx/s)"
    )
    return 0
