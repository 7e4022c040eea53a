"""Tiny in-test fakes for the training tests: a LightningDataModule yielding ``Batch`` objects of smooth
random
scenes whose LR input is a warped, degraded, radiometrically shifted copy of the HR target."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
import yaml
from torch.utils.data import DataLoader, Dataset

from sisrlib.data.batch import Batch
from sisrlib.degradation import simulate_lr, upsample
from sisrlib.flow import simulate_flow, warp
from sisrlib.params import to_mapping
from sisrlib.run_params import ExperimentParams, experiment_from_mapping

BANDS = ("B2", "B3", "B4", "B8")


def smooth_scene(n: int, bands: int, size: int, generator: torch.Generator) -> torch.Tensor:
    """``[n, bands, size, size]`` smooth positive DN images (upsampled noise)."""
    coarse = torch.rand(n, bands, size // 4, size // 4, generator=generator)
    return 500.0 + 2000.0 * upsample(coarse, 4).clamp(0, 1)


class PairDataset(Dataset[dict[str, torch.Tensor]]):
    def __init__(self, n: int, hr_size: int, factor: int, seed: int, flow_range: float = 1.0) -> None:
        g = torch.Generator().manual_seed(seed)
        self.target = smooth_scene(n, len(BANDS), hr_size, g)
        lr_size = hr_size // factor
        self.flow = simulate_flow(n, lr_size, lr_size, flow_range, 5.0, generator=g)
        sim = simulate_lr(self.target, factor, 0.4)
        self.inputs = warp(sim, self.flow) + 100.0

    def __len__(self) -> int:
        return self.target.shape[0]

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"inputs": self.inputs[i], "target": self.target[i], "flow": self.flow[i]}


def collate(items: list[dict[str, torch.Tensor]], factor: int) -> Batch:
    return Batch(
        inputs=torch.stack([it["inputs"] for it in items]),
        target=torch.stack([it["target"] for it in items]),
        input_bands=BANDS,
        target_bands=BANDS,
        input_resolution_m=10.0,
        target_resolution_m=10.0 / factor,
        true_flow=torch.stack([it["flow"] for it in items]),
        ids=tuple(str(i) for i in range(len(items))),
    )


class FakeDataModule(pl.LightningDataModule):
    """``input_bands``/``target_bands`` B2,B3,B4,B8; LR ``hr_size/factor`` px; deterministic content."""

    def __init__(
        self,
        hr_size: int = 32,
        factor: int = 2,
        n: int = 8,
        batch_size: int = 2,
        seed: int = 0,
        shuffle: bool = True,
    ) -> None:
        super().__init__()
        self.shuffle = shuffle
        self.hr_size, self._factor, self.n, self.batch_size, self.seed = hr_size, factor, n, batch_size, seed
        self.input_bands = BANDS
        self.target_bands = BANDS
        self.lr_bands: tuple[str, ...] = ()

    @property
    def factor(self) -> float:
        return float(self._factor)

    def setup(self, stage: str | None = None) -> None:
        self.train_set = PairDataset(self.n, self.hr_size, self._factor, self.seed)
        self.val_set = PairDataset(4, self.hr_size, self._factor, self.seed + 1)

    def _loader(self, ds: Dataset[Any], shuffle: bool) -> DataLoader[Any]:
        g = torch.Generator().manual_seed(self.seed)
        return DataLoader(
            ds,
            batch_size=self.batch_size,
            shuffle=shuffle,
            drop_last=True,
            generator=g,
            collate_fn=lambda items: collate(items, self._factor),
        )

    def train_dataloader(self) -> DataLoader[Any]:
        return self._loader(self.train_set, self.shuffle)

    def val_dataloader(self) -> DataLoader[Any]:
        return self._loader(self.val_set, False)

    def test_dataloader(self) -> DataLoader[Any]:
        return self._loader(self.val_set, False)


def tiny_params(tmp: Path, **sections: dict[str, Any]) -> ExperimentParams:
    """Tiny CPU params (ESRGAN 1 RRDB latent 8, registration depth 2 start 4, 2 steps) with overrides."""
    data: dict[str, Any] = {
        "name": "tiny",
        "seed": 3,
        "output_dir": str(tmp / "run"),
        "data": {"dataset": "sen2venus", "root": str(tmp / "data")},
        "model": {
            "generator": "esrgan",
            "factor": 2.0,
            "num_blocks": 1,
            "latent_size": 8,
            "growth_channels": 4,
        },
        "registration": {"depth": 2, "start_filters": 4, "min_skip_depth": 1, "features": 4, "channel": 2},
        "training": {
            "standardisation": "sen2venusx2",
            "losses": {"mse": 1.0, "l1": 0.5, "lpips": 0.0},
            "max_steps": 2,
            "val_check_interval": 2,
            "limit_val_batches": 1,
            "limit_test_batches": 1,
            "validation_margin": 2,
            "training_margin": 2,
            "accelerator": "cpu",
            "devices": 1,
            "t_0": 10,
            "num_threads": 1,
        },
    }
    for key, value in sections.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            merged = dict(data[key])
            for k, v in value.items():
                if isinstance(v, dict) and isinstance(merged.get(k), dict):
                    merged[k] = {**merged[k], **v}
                else:
                    merged[k] = v
            data[key] = merged
        else:
            data[key] = value
    return experiment_from_mapping(data)


def sen2venus_run_params(
    tmp: Path, root: Path, *, test_batch_size: int = 2, **training: Any
) -> ExperimentParams:
    """:func:`tiny_params` reading a fake Sen2Venµs tree ``root`` (batches of 2, 75 % / 25 % train /
    validation split) with ``training`` overrides."""
    data = {
        "dataset": "sen2venus",
        "root": str(root),
        "batch_size": 2,
        "test_batch_size": test_batch_size,
        "train_ratio": 0.75,
        "validation_ratio": 0.25,
    }
    return tiny_params(tmp, data=data, training=training)


def write_params_file(params: ExperimentParams, path: Path) -> Path:
    """``params`` written as the YAML file ``sisr train`` reads."""
    path.write_text(yaml.safe_dump(to_mapping(params)))
    return path
