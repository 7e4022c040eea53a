"""Params of notebook 01 and ``sisr prepare-data`` (``params/<profile>/01_data_preparation.yaml``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from sisrlib.data.real_datasets import REAL_DATASET_VARIABLES, real_dataset_problems
from sisrlib.degradation import PsfKernel


@dataclass(frozen=True)
class PreparationParams:
    """Params of ``notebooks/01_data_preparation.ipynb`` (``params/<profile>/01_data_preparation.yaml``).

    ``mode: embedded`` builds (or reuses) the embedded sites under ``out_dir`` with ``seed`` and the
    ``profile`` sizes and the ``psf_kernel`` of the simulated LR sensor, and writes figures and the distortion
    table to ``figures_dir``. ``mode: real`` checks
    that the real datasets named by the environment variables of ``real_datasets`` exist (every missing
    variable or path is named, in seconds) and draws a few of their patches.
    """

    mode: Literal["embedded", "real"] = "embedded"
    out_dir: str = "data/embedded"
    seed: int = 0
    profile: Literal["smoke", "quick"] = "quick"
    figures_dir: str = "figures/quick"
    #: PSF of the simulated LR sensor (:data:`sisrlib.degradation.PsfKernel`): ``exact`` (the embedded data of
    #: the quick and smoke profiles) or ``reference`` (torchsisr's 7×7 kernel).
    psf_kernel: PsfKernel = "exact"
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
        return real_dataset_problems(self.real_datasets)
