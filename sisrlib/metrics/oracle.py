"""Oracle references of simulated (embedded) sites: the HR target brought exactly into the LR sensor's
geometry and radiometry, and the part of the true distortion a prediction keeps.

On embedded sites every patch stores its true flow ``f`` (``[B, 2, h, w]``, LR px, on the LR grid) and its
true radiometric field ``R`` (``[B, C_in, h, w]``, DN, on the LR grid) such that
``inputs ≈ warp(simulate_lr(target), f) + R`` up to noise (``sisrlib.data.embedded``). No real dataset has
them; they let a prediction be judged against the reference it *should* produce when registration removes the
cross-sensor distortion.

**Oracle target** (:func:`oracle_target`), per patch and target band ``b`` (input band ``i`` of the same
name), in DN:

* ``S = inputs_i − R_i``: the simulated LR in the target's units, plus the LR noise;
* least squares ``R_i = a·S + c + ρ`` (``a``, ``c`` scalars per patch and band, ``ρ`` the remainder — the
  low-frequency field): the gain part of the field applies to the full-resolution image, not only to its LR
  content. On WorldStrat-like sites, whose HR is in other units, ``1 + a`` holds the unit change
  (``hr = g·DN + o`` gives ``a ≈ gain/g − 1``);
* ``oracle = (1 + a)·warp(target, upsample_flow(f, factor)) + c + upsample(ρ, factor)`` (bicubic), the warp as
  the simulation applies it (HR resolution, bicubic, reflection padding).

The decomposition is exact on the LR grid (``a·S + c + ρ = R``), so downscaling the oracle with the sensor MTF
gives the input up to noise and to the resampling of the borders (``warp`` pads by reflection: ignore a
margin of the largest displacement).

**Kept distortion** (:class:`KeptDistortion`, the ``oracle_geom`` of the evaluation): the family ``G_s =
warp(target, upsample_flow((1 − s)·f, factor))`` goes from the oracle geometry (``s = 0``, the input's) to the
target's (``s = 1``, all of the cross-sensor distortion kept). For every patch, ``s*`` minimises over a grid
of ``s`` (then a parabola through the three best grid points) the residual of a per-band least-squares affine
fit of ``D(G_s)`` to ``D(pred)``, where ``D`` is the MTF downscaling to the LR grid (MTF 0.3, as the
registration-network measure ``geom_mean``) and the residual is summed over bands inside an LR margin. The
affine fit makes the measure blind to gain and offset; a symmetric blur does not move the minimum (the
correlation of a blurred image with shifted copies of the sharp one peaks at zero shift). The residual
distortion is ``|s*| · mean‖f‖`` in **LR px** (the mean over the patch's pixels inside the margin), directly
comparable with ``geom_mean`` and the true distortion ``true_geom_mean``. It sees only the distortion along
the true flow: displacements a model invents in other directions are not measured (they lower the oracle
PSNR).

Every function takes tensors and returns tensors; nothing here reads files or models.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from sisrlib.degradation import mtf_downscale, upsample
from sisrlib.flow import flow_norm, upsample_flow, warp
from sisrlib.linear_fit import fit_line
from sisrlib.metrics.pixel import crop

__all__ = ["DEFAULT_FRACTIONS", "KeptDistortion", "oracle_target", "radiometric_decomposition"]

#: Grid of kept fractions ``s`` searched by :class:`KeptDistortion` (step 0.2, −0.6 … 1.6; a parabola through
#: the three best points refines it; a minimum on the grid's edge is not refined).
DEFAULT_FRACTIONS: tuple[float, ...] = tuple(round(-0.6 + 0.2 * k, 10) for k in range(12))


def _factor(target: torch.Tensor, true_flow: torch.Tensor) -> int:
    h, w = target.shape[-2:]
    lh, lw = true_flow.shape[-2:]
    if h % lh or w % lw or h // lh != w // lw:
        raise ValueError(
            f"the target {tuple(target.shape)} is not an integer multiple of the true flow's LR grid "
            f"{tuple(true_flow.shape)}"
        )
    return h // lh


def radiometric_decomposition(
    lr_input: torch.Tensor, true_radiometry: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Split the true radiometric field ``R`` ``[B, C, h, w]`` (DN) into ``a·S + c + ρ`` per patch and band,
    with ``S = lr_input − R`` (the simulated LR, same bands and grid as ``R``).

    Returns ``(a [B, C, 1, 1], c [B, C, 1, 1] DN, ρ [B, C, h, w] DN)``; ``a = 0`` where ``S`` is constant.
    """
    if lr_input.shape != true_radiometry.shape:
        raise ValueError(
            f"LR input {tuple(lr_input.shape)} and true radiometry {tuple(true_radiometry.shape)} differ in "
            "shape (select the same bands)"
        )
    r = true_radiometry.double()
    s = lr_input.double() - r
    a, c = fit_line(s, r)
    rho = r - a * s - c
    return a, c, rho


