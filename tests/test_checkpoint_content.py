"""A checkpoint whose content does not fit is refused at load with a message naming the file and the key,
what was expected and what was found: wrong types, missing keys, weights that do not fit the network, NaN/inf
weights (which otherwise give 100 % no-data inference output). And the output checks of ``sisr evaluate``
and ``sisr export`` (never an existing file/folder in the way, never the input checkpoint)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

from sisrlib.checkpoint import load_generator, load_registration, read_checkpoint
from sisrlib.cli import main
from sisrlib.data.params import DataParams
from sisrlib.errors import CheckpointError
from sisrlib.export import export_checkpoint
from sisrlib.models.params import ModelParams
from sisrlib.models.registry import build_generator
from sisrlib.registration.factory import build_flow_estimator
from sisrlib.run_params import ExperimentParams, RegistrationParams, TrainingParams
from tests.helpers.export_helpers import BANDS, smooth_dn, write_geotiff

MODEL = ModelParams(generator="esrgan", num_blocks=1, latent_size=8, growth_channels=8)
REGISTRATION = RegistrationParams(depth=2, start_filters=4, min_skip_depth=1, features=4)


def sisrlib_checkpoint(folder: Path) -> dict[str, Any]:
    """A valid SR checkpoint in the layout of sisrlib.training: a tiny ESRGAN ×2 (B2 B3 B4 B8) and a flow
    network, the params mapping and bands in ``hyper_parameters``."""
    params = ExperimentParams(
        name="fake",
        data=DataParams(dataset="sen2venus", root="data/none"),
        output_dir=str(folder),
        model=MODEL,
        registration=REGISTRATION,
        training=TrainingParams(standardisation="sen2venusx2"),
    )
    torch.manual_seed(0)
    generator = build_generator(MODEL, len(BANDS), len(BANDS))
    flow = build_flow_estimator(REGISTRATION)
    state = {f"generator.{k}": v for k, v in generator.state_dict().items()}
    state.update({f"registration.{k}": v for k, v in flow.state_dict().items()})
    return {
        "global_step": 3,
        "state_dict": state,
        "hyper_parameters": {
            "params": params.to_mapping(),
            "input_bands": list(BANDS),
            "target_bands": list(BANDS),
            "lr_bands": [],
            "factor": 2.0,
        },
    }


@pytest.fixture(scope="module")
def good(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return sisrlib_checkpoint(tmp_path_factory.mktemp("good"))


def _write(tmp_path: Path, good: dict[str, Any], edit: Callable[[dict[str, Any]], Any]) -> Path:
    ckpt = copy.deepcopy(good)
    replaced = edit(ckpt)
    path = tmp_path / "model.ckpt"
    torch.save(ckpt if replaced is None else replaced, path)
    return path


def _first_float(ckpt: dict[str, Any], prefix: str) -> str:
    return next(k for k, v in ckpt["state_dict"].items() if k.startswith(prefix) and v.is_floating_point())


def test_the_valid_checkpoint_loads(tmp_path: Path, good: dict[str, Any]) -> None:
    path = _write(tmp_path, good, lambda c: None)
    loaded = load_generator(path)
    assert loaded.input_bands == BANDS and loaded.factor == 2.0 and loaded.global_step == 3
    assert load_registration(path)(torch.rand(1, 16, 16), torch.rand(1, 16, 16)).shape == (1, 2, 16, 16)


def _hp(key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    return lambda c: c["hyper_parameters"].__setitem__(key, value)


def _state(key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    return lambda c: c["state_dict"].__setitem__(key, value)


def _top(key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    return lambda c: c.__setitem__(key, value)


def _nan_weight(c: dict[str, Any]) -> None:
    c["state_dict"][_first_float(c, "generator.")].fill_(float("nan"))


def _drop(*keys: str) -> Callable[[dict[str, Any]], None]:
    def edit(c: dict[str, Any]) -> None:
        target = c
        for k in keys[:-1]:
            target = target[k]
        del target[keys[-1]]

    return edit


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (lambda c: [1, 2], r"expected a dictionary .*found list"),
        (_top("hyper_parameters", 3), r"hyper_parameters: expected a mapping .*found 3"),
        (_drop("hyper_parameters"), r"hyper_parameters: expected a mapping .*found None"),
        (_drop("hyper_parameters", "input_bands"), r"hyper_parameters: .*without \['input_bands'\]"),
        (_drop("state_dict"), r"state_dict: expected a mapping of weight names to tensors, found None"),
        (_top("state_dict", [1]), r"state_dict: expected a mapping .*found a list of 1"),
        (_state("generator.x", 1.5), r"state_dict\['generator.x'\]: expected a tensor, found 1.5"),
        (_hp("params", 7), r"hyper_parameters\['params'\]: expected the run params mapping, found 7"),
        (_hp("params", {"name": "x"}), r"hyper_parameters\['params'\]: missing required key"),
        (_hp("input_bands", "B2"), r"\['input_bands'\]: expected a list of band names, found 'B2'"),
        (_hp("target_bands", []), r"hyper_parameters\['target_bands'\]: expected at least one band name"),
        (_hp("factor", float("inf")), r"\['factor'\]: expected a finite positive number, found inf"),
        (_hp("factor", "2"), r"\['factor'\]: expected a finite positive number, found '2'"),
        (_hp("factor", 4.0), r"hyper_parameters\['factor'\] is 4 but its params' model.factor is 2"),
        (_top("global_step", -1), r"global_step: expected a non-negative integer, found -1"),
    ],
)  # fmt: skip
def test_bad_content_is_named(
    tmp_path: Path, good: dict[str, Any], edit: Callable[[dict[str, Any]], Any], expected: str
) -> None:
    path = _write(tmp_path, good, edit)
    with pytest.raises(CheckpointError, match=expected) as exc:
        load_generator(path)
    assert str(exc.value).startswith(f"checkpoint {path}")


def test_weights_that_do_not_fit_the_network(tmp_path: Path, good: dict[str, Any]) -> None:
    first = _first_float(good, "generator.")

    def edit(c: dict[str, Any]) -> None:
        state = c["state_dict"]
        state[first] = torch.zeros(3, 3)
        state["generator.extra.weight"] = torch.zeros(1)
        del state[next(k for k in state if k.startswith("generator.") and k != first)]

    path = _write(tmp_path, good, edit)
    with pytest.raises(CheckpointError) as exc:
        load_generator(path)
    text = str(exc.value)
    assert text.startswith(f"checkpoint {path}: the generator weights in state_dict do not fit")
    assert "1 missing (generator." in text and "1 unexpected (generator.extra.weight)" in text
    assert f"1 shape mismatch ({first}: checkpoint [3, 3], network [" in text
    path = _write(tmp_path, good, lambda c: c.__setitem__("state_dict", {}))
    with pytest.raises(CheckpointError, match="holds no generator weights"):
        load_generator(path)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
@pytest.mark.parametrize("prefix", ["generator.", "registration."])
def test_non_finite_weights_are_refused(
    tmp_path: Path, good: dict[str, Any], value: float, prefix: str
) -> None:
    floats = [k for k, v in good["state_dict"].items() if k.startswith(prefix) and v.is_floating_point()]
    second, fourth = floats[1], floats[3]

    def edit(c: dict[str, Any]) -> None:
        for key in (fourth, second):
            c["state_dict"][key].view(-1)[:2] = value

    path = _write(tmp_path, good, edit)
    load = load_generator if prefix == "generator." else load_registration
    with pytest.raises(CheckpointError) as exc:
        load(path)
    kind = "2 NaN, 0 ±inf" if value != value else "0 NaN, 2 ±inf"
    assert str(exc.value).startswith(
        f"checkpoint {path}: state_dict[{second!r}] has 2 non-finite value(s) of "
        f"{good['state_dict'][second].numel()} ({kind})"
    )


def test_cli_names_the_bad_checkpoint(
    tmp_path: Path, good: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    path = _write(tmp_path, good, lambda c: c.__setitem__("hyper_parameters", 3))
    assert main(["export", str(path), "--output", str(tmp_path / "m.onnx")]) == 2
    err = capsys.readouterr().err
    assert (
        err.startswith(f"sisr export: error: checkpoint {path}: hyper_parameters: expected")
        and "found 3" in err
    )
    nan = _write(tmp_path, good, _nan_weight)
    source = write_geotiff(tmp_path / "in.tif", smooth_dn(4, 16, 16))
    out = tmp_path / "out.tif"
    assert (
        main(["infer", "--no-progress", "--model", str(nan), "--input", str(source), "--output", str(out)])
        == 2
    )
    err = capsys.readouterr().err
    assert f"checkpoint {nan}: state_dict['generator." in err and "non-finite" in err
    assert not out.exists()
    assert main(["evaluate", str(nan), "--output", str(tmp_path / "evaluation")]) == 2
    assert "non-finite" in capsys.readouterr().err
    assert not (tmp_path / "evaluation").exists()


def test_truncated_checkpoint(tmp_path: Path, good: dict[str, Any]) -> None:
    path = _write(tmp_path, good, lambda c: None)
    path.write_bytes(path.read_bytes()[:-200])
    with pytest.raises(
        CheckpointError, match=r"model\.ckpt cannot be read .*truncated, corrupt or not a torch"
    ):
        read_checkpoint(path)


# ------------------------------------------------------------------------------------------- output checks
def test_evaluate_output_that_is_a_file(
    tmp_path: Path, good: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    ckpt = _write(tmp_path, good, lambda c: None)
    existing = tmp_path / "results.csv"
    existing.write_text("keep me")
    assert main(["evaluate", str(ckpt), "--output", str(existing)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"sisr evaluate: error: --output {existing} is an existing file, expected a folder")
    assert existing.read_text() == "keep me"
    assert main(["evaluate", str(ckpt), "--output", str(ckpt)]) == 2
    assert "is an existing file" in capsys.readouterr().err
    assert read_checkpoint(ckpt)["global_step"] == 3


def test_export_output_checks(
    tmp_path: Path, good: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    ckpt = _write(tmp_path, good, lambda c: None)
    before = ckpt.read_bytes()
    folder = tmp_path / "exports"
    folder.mkdir()
    onnx_folder = tmp_path / "model.onnx"
    onnx_folder.mkdir()
    yaml_folder = tmp_path / "other.yaml"
    yaml_folder.mkdir()
    cases = [
        (folder, f"export output {folder} is an existing folder; pass the .onnx file"),
        (onnx_folder, f"export output {onnx_folder} is an existing folder"),
        (tmp_path / "other.onnx", f"its sidecar {yaml_folder} is an existing folder"),
        (tmp_path / "missing" / "m.onnx", "does not exist"),
    ]
    for output, expected in cases:
        assert main(["export", str(ckpt), "--output", str(output)]) == 2
        err = capsys.readouterr().err
        assert expected in err, err
    # a checkpoint whose name an export would reuse (its .onnx or its sidecar .yaml) is never replaced
    reused: list[tuple[str, Path | None]] = [("m.onnx", None), ("m.yaml", tmp_path / "m.onnx")]
    for name, target in reused:
        same = tmp_path / name
        same.write_bytes(before)
        with pytest.raises(ValueError, match=f"would replace the input checkpoint {same}"):
            export_checkpoint(same, target)
        assert same.read_bytes() == before
        same.unlink()
    assert ckpt.read_bytes() == before
    assert (
        sorted(p.name for p in folder.iterdir()) == [] and sorted(p.name for p in onnx_folder.iterdir()) == []
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exports", "model.ckpt", "model.onnx", "other.yaml"]
