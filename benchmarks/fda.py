"""Speed of the radial FFT profile (sisrlib.metrics.fda.fft_profile) against two baselines.

Profiles of a ``[B, C, H, W]`` batch (default ``[64, 4, 256, 256]``, size 512, reference rings) three ways:

* **ours**: ``fft_profile`` (rfft2 + Hermitian weighting + one segment sum over a cached ring index map);
* **masked loop**: the straightforward definition in float32 — full ``fft2``, ``fftshift``, amplitude, batch
  mean, then one boolean mask and mean per ring;
* **bare rfft2**: only the real FFT of the zero-padded batch (the floor any implementation pays).

Checks that ours agrees with the loop (max relative difference ≤ 1e-5) and prints times and ratios against the
targets (≥ 4× faster than the loop, ≤ 1.2× the bare FFT). Usage::

    .venv/bin/python benchmarks/fda.py [--batch 64] [--bands 4] [--width 256] [--size 512] [--repeats 3]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable

import torch

from sisrlib.metrics.fda import fft_profile


def masked_loop_profile(images: torch.Tensor, size: int) -> torch.Tensor:
    """The reference construction, literally: one masked mean per ring over the fftshifted full spectrum."""
    width = images.shape[-1]
    amplitude = torch.fft.fftshift(torch.fft.fft2(images, s=(size, size)), dim=(-2, -1)).abs().mean(dim=0)
    freqs = torch.fft.fftshift(torch.fft.fftfreq(size, d=width / size, device=images.device))
    radius = torch.sqrt(freqs.view(1, -1) ** 2 + freqs.view(-1, 1) ** 2)
    values = []
    for j in range(size // 4):
        mask = (radius > 2 * j / width) & (radius < (2 * j + 1) / width)
        values.append(amplitude[:, mask].mean(dim=-1))
    return torch.stack(values, dim=-1)


def bare_rfft(images: torch.Tensor, size: int) -> torch.Tensor:
    return torch.fft.rfft2(images, s=(size, size))


def best_time(fn: Callable[[], object], repeats: int) -> float:
    fn()  # warm-up (plans, caches)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--bands", type=int, default=4)
    parser.add_argument("--width", type=int, default=256)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args(argv)

    device = torch.device(args.device)
    generator = torch.Generator().manual_seed(0)
    images = torch.rand(args.batch, args.bands, args.width, args.width, generator=generator).to(device)

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()

    def ours() -> object:
        out = fft_profile(images, args.size)
        sync()
        return out

    def loop() -> object:
        out = masked_loop_profile(images, args.size)
        sync()
        return out

    def floor() -> object:
        out = bare_rfft(images, args.size)
        sync()
        return out

    _, profile = fft_profile(images, args.size)
    expected = masked_loop_profile(images, args.size)
    finite = ~torch.isnan(expected)
    same_nans = bool(torch.equal(torch.isnan(profile), ~finite))
    rel = ((profile[finite] - expected[finite]).abs() / expected[finite].abs()).max().item()

    t_ours = best_time(ours, args.repeats)
    t_loop = best_time(loop, args.repeats)
    t_floor = best_time(floor, args.repeats)

    print(f"batch {list(images.shape)} size {args.size} on {device} ({torch.get_num_threads()} threads)")
    print(
        f"agreement with the masked loop: max relative difference {rel:.2e} (<= 1e-5), same empty rings: "
        f"{same_nans}"
    )
    print(f"ours        {t_ours * 1e3:9.1f} ms")
    print(f"masked loop {t_loop * 1e3:9.1f} ms   loop / ours = {t_loop / t_ours:5.2f}  (target >= 4)")
    print(f"bare rfft2  {t_floor * 1e3:9.1f} ms   ours / fft  = {t_ours / t_floor:5.2f}  (target <= 1.2)")
    ok = rel <= 1e-5 and same_nans and t_loop / t_ours >= 4.0 and t_ours / t_floor <= 1.2
    print("all targets met" if ok else "some target missed")
    return 0 if rel <= 1e-5 and same_nans else 1


if __name__ == "__main__":
    sys.exit(main())
