"""The SLURM array template of ``sisr infer`` (``slurm/infer_array.sbatch``), run locally as SLURM would run
its tasks (``SLURM_ARRAY_TASK_ID`` set, ``srun`` replaced by a pass-through) with the real ``sisr infer``:
one product per task, outputs already complete skipped, failures reported per product."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.export_helpers import export_tiny, smooth_dn, write_geotiff

TEMPLATE = Path(__file__).resolve().parents[1] / "slurm" / "infer_array.sbatch"
BASH = shutil.which("bash")

pytestmark = pytest.mark.skipif(BASH is None, reason="bash is not installed")


@pytest.fixture
def submit_dir(tmp_path: Path) -> Path:
    """A submission folder whose ``.venv/bin/activate`` puts this interpreter's ``sisr`` first on PATH, and
    a ``srun`` that runs its arguments."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    srun = bin_dir / "srun"
    srun.write_text('#!/bin/sh\nexec "$@"\n')
    srun.chmod(0o755)
    venv_bin = Path(sys.executable).parent
    (tmp_path / ".venv" / "bin").mkdir(parents=True)
    (tmp_path / ".venv" / "bin" / "activate").write_text(f'export PATH="{bin_dir}:{venv_bin}:$PATH"\n')
    return tmp_path


def _task(submit_dir: Path, task: int, *args: str) -> subprocess.CompletedProcess[str]:
    assert BASH is not None
    env = {**os.environ, "SLURM_SUBMIT_DIR": str(submit_dir), "SLURM_ARRAY_TASK_ID": str(task),
           "SLURM_CPUS_PER_TASK": "1"}  # fmt: skip
    return subprocess.run(
        [BASH, str(TEMPLATE), *args], capture_output=True, text=True, env=env, cwd=submit_dir, timeout=300
    )


def test_one_product_per_task_skips_complete_outputs_and_reports_failures(submit_dir: Path) -> None:
    model = export_tiny(submit_dir, "m").yaml_path
    first = write_geotiff(submit_dir / "first.tif", smooth_dn(4, 12, 10))
    second = write_geotiff(submit_dir / "second.tif", smooth_dn(4, 10, 12, seed=1))
    products = submit_dir / "products.txt"
    products.write_text(f"# products of the test\n{first}\n\n{submit_dir / 'missing.tif'}\n  {second}  \n")
    out = submit_dir / "out"
    args = (str(products), str(model), str(out), "--tile-size", "16")

    done = _task(submit_dir, 1, *args)
    assert done.returncode == 0, done.stderr
    assert (out / "first_sisr.tif").is_file()
    assert sorted(p.name for p in out.iterdir()) == ["first_sisr.tif", "status"]

    failed = _task(submit_dir, 2, *args)
    assert failed.returncode == 2
    report = (out / "status" / "missing.failed").read_text()
    assert "missing.tif: sisr infer failed with exit status 2" in report and "task 2" in report
    assert "does not exist" in (out / "status" / "missing.log").read_text()
    assert not (out / "missing_sisr.tif").exists()

    assert _task(submit_dir, 3, *args).returncode == 0
    assert (out / "second_sisr.tif").is_file()

    before = (out / "first_sisr.tif").stat().st_mtime_ns
    again = _task(submit_dir, 1, *args)
    assert again.returncode == 0 and "exists (complete), skipped" in again.stdout
    assert (out / "first_sisr.tif").stat().st_mtime_ns == before

    beyond = _task(submit_dir, 4, *args)
    assert beyond.returncode == 2 and "has fewer than 4 products" in beyond.stderr


def test_refuses_to_run_outside_an_array(submit_dir: Path) -> None:
    assert BASH is not None
    env = {k: v for k, v in os.environ.items() if k != "SLURM_ARRAY_TASK_ID"}
    env["SLURM_SUBMIT_DIR"] = str(submit_dir)
    done = subprocess.run(
        [BASH, str(TEMPLATE), "p.txt", "m.yaml", "out"],
        capture_output=True,
        text=True,
        env=env,
        cwd=submit_dir,
    )
    assert done.returncode != 0 and "sbatch --array" in done.stderr


def test_template_is_valid_bash() -> None:
    assert BASH is not None
    check = subprocess.run([BASH, "-n", str(TEMPLATE)], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
