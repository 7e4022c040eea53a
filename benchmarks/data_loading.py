"""Data loading speed: ×2 patches per second through the zipped-GeoTIFF reader and the in-memory cache.

Reads one embedded Sen2Venµs-like training site with the ×2 configuration (10 m bands: LR input + HR target,
and the true flow / radiometric fields unless ``--no-truth``), one patch at a time, in one process with one
thread:

* ``zip``: every read takes the GeoTIFFs out of the site's zip (kept open) and validates them (the reader's
  fast path; the same through GDAL's ``/vsizip/`` for every file is reported for comparison);
* ``cache``: the same patches again from the in-memory cache (decoded samples kept after their first read);
* both again through a DataLoader (batches of 16 collated into ``Batch`` objects), as training sees them.

Target: ≥ 300 patches/s through the zip reader on one core. Usage::

    python benchmarks/data_loading.py [--data data/embedded] [--site EMB-S2V1-N] [--repeats 3] [--json
    out.json]

The embedded data is built first (quick profile) if ``--data`` holds no complete build.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any


def measure(site: object, n: int, repeats: int) -> float:
    """Best patches/s over ``repeats`` passes reading items 0…n−1 of ``site``."""
    best = 0.0
    for _ in range(repeats):
        start = time.perf_counter()
        for i in range(n):
            site[i]  # type: ignore[index]
        best = max(best, n / (time.perf_counter() - start))
    return best


def loader_rate(dataset: object, repeats: int, batch_size: int = 16) -> float:
    """Best patches/s over ``repeats`` passes of a DataLoader (no worker, collate into Batch objects)."""
    from torch.utils.data import DataLoader

    from sisrlib.data.sample import collate_batch

    loader: DataLoader[Any] = DataLoader(dataset, batch_size=batch_size, collate_fn=collate_batch)  # type: ignore[arg-type]
    best = 0.0
    for _ in range(repeats):
        start = time.perf_counter()
        count = sum(len(batch) for batch in loader)
        best = max(best, count / (time.perf_counter() - start))
    return best


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--data", default="data/embedded", help="embedded build folder (built if missing)")
    p.add_argument("--site", default="EMB-S2V1-N", help="site to read (default EMB-S2V1-N)")
    p.add_argument("--patches", type=int, default=None, help="patches per pass (default: the whole site)")
    p.add_argument("--repeats", type=int, default=3, help="passes; the best is kept (default 3)")
    p.add_argument("--no-truth", action="store_true", help="do not read the true flow / radiometry columns")
    p.add_argument("--json", default=None, help="also write the results to this JSON file")
    args = p.parse_args(argv)

    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch

    torch.set_num_threads(1)
    from torch.utils.data import Subset

    from sisrlib.data.embedded import build_embedded, read_marker
    from sisrlib.data.raster import RasterReader
    from sisrlib.data.sen2venus import Sen2VenusSite, sen2venus_layout

    data = Path(args.data)
    if read_marker(data) is None:
        print(f"no complete embedded build in {data}: building it (quick profile)…", file=sys.stderr)
        build_embedded(data, 0, "quick")
    layout = sen2venus_layout(True, False, False)
    folder = data / "sen2venus" / args.site
    truth = not args.no_truth
    zipped = Sen2VenusSite(folder, layout, load_truth=truth)
    n = min(args.patches or len(zipped), len(zipped))
    sample = zipped[0]
    zip_rate = measure(zipped, n, args.repeats)
    gdal = Sen2VenusSite(folder, layout, load_truth=truth, reader=RasterReader(fast=False))
    gdal_rate = measure(gdal, n, args.repeats)
    cached = Sen2VenusSite(folder, layout, cache=True, load_truth=truth)
    measure(cached, n, 1)  # fill the cache
    cache_rate = measure(cached, n, args.repeats)
    # the same through a DataLoader (batches of 16 collated into Batch objects), as training sees it
    zip_loader = loader_rate(Subset(zipped, range(n)), args.repeats)
    cache_loader = loader_rate(Subset(cached, range(n)), args.repeats)
    result = {
        "site": args.site,
        "patches_per_pass": n,
        "inputs": list(sample.inputs.shape),
        "target": list(sample.target.shape),
        "truth": sample.true_flow is not None,
        "zip_patches_per_s": round(zip_rate, 1),
        "zip_gdal_only_patches_per_s": round(gdal_rate, 1),
        "cache_patches_per_s": round(cache_rate, 1),
        "cache_over_zip": round(cache_rate / zip_rate, 1),
        "loader_zip_patches_per_s": round(zip_loader, 1),
        "loader_cache_patches_per_s": round(cache_loader, 1),
        "loader_cache_over_zip": round(cache_loader / zip_loader, 1),
        "threads": torch.get_num_threads(),
        "target_zip_patches_per_s": 300,
    }
    print(
        f"{args.site} ×2 ({n} patches, inputs {result['inputs']}, target {result['target']}, "
        f"truth {'read' if result['truth'] else 'not read'}), one process, one thread:\n"
        f"  zipped GeoTIFF reader:           {zip_rate:9.1f} patches/s  (target ≥ 300)\n"
        f"    (GDAL /vsizip/ for every file: {gdal_rate:9.1f} patches/s)\n"
        f"  in-memory cache:                 {cache_rate:9.0f} patches/s  "
        f"({cache_rate / zip_rate:.0f}× the zip reader)\n"
        f"  DataLoader, batches of 16, zip:  {zip_loader:9.1f} patches/s\n"
        f"  DataLoader, batches of 16, cache:{cache_loader:9.1f} patches/s  "
        f"({cache_loader / zip_loader:.1f}×)"
    )
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
