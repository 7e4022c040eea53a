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
# # 09 — Several kinds of model on one test split
#
# Every kind of model `sisr evaluate` takes, on the same test patches, through the one predictor contract
# (`sisrlib.predictors.open_model`): the bicubic baseline, this project's runs (training checkpoints), an
# exported ONNX model in the EVOLAND contract (DN in, DN out: any producer's; stage 06 wrote this one), and a
# checkpoint of torchsisr, the reference code of the paper (hal-04723225). With `TORCHSISR_SUPPORT_DATA`
# pointing at the paper's support data, the torchsisr model is a published checkpoint; without it there is no
# published checkpoint here, so one of our runs is **written in torchsisr's exact checkpoint layout and
# imported back** — the same import path, on weights we have (its row must then equal that run's row).
# One table, the spectra of every model on one figure, their first test patches side by side. One test batch:
# the comparison is a figure; the tables of the profile are notebook 04's.

# %% tags=["parameters"]
params_file = "../params/smoke/09_model_comparison.yaml"

# %%
import logging

from IPython.display import Image, Markdown, display

from sisrlib.experiments import report
from sisrlib.experiments.comparison import comparison_evaluation, comparison_figures, layout_copy_gap
from sisrlib.experiments.evaluation.runner import evaluate
from sisrlib.experiments.evaluation.tables import format_table
from sisrlib.pipeline import notebook_params

logging.basicConfig(level=logging.WARNING)
params = notebook_params(params_file)
params

# %%
evaluation = comparison_evaluation(params)
for run in evaluation.runs:
    print(run.checkpoint or run.params_file, f"({run.variant})" if run.variant else "")

# %%
result = evaluate(evaluation)
columns = ["psnr", "ssim", "lr_rmse", "geom_mean", "frr", "fro", "fru", "oracle_psnr", "oracle_geom"]
shown = format_table(result.table, [c for c in columns if c in result.table])
display(Markdown(report.to_markdown(shown)))
print(f"wrote {result.metrics_csv}")

# %% [markdown]
# The torchsisr row comes from the torchsisr importer: without the support data it is one of our runs written in
# torchsisr's layout (``sisrlib.interop.torchsisr.writer``) and read back, so it must equal that run's row; the
# ONNX row must equal the row of the run stage 06 exported, within the export's parity tolerance.

# %%
gap = layout_copy_gap(result.table)
if gap is not None:
    print(f"largest difference between the rows of {gap[0]} and {gap[1]}: {gap[2]:.3g}")

# %% [markdown]
# ## Spectra of every model, and their first test patches side by side

# %%
for path in comparison_figures(result, params):
    display(Image(filename=str(path)))
