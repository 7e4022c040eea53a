"""Importer of torchsisr checkpoints (sisrlib.interop.torchsisr).

The fixtures are small checkpoints in torchsisr's exact Lightning layout (random weights, written by the
torchsisr code), the inputs they were run on and torchsisr's outputs (``reference_io.pt``), beside the run
configuration hydra saved (``.hydra/config.yaml``). The imported networks must reproduce those outputs:
generators within 1e-5 in standardised units (DN: 1e-5 · std · 10000), flows within 1e-5 LR px.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

from sisrlib.errors import CheckpointError, UnsafeCheckpointError
from sisrlib.flow import warp
from sisrlib.interop.torchsisr import (
    ImportedGenerator,
    import_generator,
    import_registration,
    imported_dn_model,
)
from sisrlib.models.carn import CARN
from sisrlib.models.esrgan import ESRGANGenerator
from sisrlib.models.joint import JointSuperResolution
from sisrlib.registration.network import normalise_rows

FIXTURES = Path(__file__).resolve().parents[2].parent / "shared" / "reference" / "torchsisr-checkpoints"
GENERATORS = ("esrgan_x2_s2v", "esrgan_x4_s2v", "carn_evoland")
FLOWS = ("esrgan_x2_s2v", "esrgan_x4_s2v", "registration_s2vx2")
TOL = 1e-5

pytestmark = pytest.mark.skipif(
    not FIXTURES.is_dir(),
    reason=f"the torchsisr checkpoint fixtures are not available ({FIXTURES} does not exist)",
)


def checkpoint(name: str) -> Path:
    (path,) = sorted((FIXTURES / name).glob("*.ckpt"))
    return path


def reference_io(name: str) -> dict[str, torch.Tensor]:
    io: dict[str, torch.Tensor] = torch.load(FIXTURES / name / "reference_io.pt", weights_only=True)
    return io


def dn_error_in_std_units(imported: ImportedGenerator, io: dict[str, torch.Tensor]) -> float:
    """max |our DN − torchsisr's DN| / (std · 10000): the DN error in standardised units."""
    with torch.no_grad():
        dn = imported_dn_model(imported)(io["dn_input"])
    scale = torch.tensor(imported.standardisation.std).view(1, -1, 1, 1) * 10000.0
    return float(((dn - io["dn_output"]).abs() / scale).max())


# ------------------------------------------------------------------------------------------ reproduction
@pytest.mark.parametrize("name", GENERATORS)
def test_generator_reproduces_torchsisr(name: str) -> None:
    imported = import_generator(checkpoint(name))
    io = reference_io(name)
    with torch.no_grad():
        if imported.lr_bands:
            out = imported.model(io["gen_hr_input_std"], io["gen_lr_input_std"])
        else:
            out = imported.model(io["gen_input_std"])
        bare = imported.sisr(io["gen_input_std"])
    assert out.shape == io["gen_output_std"].shape
    assert float((out - io["gen_output_std"]).abs().max()) <= TOL
    assert float((bare - io["gen_output_std"]).abs().max()) <= TOL
    assert dn_error_in_std_units(imported, io) <= TOL
    torch.testing.assert_close(
        torch.tensor(imported.standardisation.mean, dtype=torch.float32), io["mean"], atol=0, rtol=0
    )


def test_generator_kinds_bands_and_provenance() -> None:
    x2 = import_generator(checkpoint("esrgan_x2_s2v"))
    assert isinstance(x2.model, ESRGANGenerator) and x2.kind == "esrgan"
    assert (x2.bands, x2.factor, x2.margin) == (("B2", "B3", "B4", "B8"), 2.0, 16)  # (5·1 + 2)·2 + 2
    x4 = import_generator(checkpoint("esrgan_x4_s2v"))
    assert (x4.bands, x4.factor, x4.margin) == (("B5", "B6", "B7", "B8A"), 4.0, 30)
    # x4 Sen2Venµs: torchsisr's stored statistics are kept as they are (those of B7, B8A, B11, B12)
    assert x4.standardisation.mean == pytest.approx((0.2524, 0.2815, 0.2472, 0.1665), abs=1e-6)
    joint = import_generator(checkpoint("carn_evoland"))
    assert isinstance(joint.model, JointSuperResolution) and isinstance(joint.sisr, CARN)
    assert joint.hr_bands == ("B2", "B3", "B4", "B8")
    assert joint.lr_bands == ("B5", "B6", "B7", "B8A", "B11", "B12")
    assert joint.margin == 43  # 41 + 2·1, torchsisr's
    for item in ("bands", "factor", "lr_to_hr"):
        assert ".hydra/config.yaml" in joint.provenance[item], (item, joint.provenance)
    assert "state_dict['mean']" in joint.provenance["standardisation"]
    assert "tensor shapes" in joint.provenance["architecture"]
    assert "default: bicubic" in joint.provenance["lr_to_hr"]


