"""The perceptual test metrics of the predictions (torchsisr's study metrics): LPIPS, PieAPP, BRISQUE, per
band.

Each named metric is computed when it can be (``sisrlib.metrics.perceptual``: its weight files present,
supplied by the user: nothing is downloaded), else its columns are NaN and the reason is logged once and
written beside the tables (``conventions.json``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import torch

from sisrlib.metrics.accumulate import MetricMeans
from sisrlib.metrics.perceptual import perceptual_scores, perceptual_unavailable
from sisrlib.metrics.pixel import crop

LOGGER = logging.getLogger(__name__)


class PerceptualScorer:
    """Accumulates the per-band means of the perceptual metrics ``names`` on reflectance predictions."""

    def __init__(self, names: Sequence[str], weights_dir: str | None = None) -> None:
        self.weights_dir = weights_dir
        #: metric name → why it is not computed.
        self.unavailable: dict[str, str] = {}
        self.names: list[str] = []
        for name in names:
            reason = perceptual_unavailable(name, weights_dir, option="perceptual_weights")
            if reason is None:
                self.names.append(name)
            else:
                self.unavailable[name] = reason
                LOGGER.warning("perceptual metric %s not computed: %s", name, reason)

    def update(self, means: MetricMeans, pred: torch.Tensor, target: torch.Tensor, margin: int) -> None:
        """Add the scores of one batch (``[B, C, H, W]`` reflectance, ``margin`` px cropped) to ``means``."""
        if not self.names:
            return
        p, t = crop(pred, margin), crop(target, margin)
        for name in self.names:
            scores = perceptual_scores(name, p, t, self.weights_dir)  # [B, C]
            means.update(name, scores.mean(dim=0), pred.shape[0])
