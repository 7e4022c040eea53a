"""Torch-backed predictors: a :class:`~sisrlib.models.dn_model.DNModel` (generator + normalisation) and the
bicubic baseline. Both also offer :meth:`predict_tensor` (DN tensors on their device) for evaluation.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from sisrlib.degradation import bicubic_margin
from sisrlib.errors import MissingDependencyError
from sisrlib.models.dn_model import DNModel
from sisrlib.predictors.base import Predictor, check_device_name


def torch_device(device: str | torch.device) -> torch.device:
    """``device`` as a torch device, refusing ``cuda`` when torch sees no CUDA device."""
    resolved = torch.device(device)
    check_device_name(resolved.type)
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise MissingDependencyError("--device cuda: torch sees no CUDA device here; use --device cpu")
    return resolved


class TorchPredictor(Predictor):
    """A :class:`DNModel` run by torch without gradients, on ``device``."""

    def __init__(self, model: DNModel, device: torch.device | str = "cpu") -> None:
        self.device = torch_device(device)
        self.model = model.to(self.device).eval()
        self.in_bands = tuple(model.bands)
        self.out_bands = tuple(model.out_bands)
        self.factor = model.factor
        self.margin = model.margin
        self.name = f"torch {type(model.model).__name__}"

    def predict_tensor(self, dn: torch.Tensor) -> torch.Tensor:
        """``[B, len(in_bands), h, w]`` DN tensor → ``[B, len(out_bands), h·f, w·f]`` float32 DN, on the
        device of ``dn`` (the model is moved there)."""
        if dn.device != self.device:
            self.device = dn.device
            self.model = self.model.to(dn.device)
        with torch.inference_mode():
            return self.model(dn.float()).float()

    def __call__(self, dn: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(np.ascontiguousarray(dn, dtype=np.float32)).to(self.device)
        return self.predict_tensor(x).cpu().numpy()


class BicubicPredictor(Predictor):
    """Bicubic interpolation of the DN (torch's ``bicubic``, ``align_corners=False``): the baseline every
    model must beat."""

    def __init__(self, bands: tuple[str, ...], factor: float, device: str = "cpu") -> None:
        self.in_bands = tuple(bands)
        self.out_bands = tuple(bands)
        self.factor = float(factor)
        self.margin = bicubic_margin(self.factor)
        self.device = torch_device(device)
        self.name = "bicubic"

    def predict_tensor(self, dn: torch.Tensor) -> torch.Tensor:
        """``[B, C, h, w]`` DN tensor → ``[B, C, h·f, w·f]`` float32 DN on the same device."""
        h, w = dn.shape[-2:]
        size = (round(h * self.factor), round(w * self.factor))
        with torch.inference_mode():
            return F.interpolate(dn.float(), size=size, mode="bicubic", align_corners=False)

    def __call__(self, dn: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(np.ascontiguousarray(dn, dtype=np.float32)).to(self.device)
        return self.predict_tensor(x).cpu().numpy()