@pytest.mark.parametrize("name", FLOWS)
def test_flow_reproduces_torchsisr(name: str) -> None:
    imported = import_registration(checkpoint(name))
    io = reference_io(name)
    assert imported.net.input_normalisation == "reference_rows"
    assert not any(p.requires_grad for p in imported.net.parameters())
    torch.testing.assert_close(normalise_rows(io["reg_left"]), io["reg_left_instance_norm"], atol=TOL, rtol=0)
    with torch.no_grad():
        flow = imported.net(io["reg_left"], io["reg_right"])
    assert float((flow - io["reg_flow"]).abs().max()) <= TOL  # LR px
    assert (imported.max_range, imported.channel) == (10.0, 2)
    assert "max_offset" in imported.provenance["max_range"]
    if "warp_input" in io:  # torchsisr's warp and ours agree too
        warped = warp(io["warp_input"], io["reg_flow"])
        assert float((warped - io["warp_output"]).abs().max()) <= TOL


def test_flow_with_our_normalisation_differs() -> None:
    """The per-image normalisation does not reproduce torchsisr's flows (why the option exists)."""
    imported = import_registration(checkpoint("esrgan_x2_s2v"))
    io = reference_io("esrgan_x2_s2v")
    imported.net.input_normalisation = "image"
    with torch.no_grad():
        flow = imported.net(io["reg_left"], io["reg_right"])
    assert float((flow - io["reg_flow"]).abs().max()) > 100 * TOL


def test_registration_params_of_an_imported_flow() -> None:
    params = import_registration(checkpoint("registration_s2vx2")).registration_params()
    assert (params.depth, params.start_filters, params.min_skip_depth, params.features) == (4, 4, 2, 32)
    assert params.input_normalisation == "reference_rows" and params.max_range == 10.0


def test_untrained_generator_of_a_registration_run() -> None:
    path = checkpoint("registration_s2vx2")
    with pytest.raises(CheckpointError, match=r"registration pre-training run.*never trained"):
        import_generator(path)
    imported = import_generator(path, allow_untrained=True)  # possible on request, and said
    assert "untrained" in imported.provenance["warning"]
    io = reference_io("registration_s2vx2")
    with torch.no_grad():
        assert float((imported.model(io["gen_input_std"]) - io["gen_output_std"]).abs().max()) <= TOL


def test_lightning_is_not_imported() -> None:
    code = "import sys, sisrlib.interop.torchsisr; print(any('pytorch_lightning' in m for m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# ------------------------------------------------------------------------- without a run configuration
@pytest.fixture
def bare_copy(tmp_path: Path) -> Callable[[str], Path]:
    """The checkpoint of a fixture copied alone (no .hydra/config.yaml beside it)."""

    def copy(name: str) -> Path:
        return Path(shutil.copy(checkpoint(name), tmp_path / checkpoint(name).name))

    return copy


def test_without_config_the_bands_must_be_given(bare_copy: Callable[[str], Path]) -> None:
    path = bare_copy("carn_evoland")
    with pytest.raises(CheckpointError, match=r"band names are not stored.*pass bands="):
        import_generator(path)
    bands = ["B2", "B3", "B4", "B8", "B5", "B6", "B7", "B8A", "B11", "B12"]
    imported = import_generator(path, bands=bands)
    assert imported.provenance["bands"] == "argument bands"
    assert "tensor shapes" in imported.provenance["factor"] and imported.factor == 2.0
    assert "10 m and 20 m bands" in imported.provenance["lr_to_hr"]
    assert "does not exist" in imported.provenance["run configuration"]
    assert dn_error_in_std_units(imported, reference_io("carn_evoland")) <= TOL
    flat = import_generator(path, bands=bands, lr_to_hr="none")
    assert flat.lr_bands == () and not isinstance(flat.model, JointSuperResolution)


def test_without_config_max_range_must_be_given(bare_copy: Callable[[str], Path]) -> None:
    path = bare_copy("esrgan_x4_s2v")
    with pytest.raises(CheckpointError, match=r"max_offset.*pass max_range"):
        import_registration(path)
    imported = import_registration(path, max_range=10.0)
    assert imported.provenance["max_range"] == "argument max_range"
    assert "not stored" in imported.provenance["channel"]
    io = reference_io("esrgan_x4_s2v")
    with torch.no_grad():
        assert float((imported.net(io["reg_left"], io["reg_right"]) - io["reg_flow"]).abs().max()) <= TOL


