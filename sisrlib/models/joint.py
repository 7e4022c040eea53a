"""Joint 10 m + 20 m super-resolution (torchsisr's ``DoubleSuperResolutionModel``)."""

from __future__ import annotations

import math

import torch

from sisrlib.models.base import SRModel


class JointSuperResolution(SRModel):
    """Super-resolve 10 m (``hr``) and 20 m (``lr``) bands together with one SISR network.

    The 20 m bands ``[B, lr_bands, h/2, w/2]`` are first brought to the 10 m grid by ``lr_to_hr`` (bicubic ×2
    by default in ``build_generator``; any ``SRModel``, e.g. a CARN, works), concatenated after the 10 m bands
    ``[B, hr_bands, h, w]``, and the stack goes through ``sisr``: output
    ``[B, hr_bands + lr_bands, h·f, w·f]`` in the order (10 m bands, 20 m bands), f = ``sisr.factor``.
    With ``lr_to_hr=None`` only ``hr`` is used.

    Properties: ``in_bands`` = channels entering ``sisr`` (hr_bands + lr_bands), ``hr_bands``, ``lr_bands``,
    ``lr_factor`` (of ``lr_to_hr``). Margin = sisr.margin + sisr.factor·lr_to_hr.margin (43 = 41 + 2·1 for
    CARN + bicubic); ``receptive_field`` composes the exact values the same way.
    """

    def __init__(self, sisr: SRModel, lr_to_hr: SRModel | None = None) -> None:
        extra = 0 if lr_to_hr is None else lr_to_hr.out_bands
        if sisr.in_bands <= extra:
            raise ValueError(
                f"JointSuperResolution: the SISR model takes {sisr.in_bands} bands, which leaves no 10 m "
                f"band beside the {extra} bands produced by lr_to_hr"
            )
        super().__init__(sisr.in_bands, sisr.out_bands, sisr.factor)
        self.sisr = sisr
        self.lr_to_hr = lr_to_hr
        self._hr_bands = sisr.in_bands - extra

    @property
    def margin(self) -> int:
        if self.lr_to_hr is None:
            return self.sisr.margin
        return int(self.sisr.margin + self.sisr.factor * self.lr_to_hr.margin)

    @property
    def receptive_field(self) -> int:
        if self.lr_to_hr is None:
            return self.sisr.receptive_field
        return self.sisr.receptive_field + math.ceil(self.sisr.factor * self.lr_to_hr.receptive_field - 1e-9)

    @property
    def hr_bands(self) -> int:
        """Number of bands of the ``hr`` (10 m) input."""
        return self._hr_bands

    @property
    def lr_bands(self) -> int:
        """Number of bands of the ``lr`` (20 m) input (0 without ``lr_to_hr``)."""
        return 0 if self.lr_to_hr is None else self.lr_to_hr.in_bands

    @property
    def lr_factor(self) -> float:
        """Size ratio between the ``hr`` and ``lr`` inputs (1 without ``lr_to_hr``)."""
        return 1.0 if self.lr_to_hr is None else self.lr_to_hr.factor

    def forward(self, hr: torch.Tensor, lr: torch.Tensor | None = None) -> torch.Tensor:
        """Standardised ``hr`` ``[B, hr_bands, h, w]`` and ``lr`` ``[B, lr_bands, h/lr_factor, w/lr_factor]``
        → standardised ``[B, out_bands, h·factor, w·factor]``."""
        self.check_input(hr, "hr", self._hr_bands)
        if self.lr_to_hr is None:
            if lr is not None:
                raise ValueError(
                    "JointSuperResolution: an lr (20 m) tensor was given but the model has no lr_to_hr "
                    "branch (model.lr_to_hr is null)"
                )
            return self.sisr(hr)
        if lr is None:
            raise ValueError(
                f"JointSuperResolution: this model needs the lr (20 m) input with {self.lr_bands} bands "
                "(model.lr_to_hr is set)"
            )
        self.check_input(lr, "lr", self.lr_bands)
        lr_on_hr = self.lr_to_hr(lr)
        if (
            not (torch.jit.is_tracing() or torch.compiler.is_compiling())
            and lr_on_hr.shape[-2:] != hr.shape[-2:]
        ):
            raise ValueError(
                f"JointSuperResolution: lr {tuple(lr.shape)} brought to the hr grid has size "
                f"{tuple(lr_on_hr.shape[-2:])}, but hr is {tuple(hr.shape[-2:])}: lr must be "
                f"{self.lr_factor}× smaller than hr"
            )
        return self.sisr(torch.cat((hr, lr_on_hr), dim=1))
