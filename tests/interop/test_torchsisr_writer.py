"""Our networks written in torchsisr's checkpoint layout (sisrlib.interop.torchsisr.writer, the inverse of the
importer): the importer reads them back exactly, the files hold what torchsisr's hold at the same keys, and
what torchsisr cannot express is refused."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from sisrlib.bands import Standardisation
from sisrlib.interop.torchsisr import (
    GENERATOR_PREFIX,
    REGISTRATION_PREFIX,
    RUN_CONFIG,
    import_generator,
    import_registration,
    load_flow_network,
    write_torchsisr_run,
)
from sisrlib.models.bicubic import BicubicInterpolation
from sisrlib.models.carn import CARN
from sisrlib.models.esrgan import ESRGANGenerator
from sisrlib.models.joint import JointSuperResolution
from sisrlib.registration.network import FlowEstimator

B4 = ("B2", "B3", "B4", "B8")
B10 = ("B2", "B3", "B4", "B8", "B5", "B6", "B7", "B8A", "B11", "B12")


def stats(bands: tuple[str, ...]) -> Standardisation:
    n = len(bands)
    return Standardisation(
        bands, tuple(0.1 + 0.01 * i for i in range(n)), tuple(0.05 + 0.01 * i for i in range(n))
    )


def flow_net() -> FlowEstimator:
    torch.manual_seed(1)
    net = FlowEstimator(
        10.0, depth=3, start_filters=4, min_skip_depth=1, features=8, input_normalisation="reference_rows"
    )
    return net.eval()


@pytest.mark.parametrize("factor", [2.0, 4.0])
def test_esrgan_and_flow_round_trip_exactly(tmp_path: Path, factor: float) -> None:
    torch.manual_seed(0)
    net = ESRGANGenerator(4, factor=factor, num_blocks=2, latent_size=8, growth_channels=4).eval()
    flow = flow_net()
    path = write_torchsisr_run(tmp_path / "run" / "last.ckpt", stats(B4), net, flow, channel=1, global_step=7)
    assert (path.parent / RUN_CONFIG).is_file()
    imported = import_generator(path)
    assert (imported.bands, imported.factor, imported.global_step) == (B4, factor, 7)
    assert imported.standardisation.mean == pytest.approx(stats(B4).mean, abs=1e-7)
    x = torch.randn(2, 4, 10, 12)
    with torch.no_grad():
        assert torch.equal(imported.model(x), net(x))
    reg = import_registration(path)
    assert (reg.max_range, reg.channel, reg.depth, reg.start_filters, reg.min_skip_depth) == (
        10.0,
        1,
        3,
        4,
        1,
    )
    left, right = torch.randn(2, 16, 24), torch.randn(2, 16, 24)
    with torch.no_grad():
        assert torch.equal(reg.net(left, right), flow(left, right))
        assert torch.equal(load_flow_network(path)(left, right), flow(left, right))


def test_the_file_has_torchsisr_keys(tmp_path: Path) -> None:
    net = ESRGANGenerator(4, factor=2.0, num_blocks=1, latent_size=8, growth_channels=4)
    path = write_torchsisr_run(tmp_path / "last.ckpt", stats(B4), net, flow_net())
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    assert "hyper_parameters" not in ckpt and ckpt["global_step"] == 0
    keys = list(ckpt["state_dict"])
    assert keys[:2] == ["mean", "std"]
    for key in (
        "encoder.blocks.0.weight",
        "encoder.blocks.1.scale",
        "encoder.blocks.1.module.block_2.module.module.4.conv.bias",
        "encoder.blocks.2.weight",
        "decoder.blocks.upsampling_0.block.0.weight",
        "decoder.blocks.conv.2.weight",
    ):
        assert GENERATOR_PREFIX + key in keys
    for key in ("unet.conv_final.weight", "unet.down_convs.2.conv2.bias", "unet.up_convs.0.upconv.1.weight"):
        assert REGISTRATION_PREFIX + key in keys
    assert ckpt["state_dict"][GENERATOR_PREFIX + "encoder.blocks.1.scale"].item() == pytest.approx(0.2)


def test_joint_carn_with_shared_weights_round_trips(tmp_path: Path) -> None:
    torch.manual_seed(0)
    carn = CARN(10, factor=2.0, groups=4, shared_weights=True, features_per_factor=2, n_cascading=2, n_eres=3)
    joint = JointSuperResolution(carn, BicubicInterpolation(6, 2.0)).eval()
    path = write_torchsisr_run(tmp_path / "last.ckpt", stats(B10), joint)
    state = torch.load(path, map_location="cpu", weights_only=True)["state_dict"]
    shared = GENERATOR_PREFIX + "cascading_blocks.0.residual_blocks.{}.net.conv_1.weight"
    assert state[shared.format(1)].data_ptr() == state[shared.format(0)].data_ptr()  # aliases, as torchsisr
    imported = import_generator(path)
    assert imported.lr_bands == B10[4:] and "BicubicInterpolation" in imported.provenance["lr_to_hr"]
    hr, lr = torch.randn(1, 4, 16, 16), torch.randn(1, 6, 8, 8)
    with torch.no_grad():
        assert torch.equal(imported.model(hr, lr), joint(hr, lr))


def test_what_torchsisr_cannot_hold_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="×2 stages only"):
        write_torchsisr_run(tmp_path / "a.ckpt", stats(B4), ESRGANGenerator(4, factor=3.0, num_blocks=1))
    ours = FlowEstimator(
        10.0, depth=2, start_filters=2, min_skip_depth=1, features=4
    )  # per-image normalisation
    with pytest.raises(ValueError, match="normalises each image row"):
        write_torchsisr_run(tmp_path / "b.ckpt", stats(B4), flow=ours)
    with pytest.raises(ValueError, match="standardisation has 10"):
        write_torchsisr_run(tmp_path / "c.ckpt", stats(B10), ESRGANGenerator(4, num_blocks=1))
    path = write_torchsisr_run(tmp_path / "d" / "last.ckpt", stats(B4), flow=flow_net())
    with pytest.raises(FileExistsError, match="not overwritten"):
        write_torchsisr_run(path, stats(B4), flow=flow_net())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d"]  # nothing left by the refusals