def oracle_target(
    target: torch.Tensor,
    lr_input: torch.Tensor,
    true_flow: torch.Tensor,
    true_radiometry: torch.Tensor,
) -> torch.Tensor:
    """The HR target in the LR sensor's geometry and radiometry (see the module docstring), DN.

    ``target`` ``[B, C, H, W]`` (its stored units), ``lr_input`` and ``true_radiometry`` ``[B, C, h, w]`` DN
    (the input bands matching the target's, in the same order), ``true_flow`` ``[B, 2, h, w]`` LR px; ``H =
    factor·h``. Returns ``[B, C, H, W]`` float32 DN.
    """
    if target.dim() != 4 or true_flow.dim() != 4 or true_flow.shape[1] != 2:
        raise ValueError(
            f"expected a [B, C, H, W] target and a [B, 2, h, w] true flow, got {tuple(target.shape)} and "
            f"{tuple(true_flow.shape)}"
        )
    if lr_input.shape[:2] != target.shape[:2] or lr_input.shape[-2:] != true_flow.shape[-2:]:
        raise ValueError(
            f"the LR input {tuple(lr_input.shape)} must have the target's batch and bands "
            f"{tuple(target.shape[:2])} and the true flow's grid {tuple(true_flow.shape[-2:])}"
        )
    for name, t in (("target", target), ("true flow", true_flow), ("true radiometry", true_radiometry)):
        if not bool(torch.isfinite(t).all()):
            raise ValueError(f"the {name} holds NaN or infinite values; the oracle needs complete patches")
    factor = _factor(target, true_flow)
    a, c, rho = radiometric_decomposition(lr_input, true_radiometry)
    warped = warp(target.double(), upsample_flow(true_flow.double(), factor))
    out = (1.0 + a) * warped + c + upsample(rho, factor)
    return out.float()


class KeptDistortion:
    """The part of the true distortion a prediction keeps (see the module docstring).

    Built once per batch from the target ``[B, C, H, W]`` and the true flow ``[B, 2, h, w]`` (LR px); called
    on a prediction ``[B, C, H, W]`` in the same unit as the target up to a per-band affine map (reflectance
    prediction vs DN target is fine). ``margin_lr``: LR pixels ignored on every side.
    """

    def __init__(
        self,
        target: torch.Tensor,
        true_flow: torch.Tensor,
        mtf: float | None = 0.3,
        margin_lr: int = 0,
        fractions: Sequence[float] = DEFAULT_FRACTIONS,
    ) -> None:
        if len(fractions) < 3:
            raise ValueError(f"fractions: give at least 3 kept fractions, got {list(fractions)}")
        self.factor = _factor(target, true_flow)
        self.mtf = mtf
        self.margin_lr = margin_lr
        self.fractions = torch.tensor(sorted(fractions), dtype=torch.float64)
        # the warps in float32 (as the simulation of the embedded sites), the statistics in float64
        flow = true_flow.float()
        t = target.float()
        candidates = []
        for s in self.fractions.tolist():
            g = warp(t, upsample_flow((1.0 - s) * flow, self.factor))
            candidates.append(self._centred(g))
        #: ``[S, B, C, n]``: centred, downscaled, cropped candidates.
        self.candidates = torch.stack(candidates)
        self.candidate_energy = self.candidates.square().sum(dim=-1)
        #: ``[B]``: mean true flow norm (LR px) of every patch inside the margin.
        self.true_mean = crop(flow_norm(true_flow.double()), margin_lr).flatten(1).mean(dim=1)

    def _centred(self, image: torch.Tensor) -> torch.Tensor:
        # downscaling in float32 (a float64 convolution is ten times slower), statistics in float64
        down = crop(mtf_downscale(image.float(), self.factor, self.mtf), self.margin_lr).flatten(2).double()
        return down - down.mean(dim=-1, keepdim=True)

    def residuals(self, pred: torch.Tensor) -> torch.Tensor:
        """``[S, B]``: the affine-fit residual (sum of squares over the bands) of every candidate."""
        y = self._centred(pred)
        if y.shape != self.candidates.shape[1:]:
            raise ValueError(
                f"prediction {tuple(pred.shape)} does not match the target the measure was built on"
            )
        cov = (self.candidates * y.unsqueeze(0)).sum(dim=-1)
        explained = torch.where(
            self.candidate_energy > 0, cov.square() / self.candidate_energy.clamp_min(1e-30), 0.0
        )
        return (y.square().sum(dim=-1).unsqueeze(0) - explained).sum(dim=-1)

    def fraction(self, pred: torch.Tensor) -> torch.Tensor:
        """``[B]``: the kept fraction ``s*`` of every patch (0: input geometry, 1: target geometry)."""
        e = self.residuals(pred)
        k = e.argmin(dim=0)
        s = self.fractions[k]
        step = self.fractions[1:] - self.fractions[:-1]
        inner = (k > 0) & (k < len(self.fractions) - 1)
        km, kp = (k - 1).clamp(0, len(self.fractions) - 1), (k + 1).clamp(0, len(self.fractions) - 1)
        cols = torch.arange(e.shape[1])
        e0, em, ep = e[k, cols], e[km, cols], e[kp, cols]
        curvature = em - 2 * e0 + ep
        shift = torch.where(inner & (curvature > 0), 0.5 * (em - ep) / curvature.clamp_min(1e-30), 0.0)
        local_step = step[k.clamp(0, len(step) - 1)]
        return s + shift.clamp(-0.5, 0.5) * local_step

    def __call__(self, pred: torch.Tensor) -> torch.Tensor:
        """``[B]``: the residual distortion ``|s*|·mean‖f‖`` of every patch, LR px."""
        return self.fraction(pred).abs() * self.true_mean
