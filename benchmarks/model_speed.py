"""Forward + backward time of the paper-size generators on this machine (CPU by default).

Prints one line per generator: mean seconds per training step (forward, MSE loss, backward) on a batch of
``--batch`` × bands × ``--size`` × ``--size`` LR pixels, and the throughput in LR megapixels per second.
Usage: ``python benchmarks/model_speed.py [--device cuda] [--steps 3] [--threads N]``.
"""

from __future__ import annotations

import argparse
import time

import torch

from sisrlib.models.registry import build_generator
from sisrlib.models.summary import PAPER_GENERATORS, parameter_count


def time_step(model: torch.nn.Module, x: torch.Tensor, steps: int) -> float:
    """Mean wall-clock seconds of forward + backward (after one warm-up step)."""
    target = None
    for i in range(steps + 1):
        if i == 1:
            if x.device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
        model.zero_grad(set_to_none=True)
        y = model(x)
        if target is None:
            target = torch.zeros_like(y)
        torch.nn.functional.mse_loss(y, target).backward()
    if x.device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--size", type=int, default=64, help="LR patch size (pixels)")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--all", action="store_true", help="every paper generator, not only s2vx2")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    device = torch.device(args.device)
    names = list(PAPER_GENERATORS)[: None if args.all else 1]
    print(f"device {device}, torch {torch.__version__}, threads {torch.get_num_threads()}")
    for name in names:
        params, in_bands, lr_bands = PAPER_GENERATORS[name]
        if lr_bands:
            continue  # the joint model takes two inputs; the SISR part is timed through its own entry
        model = build_generator(params, in_bands).to(device).train()
        x = torch.randn(args.batch, in_bands, args.size, args.size, device=device)
        seconds = time_step(model, x, args.steps)
        megapixels = args.batch * args.size * args.size / 1e6
        print(
            f"{name}: {parameter_count(model) / 1e6:.2f} M params, batch {tuple(x.shape)}: "
            f"{seconds:.3f} s per forward+backward, {megapixels / seconds:.3f} LR Mpx/s"
        )


if __name__ == "__main__":
    main()
