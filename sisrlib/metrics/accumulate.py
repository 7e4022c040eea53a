"""Running means over test batches: per-band metric vectors weighted by batch size, and pooled moments."""

from __future__ import annotations

import math

import torch


class MetricMeans:
    """Running batch-size-weighted means of per-band metric vectors ``[C]`` (or scalars), by metric name."""

    def __init__(self) -> None:
        self._sums: dict[str, torch.Tensor] = {}
        self._weights: dict[str, float] = {}

    def update(self, name: str, value: torch.Tensor | float, weight: float) -> None:
        v = torch.as_tensor(value, dtype=torch.float64).detach().cpu()
        if name in self._sums:
            if self._sums[name].shape != v.shape:
                raise ValueError(
                    f"metric {name}: shape {tuple(v.shape)} differs from {tuple(self._sums[name].shape)}"
                )
            self._sums[name] = self._sums[name] + v * weight
            self._weights[name] += weight
        else:
            self._sums[name] = v * weight
            self._weights[name] = float(weight)

    def names(self) -> list[str]:
        return list(self._sums)

    def mean(self, name: str) -> torch.Tensor:
        return self._sums[name] / self._weights[name]


class Moments:
    """Pooled mean and (population) standard deviation of many samples, fed in chunks."""

    def __init__(self) -> None:
        self.n = 0
        self.total = 0.0
        self.total_sq = 0.0

    def update(self, values: torch.Tensor) -> None:
        v = values.detach().double().flatten()
        self.n += int(v.numel())
        self.total += float(v.sum())
        self.total_sq += float(v.square().sum())

    @property
    def mean(self) -> float:
        return self.total / self.n if self.n else math.nan

    @property
    def std(self) -> float:
        if not self.n:
            return math.nan
        return math.sqrt(max(self.total_sq / self.n - self.mean**2, 0.0))
