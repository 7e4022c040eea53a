"""Metric rows from accumulated FFT profiles: the FDA metrics and the high-frequency excess over bicubic."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from sisrlib.metrics import fda
from sisrlib.metrics.pixel import per_band_row


def fda_rows(
    pred_profile: torch.Tensor,
    target_profile: torch.Tensor,
    input_profile: torch.Tensor,
    bands: Sequence[str],
    reference_sign: bool = False,
) -> dict[str, float]:
    """``frr``, ``arr``, ``prr``, ``fro``, ``fru``, ``fda_noise`` per band (and band means) from amplitude
    profiles ``[C, R]`` of the prediction, the target and the bicubic input. ``reference_sign``: FRU with
    torchsisr's sign (≤ 0) instead of ours (≥ 0), see ``sisrlib.metrics.fda.fro_fru``."""
    p, t, i = fda.to_db(pred_profile), fda.to_db(target_profile), fda.to_db(input_profile)
    frr_v, arr_v, prr_v = fda.frr(p, t, i)
    fro_v, fru_v = fda.fro_fru(p, t, i, reference_sign=reference_sign)
    noise = fda.fda_noise(p, t, i)
    row: dict[str, float] = {}
    for name, values in (
        ("frr", frr_v),
        ("arr", arr_v),
        ("prr", prr_v),
        ("fro", fro_v),
        ("fru", fru_v),
        ("fda_noise", noise),
    ):
        row.update(per_band_row(name, values, bands))
    return row


def hf_excess(
    freqs: torch.Tensor, pred_profile: torch.Tensor, input_profile: torch.Tensor, bands: Sequence[str]
) -> dict[str, float]:
    """``hf_excess_db_<band>``: the smallest excess (dB) of the prediction's profile over the bicubic input's
    on the rings from 0.5 to 1 Nyquist (> 0: above bicubic everywhere there); ``hf_excess_db``: the smallest
    over the bands (> 0: above bicubic in every band)."""
    rings = (freqs >= 0.5) & (freqs <= 1.0)
    if not bool(rings.any()):
        return {}
    excess = (fda.to_db(pred_profile) - fda.to_db(input_profile))[..., rings.to(pred_profile.device)]
    per_band = excess.min(dim=-1).values
    row = {f"hf_excess_db_{b}": float(per_band[k]) for k, b in enumerate(bands)}
    row["hf_excess_db"] = float(per_band.min())
    return row
