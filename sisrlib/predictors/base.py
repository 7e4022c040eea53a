"""The one predictor contract: a super-resolution model as a DN-in / DN-out function on a batch of tiles.

Numpy only (importing this module pulls no torch). A :class:`Predictor` maps ``[B, len(in_bands), h, w]``
float32 DN (reflectance × 10000, no NaN) to ``[B, len(out_bands), h·f, w·f]`` float32 DN: the EVOLAND
contract, one input, a mixed 10 m + 20 m model receiving its 20 m bands already on the 10 m grid. Output
pixels within ``margin`` (output px) of a tile border depend on what lies beyond it (padding).
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sisrlib.errors import SisrError

#: Devices a predictor runs on.
DEVICES: tuple[str, ...] = ("cpu", "cuda")


class Predictor(abc.ABC):
    """A tile predictor in DN units (see the module docstring for the contract)."""

    #: Input band names, in channel order.
    in_bands: tuple[str, ...]
    #: Output band names, in channel order (the input's for every EVOLAND-contract model).
    out_bands: tuple[str, ...]
    #: Super-resolution factor.
    factor: float
    #: Output pixels on every side that depend on padding (receptive field), in output px.
    margin: int
    #: Short human-readable description.
    name: str
    #: The model files it was loaded from (yaml and ONNX, or checkpoint); empty for in-memory models.
    files: tuple[Path, ...] = ()

    @property
    def bands(self) -> tuple[str, ...]:
        """The input bands (what a source must present, in this order)."""
        return self.in_bands

    @abc.abstractmethod
    def __call__(self, dn: np.ndarray) -> np.ndarray:
        """``[B, len(in_bands), h, w]`` float32 DN → ``[B, len(out_bands), h·f, w·f]`` float32 DN."""


@dataclass(frozen=True)
class ModelOptions:
    """What a foreign checkpoint may lack, given explicitly (``None``: from the file or its run config).

    ``bands``: the input band names in channel order; ``factor``: the super-resolution factor;
    ``standardisation``: the name of the statistics (``sisrlib.bands.STANDARDISATION``) that normalise its
    inputs and outputs. An exported model (NAME.yaml) and this project's checkpoints carry all three: options
    that contradict them are refused.
    """

    bands: tuple[str, ...] | None = None
    factor: float | None = None
    standardisation: str | None = None

    def given(self) -> dict[str, object]:
        """The options that were set, by name."""
        return {k: v for k, v in vars(self).items() if v is not None}

    def refuse_contradictions(
        self, path: Path, predictor: Predictor, holder: str, normalisation: str
    ) -> None:
        """Refuse options that contradict a model that carries all three (an exported model or this project's
        checkpoint at ``path``): ``holder`` names what holds the bands and factor (e.g. ``"the yaml's"``),
        ``normalisation`` says where the model keeps its standardisation."""
        if self.standardisation is not None:
            raise SisrError(
                f"--model {path}: {normalisation}; drop the standardisation option ({self.standardisation!r})"
            )
        if self.bands is not None and tuple(self.bands) != predictor.in_bands:
            raise SisrError(
                f"--model {path}: the bands option {list(self.bands)} contradicts {holder} "
                f"{list(predictor.in_bands)}"
            )
        if self.factor is not None and abs(float(self.factor) - predictor.factor) > 1e-9:
            raise SisrError(
                f"--model {path}: the factor option {self.factor:g} contradicts {holder} {predictor.factor:g}"
            )


def check_threads(threads: object) -> int:
    """``threads`` as a positive int, else ``ValueError`` naming ``--threads``."""
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ValueError(f"--threads {threads!r}: expected a positive number of threads")
    return threads


def check_device_name(device: str) -> str:
    """``device`` if it is one of :data:`DEVICES`, else ``ValueError`` naming ``--device``."""
    if device not in DEVICES:
        raise ValueError(f"--device {device!r}: expected one of {list(DEVICES)}")
    return device
