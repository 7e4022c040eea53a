"""``sisr infer`` with an exported model (NAME.yaml + NAME.onnx) imports neither torch nor pytorch_lightning.

Run in a fresh interpreter: the CLI's ``main`` on a small GeoTIFF, then the imported modules are listed.
How fast it starts is measured by ``benchmarks/inference.py``, not tested.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.helpers.export_helpers import export_tiny, smooth_dn, write_geotiff

#: Calls the CLI like ``sisr`` does, then prints the heavy modules that were imported.
RUNNER = """
import sys
from sisrlib.cli import main
rc = main(sys.argv[1:])
heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "pytorch_lightning", "lightning"))
print("RC", rc)
print("HEAVY", " ".join(heavy[:20]))
"""


def test_infer_with_an_onnx_model_imports_no_torch(tmp_path: Path) -> None:
    pair = export_tiny(tmp_path, "m")
    source = write_geotiff(tmp_path / "in.tif", smooth_dn(4, 24, 20))
    out = tmp_path / "sr.tif"
    argv = ["infer", "--no-progress", "--model", str(pair.yaml_path), "--input", str(source),
            "--output", str(out), "--threads", "1"]  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-c", RUNNER, *argv],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lines = dict(line.split(" ", 1) for line in done.stdout.splitlines() if line.startswith(("RC", "HEAVY")))
    assert lines["RC"] == "0", done.stdout + done.stderr
    assert out.is_file()
    assert lines["HEAVY"].strip() == "", f"sisr infer on an ONNX model imported {lines['HEAVY']}"
