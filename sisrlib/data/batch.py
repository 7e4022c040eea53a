"""The typed batch every datamodule yields and every training/evaluation function takes."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import torch


@dataclass
class Batch:
    """One batch of cross-sensor pairs, in DN (reflectance × 10000, float32) as read from disk.

    * ``inputs`` ``[B, C, h, w]``: the real LR sensor (Sentinel-2), bands ``input_bands`` at
      ``input_resolution_m``.
    * ``target`` ``[B, C_t, H, W]``: the HR sensor (Venµs, SPOT, or the embedded HR), bands ``target_bands``
      at ``target_resolution_m``; ``H = h · factor`` (WorldStrat targets stay in SPOT's units).
    * ``lr_inputs`` ``[B, K, h/2, w/2]``: optional 20 m bands when 10 m and 20 m are loaded together.
    * ``true_flow`` ``[B, 2, h, w]``: on embedded (simulated) sites only, the flow in **input (LR) pixels**
      such that ``warp(simulated_lr(target), true_flow)`` matches the geometry of ``inputs`` (registration
      convention).
    * ``true_radiometry`` ``[B, C, h, w]``: on embedded sites only, the radiometric field in DN added to the
      simulated LR (so ``inputs ≈ warp(sim, true_flow) + true_radiometry``, plus noise).
    """

    inputs: torch.Tensor
    target: torch.Tensor
    input_bands: tuple[str, ...]
    target_bands: tuple[str, ...]
    input_resolution_m: float
    target_resolution_m: float
    lr_inputs: torch.Tensor | None = None
    lr_bands: tuple[str, ...] = ()
    lr_resolution_m: float | None = None
    true_flow: torch.Tensor | None = None
    true_radiometry: torch.Tensor | None = None
    ids: tuple[str, ...] = field(default_factory=tuple)

    @property
    def factor(self) -> float:
        """Ratio of input to target pixel size."""
        return self.input_resolution_m / self.target_resolution_m

    def __len__(self) -> int:
        return int(self.inputs.shape[0])

    def to(self, device: torch.device | str) -> Batch:
        """A copy with every tensor moved to ``device``."""

        def move(t: torch.Tensor | None) -> torch.Tensor | None:
            return None if t is None else t.to(device, non_blocking=True)

        return replace(
            self,
            inputs=self.inputs.to(device, non_blocking=True),
            target=self.target.to(device, non_blocking=True),
            lr_inputs=move(self.lr_inputs),
            true_flow=move(self.true_flow),
            true_radiometry=move(self.true_radiometry),
        )
