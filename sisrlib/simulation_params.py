"""The batch-simulation and Wald sections of a run's ``training`` params (``training.simulation``,
``training.wald``; see :mod:`sisrlib.training.simulation`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


def _at_least(section: str, params: Any, **minimum: float) -> None:
    """ValueError naming ``section.key`` for a numeric field below its ``minimum`` (null fields pass)."""
    for key, low in minimum.items():
        value = getattr(params, key)
        if value is not None and value < low:
            raise ValueError(f"{section}.{key} must be >= {low:g}, got {value}")


def _check_range(section: str, low_key: str, high_key: str, params: Any, mtf: bool) -> None:
    """ValueError unless ``0 < low <= high < 1`` (an MTF range, ``mtf``) or ``0 <= low <= high``."""
    a, b = getattr(params, low_key), getattr(params, high_key)
    ok = (0 < a <= b < 1) if mtf else (0 <= a <= b)
    if not ok:
        bounds = f"0 < {low_key} <= {high_key} < 1" if mtf else f"0 <= {low_key} <= {high_key}"
        raise ValueError(
            f"{section}.{low_key} and {section}.{high_key} must satisfy {bounds}, got {a} and {b}"
        )


def _check_noise(section: str, noise: dict[str, float] | None) -> None:
    for band, value in (noise or {}).items():
        if not value >= 0:
            raise ValueError(f"{section}.noise_std.{band} must be >= 0 (reflectance), got {value}")


@dataclass(frozen=True)
class SimulationParams:
    """The batch simulation (torchsisr's ``simulate_batch``): inputs simulated from the HR target, for the
    ``l1_sim`` loss and the ``validation/sim_*`` metrics.

    Per training batch one MTF is drawn from U(``mtf_min``, ``mtf_max``) and one noise multiplier from
    U(``noise_multiplier_min``, ``noise_multiplier_max``); every input band that has a target band of the same
    name is replaced by that target band blurred by the PSF of that MTF at the input's Nyquist and decimated
    to the input grid (10 m bands by 2, 20 m bands by 4), plus white Gaussian noise of σ =
    ``noise_std[band]`` × multiplier (reflectance; bands not listed: no noise). Input bands without a target
    (B11, B12) are kept from the real input. Validation batches use the middle of both ranges and a noise
    seeded by the batch index.
    """

    mtf_min: float = 0.4
    mtf_max: float = 0.4
    noise_std: dict[str, float] | None = None
    noise_multiplier_min: float = 1.0
    noise_multiplier_max: float = 1.0

    def __post_init__(self) -> None:
        _check_range("training.simulation", "mtf_min", "mtf_max", self, mtf=True)
        _check_range("training.simulation", "noise_multiplier_min", "noise_multiplier_max", self, mtf=False)
        _check_noise("training.simulation", self.noise_std)


#: The 10 bands of the Wald branch, in the EVOLAND order (10 m bands, then 20 m bands).
WALD_10M_BANDS = ("B2", "B3", "B4", "B8")
WALD_20M_BANDS = ("B5", "B6", "B7", "B8A", "B11", "B12")


@dataclass(frozen=True)
class WaldParams:
    """The Wald branch (torchsisr's ``wald_batch``), on when ``training.losses.wald_l1 > 0``: the real 10 m
    (B2 B3 B4 B8) and 20 m (B5 B6 B7 B8A B11 B12) inputs are degraded by 4 (to 40 m and 80 m; MTF drawn per
    batch from U(``mtf_min``, ``mtf_max``), noise ``noise_std[band]`` × U(``noise_multiplier_*``)), the model
    super-resolves them to 20 m, and the L1 against the real 20 m bands (the 10 m bands degraded by 2 for
    B2–B8) is taken on ``bands``. ``pad_to_input_size``: mirror-tile the real data to twice its size first
    (torchsisr's ``flip_concat``). ``margin``: output (20 m) px cropped before the loss (null: the
    generator's margin); ``validation_margin``: before the validation metrics (torchsisr: 32).
    """

    bands: list[str] = field(default_factory=lambda: ["B11", "B12"])
    mtf_min: float = 0.3
    mtf_max: float = 0.7
    noise_std: dict[str, float] | None = None
    noise_multiplier_min: float = 2.0
    noise_multiplier_max: float = 3.0
    pad_to_input_size: bool = True
    margin: int | None = None
    validation_margin: int = 32

    def __post_init__(self) -> None:
        _check_range("training.wald", "mtf_min", "mtf_max", self, mtf=True)
        _check_range("training.wald", "noise_multiplier_min", "noise_multiplier_max", self, mtf=False)
        _check_noise("training.wald", self.noise_std)
        known = WALD_10M_BANDS + WALD_20M_BANDS
        unknown = [b for b in self.bands if b not in known]
        if not self.bands or unknown:
            raise ValueError(
                f"training.wald.bands must be a non-empty list of {list(known)}, got {self.bands}"
            )
        _at_least("training.wald", self, margin=0, validation_margin=0)


__all__ = ["WALD_10M_BANDS", "WALD_20M_BANDS", "SimulationParams", "WaldParams"]
