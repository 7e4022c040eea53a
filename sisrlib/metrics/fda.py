"""Frequency Domain Analysis (FDA): radial FFT amplitude profiles and the FRR / FRO / FRU metrics (torchsisr).

Units and conventions
---------------------
* Images are ``[B, C, H, W]`` in any linear radiometric unit (reflectance in the evaluation); every band is
  analysed separately.
* The spectrum is the **amplitude** ``|FFT2(x)|`` of each image zero-padded to ``size × size`` (norm
  "backward"), averaged over the batch. Only the radius of a frequency sample matters, so the computation uses
  the real FFT (``rfft2``) and counts every column but the DC/Nyquist ones twice (Hermitian symmetry of a real
  signal's spectrum): the result is the same as with the full ``fftshift(fft2(...))`` of the reference at half
  the cost.
* Radii are measured in FFT bins of the padded grid, ``r = √(kx² + ky²)``. The reported frequencies are in
  units of the image's **Nyquist frequency** (0.5 cycles per image pixel): ``f = 2 r / size``. For ``size = 2
  W`` this is exactly the reference's ``fftfreq(size, d = W / size)`` axis (``k / W``); for non-square images
  the padded grid is square, so both axes share the same frequency unit and the rings are well defined
  (``size`` must be at least ``max(H, W)``).
* Rings (``size / 4`` of them):

  - ``rings="reference"`` reproduces the published construction exactly: ring ``j`` averages the samples with
    ``2j < r < 2j + 1`` bins (strict), reported at ``f = (2j + ½)·2/size``. Ring 0 holds no sample: its
    profile value is **NaN** (an empty ring), and radii in ``[2j + 1, 2j + 2]`` are not used by any ring.
    Everything downstream is therefore normalised to ring 1 and sums start at ring 1.
  - ``rings="contiguous"`` covers every radius below Nyquist: ring ``j`` averages ``2j ≤ r < 2j + 2`` (ring 0
    holds the DC), reported at the ring centre ``f = (2j + 1)·2/size``.

  Samples with ``r ≥ size/2`` (the corners, beyond Nyquist radially) are in no ring, as in the reference.
  Radii are compared in integer bins, so a sample exactly on a ring edge (e.g. ``(3, 4)`` → ``r = 5``) is
  excluded exactly; the reference compared floating-point ``k/W`` values, where such ties fall either way when
  ``W`` is not a power of two.
* Log profiles (``to_db``) are ``10·log10(P(j)) − 10·log10(P(1))`` (dB relative to ring 1).
* FRR / ARR / PRR, FRO / FRU and FDA noise work on dB profiles whose **last axis is the ring axis** (``[R]``,
  ``[C, R]``, ...) and return one value per leading index (per band).
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Literal

import torch

RingMode = Literal["reference", "contiguous"]

__all__ = [
    "ProfileAccumulator",
    "RingMode",
    "fda_noise",
    "fft_profile",
    "fro_fru",
    "frr",
    "ring_frequencies",
    "to_db",
]


def _check_size(size: int, height: int, width: int) -> None:
    if not isinstance(size, int) or size < 4 or size % 4 != 0:
        raise ValueError(f"fft size must be an integer multiple of 4 (>= 4), got {size!r}")
    if size < max(height, width):
        raise ValueError(
            f"fft size {size} is smaller than the image ({height}×{width}); the spectrum would be aliased. "
            f"Use size >= {max(height, width)} (the reference uses 2 × the image width: {2 * width})"
        )


@lru_cache(maxsize=32)
def _ring_index_cpu(size: int, rings: RingMode) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Ring index of every sample of the ``rfft2`` grid ``[size, size // 2 + 1]`` (flattened; ``n_rings`` for
    samples in no ring), Hermitian multiplicity of every sample (1 or 2, 0 outside the rings), and the number
    of full-spectrum samples in every ring ``[n_rings]``."""
    n_rings = size // 4
    ky = torch.fft.fftfreq(size, d=1.0 / size, dtype=torch.float64).view(size, 1)  # integer bin index
    kx = torch.arange(size // 2 + 1, dtype=torch.float64).view(1, -1)
    radius = torch.sqrt(kx**2 + ky**2)
    if rings == "reference":
        ring = torch.floor(radius / 2.0)
        inside = (radius > 2.0 * ring) & (radius < 2.0 * ring + 1.0)
    elif rings == "contiguous":
        ring = torch.floor(radius / 2.0)
        inside = torch.ones_like(radius, dtype=torch.bool)
    else:
        raise ValueError(f"rings must be 'reference' or 'contiguous', got {rings!r}")
    inside &= ring < n_rings
    # Columns 1 .. size/2 - 1 of the real FFT stand for themselves and their Hermitian mirror (negative kx);
    # column 0 has no mirror; column size/2 (kx = ±Nyquist, radius >= size/2) is in no ring anyway.
    multiplicity = torch.full_like(radius, 2.0)
    multiplicity[:, 0] = 1.0
    multiplicity[:, -1] = 1.0
    multiplicity = torch.where(inside, multiplicity, torch.zeros_like(multiplicity))
    index = torch.where(inside, ring, torch.full_like(ring, float(n_rings))).to(torch.long).flatten()
    counts = torch.zeros(n_rings + 1, dtype=torch.float64).index_add_(0, index, multiplicity.flatten())
    counts = counts[:n_rings]
    return index, multiplicity.flatten(), counts


#: Size of the complex spectrum computed at once (bytes): small on CPU to stay in cache, large on
#: accelerators.
_CHUNK_BYTES_CPU = 1 << 23
_CHUNK_BYTES_GPU = 1 << 30

_DEVICE_CACHE: dict[tuple[int, str, str, torch.dtype], tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = {}


def _ring_index(
    size: int, rings: RingMode, device: torch.device, dtype: torch.dtype
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    key = (size, rings, str(device), dtype)
    if key not in _DEVICE_CACHE:
        index, multiplicity, counts = _ring_index_cpu(size, rings)
        weights = multiplicity.to(device=device, dtype=dtype)
        _DEVICE_CACHE[key] = (index.to(device), weights, counts.to(device))
    return _DEVICE_CACHE[key]


def ring_frequencies(size: int, rings: RingMode = "reference") -> torch.Tensor:
    """Reported frequency of every ring ``[size / 4]``, in units of the image's Nyquist frequency
    (float64)."""
    j = torch.arange(size // 4, dtype=torch.float64)
    offset = 0.5 if rings == "reference" else 1.0
    return (2.0 * j + offset) * 2.0 / size


def _check_images(images: torch.Tensor, name: str = "images") -> None:
    if images.dim() != 4:
        raise ValueError(f"{name} must be a [B, C, H, W] tensor, got shape {tuple(images.shape)}")
    if not images.is_floating_point():
        raise TypeError(f"{name} must be floating point, got {images.dtype}")
    if images.shape[0] == 0:
        raise ValueError(f"{name} is an empty batch")
    nan = torch.isnan(images)
    if bool(nan.any()):
        count = int(nan.sum())
        raise ValueError(
            f"{name} holds {count} NaN value(s) (no-data?); the FFT profile would be NaN. Fill or crop the "
            f"no-data pixels first (e.g. replace them by the band mean)"
        )


def fft_profile(
    images: torch.Tensor, size: int, rings: RingMode = "reference"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Radial FFT amplitude profile of a batch of images.

    ``images`` ``[B, C, H, W]`` (any linear unit, no NaN), zero-padded to ``size × size`` (``size`` a multiple
    of 4 and ``>= max(H, W)``; the reference uses ``2·W``).

    Returns ``(freqs [R], profile [C, R])`` with ``R = size / 4``: ``freqs`` in units of the image's Nyquist
    frequency (float64, on the images' device), ``profile`` the mean FFT amplitude (unit of the images ×
    pixels) over the batch and over the ring, in the images' dtype. Empty rings (ring 0 with
    ``rings="reference"``) are NaN. See the module docstring for the ring definitions. One pass over the
    spectrum, no loop over rings.
    """
    _check_images(images)
    b, c, h, w = images.shape
    _check_size(size, h, w)
    index, multiplicity, counts = _ring_index(size, rings, images.device, images.dtype)
    # Sum the amplitudes over the batch first (small: [C, size, size/2 + 1]), a few images at a time so that
    # the
    # complex spectrum of a chunk stays in cache and no batch-sized spectrum is ever materialised; then one
    # weighted segment sum over the rings.
    budget = _CHUNK_BYTES_GPU if images.device.type != "cpu" else _CHUNK_BYTES_CPU
    per_image = c * size * (size // 2 + 1) * 2 * images.element_size()
    chunk = max(1, budget // per_image)
    summed = torch.zeros(c, size, size // 2 + 1, device=images.device, dtype=images.dtype)
    for start in range(0, b, chunk):
        spectrum = torch.fft.rfft2(images[start : start + chunk], s=(size, size), norm="backward")
        summed += spectrum.abs().sum(dim=0)
        del spectrum
    summed = summed.reshape(c, -1)
    n_rings = size // 4
    totals = torch.zeros(c, n_rings + 1, device=images.device, dtype=summed.dtype)
    totals.index_add_(1, index, summed * multiplicity)
    counts_t = counts.to(summed.dtype)
    profile = totals[:, :n_rings] / (counts_t * b)
    profile = torch.where(counts_t > 0, profile, torch.full_like(profile, math.nan))
    return ring_frequencies(size, rings).to(images.device), profile


def to_db(profile: torch.Tensor) -> torch.Tensor:
    """Amplitude profile ``[..., R]`` → dB relative to ring 1: ``10·log10 P(j) − 10·log10 P(1)``.

    An empty ring (NaN) stays NaN; a zero amplitude gives −inf.
    """
    if profile.shape[-1] < 2:
        raise ValueError(f"a profile needs at least 2 rings, got shape {tuple(profile.shape)}")
    db = 10.0 * torch.log10(profile)
    return db - db[..., 1:2]


def _check_profiles(**profiles: torch.Tensor) -> None:
    shapes = {name: tuple(p.shape) for name, p in profiles.items()}
    if len(set(shapes.values())) != 1:
        raise ValueError(
            "FDA profiles must have the same shape (bands × rings); got "
            + ", ".join(f"{k} {v}" for k, v in shapes.items())
            + ". Match the bands of prediction, target and input and use the same fft size for all three"
        )
    first = next(iter(profiles.values()))
    if first.dim() == 0 or first.shape[-1] < 3:
        raise ValueError(
            f"FDA profiles need at least 3 rings on the last axis, got shape {tuple(first.shape)}"
        )


def _band_range(n: int, fmin: float, fmax: float) -> tuple[int, int]:
    if not 0.0 <= fmin < fmax <= 1.0:
        raise ValueError(f"need 0 <= fmin < fmax <= 1, got fmin={fmin}, fmax={fmax}")
    i0 = math.floor(fmin * n)
    if i0 == 0:
        i0 = 1
    i1 = math.floor(fmax * (n - 1))
    if i1 <= i0:
        raise ValueError(f"frequency range [{fmin}, {fmax}] selects no ring out of {n}")
    return i0, i1


def frr(
    pred_db: torch.Tensor,
    target_db: torch.Tensor,
    input_db: torch.Tensor,
    fmin: float = 0.0,
    fmax: float = 1.0,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Frequency Restoration Ratio (torchsisr) from dB profiles ``[..., R]`` (``to_db`` output).

    Over rings ``[i0, i1)`` with ``i0 = ⌊fmin·R⌋`` (1 if 0) and ``i1 = ⌊fmax·(R − 1)⌋`` and ``m = min(T, I)``:
    ``PRR = |(ΣT − Σm)/Σm|``, ``ARR = |(Σmax(min(P, T), m) − Σm)/Σm|``, ``FRR = 100·ARR/PRR``. Returns ``(FRR,
    100·ARR, 100·PRR)``, each ``[...]`` (per band), in percent. FRR is 0 when the prediction's spectrum equals
    the input's and 100 when it reaches the target's; it is NaN where PRR is 0 (nothing to restore: the target
    is nowhere above the input).
    """
    _check_profiles(pred_db=pred_db, target_db=target_db, input_db=input_db)
    i0, i1 = _band_range(pred_db.shape[-1], fmin, fmax)
    p, t, i = pred_db[..., i0:i1], target_db[..., i0:i1], input_db[..., i0:i1]
    m = torch.minimum(t, i)
    sum_m = m.sum(-1)
    prr = ((t.sum(-1) - sum_m) / sum_m).abs()
    arr = ((torch.maximum(torch.minimum(p, t), m).sum(-1) - sum_m) / sum_m).abs()
    ratio = torch.where(prr > 0, 100.0 * arr / prr, torch.full_like(prr, math.nan))
    return ratio, 100.0 * arr, 100.0 * prr


def fro_fru(
    pred_db: torch.Tensor,
    target_db: torch.Tensor,
    input_db: torch.Tensor,
    reference_sign: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Frequency Restoration Over- and Under-shoot (torchsisr), over rings ≥ 1 of dB profiles ``[..., R]``.

    ``FRO = 100·(Σmax(P, T) − ΣT)/|ΣT|``: how far the prediction's spectrum goes above the target's (0 if it
    never exceeds it); ``FRU = 100·Σ(I − min(P, I))/|ΣI|``: how far it falls below the input's (0 if it never
    does). Both are ≥ 0 and lower is better. The reference divides by the signed sums (``FRO = 100·(ΣT −
    Σmax(P, T))/ΣT``, ``FRU = 100·Σ(I − min(P, I))/ΣI``); as dB profiles relative to ring 1 are negative, its
    FRU comes out ≤ 0: ``reference_sign=True`` returns those literal values. Returns ``(FRO, FRU)``, each
    ``[...]``, in percent.
    """
    _check_profiles(pred_db=pred_db, target_db=target_db, input_db=input_db)
    p, t, i = pred_db[..., 1:], target_db[..., 1:], input_db[..., 1:]
    sum_t = t.sum(-1)
    sum_i = i.sum(-1)
    over = torch.maximum(p, t).sum(-1) - sum_t
    under = (i - torch.minimum(p, i)).sum(-1)
    if reference_sign:
        return 100.0 * -over / sum_t, 100.0 * under / sum_i
    return 100.0 * over / sum_t.abs(), 100.0 * under / sum_i.abs()


def fda_noise(pred_db: torch.Tensor, target_db: torch.Tensor, input_db: torch.Tensor) -> torch.Tensor:
    """Experimental FDA noise indicator (torchsisr): ``clip(FRR[0.8, 1.0] − FRR[0.6, 0.8], min=0)``,
    ``[...]``."""
    high, _, _ = frr(pred_db, target_db, input_db, 0.8, 1.0)
    mid, _, _ = frr(pred_db, target_db, input_db, 0.6, 0.8)
    return torch.clamp(high - mid, min=0.0)


class ProfileAccumulator:
    """Running mean of FFT profiles over many batches, weighted by batch size, without keeping any image.

    >>> acc = ProfileAccumulator(size=512)
    >>> for batch in loader: acc.update(batch)          # [B, C, H, W]
    >>> freqs, profile = acc.compute()                  # [R], [C, R]
    """

    def __init__(self, size: int, rings: RingMode = "reference") -> None:
        self.size = size
        self.rings: RingMode = rings
        self._sum: torch.Tensor | None = None
        self._weight = 0
        self._freqs: torch.Tensor | None = None

    @property
    def count(self) -> int:
        """Number of images accumulated so far."""
        return self._weight

    def update(self, images: torch.Tensor) -> None:
        """Add a batch ``[B, C, H, W]``."""
        freqs, profile = fft_profile(images, self.size, self.rings)
        self.update_profile(profile, images.shape[0], freqs)

    def update_profile(self, profile: torch.Tensor, weight: int, freqs: torch.Tensor | None = None) -> None:
        """Add an already computed mean profile ``[C, R]`` of ``weight`` images."""
        if weight <= 0:
            raise ValueError(f"weight must be > 0, got {weight}")
        if profile.dim() != 2 or profile.shape[1] != self.size // 4:
            raise ValueError(
                f"expected a [C, {self.size // 4}] profile for fft size {self.size}, got "
                f"{tuple(profile.shape)}"
            )
        contribution = profile.detach().to(torch.float64) * weight
        if self._sum is None:
            self._sum = contribution
        else:
            if self._sum.shape != contribution.shape:
                raise ValueError(
                    f"profile shape {tuple(profile.shape)} differs from the accumulated "
                    f"{tuple(self._sum.shape)}"
                    " (number of bands changed between batches)"
                )
            self._sum = self._sum + contribution.to(self._sum.device)
        self._weight += weight
        if freqs is not None:
            self._freqs = freqs.detach().to(torch.float64)

    def compute(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(freqs [R], mean profile [C, R])`` (float64, on the profiles' device) of every image seen."""
        if self._sum is None:
            raise ValueError("ProfileAccumulator.compute() called before any update()")
        freqs = self._freqs if self._freqs is not None else ring_frequencies(self.size, self.rings)
        return freqs, self._sum / self._weight
