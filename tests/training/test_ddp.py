"""The distributed path: ``sisr train`` with ``training.devices: 2``, ``strategy: ddp`` on CPU (gloo) trains,
reduces the validation metrics across the two ranks (``sync_dist``) and writes a checkpoint that loads."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist

from sisrlib.data.datamodule import build_datamodule
from sisrlib.data.sample import collate_batch
from sisrlib.run_params import load_experiment
from sisrlib.training.module import SISRModule
from tests.helpers.fake_data import make_sen2venus_root
from tests.helpers.training_fakes import sen2venus_run_params, write_params_file

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not (dist.is_available() and dist.is_gloo_available()),
        reason="torch.distributed with the gloo backend is not available on this platform",
    ),
]

#: Errors of a platform that cannot start the two local processes or connect them (not of this project).
PLATFORM_ERRORS = ("Gloo connectFullMesh failed", "Address already in use", "makeDeviceForHostname")


def test_two_process_ddp_on_cpu(tmp_path: Path) -> None:
    # 3 training sites × 6 patches: 4 validation patches, one per batch; each rank validates 2 of them
    root = make_sen2venus_root(tmp_path / "data", ["ARM", "NARYN", "ALSACE", "ES-IC3XG", "MAD-AMBO"], rows=6)
    params = sen2venus_run_params(
        tmp_path,
        root,
        test_batch_size=1,
        max_steps=2,
        val_check_interval=2,
        limit_val_batches=2,
        log_every_n_steps=1,
        devices=2,
        strategy="ddp",
        accelerator="cpu",
    )
    path = write_params_file(params, tmp_path / "params.yaml")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "LOCAL_RANK", "RANK"))}
    env.update(MASTER_ADDR="127.0.0.1", OMP_NUM_THREADS="1")
    done = subprocess.run(
        [sys.executable, "-m", "sisrlib.cli", "train", str(path)],
        env=env,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=600,
    )
    if done.returncode != 0 and any(e in done.stderr for e in PLATFORM_ERRORS):
        pytest.skip(f"this platform cannot connect two local gloo processes: {done.stderr[-500:]}")
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("trained for 2 steps") == 1  # rank 0 reports, rank 1 does not

    params = load_experiment(path)
    ckpt = torch.load(params.last_checkpoint, map_location="cpu", weights_only=True)
    assert ckpt["global_step"] == 2
    module = SISRModule(**ckpt["hyper_parameters"])
    module.load_state_dict(ckpt["state_dict"])
    module.eval()

    with params.best_checkpoint.parent.parent.joinpath("logs/csv/metrics.csv").open(newline="") as f:
        logged = [float(r["validation/total_loss"]) for r in csv.DictReader(f) if r["validation/total_loss"]]
    assert len(logged) == 1  # one validation, at step 2, with the final weights

    # rank r validates patches r and r + 2 (DistributedSampler without shuffling): the reduced value is the
    # mean over patches 0..3; rank 0 alone would give the mean over patches 0 and 2
    dm = build_datamodule(params.data, params.seed)
    dm.setup("fit")
    assert dm.val_dataset is not None
    with torch.no_grad():
        per_patch = [
            float(
                module._evaluation_logs(collate_batch([dm.val_dataset[i]]), i, "validation")[
                    "validation/total_loss"
                ]
            )
            for i in range(4)
        ]
    assert logged[0] == pytest.approx(sum(per_patch) / 4, rel=1e-5)