def test_a_config_of_another_run_is_refused() -> None:
    other = FIXTURES / "esrgan_x4_s2v" / ".hydra" / "config.yaml"  # ×4, B5..B8A
    with pytest.raises(CheckpointError, match=r"factor 4 does not fit its 1 ×2 upsampling"):
        import_generator(checkpoint("esrgan_x2_s2v"), config=other)
    with pytest.raises(CheckpointError, match="does not describe these weights"):
        import_generator(
            checkpoint("esrgan_x2_s2v"), config=FIXTURES / "carn_evoland" / ".hydra" / "config.yaml"
        )


# ---------------------------------------------------------------------------------------------- refusals
def _save(tmp_path: Path, ckpt: Any, name: str = "edited.ckpt") -> Path:
    path = tmp_path / name
    torch.save(ckpt, path)
    return path


def _fixture_ckpt(name: str) -> dict[str, Any]:
    ckpt: dict[str, Any] = torch.load(checkpoint(name), map_location="cpu", weights_only=True)
    return ckpt


def test_our_own_checkpoint_is_refused(tmp_path: Path) -> None:
    ours = {
        "global_step": 2,
        "state_dict": {"generator.first_conv.weight": torch.zeros(2, 2)},
        "hyper_parameters": {"params": {}, "input_bands": ["B2"], "target_bands": ["B2"], "factor": 2.0},
    }
    path = _save(tmp_path, ours, "best.ckpt")
    for importer in (import_generator, import_registration):
        with pytest.raises(CheckpointError, match=r"sisrlib training checkpoint.*use it directly") as exc:
            importer(path)  # type: ignore[operator]
        assert str(path) in str(exc.value)


@pytest.mark.parametrize(
    ("drop", "message"),
    [
        ("mean", r"state_dict has no 'mean'"),
        (
            "generator.sisr_model.decoder.blocks.conv.0.weight",
            r"no 'generator\.sisr_model\.decoder\.blocks\.conv\.0",
        ),
    ],
)
def test_a_missing_key_is_refused(tmp_path: Path, drop: str, message: str) -> None:
    ckpt = _fixture_ckpt("esrgan_x2_s2v")
    del ckpt["state_dict"][drop]
    with pytest.raises(CheckpointError, match=message):
        import_generator(_save(tmp_path, ckpt), config=FIXTURES / "esrgan_x2_s2v" / ".hydra" / "config.yaml")


def test_missing_flow_weights_and_foreign_layouts_are_refused(tmp_path: Path) -> None:
    ckpt = _fixture_ckpt("carn_evoland")
    with pytest.raises(CheckpointError, match=r"no registration_module\.\* weights"):
        import_registration(checkpoint("carn_evoland"))
    ckpt["state_dict"] = {k: v for k, v in ckpt["state_dict"].items() if not k.startswith("generator.")}
    with pytest.raises(CheckpointError, match=r"no generator\.sisr_model\.\* weights"):
        import_generator(_save(tmp_path, ckpt), bands=["B2"])
    with pytest.raises(CheckpointError, match="no 'state_dict' mapping"):
        import_generator(_save(tmp_path, {"weights": torch.zeros(1)}, "foreign.ckpt"))
    garbage = tmp_path / "garbage.ckpt"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="cannot be read"):
        import_generator(garbage)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        import_generator(tmp_path / "missing.ckpt")


def test_non_finite_weights_are_refused(tmp_path: Path) -> None:
    ckpt = _fixture_ckpt("esrgan_x2_s2v")
    ckpt["state_dict"]["registration_module.final_conv.bias"] = torch.tensor([float("nan"), 0.0])
    with pytest.raises(CheckpointError, match=r"final_conv\.bias'\] has 1 non-finite"):
        import_registration(_save(tmp_path, ckpt), max_range=10.0)


