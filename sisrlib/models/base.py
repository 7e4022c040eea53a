"""The interface every super-resolution network implements."""

from __future__ import annotations

import abc

import torch
from torch import nn


class SRModel(nn.Module, abc.ABC):
    """A super-resolution network: ``[B, C_in, h, w]`` → ``[B, C_out, h·factor, w·factor]``.

    Works in standardised units (the caller standardises inputs and un-standardises outputs).
    ``margin`` is the number of **output** pixels on every side of a prediction that depend on the
    padding of the input (its receptive field): they are cropped before losses, metrics and tiling.
    ``factor``, ``in_bands`` and ``out_bands`` are given once, to this base's constructor.
    """

    def __init__(self, in_bands: int, out_bands: int, factor: float) -> None:
        """Store the interface every network reports: ``in_bands`` input channels, ``out_bands`` output
        channels, upsampling ``factor`` (output pixel size = input pixel size / factor)."""
        name = type(self).__name__
        if isinstance(in_bands, bool) or int(in_bands) != in_bands or in_bands < 1:
            raise ValueError(f"{name}: in_bands must be an integer >= 1, got {in_bands}")
        if isinstance(out_bands, bool) or int(out_bands) != out_bands or out_bands < 1:
            raise ValueError(f"{name}: out_bands must be an integer >= 1, got {out_bands}")
        if not factor > 0:
            raise ValueError(f"{name}: factor must be > 0, got {factor}")
        super().__init__()
        self._in_bands = int(in_bands)
        self._out_bands = int(out_bands)
        self._factor = float(factor)

    @property
    def factor(self) -> float:
        """Upsampling factor (output pixel size = input pixel size / factor)."""
        return self._factor

    @property
    def in_bands(self) -> int:
        """Number of input channels."""
        return self._in_bands

    @property
    def out_bands(self) -> int:
        """Number of output channels."""
        return self._out_bands

    @property
    @abc.abstractmethod
    def margin(self) -> int:
        """Prediction margin, in output pixels."""

    @property
    def receptive_field(self) -> int:
        """Exact number of output pixels, on every side, that depend on the input padding (output px).

        A prediction cropped by ``receptive_field`` equals the prediction of the same network on any larger
        image. It equals ``margin`` unless a model keeps the reference's (smaller) margin convention for
        paper comparability (see ``ESRGANGenerator``).
        """
        return self.margin

    def check_input(self, x: torch.Tensor, name: str = "x", bands: int | None = None) -> None:
        """Raise a ValueError naming ``name`` unless ``x`` is a floating ``[B, bands, H, W]`` tensor
        (``bands`` defaults to ``in_bands``). Skipped while tracing/compiling (export sees static shapes)."""
        if torch.jit.is_tracing() or torch.compiler.is_compiling():
            return
        expected = self.in_bands if bands is None else bands
        if x.dim() != 4 or x.shape[1] != expected or not x.is_floating_point():
            raise ValueError(
                f"{type(self).__name__}: {name} must be a floating [B, {expected}, H, W] tensor of "
                f"standardised values, got shape {tuple(x.shape)} and dtype {x.dtype}"
            )

    def output_size(self, height: int, width: int) -> tuple[int, int]:
        """Output ``(H, W)`` for an input of ``(height, width)`` pixels."""
        return round(height * self.factor), round(width * self.factor)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError
