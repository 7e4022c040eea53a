"""``sisr infer``: super-resolve a GeoTIFF or a Sentinel-2 L2A product (SAFE or Theia), tile by tile."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from sisrlib.inference.engine import DEFAULT_TILE_SIZE, super_resolve
from sisrlib.inference.predictors import DEVICES, load_predictor
from sisrlib.inference.sources import open_source
from sisrlib.inference.tiling import parse_tile_size


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model",
        required=True,
        help="exported model yaml (NAME.yaml beside NAME.onnx) or training checkpoint",
    )
    parser.add_argument(
        "--input",
        required=True,
        help="multi-band GeoTIFF of DN, Sentinel-2 L2A SAFE folder or .zip (Sen2Cor), or Theia L2A product",
    )
    parser.add_argument("--output", required=True, help="GeoTIFF to write (int16 DN, no data -10000)")
    parser.add_argument(
        "--bands",
        default=None,
        help="names of the GeoTIFF's bands in file order, comma-separated (e.g. B2,B3,B4,B8); default: "
        "the band "
        "descriptions",
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
        default=str(DEFAULT_TILE_SIZE),
        help=f"tile edge in output pixels (default {DEFAULT_TILE_SIZE})",
    )
    parser.add_argument(
        "--threads", type=int, default=min(8, os.cpu_count() or 1), help="CPU threads (default min(8, cores))"
    )
    parser.add_argument(
        "--bicubic", action="store_true", help="write the bicubic baseline instead of the model"
    )
    parser.add_argument("--device", choices=DEVICES, default="cpu", help="cpu (default) or cuda")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def run(args: argparse.Namespace) -> int:
    tile_size = parse_tile_size(args.tile_size)
    output = Path(args.output)
    if output.exists() and output.resolve() == Path(args.input).resolve():
        raise ValueError(f"--output {output} would overwrite the input")
    band_names = [b for b in args.bands.split(",") if b.strip()] if args.bands else None
    predictor = load_predictor(args.model, device=args.device, threads=args.threads, bicubic=args.bicubic)
    with open_source(args.input, predictor.bands, band_names) as source:
        summary = super_resolve(
            predictor,
            source,
            output,
            roi=args.roi,
            roi_pixels=args.roi_pixels,
            tile_size=tile_size,
            progress=not args.no_progress,
        )
    print(
        f"wrote {summary.output}: {summary.region.width} x {summary.region.height} px, bands "
        f"{list(summary.bands)}, x{summary.factor} ({predictor.name}), {summary.tiles} tiles in "
        f"{summary.seconds:.1f} s ({summary.megapixels / max(summary.seconds, 1e-9):.2f} Mpx/s)"
    )
    return 0