class MakesMarker:
    """Unpickling this object calls ``open(path, "w")``: it creates ``path``, nothing else."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self) -> tuple[Callable[..., Any], tuple[str, str]]:
        return (open, (self.path, "w"))


def test_an_unsafe_pickle_is_refused_and_nothing_runs(tmp_path: Path) -> None:
    marker = tmp_path / "MARKER_code_ran"
    ckpt = _fixture_ckpt("esrgan_x2_s2v")
    ckpt["callbacks"] = {"payload": MakesMarker(marker)}
    path = _save(tmp_path, ckpt, "evil.ckpt")
    for importer in (import_generator, import_registration):
        with pytest.raises(UnsafeCheckpointError, match="refuses to unpickle foreign objects") as exc:
            importer(path)  # type: ignore[operator]
        assert str(path) in str(exc.value) and "open" in str(exc.value)
    assert not marker.exists()


# ------------------------------------------------------------------------------------------------ export
@pytest.mark.parametrize("name", ["esrgan_x2_s2v", "carn_evoland"])
def test_export_of_an_imported_generator_passes_the_onnx_parity_check(tmp_path: Path, name: str) -> None:
    pytest.importorskip("onnxruntime")
    import yaml

    from sisrlib.export import DEFAULT_TOLERANCE_DN, export_checkpoint, onnx_runtime_session

    imported = import_generator(checkpoint(name))
    pair = export_checkpoint(checkpoint(name), tmp_path / f"{name}.onnx")  # what `sisr export` does
    assert pair.max_abs_diff_dn <= DEFAULT_TOLERANCE_DN
    sidecar = yaml.safe_load(pair.yaml_path.read_text(encoding="utf-8"))
    assert sidecar == {
        "bands": list(imported.bands),
        "factor": imported.factor,
        "margin": pair.margin,
        "model": f"{name}.onnx",
    }
    assert pair.margin >= imported.sisr.margin  # the network's margin (the export may round it up)
    # the ONNX model reproduces torchsisr's own DN pipeline on the fixture's input
    io = reference_io(name)
    got = onnx_runtime_session(pair.onnx_path).run(None, {"input": io["dn_input"].numpy()})[0]
    scale = torch.tensor(imported.standardisation.std).view(1, -1, 1, 1) * 10000.0
    assert float(((torch.from_numpy(got) - io["dn_output"]).abs() / scale).max()) <= 10 * TOL
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"{name}.onnx", f"{name}.yaml"]


# ------------------------------------------------------------------------------ full-size key layouts
FULL_SIZE = {
    # table: (bands, margin of the imported model, number of generator numbers, flow numbers or None)
    "sr_esrgan_x2_6rrdb.tsv": (["B2", "B3", "B4", "B8"], 66, 4_432_028, 6_445_986),
    "sr_esrgan_x4_5rrdb.tsv": (["B5", "B6", "B7", "B8A"], 110, 3_749_528, 6_445_986),
    "carn_evoland_10bands.tsv": (
        ["B2", "B3", "B4", "B8", "B5", "B6", "B7", "B8A", "B11", "B12"],
        43,
        None,
        None,
    ),
}


@pytest.mark.parametrize("table", sorted(FULL_SIZE))
def test_full_size_layouts_map_onto_our_modules(tmp_path: Path, table: str) -> None:
    """The key/shape tables of the paper's full-size checkpoints (zero weights, aliases kept) import without
    a run configuration: every tensor is used, the sizes and margins are the paper's."""
    bands, margin, numel, flow_numel = FULL_SIZE[table]
    state: dict[str, torch.Tensor] = {}
    for line in (FIXTURES / "full_size_state_dicts" / table).read_text(encoding="utf-8").splitlines():
        if line.startswith("#") or not line.strip():
            continue
        key, shape, _dtype, _kind, *alias = line.split("\t")
        if not key.startswith(("mean", "std", "generator.", "registration_module.")):
            continue  # discriminator, loss and metric networks are ignored by the importer
        if alias and alias[0]:
            state[key] = state[alias[0]]
            continue
        size = () if shape == "scalar" else tuple(int(s) for s in shape.split("x"))
        state[key] = torch.full(size, 0.2) if key.endswith("scale") else torch.zeros(size)
    state["std"] = torch.ones_like(state["std"])
    path = _save(tmp_path, {"global_step": 1, "state_dict": state}, "full.ckpt")
    imported = import_generator(path, bands=bands)
    assert imported.margin == margin
    if numel is not None:
        # torchsisr also counts its 4 residual-scaling scalars per RRDB, which are not parameters here
        assert isinstance(imported.sisr, ESRGANGenerator)
        assert sum(p.numel() for p in imported.sisr.parameters()) == numel - 4 * imported.sisr.num_blocks
    else:
        assert isinstance(imported.sisr, CARN)
        assert imported.sisr.features == 256 and imported.lr_bands == ("B5", "B6", "B7", "B8A", "B11", "B12")
    if flow_numel is not None:
        flow = import_registration(path, max_range=10.0)
        assert sum(p.numel() for p in flow.net.parameters()) == flow_numel
        assert (flow.depth, flow.start_filters, flow.min_skip_depth, flow.features) == (4, 64, 2, 32)
