"""Small models and rasters shared by tests/test_export*.py and tests/test_inference*.py."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import rasterio
import torch
from affine import Affine
from torch import nn

from sisrlib.bands import standardisation
from sisrlib.export import ExportedPair, export_generator
from sisrlib.models.base import SRModel

BANDS = ("B2", "B3", "B4", "B8")
CRS_UTM = "EPSG:32618"
ORIGIN = (435730.0, 4179460.0)


class TinySR(SRModel):
    """conv3x3 → ReLU → conv3x3 → ×f nearest → conv3x3 (+ nearest-upsampled input when ``residual``).

    Receptive field: 2 input px + 1 output px, so margin = 2·f + 1 output px. With ``zero`` the last conv is
    zero: the network returns the nearest-upsampled input (``residual``) or zeros (standardised units).
    """

    def __init__(
        self,
        bands: int = 4,
        factor: int = 2,
        features: int = 8,
        seed: int = 0,
        zero: bool = False,
        residual: bool = True,
    ):
        super().__init__(bands, bands, factor)
        torch.manual_seed(seed)
        self._factor = factor
        self._bands = bands
        self.residual = residual
        self.head = nn.Conv2d(bands, features, 3, padding=1)
        self.body = nn.Conv2d(features, features, 3, padding=1)
        self.up = nn.Upsample(scale_factor=factor, mode="nearest")
        self.tail = nn.Conv2d(features, bands, 3, padding=1)
        if zero:
            nn.init.zeros_(self.tail.weight)
            assert self.tail.bias is not None
            nn.init.zeros_(self.tail.bias)

    @property
    def factor(self) -> float:
        return float(self._factor)

    @property
    def margin(self) -> int:
        return int(2 * self._factor + 1)

    @property
    def in_bands(self) -> int:
        return self._bands

    @property
    def out_bands(self) -> int:
        return self._bands

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.head(x))
        y = torch.relu(self.body(y))
        out = self.tail(self.up(y))
        return out + self.up(x) if self.residual else out


def export_tiny(
    folder: Path,
    name: str = "tiny",
    factor: int = 2,
    zero: bool = False,
    residual: bool = True,
    bands: Sequence[str] = BANDS,
) -> ExportedPair:
    model = TinySR(len(bands), factor, zero=zero, residual=residual).eval()
    return export_generator(model, standardisation("evoland"), bands, folder / f"{name}.onnx")


def smooth_dn(bands: int, height: int, width: int, seed: int = 0) -> np.ndarray:
    """``[C, H, W]`` float32 DN: smooth texture plus noise, values ~ [200, 4000]."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    out = np.empty((bands, height, width), dtype=np.float32)
    for c in range(bands):
        fx, fy = rng.uniform(0.02, 0.2, size=2)
        out[c] = 1500 + 800 * np.sin(fx * xx + c) * np.cos(fy * yy) + rng.normal(0, 50, (height, width))
    return np.clip(out, 200, 4000)


def write_geotiff(
    path: Path,
    dn: np.ndarray,
    descriptions: Sequence[str | None] | None = BANDS,
    dtype: str = "uint16",
    res: float = 10.0,
    crs: str | None = CRS_UTM,
    nodata: float | None = None,
    origin: tuple[float, float] = ORIGIN,
) -> Path:
    profile = {
        "driver": "GTiff",
        "width": dn.shape[2],
        "height": dn.shape[1],
        "count": dn.shape[0],
        "dtype": dtype,
        "nodata": nodata,
    }
    if crs is not None:
        profile["crs"] = crs
        profile["transform"] = Affine(res, 0, origin[0], 0, -res, origin[1])
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(dn.astype(dtype))
        if descriptions is not None:
            for i, d in enumerate(descriptions, start=1):
                if d is not None:
                    dst.set_band_description(i, d)
    return path
