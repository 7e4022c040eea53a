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
# # 04 — Test-set evaluation and Frequency Domain Analysis
#
# Evaluates the trained runs of a params file (baseline, geom, geom+rad) and the bicubic baseline on the test split: pixel metrics against the **un-registered** target, LR fidelity (prediction ↓ vs input), geometric distortion (flow between the downscaled prediction and the input, with the same registration network for every row) and the FDA metrics (FRR, FRO, FRU) of the radial FFT profiles. On simulated (embedded) sites, the **oracle** metrics judge every model against the target brought exactly into the LR sensor's geometry and radiometry with the stored true flow and radiometric field: `oracle_psnr`, `oracle_ssim`, `oracle_frr`, and `oracle_geom`, the part of the true distortion (LR px) the prediction keeps (NaN on real data). Writes `metrics.csv` (read by notebook 07), the FFT-profile figure per dataset, the full-resolution comparison figure per dataset, the calibration of the distortion measure and the dataset-analysis table.

# %% tags=["parameters"]
params_file = "../params/smoke/04_evaluation_fda.yaml"

# %%
import logging

from IPython.display import Image, Markdown, display

from sisrlib.experiments import report
from sisrlib.experiments.evaluation.conventions import conventions_line
from sisrlib.experiments.evaluation.runner import evaluate
from sisrlib.experiments.evaluation.tables import format_table
from sisrlib.figures.evaluation import patch_figures, profile_figures
from sisrlib.pipeline import notebook_params

logging.basicConfig(level=logging.WARNING)
params = notebook_params(params_file)
params

# %%
result = evaluate(params)
display(Markdown(report.to_markdown(format_table(result.table))))
display(Markdown(conventions_line(result.conventions)))
print(f"wrote {result.metrics_csv}")

# %% [markdown]
# ## Against the truly aligned reference (simulated sites)
#
# The registration network's `geom_mean` beside the oracle `oracle_geom` (LR px; the distortion kept, fitted as a fraction `oracle_kept` of the true flow, 0 = the input's geometry, 1 = the target's, plus a constant translation of norm `oracle_offset`, LR px), and PSNR / FRR against the un-registered target beside the same against the oracle target.

# %%
columns = ["true_geom_mean", "geom_mean", "oracle_geom", "oracle_kept", "oracle_offset",
           "psnr", "oracle_psnr", "ssim",
           "oracle_ssim",
           "frr", "oracle_frr", "hf_excess_db"]
shown = format_table(result.table, [c for c in columns if c in result.table])
display(Markdown(report.to_markdown(shown)))

# %% [markdown]
# ## Signal attenuation per band: target, bicubic input and every model's prediction
#
# The radial FFT profiles (and FRR, FRO, FRU) are computed on the pixels every other metric scores, the patch
# less the evaluation margin, zero-padded to twice its width as torchsisr pads its patch (`fda_margin: cropped`).
# torchsisr takes the whole patch (`fda_margin: reference`, the paper profile's choice), margin included, where a
# network's convolutions see their zero padding and no loss constrains it: its untrained border then weighs on
# the highest frequencies.

# %%
for path in profile_figures(result, params.figures_dir):
    display(Image(filename=str(path)))

# %% [markdown]
# ## The first test patches at full resolution
#
# Input (LR pixels), bicubic, every model, the oracle target (simulated sites) and the target side by side, with one display stretch for every panel (2–98 % of the target per displayed band, written in the title): a colour difference between panels is a difference of the images.

# %%
for path in patch_figures(result, params.figures_dir):
    display(Image(filename=str(path)))

# %% [markdown]
# ## Dataset analysis
#
# Per testing site: PRR of the bicubic input (how much spectrum there is to restore), radiometric bias/RMSE of the downscaled target against the input (reflectance), geometric distortion between them (LR px) and, on embedded sites, the true flow and the registration network's end-point error.

# %%
analysis_csv = result.output_dir / "dataset_analysis.csv"
if params.dataset_analysis and analysis_csv.is_file():
    import pandas as pd

    analysis = pd.read_csv(analysis_csv)
    columns = [c for c in ("name", "site", "patches", "prr", "rad_bias", "rad_rmse", "geom_mean",
               "geom_std", "true_geom_mean", "epe_true") if c in analysis.columns]
    display(Markdown(report.to_markdown(analysis[columns])))

# %% [markdown]
# ## Calibration of the distortion measure
#
# What `geom_mean` (the registration network on the downscaled image, LR px) reads on known distortions of the first test batch's registration band: global shifts of 0.25 / 0.5 / 1.0 LR px (`true_px`), blurs (MTF at the HR Nyquist) and gains, which hold no motion. On simulated sites the image is the oracle target and the reference the real input, so `none` is the network's floor on a perfectly aligned prediction. A blur or a gain read as motion is the confound of a blurry model's non-geometric error with distortion; `oracle_geom` is blind to both.

# %%
calibration_csv = result.output_dir / "distortion_calibration.csv"
if params.calibration and calibration_csv.is_file():
    import pandas as pd

    display(Markdown(report.to_markdown(pd.read_csv(calibration_csv))))

# %% [markdown]
# ## Ceilings (simulated sites)
#
# Reference images built from the stored truth and scored like the models: `hr_radiometry`, the target warped into the input's geometry in the HR sensor's radiometry (what geom is trained to produce: its oracle PSNR is geom's best); `training_offset` and `test_offset`, the oracle target shifted by the mean true flow of the training or the test split (the part of the distortion a model without registration can predict from its input: `training_offset` is what baseline produces when it learns all it can, `test_offset` a model that knew the test site's own offset).

# %%
ceilings_csv = result.output_dir / "ceilings.csv"
if ceilings_csv.is_file():
    import pandas as pd

    ceilings = pd.read_csv(ceilings_csv)
    display(Markdown(report.to_markdown(ceilings[[c for c in ("dataset", "reference", *report.CEILING_COLUMNS)
                                                  if c in ceilings.columns]])))
