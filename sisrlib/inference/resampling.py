"""GDAL's ``cubic`` up-sampling, reproduced in numpy: how the EVOLAND tool's reader (sensorsio, GDAL's
warper with rasterio ``Resampling.cubic``) brings 20 m bands onto a 10 m grid, bit for bit.

Keys cubic convolution with a = −0.5 (torch's ``bicubic`` has a = −0.75), pixel centres as
``align_corners=False``, GDAL's bilinear formula where a cubic tap would fall outside the band, and the result
rounded as GDAL writes it into the band's data type.
"""

from __future__ import annotations

import numpy as np

#: Parameter ``a`` of the Keys cubic convolution kernel of GDAL's ``cubic`` resampling (rasterio
#: ``Resampling.cubic``); torch's ``bicubic`` uses ``a = −0.75``.
GDAL_CUBIC_A = -0.5


def keys_cubic(t: np.ndarray, a: float = GDAL_CUBIC_A) -> np.ndarray:
    """The Keys cubic convolution kernel at ``t`` (pixels): 1 at 0, 0 at the other integers, 0 beyond ±2."""
    t = np.abs(np.asarray(t, dtype=np.float64))
    near = ((a + 2) * t - (a + 3)) * t * t + 1
    far = ((a * t - 5 * a) * t + 8 * a) * t - 4 * a
    return np.where(t <= 1, near, np.where(t < 2, far, 0.0))


def fine_centres(fine: np.ndarray, ratio: int) -> tuple[np.ndarray, np.ndarray]:
    """Fine pixel ``i`` → its base coarse pixel ``floor((i + 0.5) / ratio − 0.5)``, and its offset from that
    pixel's centre (coarse pixels, in [0, 1))."""
    centre = (fine.astype(np.float64) + 0.5) / ratio - 0.5
    base = np.floor(centre).astype(np.int64)
    return base, centre - base


def coarse_span(fine: np.ndarray, ratio: int, size: int) -> tuple[int, int]:
    """The coarse pixels ``[first, stop)`` (inside ``[0, size)``) that the cubic taps of ``fine`` reach."""
    base, _ = fine_centres(fine, ratio)
    return int(np.clip(base.min() - 1, 0, size - 1)), int(np.clip(base.max() + 2, 0, size - 1)) + 1


def _upsampling_weights(
    fine: np.ndarray, ratio: int, size: int, span: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per fine index: GDAL's 1-D cubic and bilinear weight rows over the coarse pixels ``span``.

    Fine pixel ``i`` has the base coarse pixel ``b`` and offset ``d`` of :func:`fine_centres`. Cubic: taps
    ``b − 1 … b + 2`` with Keys weights (a = −0.5); bilinear: taps ``b, b + 1`` with weights ``1 − d, d``,
    the taps outside the band (``[0, size)``) dropped and the rest renormalised. ``border`` is where GDAL
    takes the bilinear formula: a cubic tap would fall outside the band (``b − 1 < 0`` or ``b + 2 ≥ size``).

    Returns ``(cubic [n, m], bilinear [n, m], border [n])`` with ``m = span[1] − span[0]``.
    """
    base, delta = fine_centres(fine, ratio)
    border = (base - 1 < 0) | (base + 2 >= size)
    n, first = fine.size, span[0]
    cubic = np.zeros((n, span[1] - first))
    bilinear = np.zeros((n, span[1] - first))
    rows = np.arange(n)
    for k in range(-1, 3):
        tap = base + k
        inside = ~border
        np.add.at(cubic, (rows[inside], tap[inside] - first), keys_cubic(k - delta[inside]))
    for k, weight in ((0, 1 - delta), (1, delta)):
        tap = base + k
        inside = (tap >= 0) & (tap < size)
        np.add.at(bilinear, (rows[inside], tap[inside] - first), weight[inside])
    bilinear /= bilinear.sum(axis=1, keepdims=True)
    return cubic, bilinear, border


def gdal_cubic_upsample(
    coarse: np.ndarray,
    ratio: int,
    size: tuple[int, int],
    first: tuple[int, int],
    rows: np.ndarray,
    cols: np.ndarray,
) -> np.ndarray:
    """Fine pixels ``rows × cols`` of a band up-sampled by ``ratio`` as GDAL's warper does with ``cubic``.

    ``coarse`` ``[h, w]`` (no NaN) holds the band's pixels from ``first`` (row, col) on, at least the span
    of :func:`coarse_span` on each axis; ``size`` is the band's full size (rows, cols), whose border decides
    the formula: GDAL's 4 × 4 Keys cubic (a = −0.5, pixel centres as ``align_corners=False``) where every
    tap lies inside the band, else its 2 × 2 bilinear with the outside taps dropped (the first and last
    1–2 fine pixels of each axis, by row **or** by column). Returns ``[len(rows), len(cols)]`` float64, not
    rounded (GDAL then rounds to the band's data type: :func:`round_like_gdal`).
    """
    span_y, span_x = coarse_span(rows, ratio, size[0]), coarse_span(cols, ratio, size[1])
    cy, by, border_y = _upsampling_weights(rows, ratio, size[0], span_y)
    cx, bx, border_x = _upsampling_weights(cols, ratio, size[1], span_x)
    block = coarse[
        span_y[0] - first[0] : span_y[1] - first[0], span_x[0] - first[1] : span_x[1] - first[1]
    ].astype(np.float64)
    out = cy @ block @ cx.T
    if border_y.any():
        out[border_y] = by[border_y] @ block @ bx.T
    if border_x.any():
        out[:, border_x] = by @ block @ bx[border_x].T
    return out


def round_like_gdal(values: np.ndarray, dtype: str) -> np.ndarray:
    """Resampled values as GDAL writes them into a band of ``dtype``: ``floor(v + 0.5)`` clamped to the type's
    range for integer types, unchanged for floats."""
    kind = np.dtype(dtype)
    if kind.kind not in "iu":
        return values
    info = np.iinfo(kind)
    return np.clip(np.floor(values + 0.5), info.min, info.max)
