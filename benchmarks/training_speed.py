"""Training speed on this machine: steps/s of the quick and paper model sizes, and the share of a training
step
spent registering the target (geom+rad vs baseline).

    .venv/bin/python benchmarks/training_speed.py [--steps 6] [--threads 2] [--paper]

Synthetic in-memory batches (smooth random scenes, the quick profile's patch sizes) so that data loading does
not
count; the same ``fit`` as ``sisr train`` (Lightning, logging, checkpoints at the end). Prints one line per
configuration and the ratios.
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset

from sisrlib.data.batch import Batch
from sisrlib.degradation import simulate_lr, upsample
from sisrlib.flow import simulate_flow, warp
from sisrlib.run_params import ExperimentParams, load_experiment
from sisrlib.training.fit import fit

ROOT = Path(__file__).resolve().parents[1]
BANDS = {2.0: ("B2", "B3", "B4", "B8"), 4.0: ("B5", "B6", "B7", "B8A")}


class PrebuiltBatches(Dataset[Batch]):
    """Batches drawn once, served one per index."""

    def __init__(self, batches: list[Batch]) -> None:
        self.batches = batches

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, i: int) -> Batch:
        return self.batches[i]


def keep(item: Any) -> Any:
    return item


class SyntheticDataModule(pl.LightningDataModule):
    """Batches of ``batch_size`` pairs, HR ``hr_size`` px, LR = HR / factor, all drawn once."""

    def __init__(self, factor: float, hr_size: int, batch_size: int, n_batches: int = 4) -> None:
        super().__init__()
        self._factor = factor
        self.input_bands = self.target_bands = BANDS[factor]
        self.lr_bands: tuple[str, ...] = ()
        g = torch.Generator().manual_seed(0)
        n = batch_size * n_batches
        target = 500 + 2000 * upsample(torch.rand(n, 4, hr_size // 8, hr_size // 8, generator=g), 8).clamp(
            0, 1
        )
        lr = int(hr_size / factor)
        flow = simulate_flow(n, lr, lr, 1.0, 10.0, generator=g)
        inputs = warp(simulate_lr(target, factor, 0.35), flow) + 50
        self.batches = [
            Batch(inputs[i : i + batch_size], target[i : i + batch_size], self.input_bands, self.target_bands,
                  10.0 * factor / 2, 10.0 / 2)
            for i in range(0, n, batch_size)
        ]  # fmt: skip

    @property
    def factor(self) -> float:
        return self._factor

    def _loader(self) -> DataLoader[Any]:
        return DataLoader(PrebuiltBatches(self.batches), batch_size=None, collate_fn=keep)

    def train_dataloader(self) -> DataLoader[Any]:
        return self._loader()

    def val_dataloader(self) -> DataLoader[Any]:
        return self._loader()


def configure(
    base: ExperimentParams, out: Path, variant: str, steps: int, threads: int, registration: Path | None
) -> ExperimentParams:
    modes = {
        "baseline": (False, False),
        "geom": (True, False),
        "geomrad": (True, True),
        "pretrain": (False, False),
    }
    geom, rad = modes[variant]
    checkpoint = str(registration) if registration else None
    reg = dataclasses.replace(base.registration, checkpoint=checkpoint, geometric=geom, radiometric=rad)
    training = dataclasses.replace(
        base.training,
        max_steps=steps,
        val_check_interval=10**6,
        accelerator="cpu",
        devices=1,
        precision="32-true",
        num_threads=threads,
        resume_from=None,
        skip_if_done=False,
        test_after_fit=False,
        limit_val_batches=1,
        losses=dataclasses.replace(base.training.losses, lpips=0.0),
        mode="pretrain_registration" if variant == "pretrain" else "sr",
    )
    return dataclasses.replace(base, output_dir=str(out / variant), registration=reg, training=training)


def time_run(params: ExperimentParams, dm: SyntheticDataModule) -> float:
    """Seconds per training step, excluding the first (warm-up) step."""
    warm = dataclasses.replace(params, training=dataclasses.replace(params.training, max_steps=1))
    start = time.perf_counter()
    fit(dataclasses.replace(warm, output_dir=params.output_dir + "-warm"), dm)
    one = time.perf_counter() - start
    start = time.perf_counter()
    fit(params, dm)
    total = time.perf_counter() - start
    return (total - one) / max(params.training.max_steps - 1, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--paper", action="store_true", help="also time the paper sizes (slow on CPU)")
    args = parser.parse_args()
    pl.seed_everything(0, verbose=False)
    configs = [
        ("quick", "params/quick/03_training_s2v1x2_geomrad.yaml", 128),
        ("quick", "params/quick/03_training_s2v1x4_geomrad.yaml", 128),
    ]
    if args.paper:
        configs.append(("paper", "params/paper/03_training_s2v1x2_geomrad.yaml", 256))
    import os

    env = {
        "SEN2VENUS_DATASET_PATH": "/unused",
        "WORLDSTRATX2_DATASET_PATH": "/unused",
        "WORLDSTRATX4_DATASET_PATH": "/unused",
    }
    for k, v in env.items():
        os.environ.setdefault(k, v)
    print(f"torch threads: {args.threads}; {args.steps} timed steps per configuration (first step excluded)")
    with tempfile.TemporaryDirectory() as tmp:
        for profile, path, hr in configs:
            base = load_experiment(ROOT / path)
            batch = base.data.batch_size if profile == "quick" else 2
            dm = SyntheticDataModule(base.model.factor, hr, batch)
            out = Path(tmp) / f"{profile}{base.model.factor:g}"
            # a registration checkpoint (1 pre-training step: random weights are enough for timing)
            reg = fit(configure(base, out, "pretrain", 1, args.threads, None), dm).last_checkpoint
            times = {}
            for variant in ("baseline", "geom", "geomrad"):
                params = configure(base, out, variant, args.steps, args.threads, reg)
                times[variant] = time_run(params, dm)
                print(
                    f"{profile:6s} x{base.model.factor:g} batch {batch} HR {hr}px {variant:9s}: "
                    f"{1 / times[variant]:6.2f} steps/s ({times[variant]:.3f} s/step)"
                )
            share = (times["geomrad"] - times["baseline"]) / times["geomrad"]
            print(
                f"{profile:6s} x{base.model.factor:g}: geom+rad / baseline step time = "
                f"{times['geomrad'] / times['baseline']:.2f}; registration share of a geom+rad step = "
                f"{share:.0%}"
            )


if __name__ == "__main__":
    main()
