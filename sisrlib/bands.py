"""Sentinel-2 band names, groups, native resolutions and standardisation statistics.

Units used throughout the library:

* **DN**: digital numbers, surface reflectance × 10000 (what the datasets store and what the ONNX
  models take);
* **reflectance**: DN / 10000, in [0, 1] (what the reference calls "millirefl" by mistake);
* **standardised**: (reflectance − mean_b) / std_b, band by band, with the statistics below.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:  # no torch at run time: `sisr infer` on an ONNX model runs without it
    import torch

#: All Sentinel-2 bands handled by the library, in the order used by the EVOLAND model.
ALL_BANDS: tuple[str, ...] = ("B2", "B3", "B4", "B8", "B5", "B6", "B7", "B8A", "B11", "B12")

#: Native ground sampling distance of each band, in metres.
BAND_RESOLUTION_M: dict[str, float] = {
    "B2": 10.0,
    "B3": 10.0,
    "B4": 10.0,
    "B8": 10.0,
    "B5": 20.0,
    "B6": 20.0,
    "B7": 20.0,
    "B8A": 20.0,
    "B11": 20.0,
    "B12": 20.0,
}

BANDS_10M: tuple[str, ...] = ("B2", "B3", "B4", "B8")
BANDS_20M: tuple[str, ...] = ("B5", "B6", "B7", "B8A")
BANDS_SWIR: tuple[str, ...] = ("B11", "B12")

#: DN value that marks a pixel without data in every dataset and product handled here.
NODATA_DN: int = -10000
#: Scale between DN and reflectance.
DN_PER_REFLECTANCE: float = 10000.0


@dataclass(frozen=True)
class BandGroup:
    """A Sen2Venµs column: a set of bands stored together at one resolution."""

    column: str
    bands: tuple[str, ...]
    resolution_m: float


#: The Sen2Venµs v2 ``index.csv`` columns (as torchsisr reads them).
SEN2VENUS_GROUPS: dict[str, BandGroup] = {
    "b2b3b4b8_10m": BandGroup("b2b3b4b8_10m", BANDS_10M, 10.0),
    "b5b6b7b8a_20m": BandGroup("b5b6b7b8a_20m", BANDS_20M, 20.0),
    "b11b12_20m": BandGroup("b11b12_20m", BANDS_SWIR, 20.0),
    "b2b3b4b8_05m": BandGroup("b2b3b4b8_05m", BANDS_10M, 5.0),
    "b5b6b7b8a_05m": BandGroup("b5b6b7b8a_05m", BANDS_20M, 5.0),
}


def validate_bands(bands: Sequence[str], where: str = "bands") -> tuple[str, ...]:
    """Return ``bands`` as a tuple, raising a ValueError naming ``where`` if a name is unknown."""
    unknown = [b for b in bands if b not in BAND_RESOLUTION_M]
    if unknown:
        raise ValueError(
            f"{where}: unknown Sentinel-2 band name(s) {unknown}; valid names are {list(ALL_BANDS)}"
        )
    if len(set(bands)) != len(bands):
        raise ValueError(f"{where}: duplicated band names in {list(bands)}")
    return tuple(bands)


def match_bands(available: Sequence[str], wanted: Sequence[str], where: str = "bands") -> list[int]:
    """Indices of ``wanted`` bands inside ``available`` (by name).

    Raises a ValueError listing the missing bands and what is available.
    """
    missing = [b for b in wanted if b not in available]
    if missing:
        raise ValueError(
            f"{where}: band(s) {missing} are not available; available bands are {list(available)}"
        )
    return [list(available).index(b) for b in wanted]


@dataclass(frozen=True)
class Standardisation:
    """Per-band mean and standard deviation of reflectance (not DN)."""

    bands: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]

    def __post_init__(self) -> None:
        if not len(self.bands) == len(self.mean) == len(self.std):
            raise ValueError(
                f"standardisation: {len(self.bands)} bands but {len(self.mean)} means and "
                f"{len(self.std)} stds"
            )
        if any(s <= 0 for s in self.std):
            raise ValueError(f"standardisation: every std must be > 0, got {self.std}")

    def select(self, bands: Sequence[str]) -> Standardisation:
        """The statistics of ``bands``, matched by name."""
        idx = match_bands(self.bands, bands, where="standardisation")
        return Standardisation(
            tuple(bands), tuple(self.mean[i] for i in idx), tuple(self.std[i] for i in idx)
        )

    def tensors(self, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and std as ``[1, C, 1, 1]`` tensors on the device and dtype of ``like``."""
        mean = like.new_tensor(self.mean).view(1, -1, 1, 1)
        std = like.new_tensor(self.std).view(1, -1, 1, 1)
        return mean, std

    def standardise(self, reflectance: torch.Tensor) -> torch.Tensor:
        """``[B, C, H, W]`` reflectance → standardised values."""
        mean, std = self.tensors(reflectance)
        return (reflectance - mean) / std

    def unstandardise(self, standardised: torch.Tensor) -> torch.Tensor:
        """``[B, C, H, W]`` standardised values → reflectance."""
        mean, std = self.tensors(standardised)
        return standardised * std + mean


_EVOLAND_MEAN = (0.0478, 0.0765, 0.0893, 0.2622, 0.1253, 0.2182, 0.2524, 0.2815, 0.2472, 0.1665)
_EVOLAND_STD = (0.0289, 0.0400, 0.0679, 0.0811, 0.0615, 0.0645, 0.0772, 0.0820, 0.1196, 0.1160)

#: Standardisation statistics of the reference (torchsisr's), reflectance units.
STANDARDISATION: dict[str, Standardisation] = {
    "evoland": Standardisation(ALL_BANDS, _EVOLAND_MEAN, _EVOLAND_STD),
    "sen2venusx2": Standardisation(BANDS_10M, _EVOLAND_MEAN[:4], _EVOLAND_STD[:4]),
    # Intended values: B5..B8A statistics of the EVOLAND list.
    "sen2venusx4": Standardisation(BANDS_20M, _EVOLAND_MEAN[4:8], _EVOLAND_STD[4:8]),
    # [QUIRK] the reference's sen2venusx4 file holds the entries of B7, B8A, B11, B12 under B5..B8A.
    "sen2venusx4-reference": Standardisation(BANDS_20M, _EVOLAND_MEAN[6:10], _EVOLAND_STD[6:10]),
    "worldstrat": Standardisation(
        BANDS_10M, (0.1072, 0.1367, 0.1559, 0.2781), (0.1442, 0.1412, 0.1514, 0.1341)
    ),
}

StandardisationName = Literal["evoland", "sen2venusx2", "sen2venusx4", "sen2venusx4-reference", "worldstrat"]


def standardisation(name: str, bands: Sequence[str] | None = None) -> Standardisation:
    """Look up named statistics, optionally restricted to ``bands``."""
    if name not in STANDARDISATION:
        raise ValueError(f"unknown standardisation {name!r}; valid names are {sorted(STANDARDISATION)}")
    stats = STANDARDISATION[name]
    return stats if bands is None else stats.select(bands)


def dn_to_reflectance(dn: torch.Tensor) -> torch.Tensor:
    """DN (reflectance × 10000) → reflectance, as float32 (or the input's floating dtype)."""
    out = dn if dn.is_floating_point() else dn.float()
    return out / DN_PER_REFLECTANCE


def reflectance_to_dn(reflectance: torch.Tensor) -> torch.Tensor:
    """Reflectance → DN (float, not rounded)."""
    return reflectance * DN_PER_REFLECTANCE
