"""A checkpoint never runs code: every entry point reads it with ``torch.load(weights_only=True)`` and refuses
a file holding foreign objects with a clear message, before anything in it is unpickled.

The malicious checkpoints below hold an object whose ``__reduce__`` creates a marker file (``open(marker,
"w")``): unpickled unsafely, the marker appears (checked once, so that the payload is known to be live);
through sisrlib it must never appear.
"""

from __future__ import annotations

import ast
import pickle
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

from sisrlib.checkpoint import load_generator, load_registration, read_checkpoint, registration_state
from sisrlib.cli import main
from sisrlib.errors import UnsafeCheckpointError
from sisrlib.experiments.evaluation.params import EvaluationParams, RunSpec
from sisrlib.experiments.evaluation.runner import evaluate
from sisrlib.export import export_checkpoint
from sisrlib.inference.showcase import find_sr_checkpoint
from sisrlib.safe_load import SAFE_GLOBALS
from sisrlib.training.fit import fit, write_signature
from tests.helpers.export_helpers import smooth_dn, write_geotiff
from tests.helpers.training_fakes import FakeDataModule, tiny_params

SISRLIB = Path(__file__).resolve().parents[1] / "sisrlib"


class MakesMarker:
    """Unpickling this object calls ``open(path, "w")``: it creates (empties) ``path``, nothing else."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self) -> tuple[Callable[..., Any], tuple[str, str]]:
        return (open, (self.path, "w"))


def _plain_checkpoint() -> dict[str, Any]:
    """A small checkpoint in the sisrlib layout (only plain types), to hide the payload in."""
    return {
        "global_step": 2,
        "state_dict": {"generator.head.weight": torch.zeros(2, 2)},
        "hyper_parameters": {
            "params": {"name": "x"},
            "input_bands": ["B2"],
            "target_bands": ["B2"],
            "lr_bands": [],
            "factor": 2.0,
        },
    }


def malicious(path: Path, marker: Path, where: str = "state_dict", legacy: bool = False) -> Path:
    """Write a checkpoint whose ``where`` entry (``state_dict``, ``hyper_parameters`` or ``top``) holds a
    :class:`MakesMarker`; ``legacy``: the pre-zip torch.save format."""
    ckpt = _plain_checkpoint()
    payload = MakesMarker(marker)
    if where == "state_dict":
        ckpt["state_dict"]["generator.head.bias"] = payload
    elif where == "hyper_parameters":
        ckpt["hyper_parameters"]["params"] = payload
    else:
        ckpt = payload  # type: ignore[assignment]
    torch.save(ckpt, path, _use_new_zipfile_serialization=not legacy)
    return path


@pytest.fixture
def marker(tmp_path: Path) -> Path:
    return tmp_path / "MARKER_code_ran"


@pytest.fixture
def evil(tmp_path: Path, marker: Path) -> Path:
    return malicious(tmp_path / "evil.ckpt", marker)


def _refused(exc: pytest.ExceptionInfo[BaseException], path: Path) -> None:
    text = str(exc.value)
    assert isinstance(exc.value, UnsafeCheckpointError)
    assert str(path) in text
    assert "refuses to unpickle foreign objects" in text
    assert "'builtins.open'" in text or "'io.open'" in text, text  # the global it needed


def test_the_payload_is_live(tmp_path: Path, marker: Path) -> None:
    path = malicious(tmp_path / "evil.ckpt", marker)
    torch.load(path, weights_only=False)  # what sisrlib used to do
    assert marker.exists()


@pytest.mark.parametrize(
    ("where", "legacy"),
    [("state_dict", False), ("hyper_parameters", False), ("top", False), ("state_dict", True)],
)
def test_read_checkpoint_refuses_foreign_objects(
    tmp_path: Path, marker: Path, where: str, legacy: bool
) -> None:
    path = malicious(tmp_path / "evil.ckpt", marker, where, legacy)
    for reader in (read_checkpoint, load_generator, load_registration, registration_state):
        with pytest.raises(UnsafeCheckpointError) as exc:
            reader(path)
        _refused(exc, path)
    assert not marker.exists()


def test_a_raw_pickle_is_refused(tmp_path: Path, marker: Path) -> None:
    path = tmp_path / "raw.ckpt"
    path.write_bytes(pickle.dumps({"state_dict": MakesMarker(marker)}, protocol=4))
    with pytest.raises(UnsafeCheckpointError, match=r"raw\.ckpt: refused.*refuses to unpickle foreign"):
        read_checkpoint(path)
    assert not marker.exists()


def test_export_refuses(evil: Path, marker: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(UnsafeCheckpointError) as exc:
        export_checkpoint(evil, tmp_path / "out.onnx")
    _refused(exc, evil)
    assert main(["export", str(evil), "--output", str(tmp_path / "out.onnx")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("sisr export: error: checkpoint") and "refuses to unpickle" in err
    assert "Traceback" not in err
    assert not marker.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["evil.ckpt"]


def test_evaluate_refuses(
    evil: Path, marker: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "evaluation"
    with pytest.raises(UnsafeCheckpointError) as exc:
        evaluate(EvaluationParams(runs=[RunSpec(checkpoint=str(evil))], output_dir=str(out)))
    _refused(exc, evil)
    assert main(["evaluate", str(evil), "--output", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("sisr evaluate: error: checkpoint") and "refuses to unpickle" in err
    assert not marker.exists() and not out.exists()
    # the glob path (skipping registration runs) and the showcase's checkpoint search read it too
    pattern = str(tmp_path / "*.ckpt")
    with pytest.raises(UnsafeCheckpointError):
        evaluate(EvaluationParams(runs=[RunSpec(checkpoint=pattern)], output_dir=str(out)))
    with pytest.raises(UnsafeCheckpointError):
        find_sr_checkpoint(pattern)
    assert not marker.exists()


def test_infer_refuses(evil: Path, marker: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = write_geotiff(tmp_path / "in.tif", smooth_dn(4, 16, 16))
    out = tmp_path / "out.tif"
    rc = main(["infer", "--no-progress", "--model", str(evil), "--input", str(source), "--output", str(out)])
    assert rc == 2
    err = capsys.readouterr().err
    assert str(evil) in err and "refuses to unpickle foreign objects" in err
    assert not marker.exists() and not out.exists()


def test_registration_checkpoint_of_a_training_is_refused(evil: Path, marker: Path, tmp_path: Path) -> None:
    params = tiny_params(tmp_path / "sr", registration={"geometric": True, "checkpoint": str(evil)})
    with pytest.raises(UnsafeCheckpointError) as exc:
        fit(params, FakeDataModule())
    _refused(exc, evil)
    assert not marker.exists()
    assert not params.last_checkpoint.exists() and not params.best_checkpoint.exists()


def _run_folder_holding(params: Any, evil: Path) -> None:
    """Put ``evil`` as the run's last.ckpt and best.ckpt, with a signature matching the params (so that the
    run is not set aside as stale)."""
    params.checkpoint_dir.mkdir(parents=True)
    for target in (params.last_checkpoint, params.best_checkpoint):
        target.write_bytes(evil.read_bytes())
    write_signature(params)


def test_skip_if_done_check_refuses(evil: Path, marker: Path, tmp_path: Path) -> None:
    params = tiny_params(tmp_path / "run")
    assert params.training.skip_if_done
    _run_folder_holding(params, evil)
    with pytest.raises(UnsafeCheckpointError) as exc:
        fit(params, FakeDataModule())
    _refused(exc, params.last_checkpoint)
    assert not marker.exists()


@pytest.mark.parametrize("resume_from", ["last", "explicit"])
def test_resume_refuses_before_lightning(evil: Path, marker: Path, tmp_path: Path, resume_from: str) -> None:
    resume = "last" if resume_from == "last" else str(evil)
    params = tiny_params(tmp_path / "run", training={"resume_from": resume, "skip_if_done": False})
    _run_folder_holding(params, evil)
    refused = params.last_checkpoint if resume_from == "last" else evil
    with pytest.raises(UnsafeCheckpointError) as exc:
        fit(params, FakeDataModule())
    _refused(exc, refused)
    assert not marker.exists()
    assert params.last_checkpoint.read_bytes() == evil.read_bytes()  # not replaced either


# ------------------------------------------------------------------------------------- our own checkpoints
@pytest.fixture(scope="module")
def real_run(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A tiny SR run with a discriminator (two optimisers and schedulers) and its test loop."""
    tmp = tmp_path_factory.mktemp("real")
    params = tiny_params(
        tmp,
        training={
            "max_steps": 2,
            "test_after_fit": True,
            "adversarial": {"enabled": True, "start_step": 0, "discriminator": {"num_feat": 4}},
        },
    )
    return fit(params, FakeDataModule())


