"""What notebooks 02/03 show and what the quick-profile check measures: registration accuracy against the true
flows of the embedded sites, prediction examples, and the distortion left in a trained model's predictions.

A generator runs through :class:`sisrlib.models.dn_model.DNModel` (DN in, DN out: the one DN ↔ standardised
chain). All functions run without gradient, on the device of the networks, batch by batch over a data module's
test (or validation) split.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from sisrlib.bands import dn_to_reflectance, standardisation
from sisrlib.checkpoint import LoadedGenerator
from sisrlib.data.batch import Batch
from sisrlib.degradation import mtf_downscale, simulate_lr, upsample
from sisrlib.flow import flow_norm, warp
from sisrlib.metrics.fda import ProfileAccumulator, frr, to_db
from sisrlib.models.dn_model import DNModel
from sisrlib.registration.network import FlowEstimator
from sisrlib.registration.target import registration_band_index
from sisrlib.run_params import ExperimentParams

#: MTF used to bring predictions/targets back to the input grid for the distortion measures (as torchsisr).
DOWNSCALE_MTF = 0.3


def _batches(datamodule: Any, split: str, max_batches: int | None) -> Iterator[Batch]:
    datamodule.setup("test" if split == "test" else "fit")
    loader = datamodule.test_dataloader() if split == "test" else datamodule.val_dataloader()
    for i, batch in enumerate(loader):
        if max_batches is not None and i >= max_batches:
            return
        yield batch


def dn_model(generator: LoadedGenerator, device: torch.device | str | None = None) -> DNModel:
    """The generator of a checkpoint with its normalisation, DN in and DN out (on ``device`` if given)."""
    wrapped = DNModel(generator.model, generator.standardisation, generator.target_standardisation)
    return wrapped if device is None else wrapped.to(device)


@dataclass
class RegistrationEvaluation:
    """End-point error of ``R(simulated LR, real LR)`` against the stored ``true_flow`` (LR px)."""

    mean_epe: float
    mean_true_norm: float
    n_patches: int
    #: Per-patch mean true flow norm and mean EPE (for the EPE-vs-amplitude figure).
    patch_true_norm: np.ndarray
    patch_epe: np.ndarray
    #: One example: simulated band, real band, true and estimated flows ``[2, h, w]``, warped simulated band.
    example: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def ratio(self) -> float:
        """Mean EPE / mean true flow norm."""
        return self.mean_epe / self.mean_true_norm if self.mean_true_norm > 0 else float("nan")


@torch.no_grad()
def evaluate_registration(
    net: FlowEstimator,
    params: ExperimentParams,
    datamodule: Any,
    split: str = "test",
    max_batches: int | None = None,
    border: int = 2,
) -> RegistrationEvaluation:
    """Mean EPE (LR px, ``border`` px excluded) of the flow network on a split that has ``true_flow``."""
    net = net.eval()
    device = next(net.parameters()).device
    reg = params.registration
    epe_sum = norm_sum = 0.0
    count = 0
    patch_norm: list[np.ndarray] = []
    patch_epe: list[np.ndarray] = []
    example: dict[str, np.ndarray] = {}
    for batch in _batches(datamodule, split, max_batches):
        if batch.true_flow is None:
            raise ValueError(
                f"the {split} split of {params.data.root} has no true flows (only embedded sites have them)"
            )
        batch = batch.to(device)
        assert batch.true_flow is not None
        stats = params.training.standardisation
        inputs = standardisation(stats, batch.input_bands).standardise(dn_to_reflectance(batch.inputs))
        target = standardisation(stats, batch.target_bands).standardise(dn_to_reflectance(batch.target))
        t = registration_band_index(batch.input_bands, batch.target_bands, reg.channel)
        sim = simulate_lr(target[:, t : t + 1], batch.factor, reg.sim_mtf)[:, 0]
        real = inputs[:, reg.channel]
        est = net(sim, real)
        true = batch.true_flow.to(est.dtype)
        sl = (slice(None), slice(None), slice(border, -border or None), slice(border, -border or None))
        epe = flow_norm((est - true)[sl])
        tn = flow_norm(true[sl])
        epe_sum += float(epe.sum())
        norm_sum += float(tn.sum())
        count += epe.numel()
        patch_norm.append(tn.mean(dim=(1, 2)).cpu().numpy())
        patch_epe.append(epe.mean(dim=(1, 2)).cpu().numpy())
        if not example:
            example = {
                "simulated": sim[0].cpu().numpy(),
                "real": real[0].cpu().numpy(),
                "true_flow": true[0].cpu().numpy(),
                "estimated_flow": est[0].cpu().numpy(),
                "warped": warp(sim[:1, None], est[:1])[0, 0].cpu().numpy(),
            }
    if count == 0:
        raise ValueError(f"the {split} split is empty")
    return RegistrationEvaluation(
        mean_epe=epe_sum / count,
        mean_true_norm=norm_sum / count,
        n_patches=int(sum(len(p) for p in patch_norm)),
        patch_true_norm=np.concatenate(patch_norm),
        patch_epe=np.concatenate(patch_epe),
        example=example,
    )


@dataclass
class PredictionExamples:
    """Reflectance ``[N, C, H, W]`` arrays: bicubic-upsampled input, prediction, target; band names."""

    bicubic: np.ndarray
    prediction: np.ndarray
    target: np.ndarray
    bands: tuple[str, ...]


@torch.no_grad()
def prediction_examples(generator: LoadedGenerator, datamodule: Any, n: int = 4) -> PredictionExamples:
    """The first ``n`` test patches: bicubic input, prediction and target (reflectance, target bands)."""
    device = next(generator.model.parameters(), torch.zeros(())).device
    model = dn_model(generator, device)
    shared = [b for b in generator.target_bands if b in generator.input_bands]
    idx = [generator.input_bands.index(b) for b in shared]
    out: dict[str, list[np.ndarray]] = {"bicubic": [], "prediction": [], "target": []}
    got = 0
    for batch in _batches(datamodule, "test", None):
        batch = batch.to(device)
        pred = dn_to_reflectance(model(batch.inputs))
        bic = upsample(dn_to_reflectance(batch.inputs)[:, idx], generator.factor)
        keep = min(n - got, len(batch))
        out["bicubic"].append(bic[:keep].cpu().numpy())
        out["prediction"].append(pred[:keep, [generator.target_bands.index(b) for b in shared]].cpu().numpy())
        out["target"].append(
            dn_to_reflectance(batch.target)[:keep, [generator.target_bands.index(b) for b in shared]]
            .cpu()
            .numpy()
        )
        got += keep
        if got >= n:
            break
    return PredictionExamples(
        bicubic=np.concatenate(out["bicubic"]),
        prediction=np.concatenate(out["prediction"]),
        target=np.concatenate(out["target"]),
        bands=tuple(shared),
    )


@dataclass
class DistortionSummary:
    """Distortion left in predictions on a test split (means over patches).

    ``pred_flow``/``target_flow``: mean norm (LR px) of R(↓x, input) for the prediction and the
    target and (reference) the input itself; ``lr_rmse``/``lr_bias``: reflectance RMSE and mean of ↓pred −
    input
    (the input's radiometry kept or not), averaged over bands.
    """

    pred_flow: float
    target_flow: float
    lr_rmse: float
    lr_bias: float
    frr: float
    n_patches: int

    def as_dict(self) -> dict[str, float]:
        return {
            "pred_flow": self.pred_flow,
            "target_flow": self.target_flow,
            "lr_rmse": self.lr_rmse,
            "lr_bias": self.lr_bias,
            "frr": self.frr,
            "n_patches": float(self.n_patches),
        }


@torch.no_grad()
def distortion_summary(
    generator: LoadedGenerator,
    registration: FlowEstimator,
    datamodule: Any,
    channel: int,
    margin: int = 8,
    max_batches: int | None = None,
) -> DistortionSummary:
    """Geometric (flow between ↓prediction and input, registration net) and radiometric (LR RMSE, bias)
    distortion of a generator's test predictions. ``margin``: output px excluded on each side."""
    device = next(registration.parameters()).device
    model = dn_model(generator, device)
    shared = [b for b in generator.target_bands if b in generator.input_bands]
    t_idx = [generator.target_bands.index(b) for b in shared]
    i_idx = [generator.input_bands.index(b) for b in shared]
    t_reg = registration_band_index(generator.input_bands, generator.target_bands, channel)
    f = generator.factor
    m_lr = round(margin / f)
    sums = {"pred": 0.0, "target": 0.0, "rmse": 0.0}
    band_bias = torch.zeros(len(shared), dtype=torch.float64)
    profiles: dict[str, ProfileAccumulator] = {}
    n = 0
    for batch in _batches(datamodule, "test", max_batches):
        batch = batch.to(device)
        x = generator.standardisation.standardise(dn_to_reflectance(batch.inputs))
        pred_refl = dn_to_reflectance(model(batch.inputs))
        pred_std = generator.target_standardisation.standardise(pred_refl)
        tgt_std = generator.target_standardisation.standardise(dn_to_reflectance(batch.target))
        real = x[:, channel]
        for name, hr in (("pred", pred_std), ("target", tgt_std)):
            down = mtf_downscale(hr[:, t_reg : t_reg + 1], f, DOWNSCALE_MTF)[:, 0]
            norm = flow_norm(registration(down, real))[:, m_lr : -m_lr or None, m_lr : -m_lr or None]
            sums[name] += float(norm.mean(dim=(1, 2)).sum())
        pred_r = pred_refl[:, t_idx]
        down_r = mtf_downscale(pred_r, f, DOWNSCALE_MTF)
        inp_r = dn_to_reflectance(batch.inputs)[:, i_idx]
        diff = (down_r - inp_r)[..., m_lr : -m_lr or None, m_lr : -m_lr or None]
        sums["rmse"] += float(torch.sqrt((diff**2).mean(dim=(2, 3))).mean(dim=1).sum())
        band_bias += diff.mean(dim=(2, 3)).sum(dim=0).double().cpu()
        target_r = dn_to_reflectance(batch.target)[:, t_idx]
        bicubic_r = upsample(inp_r, f)
        for name, img in (("pred", pred_r), ("target", target_r), ("input", bicubic_r)):
            img = img[..., margin : img.shape[-2] - margin, margin : img.shape[-1] - margin]
            size = 2 * math.ceil(max(img.shape[-2:]) / 2)
            acc = profiles.setdefault(name, ProfileAccumulator(2 * size))
            acc.update(img.double())
        n += len(batch)
    if n == 0:
        raise ValueError("the test split is empty")
    db = {name: to_db(acc.compute()[1]) for name, acc in profiles.items()}
    frr_bands = frr(db["pred"], db["target"], db["input"])[0]
    return DistortionSummary(
        pred_flow=sums["pred"] / n,
        target_flow=sums["target"] / n,
        lr_rmse=sums["rmse"] / n,
        lr_bias=float((band_bias / n).abs().mean()),
        frr=float(frr_bands.nanmean()),
        n_patches=n,
    )
