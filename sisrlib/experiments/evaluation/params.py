"""Parameters of an evaluation (``params/<profile>/04_evaluation_*.yaml``, ``sisr evaluate``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from sisrlib.degradation import PsfKernel
from sisrlib.experiments.evaluation.batches import is_glob, resolve_path
from sisrlib.metrics.perceptual import PERCEPTUAL_METRICS

#: Which checkpoint of a training run is evaluated (files of ``<run>/checkpoints/``): ``best`` (lowest pixel
#: validation loss), ``last``, ``best_total`` (lowest total validation loss, adversarial term included, as
#: torchsisr keeps), ``best_brisque`` (lowest validation BRISQUE of the prediction, as torchsisr keeps).
CheckpointChoice = Literal["best", "last", "best_total", "best_brisque"]
CHECKPOINT_FILES: dict[str, str] = {
    "best": "best.ckpt",
    "last": "last.ckpt",
    "best_total": "best_total.ckpt",
    "best_brisque": "best_brisque.ckpt",
}
#: Sign of FRU (``sisrlib.metrics.fda.fro_fru``): ``positive`` (ours, 100·Σ(I − min(P, I))/|ΣI| ≥ 0 on the dB
#: profiles) or ``reference`` (torchsisr's literal 100·Σ(I − min(P, I))/ΣI, ≤ 0 as the dB sums are negative).
FruSign = Literal["positive", "reference"]
#: TV variation: ``signed_percent`` (ours: 100·(TV(pred) − TV(ref))/TV(ref) per band on the mean TV of the
#: patches) or ``reference`` (torchsisr's: |TV(pred) − TV(ref)|/TV(ref) with TV summed over the batch and
#: divided by the batch size).
TvVariation = Literal["signed_percent", "reference"]
#: Pixels of the FDA's FFT profiles: ``cropped`` (ours: the patch less the evaluation margin, the pixels every
#: other metric scores) or ``reference`` (torchsisr's: the whole patch, prediction margin included, where the
#: convolutions see their zero padding and no loss ever constrained the model). Either way the pixels seen are
#: zero-padded to twice their width (``fft_size: null``), as torchsisr pads its patch; the frequency axis, in
#: units of Nyquist, is the same.
FdaMargin = Literal["cropped", "reference"]


@dataclass(frozen=True)
class RunSpec:
    """One model to evaluate: a training params file (checkpoint ``<output_dir>/checkpoints/<choice>``), or a
    model file (``checkpoint``: this project's checkpoint or a run folder holding ``checkpoints/``, an EVOLAND
    ONNX + yaml pair given by either file, or a torchsisr Lightning checkpoint)."""

    params_file: str | None = None
    checkpoint: str | None = None
    #: ``model`` column (default: the run's name, or the model file's stem).
    label: str | None = None
    #: ``dataset`` column (default: the run name without its variant suffix, else ``<dataset>x<factor>``).
    dataset: str | None = None
    #: ``variant`` column (default: from the registration flags: baseline, geom, geomrad; ``model`` for a
    #: model file without training params).
    variant: str | None = None
    #: Registration checkpoint for the geometric metrics of this run's dataset (overrides the global one).
    registration_checkpoint: str | None = None
    #: Training params file giving the test data of a model file that carries none (ONNX, torchsisr): its
    #: ``data`` section, seed, validation margin, registration channel and standardisation are used.
    data_params: str | None = None
    #: torchsisr checkpoints only, when the run configuration beside the file does not say: the input band
    #: names in channel order, the super-resolution factor, the named statistics (``sisrlib.bands``) of its
    #: normalisation (default: the checkpoint's own). See ``sisrlib.predictors.ModelOptions``.
    model_bands: list[str] | None = None
    model_factor: float | None = None
    standardisation: str | None = None


@dataclass(frozen=True)
class EvaluationParams:
    """Parameters of ``notebooks/04_evaluation_fda`` and ``sisr evaluate``."""

    runs: list[RunSpec]
    #: Folder of metrics.csv and the per-model outputs (``build/<profile>/evaluation/<name>``).
    output_dir: str
    name: str = "evaluation"
    #: Copies of the figures (FFT profiles, mosaic PNGs) go here when set.
    figures_dir: str | None = None
    #: Registration (pre-training or geom run) checkpoint whose flow network measures the geometric distortion
    #: of every row; null: the ``registration.checkpoint`` of the first run that has one; none: no geom
    #: metrics.
    registration_checkpoint: str | None = None
    max_test_batches: int | None = None
    test_batch_size: int | None = None
    #: Replaces ``data.root`` of every run (evaluate on another copy of the data).
    data_root: str | None = None
    bicubic: bool = True
    #: Output pixels ignored on every side (null: each run's ``training.validation_margin``, at most H/4).
    margin: int | None = None
    #: FFT size of the FDA profiles (null: 2 × the width of the pixels they see, as torchsisr: the patch, or
    #: the patch less the margin with ``fda_margin: cropped``).
    fft_size: int | None = None
    #: Which pixels the FDA profiles see (see ``FdaMargin``).
    fda_margin: FdaMargin = "cropped"
    data_range: float = 1.0
    lr_mtf: float = 0.1
    geometric_mtf: float = 0.3
    #: PSF of the downscalings of the LR fidelity and the geometric metric (``sisrlib.degradation``):
    #: ``exact`` (half-width ⌈4σ⌉, ours) or ``reference`` (torchsisr's fixed 7 × 7 kernel).
    psf_kernel: PsfKernel = "exact"
    #: Sign of FRU (see ``FruSign``).
    fru_sign: FruSign = "positive"
    #: Definition of ``tv_variation`` (see ``TvVariation``).
    tv_variation: TvVariation = "signed_percent"
    #: Perceptual test metrics of the predictions against the target, per band (``lpips``, ``pieapp``,
    #: ``brisque``; ``sisrlib.metrics.perceptual``): each computed when its weights/dependency are
    #: present, else a NaN column and a logged reason.
    perceptual: list[str] = field(default_factory=list)
    #: Folder of the perceptual metrics' weight files (null: the torch hub cache ``$TORCH_HOME/hub``).
    perceptual_weights: str | None = None
    #: Also the "sim" metrics (``sim_psnr``, ``sim_ssim``, ``sim_rmse``): predictions from inputs simulated
    #: from the target (downscaled at ``sim_mtf``, no noise), as torchsisr's test step.
    sim: bool = False
    sim_mtf: float = 0.4
    #: Which checkpoint of a training run is evaluated (see ``CheckpointChoice``).
    checkpoint: CheckpointChoice = "best"
    mosaic_patches: int = 32
    #: Patches of the full-resolution comparison figure per dataset (``04_<name>_patches_<dataset>.png``:
    #: input, bicubic, every model, oracle target, target side by side, one display stretch); 0: none.
    figure_patches: int = 4
    mosaic_columns: int = 8
    mosaic_crop: int = 32
    seed: int = 42
    #: "cpu", "cuda", or "auto" (cuda when available).
    device: str = "cpu"
    #: Draw the FFT-profile figures (the arrays, tables and mosaics are always written).
    figures: bool = True
    #: Also analyse each dataset's test split (PRR of the input, radiometric and geometric distortion of the
    #: target, torchsisr's dataset analysis) into ``dataset_analysis.csv``.
    dataset_analysis: bool = False
    analysis_max_batches: int | None = 20
    #: Calibrate each dataset's geometric measure (``geom_mean``) on known shifts, blurs and gains of the
    #: first test batch into ``distortion_calibration.csv`` (``metrics.distortion.calibrate_geometric``).
    calibration: bool = False
    #: On simulated sites, also score the ceilings of ``sisrlib.experiments.evaluation.ceilings`` (the target
    #: in the input's geometry with the HR radiometry; the oracle target keeping the site's systematic offset)
    #: into ``ceilings.csv`` (with ``offset_px``, the norm of the offset kept, LR px), once per dataset with
    #: the bicubic row.
    ceilings: bool = True

    def __post_init__(self) -> None:
        if not self.runs:
            raise ValueError("runs: list at least one run (params_file or checkpoint)")
        for k, run in enumerate(self.runs):
            if run.params_file is None and run.checkpoint is None:
                raise ValueError(f"runs[{k}]: give params_file (a training params YAML) or checkpoint")
        for name in self.perceptual:
            if name not in PERCEPTUAL_METRICS:
                raise ValueError(
                    f"perceptual: unknown metric {name!r}, expected some of {list(PERCEPTUAL_METRICS)}"
                )
        if not 0.0 < self.sim_mtf < 1.0:
            raise ValueError(f"sim_mtf: expected an MTF in (0, 1), found {self.sim_mtf}")

    def check_inputs(self, root: str | Path | None = None) -> list[str]:
        """Problems found before anything runs (``python -m sisrlib.pipeline check``): training params files
        that do not exist (relative paths relative to ``root``, default the working directory, where the
        stages run). Checkpoints are not checked: earlier notebooks of the pipeline write them."""
        problems = []
        for k, run in enumerate(self.runs):
            for key in ("params_file", "data_params"):
                path = getattr(run, key)
                if path is not None and not is_glob(path) and not resolve_path(path, root).is_file():
                    problems.append(f"runs[{k}].{key} {path} does not exist")
        return problems
