"""The one DN ↔ standardised wrapper: a generator with its normalisation, DN in and DN out.

``DNModel(model, input_standardisation, output_standardisation)`` is what an exported ONNX graph computes
(the EVOLAND contract), what a checkpoint's predictor runs, and what evaluation calls on DN tensors.
"""

from __future__ import annotations

import torch
from torch import nn

from sisrlib.bands import DN_PER_REFLECTANCE, Standardisation
from sisrlib.models.base import SRModel


class DNModel(nn.Module):
    """A generator wrapped with its normalisation: ``[B, C, h, w]`` DN → ``[B, C, h·f, w·f]`` DN.

    DN → reflectance (÷10000) → standardised with ``input_standardisation`` → ``model`` → un-standardised with
    ``output_standardisation`` → DN (×10000). Float32 in, float32 out; no clipping, no rounding.
    """

    in_mean: torch.Tensor
    in_std: torch.Tensor
    out_mean: torch.Tensor
    out_std: torch.Tensor

    def __init__(
        self,
        model: SRModel,
        input_standardisation: Standardisation,
        output_standardisation: Standardisation | None = None,
    ) -> None:
        super().__init__()
        out_std = output_standardisation if output_standardisation is not None else input_standardisation
        if len(input_standardisation.bands) != model.in_bands:
            raise ValueError(
                f"the model takes {model.in_bands} input bands but the standardisation has "
                f"{len(input_standardisation.bands)} ({list(input_standardisation.bands)})"
            )
        if len(out_std.bands) != model.out_bands:
            raise ValueError(
                f"the model returns {model.out_bands} bands but the output standardisation has "
                f"{len(out_std.bands)} ({list(out_std.bands)})"
            )
        self.model = model
        self.bands: tuple[str, ...] = tuple(input_standardisation.bands)
        self.out_bands: tuple[str, ...] = tuple(out_std.bands)
        self.register_buffer(
            "in_mean", torch.tensor(input_standardisation.mean, dtype=torch.float32).view(1, -1, 1, 1)
        )
        self.register_buffer(
            "in_std", torch.tensor(input_standardisation.std, dtype=torch.float32).view(1, -1, 1, 1)
        )
        self.register_buffer("out_mean", torch.tensor(out_std.mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("out_std", torch.tensor(out_std.std, dtype=torch.float32).view(1, -1, 1, 1))

    @property
    def factor(self) -> float:
        return float(self.model.factor)

    @property
    def margin(self) -> int:
        return int(self.model.margin)

    def forward(self, dn: torch.Tensor) -> torch.Tensor:
        """``[B, C, h, w]`` DN → ``[B, C, h·f, w·f]`` DN."""
        standardised = (dn / DN_PER_REFLECTANCE - self.in_mean) / self.in_std
        prediction = self.model(standardised)
        return (prediction * self.out_std + self.out_mean) * DN_PER_REFLECTANCE
