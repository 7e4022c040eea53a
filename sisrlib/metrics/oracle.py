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

**Kept distortion** (:class:`KeptDistortion`, the ``oracle_geom`` of the evaluation): a prediction is modelled
as the target resampled with part of the true flow kept, ``G(k) = warp(target, upsample_flow(f − k,
factor))``, where the kept displacement ``k = s·f + t`` (LR px) is a fraction ``s`` of the patch's true flow
plus a constant translation ``t``: ``k = 0`` is the oracle geometry (the input's), ``k = f`` the target's (all
of the cross-sensor distortion kept). The translation holds what a model without registration can learn of the
distortion, the systematic offset every training patch shares, in whatever direction it points relative to
this patch's flow. For every patch, ``(s, t)`` minimises the residual of a per-band least-squares affine fit
of ``D(G(k))`` to ``D(pred)``, where ``D`` is the MTF downscaling to the LR grid (MTF 0.3, as the
registration-network measure ``geom_mean``) and the residual is summed over bands inside an LR margin: a grid
over ``s`` with ``t = 0`` (then a parabola through the three best grid points) starts a damped Gauss–Newton
refinement of ``(s, t)`` together when asked (``iterations > 0``; else ``t = 0``). The affine fit makes the
measure blind to gain and offset; a symmetric blur does not move the minimum (the correlation of a blurred
image with shifted copies of the sharp one peaks at zero shift). The residual distortion is ``mean‖k‖`` in
**LR px** (the mean over the patch's pixels inside the margin), directly comparable with ``geom_mean`` and the
true distortion ``true_geom_mean``. It sees the distortion along the true flow and any global translation;
other displacement patterns a model invents are not measured (they lower the oracle PSNR).

Every function takes tensors and returns tensors; nothing here reads files or models.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from sisrlib.degradation import mtf_downscale, upsample
from sisrlib.flow import flow_norm, upsample_flow, warp
from sisrlib.linear_fit import fit_line
from sisrlib.metrics.pixel import crop

__all__ = [
    "DEFAULT_FRACTIONS",
    "REFINE_ITERATIONS",
    "KeptDistortion",
    "oracle_target",
    "radiometric_decomposition",
]

#: Grid of kept fractions ``s`` searched by :class:`KeptDistortion` (step 0.2, −0.6 … 1.6; a parabola through
#: the three best points refines it; a minimum on the grid's edge is not refined).
DEFAULT_FRACTIONS: tuple[float, ...] = tuple(round(-0.6 + 0.2 * k, 10) for k in range(12))

#: Gauss–Newton iterations refining ``(s, t)`` after the grid when asked (``KeptDistortion(iterations=...)``;
#: the evaluation still uses the fraction alone, ``iterations=0``, until its tables are regenerated with the
#: translation), the finite-difference step of their Jacobian (fraction, LR px) and the largest change of a
#: parameter in one iteration.
REFINE_ITERATIONS = 4
_JACOBIAN_STEP = 0.02
_MAX_UPDATE = 0.5


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


def _parameters(fraction: torch.Tensor, translation: torch.Tensor | None = None) -> torch.Tensor:
    """``[B, 3]`` float64: the kept fraction ``[B]`` and translation ``[B, 2]`` (LR px; zero when absent)."""
    s = fraction.double()[:, None]
    if translation is None:
        return torch.cat([s, torch.zeros(s.shape[0], 2, dtype=torch.float64, device=s.device)], dim=1)
    return torch.cat([s, translation.double().to(s.device)], dim=1)


class KeptDistortion:
    """The part of the true distortion a prediction keeps (see the module docstring).

    Built once per batch from the target ``[B, C, H, W]`` and the true flow ``[B, 2, h, w]`` (LR px); called
    on a prediction ``[B, C, H, W]`` in the same unit as the target up to a per-band affine map (reflectance
    prediction vs DN target is fine). ``margin_lr``: LR pixels ignored on every side; ``iterations``: the
    Gauss–Newton refinements of ``(s, t)`` after the grid over ``s`` (0: ``s`` from the grid alone,
    ``t = 0``).
    """

    def __init__(
        self,
        target: torch.Tensor,
        true_flow: torch.Tensor,
        mtf: float | None = 0.3,
        margin_lr: int = 0,
        fractions: Sequence[float] = DEFAULT_FRACTIONS,
        iterations: int = 0,
    ) -> None:
        if len(fractions) < 3:
            raise ValueError(f"fractions: give at least 3 kept fractions, got {list(fractions)}")
        if iterations < 0:
            raise ValueError(f"iterations: expected 0 or more Gauss–Newton iterations, got {iterations}")
        self.factor = _factor(target, true_flow)
        self.mtf = mtf
        self.margin_lr = margin_lr
        self.iterations = iterations
        self.fractions = torch.tensor(sorted(fractions), dtype=torch.float64, device=target.device)
        # the warps in float32 (as the simulation of the embedded sites), the statistics in float64
        self._flow = true_flow.float()
        self._target = target.float()
        #: ``[S, B, C, n]``: centred, downscaled, cropped candidates ``G(s·f)`` of the grid.
        self.candidates = torch.stack(
            [
                self._candidate(
                    _parameters(torch.full((target.shape[0],), s, dtype=torch.float64, device=target.device))
                )
                for s in self.fractions.tolist()
            ]
        )
        self.candidate_energy = self.candidates.square().sum(dim=-1)
        #: ``[B]``: mean true flow norm (LR px) of every patch inside the margin.
        self.true_mean = crop(flow_norm(true_flow.double()), margin_lr).flatten(1).mean(dim=1)

    def _centred(self, image: torch.Tensor) -> torch.Tensor:
        # downscaling in float32 (a float64 convolution is ten times slower), statistics in float64
        return self._centre(mtf_downscale(image.float(), self.factor, self.mtf))

    def _kept(self, theta: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """``[B, 2, h, w]``: the kept displacement ``s·f + t`` (LR px) of parameters ``theta`` ``[B, 3]``
        (``s``, ``t_x``, ``t_y``)."""
        flow = self._flow.to(dtype)
        theta = theta.to(device=flow.device, dtype=dtype)
        return theta[:, :1, None, None] * flow + theta[:, 1:, None, None]

    def _downscaled(self, theta: torch.Tensor) -> torch.Tensor:
        """``[B, C, h, w]`` float32: ``D(G(k))`` of parameters ``theta`` ``[B, 3]``, uncropped."""
        # f − k written as (1 − s)·f − t with 1 − s in float64: on the grid (t = 0) these are, bit for bit,
        # the flows of the measure by the fraction alone
        theta = theta.to(self._flow.device)
        scale, shift = (
            (1.0 - theta[:, :1, None, None]).to(self._flow),
            theta[:, 1:, None, None].to(self._flow),
        )
        flow = scale * self._flow - shift
        return mtf_downscale(warp(self._target, upsample_flow(flow, self.factor)), self.factor, self.mtf)

    def _centre(self, down: torch.Tensor) -> torch.Tensor:
        """``[B, C, n]`` float64: an LR image ``[B, C, h, w]`` cropped to the margin, flattened, centred."""
        flat = crop(down, self.margin_lr).flatten(2).double()
        return flat - flat.mean(dim=-1, keepdim=True)

    def _candidate(self, theta: torch.Tensor) -> torch.Tensor:
        """``[B, C, n]``: the centred, downscaled, cropped ``G(k)`` of parameters ``theta`` ``[B, 3]``."""
        return self._centre(self._downscaled(theta))

    def _jacobian(self, down: torch.Tensor) -> torch.Tensor:
        """``[B, C, n, 3]``: the derivatives of the centred ``D(G(k))`` with respect to ``(s, t_x, t_y)`` at
        the LR image ``down`` ``[B, C, h, w]``. Keeping ``δ`` more of a displacement field ``d`` samples the
        image at ``x − δ·d``; the downscaling commutes with that shift, so the derivative is taken by
        resampling the LR image (finite difference, bicubic), at a fraction of the cost of the HR warp and
        downscaling (the residual itself is always computed through both)."""
        b, _, h, w = down.shape
        unit = torch.zeros(b, 2, h, w, dtype=down.dtype, device=down.device)
        directions = [self._flow.to(down), unit.clone(), unit.clone()]
        directions[1][:, 0], directions[2][:, 1] = 1.0, 1.0
        centred = self._centre(down)
        columns = [
            (self._centre(warp(down, -_JACOBIAN_STEP * d)) - centred) / _JACOBIAN_STEP for d in directions
        ]
        return torch.stack(columns, dim=-1)

    def _prepared(self, pred: torch.Tensor) -> torch.Tensor:
        y = self._centred(pred)
        if y.shape != self.candidates.shape[1:]:
            raise ValueError(
                f"prediction {tuple(pred.shape)} does not match the target the measure was built on"
            )
        return y

    @staticmethod
    def _residual(candidate: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """``[..., B]``: the affine-fit residual (sum of squares over the bands) of centred ``candidate``
        ``[..., B, C, n]`` to centred ``y`` ``[B, C, n]``."""
        energy = candidate.square().sum(dim=-1)
        cov = (candidate * y).sum(dim=-1)
        explained = torch.where(energy > 0, cov.square() / energy.clamp_min(1e-30), 0.0)
        return (y.square().sum(dim=-1) - explained).sum(dim=-1)

    def residuals(self, pred: torch.Tensor) -> torch.Tensor:
        """``[S, B]``: the affine-fit residual (sum of squares over the bands) of every grid candidate
        (``t = 0``)."""
        return self._residual(self.candidates, self._prepared(pred).unsqueeze(0))

    def _grid_fraction(self, y: torch.Tensor) -> torch.Tensor:
        e = self._residual(self.candidates, y.unsqueeze(0))
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

    def _refine(self, theta: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Damped Gauss–Newton on ``theta`` ``[B, 3]`` with the per-band affine fit projected out; a step is
        kept only where it lowers the residual, and the damping grows where it does not."""
        b = theta.shape[0]
        damping = torch.full((b,), 1e-3, dtype=torch.float64, device=theta.device)
        down = self._downscaled(theta)
        current = self._centre(down)
        error = self._residual(current, y)
        for _ in range(self.iterations):
            energy = current.square().sum(dim=-1, keepdim=True)
            alpha = torch.where(
                energy > 0, (current * y).sum(dim=-1, keepdim=True) / energy.clamp_min(1e-30), 0.0
            )
            r = y - alpha * current
            jac = alpha.unsqueeze(-1) * self._jacobian(down)  # [B, C, n, 3]
            normal = torch.einsum("bcnj,bcnk->bjk", jac, jac)
            gradient = torch.einsum("bcnj,bcn->bj", jac, r)
            diagonal = torch.diagonal(normal, dim1=-2, dim2=-1).clamp_min(1e-12)
            damped = normal + torch.diag_embed(damping[:, None] * diagonal)
            update = torch.linalg.lstsq(damped, gradient.unsqueeze(-1)).solution.squeeze(-1)
            update = update.nan_to_num(0.0).clamp(-_MAX_UPDATE, _MAX_UPDATE)
            trial = theta + update
            trial_down = self._downscaled(trial)
            candidate = self._centre(trial_down)
            trial_error = self._residual(candidate, y)
            better = trial_error < error
            theta = torch.where(better[:, None], trial, theta)
            down = torch.where(better[:, None, None, None], trial_down, down)
            current = torch.where(better[:, None, None], candidate, current)
            error = torch.where(better, trial_error, error)
            damping = torch.where(better, damping * 0.3, damping * 10.0).clamp(1e-6, 1e6)
        return theta

    def fit(self, pred: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The kept fraction ``s`` ``[B]`` (0: input geometry, 1: target geometry) and the kept translation
        ``t`` ``[B, 2]`` (LR px, x then y) of every patch."""
        y = self._prepared(pred)
        s = self._grid_fraction(y)
        theta = _parameters(s)
        if self.iterations:
            theta = self._refine(theta, y)
        return theta[:, 0], theta[:, 1:]

    def fraction(self, pred: torch.Tensor) -> torch.Tensor:
        """``[B]``: the kept fraction ``s`` of every patch (0: input geometry, 1: target geometry)."""
        return self.fit(pred)[0]

    def residual_distortion(self, fraction: torch.Tensor, translation: torch.Tensor) -> torch.Tensor:
        """``[B]``: ``mean‖s·f + t‖`` over every patch's pixels inside the margin, LR px, for kept fractions
        ``[B]`` and translations ``[B, 2]`` (LR px) as :meth:`fit` returns them."""
        kept = self._kept(_parameters(fraction, translation), torch.float64)
        return crop(flow_norm(kept), self.margin_lr).flatten(1).mean(dim=1)

    def __call__(self, pred: torch.Tensor) -> torch.Tensor:
        """``[B]``: the residual distortion ``mean‖s·f + t‖`` of every patch, LR px."""
        return self.residual_distortion(*self.fit(pred))
