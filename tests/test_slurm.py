"""The SLURM templates: valid bash, the options slurm/README.md promises (requeue signal, srun, one task per
GPU), and the ``sisr`` command line they run (checked with a fake ``srun``)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

SLURM = Path(__file__).resolve().parents[1] / "slurm"
TEMPLATES = sorted(SLURM.glob("train_*.sbatch"))  # infer_array.sbatch: tests/test_slurm_infer.py
BASH = shutil.which("bash")

pytestmark = pytest.mark.skipif(BASH is None, reason="bash is not installed")


def _sbatch(path: Path) -> dict[str, str]:
    """``#SBATCH --key=value`` header lines (``##SBATCH`` lines are comments)."""
    options: dict[str, str] = {}
    for line in path.read_text().splitlines():
        m = re.match(r"#SBATCH\s+--([\w-]+)(?:=(\S+))?", line)
        if m:
            options[m.group(1)] = m.group(2) or ""
    return options


def test_the_templates_exist_and_the_readme_names_them() -> None:
    names = {p.name for p in TEMPLATES}
    assert names == {"train_1gpu.sbatch", "train_multigpu.sbatch", "train_multinode.sbatch"}
    readme = (SLURM / "README.md").read_text()
    for name in names:
        assert f"`{name}`" in readme
    assert "--signal=SIGUSR1@90" in readme and "hpc_ckpt" in readme


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: p.name)
def test_syntax_and_promised_options(path: Path) -> None:
    assert BASH is not None
    check = subprocess.run([BASH, "-n", str(path)], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    options = _sbatch(path)
    assert options["signal"] == "SIGUSR1@90"  # Lightning's SLURM plugin saves hpc_ckpt_*.ckpt and requeues
    assert "requeue" in options
    assert options["gres"] == f"gpu:{options['ntasks-per-node']}"  # one task per GPU
    text = path.read_text()
    assert 'srun sisr "${SISR_COMMAND:-train}" "$PARAMS"' in text
    assert "set -euo pipefail" in text


def _run(path: Path, tmp: Path, env: dict[str, str]) -> list[str]:
    """Run the template's body with a fake ``srun`` that prints its arguments, one per line."""
    assert BASH is not None
    bin_dir = tmp / "bin"
    bin_dir.mkdir(exist_ok=True)
    srun = bin_dir / "srun"
    srun.write_text('#!/bin/sh\nfor a in "$@"; do echo "$a"; done\n')
    srun.chmod(0o755)
    (tmp / ".venv" / "bin").mkdir(parents=True, exist_ok=True)
    (tmp / ".venv" / "bin" / "activate").write_text("")
    full = {"PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}", "SLURM_SUBMIT_DIR": str(tmp), **env}
    done = subprocess.run(
        [BASH, str(path), "params/paper/03_x.yaml", "--set", "training.max_steps=10"],
        capture_output=True,
        text=True,
        env=full,
        cwd=tmp,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def _settings(args: list[str]) -> dict[str, str]:
    return dict(args[i + 1].split("=", 1) for i, a in enumerate(args) if a == "--set")


def test_one_gpu_command(tmp_path: Path) -> None:
    args = _run(SLURM / "train_1gpu.sbatch", tmp_path, {"SLURM_CPUS_PER_TASK": "16"})
    assert args[:3] == ["sisr", "train", "params/paper/03_x.yaml"]
    settings = _settings(args)
    assert settings["training.devices"] == "1" and settings["training.num_nodes"] == "1"
    assert settings["data.num_workers"] == "16" and settings["training.max_steps"] == "10"
    pre = _run(SLURM / "train_1gpu.sbatch", tmp_path, {"SISR_COMMAND": "pretrain-registration"})
    assert pre[:2] == ["sisr", "pretrain-registration"]


def test_devices_follow_the_tasks_per_node(tmp_path: Path) -> None:
    multi = _settings(_run(SLURM / "train_multigpu.sbatch", tmp_path, {"SLURM_NTASKS_PER_NODE": "2"}))
    assert multi["training.devices"] == "2" and multi["training.num_nodes"] == "1"
    assert multi["training.strategy"] == "ddp_find_unused_parameters_true"
    nodes = _settings(
        _run(
            SLURM / "train_multinode.sbatch",
            tmp_path,
            {"SLURM_NTASKS_PER_NODE": "4", "SLURM_NNODES": "3"},
        )
    )
    assert nodes["training.devices"] == "4" and nodes["training.num_nodes"] == "3"
    assert nodes["training.strategy"] == "ddp_find_unused_parameters_true"
