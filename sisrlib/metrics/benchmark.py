"""Metrics sensitivity benchmark (spec §6.7): how image-quality metrics respond to controlled distortions.

HR patches of a dataset (one band, reflectance clipped to [0, 1]) are the reference. Each is distorted by
``simulate`` with one distortion at a time (sub-pixel shift, contrast loss, Gaussian noise, periodic pattern),
crossed with every blur (MTF) level, and every metric compares the distorted patches with the reference — all
metrics on the **same** simulated patches. The FDA metrics use the bicubic-upsampled simulated LR (the HR
patch degraded by ``factor`` with MTF ``input_mtf``) as their "input" spectrum.

The default metrics need only torch and torchmetrics: PSNR, SSIM, MS-SSIM, VIF_p, UQI and SCC from
``torchmetrics.functional.image``, GMSD, MS-GMSD and HaarPSI from ``sisrlib.metrics.iqa`` (own code from the
published definitions), L1, L2, TV_DIFF, the FDA metrics, and LPIPS with the training loss's own VGG16
implementation when its weight files are present. The other piq metrics (IW-SSIM, DSS, FSIM, SR-SIM, MDSI,
VSI, BRISQUE, BRISQUE_DIFF, PieAPP, DISTS, CLIP-IQA) are optional: they run only where ``piq`` and a
``torchvision`` built for the installed torch import. Metrics that need downloaded weights (LPIPS, DISTS,
PieAPP, CLIP-IQA, BRISQUE's SVM) run only when their weight files are present in the torch hub / CLIP caches.
A metric that cannot run is skipped with a logged message (one for all the piq metrics), and asking for one
explicitly raises ``MissingDependencyError`` saying what to install or which file to supply. Nothing is
downloaded.

Outputs: a long table ``benchmark.csv`` (metric, distortion, level, mtf, value), one figure per metric with
four panels (shift, contrast, noise, pattern; one curve per MTF), and a summary ``summary.{csv,md}`` of the
normalised response range of every metric to every distortion (and to blur).
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import logging
import math
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import torchmetrics.functional.image as tmi

from sisrlib.bands import dn_to_reflectance
from sisrlib.data.batch import Batch
from sisrlib.data.params import DataParams
from sisrlib.degradation import add_noise, blur, mtf_downscale, upsample
from sisrlib.errors import MissingDependencyError, SisrError
from sisrlib.metrics import fda, iqa
from sisrlib.metrics.atomic import write_text_atomic
from sisrlib.metrics.pixel import crop
from sisrlib.registration.flow import warp

LOGGER = logging.getLogger(__name__)

#: The four distortions, in panel order: name → (x-axis label, params field of its grid).
DISTORTIONS: dict[str, str] = {
    "spatial": "shift (px)",
    "spectral": "contrast loss (fraction)",
    "noise": "noise std (reflectance)",
    "pattern": "pattern amplitude (reflectance)",
}


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
    #: MTF of the simulated LR whose bicubic upsampling is the FDA "input".
    input_mtf: float = 0.4
    #: FFT size of the FDA profiles (null: 2 × patch width, at least 64).
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
        for name in DISTORTIONS:
            if not getattr(self, name):
                raise ValueError(f"{name}: give at least one distortion level")
        if not self.mtfs:
            raise ValueError("mtfs: give at least one blur level (null = no blur)")
        unknown = [m for m in self.metrics or [] if m not in METRICS]
        if unknown:
            raise ValueError(f"metrics: unknown metric(s) {unknown}; valid names are {list(METRICS)}")


# ------------------------------------------------------------------------------------------------ simulation
def pattern_tile(seed: int = 0) -> torch.Tensor:
    """The fixed 4×4 pseudo-random pattern, values in [−0.5, 0.5) (float64)."""
    g = torch.Generator().manual_seed(seed)
    return torch.rand(4, 4, generator=g, dtype=torch.float64) - 0.5


def simulate(
    x: torch.Tensor,
    mtf: float | None = None,
    spectral: float | None = None,
    spatial: float | None = None,
    pattern: float | None = None,
    noise: float | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Distort reflectance patches ``[B, C, H, W]`` (spec §6.7), in this order; ``None`` disables a step:

    1. ``spatial``: sub-pixel translation by ``spatial/√2`` px in x and in y (total ``spatial``), bicubic
       warp;
    2. ``spectral``: contrast loss around reflectance 0.1, ``x ← 0.1 + (x − 0.1)(1 − spectral)``;
    3. ``mtf``: Gaussian blur whose MTF at Nyquist is ``mtf`` (7×7 kernel as the reference);
    4. ``noise``: white Gaussian noise of std ``noise`` (from ``generator``);
    5. ``pattern``: the fixed tiled 4×4 pattern (values in ±0.5) × ``pattern``, added.
    """
    if x.dim() != 4:
        raise ValueError(f"x must be [B, C, H, W], got {tuple(x.shape)}")
    out = x
    if spatial is not None and spatial != 0.0:
        d = spatial / math.sqrt(2.0)
        flow = torch.full((x.shape[0], 2, x.shape[-2], x.shape[-1]), d, device=x.device, dtype=x.dtype)
        out = warp(out, flow)
    if spectral is not None:
        out = 0.1 + (out - 0.1) * (1.0 - spectral)
    if mtf is not None:
        out = blur(out, mtf, half_width=3)
    if noise is not None and noise > 0.0:
        out = add_noise(out, noise, generator)
    if pattern is not None and pattern != 0.0:
        h, w = out.shape[-2:]
        tile = pattern_tile().to(device=out.device, dtype=out.dtype)
        tiled = tile.repeat((h + 3) // 4, (w + 3) // 4)[:h, :w]
        out = out + pattern * tiled
    return out


# ------------------------------------------------------------------------------------------------ metrics
@dataclass(frozen=True)
class MetricSpec:
    """A benchmarked metric: ``fn(pred, ref)`` on ``[N, C, H, W]`` in [0, 1] → scalar; weight files it
    needs; whether it needs the optional packages piq and torchvision (``needs_piq``)."""

    name: str
    fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    rgb: bool = False
    weights: tuple[str, ...] = ()
    higher_is_better: bool = True
    needs_piq: bool = False


def _hub_file(name: str) -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints" / name


def _clip_file(name: str) -> Path:
    return Path(os.path.expanduser("~/.cache/clip")) / name


def _weights_paths(spec: MetricSpec) -> list[Path]:
    paths = []
    for w in spec.weights:
        if w.startswith("clip:"):
            paths.append(_clip_file(w[5:]))
        else:
            paths.append(_hub_file(w))
    return paths


def missing_weights(spec: MetricSpec) -> list[Path]:
    """The weight files of ``spec`` that are not present locally."""
    return [p for p in _weights_paths(spec) if not p.is_file()]


def _first_line(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text.splitlines()[0] if text else ''}"


@functools.cache
def piq_unavailable_reason() -> str | None:
    """None when the optional packages of the piq-only metrics (piq and a torchvision that works with the
    installed torch) import; else what is missing or broken (checked once per process)."""
    problems = []
    for package in ("torchvision", "piq"):
        try:
            installed = importlib.util.find_spec(package) is not None
        except (ImportError, ValueError):
            installed = True  # present in sys.modules without a spec: let the import decide
        if not installed:
            problems.append(f"{package} is not installed")
            continue
        try:
            importlib.import_module(package)
        except Exception as exc:  # a torchvision built for another torch fails with RuntimeError
            problems.append(f"{package} does not import ({_first_line(exc)})")
            if package == "torchvision":
                problems.append("piq needs torchvision")
                break
    return "; ".join(problems) if problems else None


def _piq_install_hint(specs: Sequence[MetricSpec] = ()) -> str:
    """How to enable the piq metrics; names the missing weight files of ``specs``."""
    missing = list(dict.fromkeys(str(p) for spec in specs for p in missing_weights(spec)))
    hint = (
        f"install piq==0.8.0 and the torchvision release built for the installed torch {torch.__version__} "
        "(same CPU / CUDA variant)"
    )
    if missing:
        hint += ", plus the weight files " + ", ".join(missing) + " for the metrics that need weights"
    return hint


def unavailable_reason(spec: MetricSpec) -> str | None:
    """Why ``spec`` cannot run here (optional packages and / or weight files missing), or None."""
    parts = []
    problem = piq_unavailable_reason() if spec.needs_piq else None
    if problem is not None:
        parts.append(
            f"metric {spec.name} needs the optional packages piq and torchvision, which are not usable here "
            f"({problem}). To enable it: {_piq_install_hint()}"
        )
    missing = missing_weights(spec)
    if missing:
        parts.append(
            f"metric {spec.name} needs pretrained weights that are not present: "
            + ", ".join(str(p) for p in missing)
            + ". Nothing is downloaded at run time: copy the file(s) there (from the piq / torchvision / "
            "CLIP release pages) to enable it"
        )
    return ". ".join(parts) if parts else None


def _tv(x: torch.Tensor) -> torch.Tensor:
    dv = (x[..., 1:, :] - x[..., :-1, :]).abs().sum(dim=(-3, -2, -1))
    dh = (x[..., :, 1:] - x[..., :, :-1]).abs().sum(dim=(-3, -2, -1))
    return dv + dh


#: PSNR cap (dB) of identical patches, as piq's MSE floor of 1e-8 on [0, 1] data.
PSNR_MAX_DB = 80.0
#: MS-SSIM's 5 scales with an 11-px Gaussian window need images larger than (11 − 1)·2⁴ = 160 px.
MS_SSIM_MIN_SIZE = 161


def _psnr(pred: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """PSNR (dB, peak 1) of every image, capped at ``PSNR_MAX_DB``, averaged over the batch."""
    per_image = tmi.peak_signal_noise_ratio(pred, ref, data_range=1.0, dim=(1, 2, 3), reduction="none")
    return per_image.clamp(max=PSNR_MAX_DB).mean()


def _ssim(pred: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """SSIM (Gaussian window 11, σ 1.5, K1 0.01, K2 0.03), averaged over the batch."""
    out = tmi.structural_similarity_index_measure(pred, ref, data_range=1.0)
    assert isinstance(out, torch.Tensor)
    return out


def _ms_ssim(pred: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """MS-SSIM with the published 5 scales and weights (Wang et al. 2003), negative contrast terms clipped to
    0 (torchmetrics' "relu"); needs patches of ``MS_SSIM_MIN_SIZE`` px or more."""
    h, w = pred.shape[-2:]
    if min(h, w) < MS_SSIM_MIN_SIZE:
        raise ValueError(
            f"MS-SSIM needs patches of at least {MS_SSIM_MIN_SIZE}×{MS_SSIM_MIN_SIZE} px (5 scales with an "
            f"11-px Gaussian window), got {h}×{w} after the crop; use larger patches"
        )
    return tmi.multiscale_structural_similarity_index_measure(pred, ref, data_range=1.0, normalize="relu")


def _vif_p(pred: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """Pixel-domain VIF (Sheikh & Bovik 2006) with visual noise variance 2 on the 8-bit scale (as piq: the
    [0, 1] data are scaled by 255); needs patches of 41 px or more."""
    return tmi.visual_information_fidelity(pred * 255.0, ref * 255.0, sigma_n_sq=2.0)


def _uqi(pred: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """Universal Image Quality Index (Wang & Bovik 2002), Gaussian window 11, σ 1.5; computed in float64, as
    its only stabilising term is the dtype's epsilon (float32's biases flat, low-reflectance windows)."""
    out = tmi.universal_image_quality_index(pred.double(), ref.double())
    return out.to(pred.dtype)


def _scc(pred: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """Spatial Correlation Coefficient (Zhou et al. 1998): local correlation (8×8 windows) of the Laplacian
    high-pass images."""
    return tmi.spatial_correlation_coefficient(pred, ref)


def _own(fn: Callable[..., torch.Tensor]) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    def metric(pred: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
        return fn(pred, ref, data_range=1.0)

    return metric


def _piq(name: str, **kwargs: Any) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    def fn(pred: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
        import piq

        out: torch.Tensor = getattr(piq, name)(pred, ref, **kwargs)
        return out

    return fn


_LAZY_MODELS: dict[str, Any] = {}


def _model_metric(name: str) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    def fn(pred: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
        import piq

        if name not in _LAZY_MODELS:
            _LAZY_MODELS[name] = getattr(piq, name)(reduction="mean").to(pred.device)
        out: torch.Tensor = _LAZY_MODELS[name](pred, ref)
        return out

    return fn


def _lpips(pred: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """LPIPS (VGG16) of the training loss (``PerBandLPIPS``, own implementation) from the torch hub cache."""
    from sisrlib.training.losses import PerBandLPIPS

    if "LPIPS" not in _LAZY_MODELS:
        _LAZY_MODELS["LPIPS"] = PerBandLPIPS()
    model: PerBandLPIPS = _LAZY_MODELS["LPIPS"].to(pred.device)
    return model(pred.float(), ref.float()).mean()


def _brisque(pred: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    import piq

    out: torch.Tensor = piq.brisque(pred, data_range=1.0)
    return out


def _brisque_diff(pred: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    import piq

    out: torch.Tensor = piq.brisque(ref, data_range=1.0) - piq.brisque(pred, data_range=1.0)
    return out


def _clip_iqa(pred: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    import piq

    if "CLIPIQA" not in _LAZY_MODELS:
        _LAZY_MODELS["CLIPIQA"] = piq.CLIPIQA(data_range=1.0).to(pred.device)
    out: torch.Tensor = _LAZY_MODELS["CLIPIQA"](pred).mean()
    return out


_VGG16 = "vgg16-397923af.pth"

#: Every benchmarked metric, in the reference's order, then the torchmetrics extras UQI and SCC (FDA metrics
#: are computed from profiles, see ``run``). ``needs_piq``: optional, run only where piq and a working
#: torchvision are installed.
METRICS: dict[str, MetricSpec] = {
    spec.name: spec
    for spec in (
        MetricSpec("PSNR", _psnr),
        MetricSpec("SSIM", _ssim),
        MetricSpec("MS-SSIM", _ms_ssim),
        MetricSpec("IW-SSIM", _piq("information_weighted_ssim", data_range=1.0), needs_piq=True),
        MetricSpec("GMSD", _own(iqa.gmsd), higher_is_better=False),
        MetricSpec("MS-GMSD", _own(iqa.multi_scale_gmsd), higher_is_better=False),
        MetricSpec(
            "BRISQUE",
            _brisque,
            weights=("brisque_svm_weights.pt",),
            higher_is_better=False,
            needs_piq=True,
        ),
        MetricSpec("BRISQUE_DIFF", _brisque_diff, weights=("brisque_svm_weights.pt",), needs_piq=True),
        MetricSpec("TV_DIFF", lambda p, r: (_tv(r) - _tv(p)).mean() / (p.shape[-1] * p.shape[-2])),
        MetricSpec("DSS", _piq("dss", data_range=1.0), needs_piq=True),
        MetricSpec("HaarPSI", _own(iqa.haarpsi)),
        MetricSpec("L1", lambda p, r: (p - r).abs().mean(), higher_is_better=False),
        MetricSpec("L2", lambda p, r: (p - r).square().mean(), higher_is_better=False),
        MetricSpec("VIF_p", _vif_p),
        MetricSpec("FSIM", _piq("fsim", data_range=1.0, chromatic=False), needs_piq=True),
        MetricSpec("SR-SIM", _piq("srsim", data_range=1.0, chromatic=False), needs_piq=True),
        MetricSpec("MDSI", _piq("mdsi", data_range=1.0), rgb=True, higher_is_better=False, needs_piq=True),
        MetricSpec("LPIPS", _lpips, weights=("lpips_weights.pt", _VGG16), higher_is_better=False),
        MetricSpec(
            "PieAPP",
            _model_metric("PieAPP"),
            rgb=True,
            weights=("PieAPPv0.1.pth",),
            higher_is_better=False,
            needs_piq=True,
        ),
        MetricSpec(
            "DISTS",
            _model_metric("DISTS"),
            rgb=True,
            weights=("dists_weights.pt", _VGG16),
            higher_is_better=False,
            needs_piq=True,
        ),
        MetricSpec("VSI", _piq("vsi", data_range=1.0), rgb=True, needs_piq=True),
        MetricSpec(
            "CLIP-IQA",
            _clip_iqa,
            rgb=True,
            weights=("clip:RN50.pt", "clip:clipiqa_tokens.pt"),
            needs_piq=True,
        ),
        MetricSpec("UQI", _uqi),
        MetricSpec("SCC", _scc),
        MetricSpec("FRR", lambda p, r: torch.tensor(math.nan)),
        MetricSpec("FRR_0_80", lambda p, r: torch.tensor(math.nan)),
        MetricSpec("FRR_80_100", lambda p, r: torch.tensor(math.nan)),
        MetricSpec("FRR_Noise", lambda p, r: torch.tensor(math.nan)),
    )
}
FDA_METRICS: tuple[str, ...] = ("FRR", "FRR_0_80", "FRR_80_100", "FRR_Noise")


def select_metrics(requested: Sequence[str] | None) -> list[MetricSpec]:
    """The metrics to run: ``requested`` (each must be usable here: MissingDependencyError naming what is
    missing otherwise), or every usable metric. With ``None``, the piq-only metrics are skipped with one
    logged message when piq / torchvision are not usable, and metrics whose weights are missing with one
    message each."""
    chosen: list[MetricSpec] = []
    without_piq: list[MetricSpec] = []
    for name in requested if requested is not None else list(METRICS):
        if name not in METRICS:
            raise ValueError(f"unknown metric {name!r}; valid names are {list(METRICS)}")
        spec = METRICS[name]
        reason = unavailable_reason(spec)
        if reason is None:
            chosen.append(spec)
        elif requested is not None:
            raise MissingDependencyError(reason)
        elif spec.needs_piq and piq_unavailable_reason() is not None:
            without_piq.append(spec)
        else:
            LOGGER.warning("skipped: %s", reason)
    if without_piq:
        LOGGER.warning(
            "skipped %s: these metrics need the optional packages piq and torchvision, which are not usable "
            "here (%s). To enable them: %s",
            ", ".join(spec.name for spec in without_piq),
            piq_unavailable_reason(),
            _piq_install_hint(without_piq),
        )
    return chosen


# ------------------------------------------------------------------------------------------------ running
@dataclass
class BenchmarkResult:
    """The long results table and the files written."""

    table: pd.DataFrame
    summary: pd.DataFrame
    skipped: dict[str, str]
    files: list[Path]


def reference_patches(params: BenchmarkParams, batches: Iterable[Batch]) -> tuple[torch.Tensor, float]:
    """The first ``nb_patches`` HR patches of band ``params.band`` (reflectance clipped to [0, 1]) ``[N, 1, H,
    W]`` and the dataset's factor."""
    chunks: list[torch.Tensor] = []
    factor = None
    count = 0
    for batch in batches:
        if params.band not in batch.target_bands:
            raise SisrError(
                f"band {params.band} is not among the target bands {batch.target_bands}; set band to one of "
                "them"
            )
        k = batch.target_bands.index(params.band)
        factor = batch.factor
        chunk = dn_to_reflectance(batch.target[:, k : k + 1]).clamp(0.0, 1.0)
        chunks.append(chunk[: params.nb_patches - count])
        count += chunks[-1].shape[0]
        if count >= params.nb_patches:
            break
    if not chunks or factor is None:
        raise SisrError("the dataset yielded no patch; check the data section (root, sites, split)")
    if count < params.nb_patches:
        LOGGER.warning("only %d patches available (nb_patches = %d)", count, params.nb_patches)
    return torch.cat(chunks), float(factor)


def _mtf_label(mtf: float | None) -> str:
    return "none" if mtf is None else f"{mtf:g}"


def run_benchmark(
    reference: torch.Tensor,
    factor: float,
    params: BenchmarkParams,
    metrics: Sequence[MetricSpec] | None = None,
) -> tuple[pd.DataFrame, dict[str, str]]:
    """Run every metric on every simulated distortion of ``reference`` ``[N, 1, H, W]`` (reflectance in [0,
    1]).

    Returns the long table (``metric``, ``distortion``, ``level``, ``mtf``, ``value``) and the metrics skipped
    at run time with the reason (e.g. patches too small for a multi-scale metric).
    """
    specs = list(metrics) if metrics is not None else select_metrics(params.metrics)
    h, w = reference.shape[-2:]
    size = params.fft_size or max(64, 2 * w)
    lr_input = upsample(mtf_downscale(reference, factor, params.input_mtf), factor)[..., :h, :w]
    target_db = fda.to_db(fda.fft_profile(reference, size)[1])
    input_db = fda.to_db(fda.fft_profile(lr_input, size)[1])
    ref_c = crop(reference, params.crop)
    skipped: dict[str, str] = {}
    records: list[dict[str, Any]] = []
    fda_specs = [s for s in specs if s.name in FDA_METRICS]
    pixel_specs = [s for s in specs if s.name not in FDA_METRICS]
    for m_index, mtf in enumerate(params.mtfs):
        LOGGER.info(
            "benchmark: MTF %s (%d/%d), %d metrics",
            _mtf_label(mtf),
            m_index + 1,
            len(params.mtfs),
            len(specs),
        )
        for distortion in DISTORTIONS:
            for level in getattr(params, distortion):
                generator = torch.Generator().manual_seed(params.seed + 7919 * m_index)
                distorted = simulate(reference, mtf=mtf, generator=generator, **{distortion: level})
                base = {"distortion": distortion, "level": float(level), "mtf": _mtf_label(mtf)}
                if fda_specs:
                    pred_db = fda.to_db(fda.fft_profile(distorted, size)[1])
                    values = {
                        "FRR": fda.frr(pred_db, target_db, input_db)[0],
                        "FRR_0_80": fda.frr(pred_db, target_db, input_db, 0.0, 0.8)[0],
                        "FRR_80_100": fda.frr(pred_db, target_db, input_db, 0.8, 1.0)[0],
                        "FRR_Noise": fda.fda_noise(pred_db, target_db, input_db),
                    }
                    for spec in fda_specs:
                        records.append(
                            {"metric": spec.name, **base, "value": float(values[spec.name].mean())}
                        )
                pred_c = crop(distorted, params.crop).clamp(0.0, 1.0)
                for spec in pixel_specs:
                    if spec.name in skipped:
                        continue
                    p, r = (
                        (pred_c.expand(-1, 3, -1, -1), ref_c.expand(-1, 3, -1, -1))
                        if spec.rgb
                        else (pred_c, ref_c)
                    )
                    try:
                        with torch.no_grad():
                            value = float(spec.fn(p.contiguous(), r.contiguous()))
                    except (ValueError, AssertionError, RuntimeError) as exc:
                        reason = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
                        LOGGER.warning("metric %s skipped on %d×%d px patches: %s", spec.name, h, w, reason)
                        skipped[spec.name] = reason
                        records = [rec for rec in records if rec["metric"] != spec.name]
                        continue
                    records.append({"metric": spec.name, **base, "value": value})
    table = pd.DataFrame(records, columns=["metric", "distortion", "level", "mtf", "value"])
    return table, skipped


def summarise(table: pd.DataFrame) -> pd.DataFrame:
    """Normalised response of every metric to every distortion (and to blur).

    For a distortion: the range (max − min) of the metric along that distortion's grid without blur (MTF
    "none", else the sharpest MTF benchmarked); for blur: the range across MTF levels at zero distortion of
    the first panel. Each metric's ranges are divided by its largest, so 1 marks the distortion it responds to
    most and 0 one it ignores; the sign column tells the direction (+: the metric increases with the
    distortion).
    """
    rows = []
    for metric, frame in table.groupby("metric", sort=False):
        mtf_levels = list(dict.fromkeys(frame["mtf"]))
        sharp = "none" if "none" in mtf_levels else mtf_levels[-1]
        ranges: dict[str, float] = {}
        signs: dict[str, str] = {}
        for distortion in DISTORTIONS:
            curve = frame[(frame["distortion"] == distortion) & (frame["mtf"] == sharp)].sort_values("level")
            vals = curve["value"].to_numpy(dtype=float)
            finite = vals[np.isfinite(vals)]
            ranges[distortion] = float(finite.max() - finite.min()) if finite.size else math.nan
            signs[distortion] = _sign(finite)
        first = next(iter(DISTORTIONS))
        at_zero = frame[frame["distortion"] == first]
        at_zero = at_zero[at_zero["level"] == at_zero["level"].min()]
        # blur increases as the MTF decreases: order from sharp (none, high MTF) to blurred
        order = sorted(at_zero["mtf"], key=lambda m: -math.inf if m == "none" else -float(m))
        blur_vals = np.array([float(at_zero[at_zero["mtf"] == m]["value"].iloc[0]) for m in order])
        finite = blur_vals[np.isfinite(blur_vals)]
        ranges["blur"] = float(finite.max() - finite.min()) if finite.size > 1 else math.nan
        signs["blur"] = _sign(finite)
        top = max((v for v in ranges.values() if not math.isnan(v)), default=math.nan)
        row: dict[str, Any] = {"metric": metric}
        for name, value in ranges.items():
            row[name] = value / top if top and not math.isnan(top) and top > 0 else 0.0
        for name, sign in signs.items():
            row[f"{name}_sign"] = sign
        rows.append(row)
    return pd.DataFrame(rows)


def _sign(values: np.ndarray) -> str:
    if values.size < 2 or values[-1] == values[0]:
        return "0"
    return "+" if values[-1] > values[0] else "-"


def summary_markdown(summary: pd.DataFrame, digits: int = 2) -> str:
    """The summary as a Markdown table (normalised response with its direction, e.g. ``+0.83``)."""
    names = [*DISTORTIONS, "blur"]
    lines = ["| metric | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for _, row in summary.iterrows():
        cells = []
        for name in names:
            value = row[name]
            sign = row[f"{name}_sign"]
            if isinstance(value, float) and math.isnan(value):
                cells.append("n/a")
            else:
                cells.append(f"{'' if sign == '0' else sign}{value:.{digits}f}")
        lines.append(f"| {row['metric']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_outputs(
    table: pd.DataFrame, params: BenchmarkParams, figures: bool = True
) -> tuple[pd.DataFrame, list[Path]]:
    """Write ``benchmark.csv``, ``summary.csv``, ``summary.md`` and one figure per metric; returns the
    summary."""
    from sisrlib.evaluation import write_csv
    from sisrlib.metrics.plots import plot_benchmark_metric

    out = Path(params.output_dir)
    files = [write_csv(table, out / "benchmark.csv")]
    summary = summarise(table)
    files.append(write_csv(summary, out / "summary.csv"))
    md = out / "summary.md"
    write_text_atomic(md, summary_markdown(summary))
    files.append(md)
    if figures:
        fig_dir = Path(params.figures_dir) if params.figures_dir else out / "figures"
        fig_dir.mkdir(parents=True, exist_ok=True)
        files.append(write_csv(summary, fig_dir / "05_benchmark_summary.csv"))
        write_text_atomic(fig_dir / "05_benchmark_summary.md", summary_markdown(summary))
        files.append(fig_dir / "05_benchmark_summary.md")
        for metric, frame in table.groupby("metric", sort=False):
            panels: dict[str, tuple[str, Sequence[float], dict[str, Sequence[float]]]] = {}
            for distortion, label in DISTORTIONS.items():
                part = frame[frame["distortion"] == distortion]
                levels = sorted(part["level"].unique())
                curves = {}
                for mtf in dict.fromkeys(part["mtf"]):
                    curve = part[part["mtf"] == mtf].sort_values("level")
                    curves[str(mtf)] = curve["value"].tolist()
                panels[distortion] = (label, levels, curves)
            files.append(plot_benchmark_metric(str(metric), panels, fig_dir / f"05_benchmark_{metric}.png"))
    return summary, files


def benchmark(
    params: BenchmarkParams,
    datamodule_factory: Callable[[DataParams, int], Any] | None = None,
    figures: bool = True,
) -> BenchmarkResult:
    """Read the patches, run the benchmark and write every output (see the module docstring)."""
    from sisrlib.evaluation import _default_datamodule, resolve_device

    skipped_unavailable = {
        spec.name: reason
        for spec in METRICS.values()
        if params.metrics is None and (reason := unavailable_reason(spec)) is not None
    }
    specs = select_metrics(params.metrics)
    torch.manual_seed(params.seed)
    factory = datamodule_factory or _default_datamodule
    dm = factory(params.data, params.seed)
    stage = "fit" if params.split in ("train", "val") else "test"
    dm.setup(stage)
    loader = {
        "test": dm.test_dataloader,
        "train": dm.train_dataloader,
        "val": dm.val_dataloader,
    }[params.split]()
    reference, factor = reference_patches(params, loader)
    device = resolve_device(params.device)
    table, skipped = run_benchmark(reference.to(device), factor, params, specs)
    summary, files = write_outputs(table, params, figures)
    return BenchmarkResult(
        table=table, summary=summary, skipped={**skipped_unavailable, **skipped}, files=files
    )
