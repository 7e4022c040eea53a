"""The benchmarked metrics, in torchsisr's order, then the torchmetrics extras UQI and SCC.

The default metrics need only torch and torchmetrics: PSNR, SSIM, MS-SSIM, VIF_p, UQI and SCC from
``torchmetrics.functional.image``, GMSD, MS-GMSD and HaarPSI from :mod:`sisrlib.metrics.iqa` (own code from
the published definitions), L1, L2, TV_DIFF, the FDA metrics, and, when their weight files are present,
LPIPS, PieAPP and BRISQUE with our own implementations (:mod:`sisrlib.metrics.perceptual`). The other piq
metrics are optional: they run only where ``piq`` and a ``torchvision`` built for the installed torch import
(``needs_piq``).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from typing import Any, Literal, get_args

import torch
import torchmetrics.functional.image as tmi

from sisrlib.errors import MissingDependencyError
from sisrlib.experiments.metrics_benchmark.dependencies import (
    piq_install_hint,
    piq_unavailable_reason,
    unavailable_reason,
)
from sisrlib.experiments.metrics_benchmark.spec import MetricSpec
from sisrlib.metrics import iqa
from sisrlib.metrics.brisque import BRISQUE_WEIGHTS_FILE
from sisrlib.metrics.lpips import PerBandLPIPS
from sisrlib.metrics.perceptual import perceptual_scores
from sisrlib.metrics.pieapp import PIEAPP_WEIGHTS_FILE

LOGGER = logging.getLogger("sisrlib.experiments.metrics_benchmark")

#: ``"l1"``: ours, Σ|∇x| / (H·W); ``"l2"``: torchsisr's, piq's L2 total variation √Σ(∇x)² (no normalisation).
TvNorm = Literal["l1", "l2"]
TV_NORMS: tuple[str, ...] = get_args(TvNorm)

#: PSNR cap (dB) of identical patches, as piq's MSE floor of 1e-8 on [0, 1] data.
PSNR_MAX_DB = 80.0
#: MS-SSIM's 5 scales with an 11-px Gaussian window need images larger than (11 − 1)·2⁴ = 160 px.
MS_SSIM_MIN_SIZE = 161


def total_variation(x: torch.Tensor, norm: TvNorm = "l1") -> torch.Tensor:
    """Total variation of every image of ``[N, C, H, W]`` → ``[N]`` (units of ``x``), over the vertical and
    horizontal neighbour differences of all channels: ``"l1"`` Σ|d| (anisotropic), ``"l2"`` √(Σ d²) (piq's
    ``norm_type="l2"``)."""
    dv = x[..., 1:, :] - x[..., :-1, :]
    dh = x[..., :, 1:] - x[..., :, :-1]
    if norm == "l1":
        return dv.abs().sum(dim=(-3, -2, -1)) + dh.abs().sum(dim=(-3, -2, -1))
    if norm == "l2":
        return (dv.square().sum(dim=(-3, -2, -1)) + dh.square().sum(dim=(-3, -2, -1))).sqrt()
    raise ValueError(f"tv_norm must be one of {TV_NORMS}, got {norm!r}")


def tv_diff(pred: torch.Tensor, ref: torch.Tensor, norm: TvNorm = "l1") -> torch.Tensor:
    """TV_DIFF, the batch mean of TV(ref) − TV(pred): ``"l1"`` (ours) divided by H·W (per-pixel, comparable
    across patch sizes); ``"l2"`` as torchsisr (piq's L2 TV, not normalised)."""
    diff = (total_variation(ref, norm) - total_variation(pred, norm)).mean()
    return diff / (pred.shape[-1] * pred.shape[-2]) if norm == "l1" else diff


def tv_diff_spec(norm: TvNorm) -> MetricSpec:
    """The TV_DIFF metric with the total variation ``norm``."""
    if norm not in TV_NORMS:
        raise ValueError(f"tv_norm must be one of {TV_NORMS}, got {norm!r}")
    return MetricSpec("TV_DIFF", lambda p, r: tv_diff(p, r, norm))


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
    """LPIPS (VGG16), our own implementation (``PerBandLPIPS``), weights from the torch hub cache."""
    if "LPIPS" not in _LAZY_MODELS:
        _LAZY_MODELS["LPIPS"] = PerBandLPIPS()
    model: PerBandLPIPS = _LAZY_MODELS["LPIPS"].to(pred.device)
    return model(pred.float(), ref.float()).mean()


def _brisque(pred: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """BRISQUE of the distorted patches (our own implementation, :mod:`sisrlib.metrics.brisque`)."""
    return perceptual_scores("brisque", pred, None).mean()


def _brisque_diff(pred: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """BRISQUE(ref) − BRISQUE(pred), batch means."""
    return perceptual_scores("brisque", ref, None).mean() - perceptual_scores("brisque", pred, None).mean()


def _pieapp(pred: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """PieAPP (our own implementation, :mod:`sisrlib.metrics.pieapp`; needs patches of 64 px or more)."""
    return perceptual_scores("pieapp", pred, ref).mean()


def _clip_iqa(pred: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    import piq

    if "CLIPIQA" not in _LAZY_MODELS:
        _LAZY_MODELS["CLIPIQA"] = piq.CLIPIQA(data_range=1.0).to(pred.device)
    out: torch.Tensor = _LAZY_MODELS["CLIPIQA"](pred).mean()
    return out


def _nan(pred: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    return torch.tensor(math.nan)


_VGG16 = "vgg16-397923af.pth"

#: Every benchmarked metric (FDA metrics are computed from profiles by the runner). ``needs_piq``: optional,
#: run only where piq and a working torchvision are installed.
METRICS: dict[str, MetricSpec] = {
    spec.name: spec
    for spec in (
        MetricSpec("PSNR", _psnr),
        MetricSpec("SSIM", _ssim),
        MetricSpec("MS-SSIM", _ms_ssim),
        MetricSpec("IW-SSIM", _piq("information_weighted_ssim", data_range=1.0), needs_piq=True),
        MetricSpec("GMSD", _own(iqa.gmsd), higher_is_better=False),
        MetricSpec("MS-GMSD", _own(iqa.multi_scale_gmsd), higher_is_better=False),
        MetricSpec("BRISQUE", _brisque, weights=(BRISQUE_WEIGHTS_FILE,), higher_is_better=False),
        MetricSpec("BRISQUE_DIFF", _brisque_diff, weights=(BRISQUE_WEIGHTS_FILE,)),
        tv_diff_spec("l1"),
        MetricSpec("DSS", _piq("dss", data_range=1.0), needs_piq=True),
        MetricSpec("HaarPSI", _own(iqa.haarpsi)),
        MetricSpec("L1", lambda p, r: (p - r).abs().mean(), higher_is_better=False),
        MetricSpec("L2", lambda p, r: (p - r).square().mean(), higher_is_better=False),
        MetricSpec("VIF_p", _vif_p),
        MetricSpec("FSIM", _piq("fsim", data_range=1.0, chromatic=False), needs_piq=True),
        MetricSpec("SR-SIM", _piq("srsim", data_range=1.0, chromatic=False), needs_piq=True),
        MetricSpec("MDSI", _piq("mdsi", data_range=1.0), rgb=True, higher_is_better=False, needs_piq=True),
        MetricSpec("LPIPS", _lpips, weights=("lpips_weights.pt", _VGG16), higher_is_better=False),
        MetricSpec("PieAPP", _pieapp, weights=(PIEAPP_WEIGHTS_FILE,), higher_is_better=False),
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
        MetricSpec("FRR", _nan),
        MetricSpec("FRR_0_80", _nan),
        MetricSpec("FRR_80_100", _nan),
        MetricSpec("FRR_Noise", _nan),
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
            piq_install_hint(without_piq),
        )
    return chosen