def test_our_checkpoints_need_no_allowed_global(real_run: Any) -> None:
    assert SAFE_GLOBALS == ()
    for path in (real_run.best_checkpoint, real_run.last_checkpoint):
        assert torch.serialization.get_unsafe_globals_in_checkpoint(path) == []
        ckpt = read_checkpoint(path)
        assert {"loops", "callbacks", "optimizer_states", "lr_schedulers"} <= set(ckpt)
        assert isinstance(ckpt["hyper_parameters"]["params"], dict)
    assert load_generator(real_run.best_checkpoint).global_step == 2
    assert real_run.test_metrics  # Lightning's own weights_only load of best.ckpt worked


def test_no_unsafe_load_in_sisrlib() -> None:
    """Every ``torch.load`` call in sisrlib passes ``weights_only=True`` (a literal), ``torch.load`` is never
    aliased, and nothing calls a pickle loader."""
    calls = 0
    for path in sorted(SISRLIB.rglob("*.py")):
        source = path.read_text(encoding="utf-8")
        where = path.relative_to(SISRLIB.parent)
        assert "weights_only=False" not in source, where
        assert not re.search(r"from torch(\.serialization)? import [^\n]*\bload\b", source), where
        assert not re.search(r"=\s*torch\.(serialization\.)?load\b(?!\()", source), where
        for node in ast.walk(ast.parse(source, filename=str(path))):
            if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
                continue
            owner = node.func.value
            name = owner.id if isinstance(owner, ast.Name) else getattr(owner, "attr", "")
            if name in ("pickle", "cPickle", "dill", "joblib") and node.func.attr in ("load", "loads"):
                pytest.fail(f"{where}:{node.lineno}: {name}.{node.func.attr} unpickles arbitrary objects")
            if (name, node.func.attr) not in (("torch", "load"), ("serialization", "load")):
                continue
            calls += 1
            flags = [k for k in node.keywords if k.arg == "weights_only"]
            ok = len(flags) == 1 and isinstance(flags[0].value, ast.Constant) and flags[0].value.value is True
            assert ok, f"{where}:{node.lineno}: torch.load without weights_only=True"
    assert calls >= 2  # the checkpoint reader and the LPIPS weights
