"""``sisr train`` stopped by SIGTERM exits 143 (not 0) with a message and a loadable last checkpoint; under
SLURM, the requeue signal (SIGUSR1) still makes Lightning save ``hpc_ckpt_<n>.ckpt`` and call ``scontrol
requeue``, and ``resume_from: last`` then picks the newest checkpoint."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from sisrlib.run_params import load_experiment
from sisrlib.training.fit import _resolve_resume
from tests.helpers.fake_data import make_sen2venus_root
from tests.helpers.training_fakes import sen2venus_run_params, write_params_file

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not hasattr(signal, "SIGUSR1"), reason="POSIX signals needed"),
]

#: Generous bound for a slow, shared machine; the tests never assert a duration.
WAIT_S = 300.0


def _params_file(tmp: Path) -> Path:
    root = make_sen2venus_root(tmp / "data", ["ARM", "NARYN", "ES-IC3XG", "MAD-AMBO"], rows=4)
    params = sen2venus_run_params(
        tmp, root, max_steps=100_000, val_check_interval=2, log_every_n_steps=1, resume_from="last"
    )
    return write_params_file(params, tmp / "params.yaml")


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
    return {**env, "PYTHONUNBUFFERED": "1", **extra}


def _wait_for(proc: subprocess.Popen[str], *paths: Path) -> None:
    deadline = time.monotonic() + WAIT_S
    while not all(p.is_file() for p in paths):
        if proc.poll() is not None:
            raise AssertionError(
                f"sisr train ended early ({proc.returncode}): {proc.communicate()[1][-3000:]}"
            )
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"{[str(p) for p in paths]} never appeared")
        time.sleep(0.2)


def _stop(proc: subprocess.Popen[str]) -> tuple[int, str]:
    proc.send_signal(signal.SIGTERM)
    try:
        _, err = proc.communicate(timeout=WAIT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise
    return proc.returncode, err


def _train(path: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "sisrlib.cli", "train", str(path)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=path.parent,
    )


def test_sigterm_exits_143_with_a_consistent_checkpoint(tmp_path: Path) -> None:
    path = _params_file(tmp_path)
    params = load_experiment(path)
    proc = _train(path, _env())
    _wait_for(proc, params.last_checkpoint)
    code, err = _stop(proc)
    assert code == 143, err[-3000:]
    assert "sisr train: error: tiny: stopped by SIGTERM at step" in err
    assert "rerun the same command to resume" in err and "Traceback" not in err
    ckpt = torch.load(params.last_checkpoint, map_location="cpu", weights_only=True)
    assert ckpt["global_step"] >= 2 and ckpt["global_step"] % 2 == 0  # written at a validation
    assert not list(params.checkpoint_dir.glob(".*.tmp"))


def test_slurm_requeue_signal_still_saves_and_requeues(tmp_path: Path) -> None:
    path = _params_file(tmp_path)
    params = load_experiment(path)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    record = tmp_path / "scontrol.txt"
    scontrol = bin_dir / "scontrol"
    scontrol.write_text(f'#!/bin/sh\necho "$@" > {record}\n')
    scontrol.chmod(0o755)
    env = _env(
        PATH=f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        SLURM_NTASKS="1",
        SLURM_NTASKS_PER_NODE="1",
        SLURM_JOB_NAME="sisr-train",
        SLURM_JOB_ID="4242",
        SLURM_PROCID="0",
        SLURM_LOCALID="0",
        SLURM_NODEID="0",
        SLURM_NODELIST="localhost",
    )
    proc = _train(path, env)
    _wait_for(proc, params.last_checkpoint)
    proc.send_signal(signal.SIGUSR1)
    hpc = Path(params.output_dir) / "hpc_ckpt_1.ckpt"
    _wait_for(proc, hpc, record)
    # the handler has returned and training goes on: the next validation rewrites last.ckpt
    written = params.last_checkpoint.stat().st_mtime_ns
    deadline = time.monotonic() + WAIT_S
    while params.last_checkpoint.stat().st_mtime_ns == written and time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        time.sleep(0.2)
    code, err = _stop(proc)
    assert code == 143, err[-3000:]
    assert record.read_text().split() == ["requeue", "4242"]
    step = torch.load(hpc, map_location="cpu", weights_only=True)["global_step"]
    assert step >= 2
    last = torch.load(params.last_checkpoint, map_location="cpu", weights_only=True)["global_step"]
    assert _resolve_resume(params) == (hpc if step > last else params.last_checkpoint)
