"""``BenchmarkParams``: the parameters of notebook 05 and ``sisr benchmark-metrics``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, get_args

from sisrlib.data.params import DataParams
from sisrlib.experiments.metrics_benchmark.registry import METRICS, TV_NORMS, TvNorm
from sisrlib.experiments.metrics_benchmark.simulation import (
    BLUR_PADDINGS,
    PATTERN_KINDS,
    BlurPadding,
    PatternKind,
)

#: The four distortions, in panel order: name → x-axis label (the params field of its grid has the name).
DISTORTIONS: dict[str, str] = {
    "spatial": "shift (px)",
    "spectral": "contrast loss (fraction)",
    "noise": "noise std (reflectance)",
    "pattern": "pattern amplitude (reflectance)",
}

#: The FDA "input" spectrum: ``"simulated"`` (ours) the HR patch degraded by the factor with MTF
#: ``input_mtf`` then bicubic-upsampled; ``"sentinel2"`` (torchsisr's) the real LR patch of the same band,
#: bicubic-upsampled by the factor.
FdaInput = Literal["simulated", "sentinel2"]
FDA_INPUTS: tuple[str, ...] = get_args(FdaInput)


def _grid(start: float, step: float, count: int) -> list[float]:
    return [round(start + k * step, 10) for k in range(count)]


@dataclass(frozen=True)
class BenchmarkParams:
    """Parameters of ``notebooks/05_metrics_benchmark.ipynb`` and ``sisr benchmark-metrics``."""

    data: DataParams
    output_dir: str
    figures_dir: str | None = None
    #: Number of HR patches (the reference used 128).
    nb_patches: int = 128
    #: Band of the HR target analysed (the reference used B4).
    band: str = "B4"
    #: Pixels ignored on every side by every metric.
    crop: int = 4
    seed: int = 42
    #: The FDA "input" spectrum (see ``FdaInput``): "simulated" (ours) or "sentinel2" (torchsisr's).
    fda_input: FdaInput = "simulated"
    #: MTF of the simulated LR whose bicubic upsampling is the FDA "input" (``fda_input: simulated``).
    input_mtf: float = 0.4
    #: The 4×4 periodic pattern: "seeded" (ours, drawn from a seeded generator) or "reference" (torchsisr's).
    pattern_kind: PatternKind = "seeded"
    #: Borders of the simulated blur: "reflect" (ours) or "zeros" (torchsisr's).
    blur_padding: BlurPadding = "reflect"
    #: TV_DIFF's total variation: "l1" (ours, per pixel) or "l2" (torchsisr's, piq's L2 TV).
    tv_norm: TvNorm = "l1"
    #: FFT size of the FDA profiles (null: 2 × patch width, at least 64; torchsisr: 512).
    fft_size: int | None = None
    #: Blur levels (MTF at Nyquist; null = no blur), one curve each.
    mtfs: list[float | None] = field(default_factory=lambda: [0.001, 0.01, 0.1, 0.2, 0.4, None])
    spatial: list[float] = field(default_factory=lambda: _grid(0.0, 0.2, 11))
    spectral: list[float] = field(default_factory=lambda: _grid(0.02, 0.01, 10))
    noise: list[float] = field(default_factory=lambda: _grid(0.0, 0.00025, 40))
    pattern: list[float] = field(default_factory=lambda: _grid(0.0, 0.00025, 40))
    #: Metric names to run (null: every metric that runs offline here). See ``METRICS``.
    metrics: list[str] | None = None
    #: Which split the patches come from.
    split: str = "test"
    #: "cpu", "cuda" or "auto".
    device: str = "cpu"

    def __post_init__(self) -> None:
        if self.nb_patches < 1:
            raise ValueError(f"nb_patches must be >= 1, got {self.nb_patches}")
        if self.split not in ("test", "train", "val"):
            raise ValueError(f"split must be test, train or val, got {self.split!r}")
        if self.fda_input not in FDA_INPUTS:
            raise ValueError(f"fda_input must be one of {FDA_INPUTS}, got {self.fda_input!r}")
        if self.pattern_kind not in PATTERN_KINDS:
            raise ValueError(f"pattern_kind must be one of {PATTERN_KINDS}, got {self.pattern_kind!r}")
        if self.blur_padding not in BLUR_PADDINGS:
            raise ValueError(f"blur_padding must be one of {BLUR_PADDINGS}, got {self.blur_padding!r}")
        if self.tv_norm not in TV_NORMS:
            raise ValueError(f"tv_norm must be one of {TV_NORMS}, got {self.tv_norm!r}")
        for name in DISTORTIONS:
            if not getattr(self, name):
                raise ValueError(f"{name}: give at least one distortion level")
        if not self.mtfs:
            raise ValueError("mtfs: give at least one blur level (null = no blur)")
        unknown = [m for m in self.metrics or [] if m not in METRICS]
        if unknown:
            raise ValueError(f"metrics: unknown metric(s) {unknown}; valid names are {list(METRICS)}")
