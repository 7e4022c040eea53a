"""Inference benchmark: bare model vs end-to-end ``sisr infer`` throughput, ONNX vs torch, peak memory.

Usage (from the repository root)::

    .venv/bin/python benchmarks/inference.py [--size 768] [--memory-sizes 2000 6000] [--threads 2]

1. Throughput, on the same pixels (a ``size``² four-band GeoTIFF, tiles of ``--tile-size`` output px): the
   bare model (predictor calls on tiles already in memory), end-to-end ``sisr infer`` (read, fill, predict,
   crop, int16, deflate write), their ratio (target: overhead < 15 %), and ONNX Runtime against torch.
2. Peak memory (ru_maxrss of a separate ``sisr infer`` process) on 2000² and 6000² four-band inputs at tile
   size 512: it must not grow with the image (target < 2 GiB).

The model is a freshly initialised ESRGAN of the quick profile's size (weights do not change the speed).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import rasterio
import torch
from affine import Affine
from rasterio.windows import Window

from sisrlib.bands import BANDS_10M, standardisation
from sisrlib.cli import build_parser
from sisrlib.cli import main as sisr_main
from sisrlib.export import DNModel, export_generator
from sisrlib.inference.engine import input_window
from sisrlib.inference.predictors import OnnxPredictor, Predictor, TorchPredictor
from sisrlib.inference.sources import open_source
from sisrlib.inference.tiling import Region, context_pixels, plan_tiles
from sisrlib.models import build_generator
from sisrlib.models.params import ModelParams


def write_input(path: Path, size: int, block: int = 1000) -> Path:
    """A ``size``² four-band uint16 GeoTIFF of smooth DN, written by blocks (bounded memory)."""
    profile = {
        "driver": "GTiff",
        "width": size,
        "height": size,
        "count": 4,
        "dtype": "uint16",
        "crs": "EPSG:32631",
        "transform": Affine(10, 0, 300000, 0, -10, 4900000),
        "tiled": True,
        "blockxsize": 256,
        "blockysize": 256,
        "compress": "deflate",
    }
    rng = np.random.default_rng(0)
    with rasterio.open(path, "w", **profile) as dst:
        for i, band in enumerate(BANDS_10M, start=1):
            dst.set_band_description(i, band)
        for row in range(0, size, block):
            h = min(block, size - row)
            yy, xx = np.mgrid[row : row + h, 0:size].astype(np.float32)
            for i in range(4):
                data = 1500 + 700 * np.sin(0.05 * xx + i) * np.cos(0.037 * yy) + rng.normal(0, 30, (h, size))
                dst.write(data.astype(np.uint16), i + 1, window=Window(0, row, size, h))
    return path


def bare_throughput(predictor: Predictor, path: Path, tile_size: int, repeats: int = 1) -> float:
    """Output megapixels per second of the predictor alone on the tiles of ``path`` (read beforehand)."""
    factor = round(predictor.factor)
    context = context_pixels(predictor.margin, factor)
    with open_source(path, predictor.bands) as source:
        region = Region(0, 0, source.grid.width * factor, source.grid.height * factor)
        tiles = plan_tiles(region, tile_size)
        windows = [input_window(t, factor, context) for t in tiles]
        inputs = [source.read(w.col, w.row, w.width, w.height)[None] for w in windows]
    predictor(inputs[0])  # warm-up (allocations, kernel selection)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for dn in inputs:
            predictor(dn)
        best = min(best, time.perf_counter() - start)
    return region.width * region.height / 1e6 / best


def end_to_end_throughput(model: Path, path: Path, out: Path, tile_size: int, threads: int) -> float:
    """Output megapixels per second of ``sisr infer`` (in process; model loading included, imports not)."""
    build_parser()  # import every subcommand module once, outside the timing
    with rasterio.open(path) as ds:
        pixels = ds.width * ds.height * 4  # output pixels per band at factor 2
    start = time.perf_counter()
    code = sisr_main(
        [
            "infer",
            "--model",
            str(model),
            "--input",
            str(path),
            "--output",
            str(out),
            "--tile-size",
            str(tile_size),
            "--threads",
            str(threads),
            "--no-progress",
        ]
    )
    elapsed = time.perf_counter() - start
    if code != 0:
        raise RuntimeError(f"sisr infer failed with exit status {code}")
    return pixels / 1e6 / elapsed


def peak_memory_mib(model: Path, path: Path, out: Path, tile_size: int, threads: int) -> tuple[float, float]:
    """(peak RSS in MiB, seconds) of ``sisr infer`` run in a fresh process."""
    command = [
        sys.executable,
        "-m",
        "sisrlib.cli",
        "infer",
        "--model",
        str(model),
        "--input",
        str(path),
        "--output",
        str(out),
        "--tile-size",
        str(tile_size),
        "--threads",
        str(threads),
        "--no-progress",
    ]
    probe = (
        "import resource, subprocess, sys, time\n"
        "t = time.perf_counter()\n"
        f"rc = subprocess.run({command!r}, stdout=subprocess.DEVNULL).returncode\n"
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, time.perf_counter() - t, rc)\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    kib, seconds, rc = result.stdout.split()
    if int(rc) != 0:
        raise RuntimeError(f"sisr infer failed on {path}: exit status {rc}")
    return int(kib) / 1024, float(seconds)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--size", type=int, default=768, help="input edge (px) of the throughput image")
    parser.add_argument("--tile-size", type=int, default=512, help="tile edge in output px")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--memory-sizes", type=int, nargs="*", default=[2000, 6000])
    parser.add_argument("--blocks", type=int, default=2, help="RRDB blocks of the ESRGAN (quick size: 2)")
    parser.add_argument("--latent", type=int, default=32, help="ESRGAN latent size (quick size: 32)")
    parser.add_argument(
        "--memory-model",
        choices=("bicubic", "esrgan"),
        default="bicubic",
        help="graph of the memory runs: the exported bicubic generator (fast; same tiles, reads, writes) or "
        "a 1-RRDB latent-8 ESRGAN (slow on large images)",
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory(prefix="sisr-bench-") as tmp:
        folder = Path(tmp)
        params = ModelParams(
            generator="esrgan",
            num_blocks=args.blocks,
            latent_size=args.latent,
            growth_channels=max(args.latent // 2, 8),
        )
        torch.manual_seed(0)
        generator = build_generator(params, 4).eval()
        stats = standardisation("sen2venusx2")
        pair = export_generator(generator, stats, BANDS_10M, folder / "bench.onnx")
        print(
            f"model: ESRGAN {args.blocks} RRDB, latent {args.latent}, x2, margin {pair.margin} output px; "
            f"threads {args.threads}; tiles of {args.tile_size} output px"
        )

        image = write_input(folder / "input.tif", args.size)
        onnx_predictor = OnnxPredictor(pair.yaml_path, threads=args.threads)
        torch_predictor = TorchPredictor(DNModel(generator, stats))
        bare_onnx = bare_throughput(onnx_predictor, image, args.tile_size)
        bare_torch = bare_throughput(torch_predictor, image, args.tile_size)
        e2e = end_to_end_throughput(pair.yaml_path, image, folder / "out.tif", args.tile_size, args.threads)
        overhead = bare_onnx / e2e - 1
        print(
            f"\n== throughput on a {args.size}² input ({(2 * args.size) ** 2 / 1e6:.2f} Mpx of output per "
            "band)"
        )
        print(f"bare model, ONNX Runtime : {bare_onnx:8.3f} Mpx/s")
        print(
            f"bare model, torch        : {bare_torch:8.3f} Mpx/s   (ONNX Runtime / torch = "
            f"{bare_onnx / bare_torch:.2f})"
        )
        print(
            f"sisr infer end to end    : {e2e:8.3f} Mpx/s   (overhead {100 * overhead:.1f} % of the bare "
            f"model's time; target < 15 %: {'OK' if overhead < 0.15 else 'NOT MET'})"
        )

        if args.memory_sizes:
            if args.memory_model == "esrgan":
                small = ModelParams(generator="esrgan", num_blocks=1, latent_size=8, growth_channels=8)
            else:
                small = ModelParams(generator="bicubic")
            tiny = export_generator(build_generator(small, 4).eval(), stats, BANDS_10M, folder / "mem.onnx")
            print(
                f"\n== peak memory of sisr infer (separate process, tile size 512, {args.memory_model} graph)"
            )
            peaks = []
            for size in args.memory_sizes:
                path = write_input(folder / f"mem{size}.tif", size)
                peak, seconds = peak_memory_mib(
                    tiny.yaml_path, path, folder / f"mem{size}_sr.tif", 512, args.threads
                )
                peaks.append(peak)
                print(f"{size:5d}² x 4 bands -> {2 * size}² : peak RSS {peak:7.1f} MiB  ({seconds:.0f} s)")
                path.unlink()
                (folder / f"mem{size}_sr.tif").unlink()
            growth = max(peaks) / min(peaks)
            print(
                f"largest / smallest peak: {growth:.2f}; bound 2048 MiB: "
                f"{'OK' if max(peaks) < 2048 else 'NOT MET'}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
