"""ONNX export: the EVOLAND contract to the letter, units, dynamic axes, verification and atomic writes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
import yaml

from sisrlib.bands import BAND_RESOLUTION_M, STANDARDISATION, standardisation
from sisrlib.cli import main
from sisrlib.export import ExportError, export_checkpoint, export_generator
from sisrlib.models.dn_model import DNModel
from sisrlib.models.params import ModelParams
from sisrlib.predictors.contract import aligned_margin
from tests.helpers.export_helpers import BANDS, TinySR, export_tiny


def _evoland_run(yaml_path: Path, dn: np.ndarray) -> tuple[dict, np.ndarray]:
    """Load a pair the way the EVOLAND tool does and run it on ``dn`` ``[1, C, h, w]``."""
    with open(yaml_path) as stream:
        card = yaml.safe_load(stream)
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    options.use_deterministic_compute = True
    session = ort.InferenceSession(
        str(yaml_path.parent / card["model"]), sess_options=options, providers=["CPUExecutionProvider"]
    )
    return card, session.run(None, {"input": dn.astype(np.float32)})[0]


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_pair_follows_the_contract(tmp_path: Path) -> None:
    pair = export_tiny(tmp_path, "wsx2_tiny")
    assert pair.onnx_path == tmp_path / "wsx2_tiny.onnx"
    assert pair.yaml_path == tmp_path / "wsx2_tiny.yaml"
    assert _leftovers(tmp_path) == ["wsx2_tiny.onnx", "wsx2_tiny.yaml"]
    card = yaml.safe_load(pair.yaml_path.read_text())
    assert set(card) == {"bands", "factor", "margin", "model"}
    assert card["bands"] == list(BANDS) and all(type(b) is str for b in card["bands"])
    assert type(card["factor"]) is float and card["factor"] == 2.0
    # The network's margin 2·2 + 1 = 5 output px is 2.5 px of 10 m: rounded up to 6 (3 px).
    assert type(card["margin"]) is int and card["margin"] == 6 and TinySR(factor=2).margin == 5
    assert pair.margin == 6 and pair.model_margin == 5
    assert card["model"] == "wsx2_tiny.onnx"  # relative to the yaml: the bare file name

    proto = onnx.load(str(pair.onnx_path))
    onnx.checker.check_model(proto, full_check=True)
    assert {o.domain: o.version for o in proto.opset_import}[""] == 17
    initializers = {i.name for i in proto.graph.initializer}
    inputs = [i for i in proto.graph.input if i.name not in initializers]
    assert [i.name for i in inputs] == ["input"]
    assert [o.name for o in proto.graph.output] == ["output"]
    for value in (inputs[0], proto.graph.output[0]):
        assert value.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
        dims = value.type.tensor_type.shape.dim
        assert len(dims) == 4
        assert dims[1].dim_value == len(BANDS)
        assert all(dims[a].dim_param for a in (0, 2, 3)), "batch, height and width must be dynamic"
    assert pair.max_abs_diff_dn <= 0.5


def test_evoland_loading_constant_image_gives_band_means(tmp_path: Path) -> None:
    """A network that outputs zeros (standardised) returns the band means × 10000 whatever the DN input."""
    pair = export_tiny(tmp_path, "zeros", zero=True, residual=False)
    dn = np.full((1, 4, 20, 28), 1234.0, dtype=np.float32)
    card, out = _evoland_run(pair.yaml_path, dn)
    assert out.shape == (1, 4, 40, 56)
    means = np.asarray(STANDARDISATION["evoland"].select(card["bands"]).mean) * 10000
    np.testing.assert_allclose(out, np.broadcast_to(means[None, :, None, None], out.shape), atol=0.05)


def test_identity_network_returns_the_input_dn(tmp_path: Path) -> None:
    """Network = nearest up-sampling in standardised space: the graph returns the input DN (round trip)."""
    pair = export_tiny(tmp_path, "identity", factor=4, zero=True, residual=True)
    rng = np.random.default_rng(0)
    dn = rng.integers(0, 10000, size=(1, 4, 9, 13)).astype(np.float32)
    card, out = _evoland_run(pair.yaml_path, dn)
    assert card["factor"] == 4.0 and card["margin"] == 12  # 2·4 + 1 = 9 rounded up to whole 10 m px
    assert out.shape == (1, 4, 36, 52)
    expected = np.repeat(np.repeat(dn, 4, axis=2), 4, axis=3)
    np.testing.assert_allclose(out, expected, atol=0.02)


def test_dynamic_axes_accept_any_batch_and_size(tmp_path: Path) -> None:
    pair = export_tiny(tmp_path)
    session = ort.InferenceSession(str(pair.onnx_path), providers=["CPUExecutionProvider"])
    model = TinySR().eval()
    wrapper = DNModel(model, standardisation("evoland", BANDS))
    for shape in [(1, 4, 16, 16), (3, 4, 7, 31), (2, 4, 50, 9)]:
        dn = np.random.default_rng(1).uniform(0, 8000, size=shape).astype(np.float32)
        out = session.run(None, {"input": dn})[0]
        assert out.shape == (shape[0], 4, shape[2] * 2, shape[3] * 2)
        with torch.no_grad():
            expected = wrapper(torch.from_numpy(dn)).numpy()
        assert np.abs(out - expected).max() < 0.5


def test_opset_is_configurable(tmp_path: Path) -> None:
    model = TinySR().eval()
    pair = export_generator(model, standardisation("evoland"), BANDS, tmp_path / "m.onnx", opset=18)
    proto = onnx.load(str(pair.onnx_path))
    assert {o.domain: o.version for o in proto.opset_import}[""] == 18


def test_disagreement_fails_and_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sisrlib.export as export

    monkeypatch.setattr(export, "verify_parity", lambda *args, **kwargs: 3.0)
    with pytest.raises(ExportError, match=r"disagree by 3 DN.*tolerance 0.5 DN"):
        export_generator(TinySR().eval(), standardisation("evoland"), BANDS, tmp_path / "bad.onnx")
    assert _leftovers(tmp_path) == []


def test_failed_export_keeps_the_previous_pair(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = export_tiny(tmp_path, "m")
    before = (first.onnx_path.read_bytes(), first.yaml_path.read_text())
    import sisrlib.export as export

    monkeypatch.setattr(export, "verify_parity", lambda *args, **kwargs: float("nan"))
    with pytest.raises(ExportError):
        export_tiny(tmp_path, "m", factor=4)
    assert _leftovers(tmp_path) == ["m.onnx", "m.yaml"]
    assert (first.onnx_path.read_bytes(), first.yaml_path.read_text()) == before


def test_bad_arguments(tmp_path: Path) -> None:
    model = TinySR().eval()
    stats = standardisation("evoland")
    with pytest.raises(ValueError, match="3 band names"):
        export_generator(model, stats, ("B2", "B3", "B4"), tmp_path / "m.onnx")
    with pytest.raises(ValueError, match="unknown Sentinel-2 band"):
        export_generator(model, stats, ("B2", "B3", "B4", "B9"), tmp_path / "m.onnx")
    with pytest.raises(ValueError, match=r"\.onnx"):
        export_generator(model, stats, BANDS, tmp_path / "m.pt")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        export_generator(model, stats, BANDS, tmp_path / "missing" / "m.onnx")
    with pytest.raises(ValueError, match="opset"):
        export_generator(model, stats, BANDS, tmp_path / "m.onnx", opset=3)
    assert _leftovers(tmp_path) == []


def _fake_checkpoint(
    path: Path,
    model_params: ModelParams,
    bands: tuple[str, ...],
    stats: str,
    lr_bands: tuple[str, ...] = (),
) -> None:
    """A checkpoint in the layout of sisrlib.training (params, bands in hyper_parameters; generator.*)."""
    from sisrlib.data.params import DataParams
    from sisrlib.models.registry import build_generator
    from sisrlib.run_params import ExperimentParams, TrainingParams

    params = ExperimentParams(
        name="fake",
        data=DataParams(dataset="sen2venus", root="data/none"),
        output_dir=str(path.parent),
        model=model_params,
        training=TrainingParams(standardisation=stats),  # type: ignore[arg-type]
    )
    torch.manual_seed(0)
    targets = bands + lr_bands
    n_lr = len(lr_bands) if lr_bands else None
    generator = build_generator(model_params, len(bands), len(targets), lr_bands=n_lr)
    torch.save(
        {
            "state_dict": {f"generator.{k}": v for k, v in generator.state_dict().items()},
            "hyper_parameters": {
                "params": params.to_mapping(),
                "input_bands": list(bands),
                "target_bands": list(targets),
                "lr_bands": list(lr_bands),
                "factor": model_params.factor,
            },
            "global_step": 1,
        },
        path,
    )


@pytest.fixture(scope="module")
def esrgan_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("sisrlib.checkpoint")
    path = tmp_path_factory.mktemp("ckpt") / "best.ckpt"
    mp = ModelParams(generator="esrgan", num_blocks=1, latent_size=8, growth_channels=8)
    _fake_checkpoint(path, mp, BANDS, "sen2venusx2")
    return path


def test_cli_export_of_an_esrgan_checkpoint(
    esrgan_checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "s2v2x2.onnx"
    assert main(["export", str(esrgan_checkpoint), "--output", str(out)]) == 0
    assert "wrote" in capsys.readouterr().out
    card = yaml.safe_load(out.with_suffix(".yaml").read_text())
    # ESRGAN margin in output px = (5·blocks + 2)·factor + 2 (contract).
    assert card == {
        "bands": list(BANDS),
        "factor": 2.0,
        "margin": (5 * 1 + 2) * 2 + 2,
        "model": "s2v2x2.onnx",
    }
    dn = np.random.default_rng(0).uniform(0, 5000, (1, 4, 24, 24)).astype(np.float32)
    _, got = _evoland_run(out.with_suffix(".yaml"), dn)
    from sisrlib.predictors.checkpoints import dn_model_from_checkpoint

    with torch.no_grad():
        expected = dn_model_from_checkpoint(esrgan_checkpoint)(torch.from_numpy(dn)).numpy()
    assert np.abs(got - expected).max() < 0.5


def test_cli_export_default_output_is_beside_the_checkpoint(esrgan_checkpoint: Path) -> None:
    pair = export_checkpoint(esrgan_checkpoint)
    assert pair.onnx_path == esrgan_checkpoint.with_suffix(".onnx")
    assert pair.yaml_path.is_file()


def test_cli_export_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["export", str(tmp_path / "nope.ckpt")]) == 2
    assert "nope.ckpt does not exist" in capsys.readouterr().err
    junk = tmp_path / "junk.ckpt"
    junk.write_bytes(b"not a checkpoint")
    assert main(["export", str(junk), "--output", str(tmp_path / "j.onnx")]) == 2
    assert "junk.ckpt" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["junk.ckpt"]


def test_joint_checkpoint_exports_its_sisr_network_on_the_10m_grid(tmp_path: Path) -> None:
    """As in the reference: the 10 m + 20 m model is exported without its bicubic 20 m branch."""
    pytest.importorskip("sisrlib.checkpoint")
    mp = ModelParams(generator="esrgan", num_blocks=1, latent_size=8, growth_channels=8, lr_to_hr="bicubic")
    path = tmp_path / "joint.ckpt"
    _fake_checkpoint(path, mp, BANDS, "evoland", lr_bands=("B5", "B6", "B7", "B8A"))
    pair = export_checkpoint(path)
    card = yaml.safe_load(pair.yaml_path.read_text())
    assert card["bands"] == ["B2", "B3", "B4", "B8", "B5", "B6", "B7", "B8A"]
    assert card["margin"] == 16 and card["factor"] == 2.0
    _, out = _evoland_run(pair.yaml_path, np.full((1, 8, 12, 12), 1500.0, dtype=np.float32))
    assert out.shape == (1, 8, 24, 24)


@pytest.mark.parametrize(
    ("margin", "factor", "bands", "expected"),
    [
        (30, 4.0, ("B5", "B6", "B7", "B8A"), 32),  # 7.5 px of 20 m -> 8
        (110, 4.0, ("B5", "B6", "B7", "B8A"), 112),
        (130, 4.0, BANDS, 132),  # 32.5 px of 10 m -> 33
        (66, 2.0, BANDS, 66),
        (41, 2.0, (*BANDS, "B5", "B6", "B7", "B8A", "B11", "B12"), 44),  # 11 px of 20 m
        (32, 2.0, (*BANDS, "B5", "B6", "B7", "B8A", "B11", "B12"), 32),  # the tool's default CARN
        (5, 2.0, BANDS, 6),
        (0, 2.0, BANDS, 0),
        (7, 3.0, BANDS, 9),
        (4, 1.0, ("B5", "B11"), 4),
    ],
)
def test_aligned_margin_known_answers(
    margin: int, factor: float, bands: tuple[str, ...], expected: int
) -> None:
    assert aligned_margin(margin, factor, bands) == expected


@pytest.mark.parametrize("factor", [1.0, 2.0, 3.0, 4.0, 2.5])
@pytest.mark.parametrize(
    "bands", [BANDS, ("B5", "B6", "B7", "B8A", "B11", "B12"), (*BANDS, "B11"), ("B8", "B12")]
)
def test_aligned_margin_is_whole_pixels_of_every_band_grid(factor: float, bands: tuple[str, ...]) -> None:
    """The tool pads tiles by margin x (source / factor) metres: whole pixels of every band, smallest such."""
    source = 10.0 if any(b in BANDS for b in bands) else 20.0

    def whole(margin: int) -> bool:
        pixels = [margin * source / factor / BAND_RESOLUTION_M[b] for b in bands]
        return all(abs(p - round(p)) < 1e-9 for p in pixels)

    for margin in range(0, 40):
        got = aligned_margin(margin, factor, bands)
        assert got >= margin and whole(got)
        assert not any(whole(m) for m in range(margin, got))  # the smallest such margin
        assert aligned_margin(got, factor, bands) == got


def test_export_writes_the_aligned_margin(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    mixed = (*BANDS, "B5", "B6", "B7", "B8A", "B11", "B12")
    pair = export_tiny(tmp_path, "mixed", factor=2, bands=mixed)
    assert (pair.model_margin, pair.margin) == (5, 8)  # 2.5 px of 20 m -> 4 x 20 m / 5 m
    assert yaml.safe_load(pair.yaml_path.read_text())["margin"] == 8
    pair = export_tiny(tmp_path, "x4_20m", factor=4, bands=("B5", "B6", "B7", "B8A"))
    assert (pair.model_margin, pair.margin) == (9, 12)
    assert yaml.safe_load(pair.yaml_path.read_text())["margin"] == 12
