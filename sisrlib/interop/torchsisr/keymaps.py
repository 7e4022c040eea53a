"""Which torchsisr weights become which of ours: ``(ours, theirs)`` pairs of module prefixes (each with a
``.weight`` and a ``.bias``), keys without the ``generator.sisr_model.`` / ``registration_module.`` prefix.

One table per network, read in both directions: the importer fills our modules from their keys, the writer
(:mod:`sisrlib.interop.torchsisr.writer`) writes our modules under their keys.
"""

from __future__ import annotations

Pairs = list[tuple[str, str]]


def esrgan_pairs(num_blocks: int, num_upsampling: int) -> Pairs:
    """ESRGANGenerator: ``first_conv``, ``trunk.i.blocks.j.convs.k``, ``trunk_conv``, ``upsampling.u.conv``,
    ``hr_conv``, ``last_conv`` ↔ torchsisr's ``encoder.blocks.*`` / ``decoder.blocks.*``."""
    pairs = [("first_conv", "encoder.blocks.0")]
    for i in range(num_blocks):
        for j in range(3):
            for k in range(5):
                pairs.append(
                    (
                        f"trunk.{i}.blocks.{j}.convs.{k}",
                        f"encoder.blocks.{i + 1}.module.block_{j}.module.module.{k}.conv",
                    )
                )
    pairs.append(("trunk_conv", f"encoder.blocks.{num_blocks + 1}"))
    pairs += [
        (f"upsampling.{u}.conv", f"decoder.blocks.upsampling_{u}.block.0") for u in range(num_upsampling)
    ]
    pairs += [
        ("hr_conv", "decoder.blocks.conv.0"),
        ("last_conv", "decoder.blocks.conv.2"),
    ]
    return pairs


def esrgan_scales(num_blocks: int) -> list[str]:
    """torchsisr's 0-d residual-scaling parameters (one per RRDB, one per dense block): not ours."""
    keys = []
    for i in range(num_blocks):
        keys.append(f"encoder.blocks.{i + 1}.scale")
        keys += [f"encoder.blocks.{i + 1}.module.block_{j}.scale" for j in range(3)]
    return keys


def carn_pairs(n_cascading: int, n_eres: int, shared: bool) -> Pairs:
    """CARN: with ``shared`` weights every torchsisr ``residual_blocks.e`` (aliases of one tensor) maps onto
    our single ``eres_blocks.0``."""
    pairs = [("input_conv", "input_conv")]
    for c in range(n_cascading):
        for e in range(n_eres):
            ours_e = 0 if shared else e
            for ours, theirs in (
                ("conv1", "net.conv_1"),
                ("conv2", "net.conv_2"),
                ("pointwise", "single_conv"),
            ):
                pairs.append(
                    (
                        f"cascading_blocks.{c}.eres_blocks.{ours_e}.{ours}",
                        f"cascading_blocks.{c}.residual_blocks.{e}.{theirs}",
                    )
                )
            pairs.append(
                (
                    f"cascading_blocks.{c}.pointwise.{e}",
                    f"cascading_blocks.{c}.residual_1d_conv.{e}",
                )
            )
        pairs.append((f"pointwise.{c}", f"residual_1d_conv.{c}"))
    pairs += [("output_conv1", "output_conv1"), ("output_conv2", "output_conv2")]
    return pairs


def flow_pairs(depth: int) -> Pairs:
    """FlowEstimator ↔ torchsisr's ``UnetOpticalFlowEstimation``."""
    pairs = []
    for i in range(depth):
        pairs += [(f"unet.down.{i}.conv1", f"unet.down_convs.{i}.conv1")]
        pairs += [(f"unet.down.{i}.conv2", f"unet.down_convs.{i}.conv2")]
    for i in range(depth - 1):
        pairs += [
            (f"unet.up.{i}.reduce", f"unet.up_convs.{i}.upconv.1"),
            (f"unet.up.{i}.convs.conv1", f"unet.up_convs.{i}.conv1"),
            (f"unet.up.{i}.convs.conv2", f"unet.up_convs.{i}.conv2"),
        ]
    pairs += [("unet.head", "unet.conv_final"), ("head", "final_conv")]
    return pairs
