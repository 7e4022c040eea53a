"""The output GeoTIFF of ``sisr infer``: checked before any work, written under a temporary name,
georeferenced on the output grid, and never left half-written (errors, SIGTERM; a SIGKILLed run's temporary
is removed by the next run on the same host).
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from affine import Affine
from rasterio.crs import CRS

from sisrlib.atomic import atomic_output, remove_stale_files
from sisrlib.bands import NODATA_DN
from sisrlib.errors import SisrError
from sisrlib.inference.sources import Grid
from sisrlib.inference.tiling import Region

#: ``--compress`` choices: GDAL's DEFLATE (level 1, horizontal predictor), ZSTD (level 1, predictor), LZW, or
#: none (what the EVOLAND tool writes).
COMPRESSIONS: tuple[str, ...] = ("deflate", "zstd", "lzw", "none")
DEFAULT_COMPRESSION = "deflate"


class Terminated(BaseException):
    """SIGTERM received (SLURM cancellation, ``kill``): unwinds like Ctrl-C, so temporaries are removed."""


def check_output_path(output: str | os.PathLike[str], protected: Iterable[tuple[str, Path]]) -> Path:
    """Refuse an output that is a folder, lies in a missing or read-only folder, or is a protected file.

    ``protected``: ``(role, path)`` pairs (the model, its ONNX file and yaml, the input files): an output
    that resolves (symlinks followed) to one of them, or is the same file (hard link), is refused, since
    writing it would replace a model or an input. Returns ``output`` as a path.
    """
    output = Path(output)
    if output.is_dir():
        raise SisrError(
            f"--output {output} is a folder; give the GeoTIFF file to write, e.g. {output / 'NAME_sr.tif'}"
        )
    parent = output.resolve().parent
    if not parent.is_dir():
        raise FileNotFoundError(f"output {output}: the folder {output.parent} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise PermissionError(f"output {output}: the folder {output.parent} is not writable")
    target = output.resolve()
    for role, path in protected:
        same = target == Path(path).resolve()
        if not same and output.exists() and Path(path).exists():
            same = os.path.samefile(output, path)
        if same:
            raise SisrError(
                f"--output {output} is {role} {path}: writing it would replace that file; choose another "
                "output name"
            )
    return output


@contextlib.contextmanager
def sigterm_raises() -> Iterator[None]:
    """While active (main thread only), SIGTERM raises :class:`Terminated` once; later ones are ignored.

    The exception unwinds like Ctrl-C, so that :func:`temporary_output` removes its temporary file.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []

    def handler(signum: int, frame: object) -> None:
        if received:
            return
        received.append(signum)
        raise Terminated(f"terminated by {signal.Signals(signum).name}; the partial output was removed")

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def temporary_output(path: Path) -> Iterator[Path]:
    """:func:`sisrlib.atomic.atomic_output` for the output GeoTIFF, after removing the temporaries of
    ``path`` that dead runs of this host left (:func:`sisrlib.atomic.remove_stale_files`)."""
    if not path.parent.is_dir():
        raise FileNotFoundError(f"output {path}: the folder {path.parent} does not exist")
    remove_stale_files(path)
    with atomic_output(path) as tmp:
        yield Path(tmp)


def output_transform(grid: Grid, factor: int, region: Region) -> Affine:
    """The input transform scaled by 1/factor and moved to the region's top-left output pixel."""
    return (
        grid.transform
        @ Affine.translation(region.col / factor, region.row / factor)
        @ Affine.scale(1 / factor)
    )


def block_size(tile_size: int) -> int:
    """GeoTIFF block edge: the largest of 512, 256 … 16 dividing the tile size, else 256."""
    for size in (512, 256, 128, 64, 32, 16):
        if tile_size % size == 0:
            return size
    return 256


def geotiff_profile(
    region: Region,
    bands: int,
    crs: CRS,
    transform: Affine,
    tile_size: int,
    compress: str = DEFAULT_COMPRESSION,
) -> dict[str, Any]:
    """The rasterio profile of the output: tiled int16 DN, no data −10000, ``compress`` (see
    :data:`COMPRESSIONS`), BigTIFF when needed, band-interleaved beyond 4 bands."""
    if compress not in COMPRESSIONS:
        raise ValueError(f"--compress {compress!r}: expected one of {list(COMPRESSIONS)}")
    block = block_size(tile_size)
    profile: dict[str, Any] = {
        "driver": "GTiff",
        "width": region.width,
        "height": region.height,
        "count": bands,
        "dtype": "int16",
        "crs": crs,
        "transform": transform,
        "nodata": NODATA_DN,
        "tiled": True,
        "blockxsize": block,
        "blockysize": block,
        "BIGTIFF": "IF_SAFER",
        "interleave": "band" if bands > 4 else "pixel",
    }
    if compress == "deflate":
        # Level 1: half the compression time of the default level 6 for ~1 % larger files on SR outputs.
        profile |= {"compress": "deflate", "zlevel": 1, "predictor": 2}
    elif compress == "zstd":
        profile |= {"compress": "zstd", "zstd_level": 1, "predictor": 2}
    elif compress == "lzw":
        profile |= {"compress": "lzw", "predictor": 2}
    return profile
