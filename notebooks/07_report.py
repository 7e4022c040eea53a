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
# # 07 — The results table
#
# Gathers the `metrics.csv` of every evaluated run of the profile (notebook 04) into the paper's results table
# (Markdown, CSV, LaTeX), draws the summary figure, and checks the paper's mechanism on every dataset: **geom** leaves
# less geometric distortion than **baseline** with a higher FRR; **geom+rad** keeps the input radiometry better than
# **geom**; bicubic is the floor. On the strong-distortion (s2v1-like) simulated sites the acceptance claims are checked
# with their numbers (FRU ≤ 2 %, FRR ≥ 15 %, spectrum above bicubic's beyond 0.5 Nyquist, residual distortion
# `geom_mean` and `oracle_geom` ≤ 0.30 LR px for geom and geom+rad and ≥ 0.6 for baseline, oracle PSNR above
# baseline's and bicubic's), and, when the weak-distortion (s2v2-like) sites are evaluated too, whether the
# registration gain grows with the site's true distortion (the dose-response). On the WorldStrat-like sites (HR in
# other radiometric units than the LR; the embedded profile) geom+rad's |LR bias| must be at most a third of geom's.
# A claim whose dataset is absent is not listed; one whose column is absent says "missing values".

# %% tags=["parameters"]
params_file = "../params/smoke/07_report.yaml"

# %%
from IPython.display import Image, Markdown, display

from sisrlib.experiments import report
from sisrlib.figures import report as report_figures
from sisrlib.pipeline import notebook_params

params = notebook_params(params_file)
params

# %%
table = report.gather(report.find_metrics_files(params.metrics_files))
headline = report.headline_table(table)
paths = report.write_tables(headline, params.figures_dir, params.table_name)
report.write_tables(table.drop(columns="source"), params.figures_dir, params.table_name + "_full")
display(Markdown(report.to_markdown(headline)))

# %% [markdown]
# ## The mechanism
#
# Each claim with its numbers. On simulated sites some claims are bounded by the data themselves: the ceilings of
# notebook 04 (reference images built from the stored truth, scored like the models) are quoted beside them, and
# tabled below.

# %%
ceilings = report.gather_ceilings(report.find_metrics_files(params.metrics_files))
checks = report.mechanism_frame(report.check_mechanism(table, ceilings))
report.write_tables(checks, params.figures_dir, params.table_name + "_mechanism")
display(Markdown(report.to_markdown(checks)))
if params.require_mechanism and not checks["holds"].all():
    raise AssertionError("the paper's mechanism does not hold on every dataset: see the table above")

# %%
if not ceilings.empty:
    report.write_tables(ceilings, params.figures_dir, params.table_name + "_ceilings")
    display(Markdown(report.to_markdown(ceilings)))

# %%
display(Image(filename=str(report_figures.plot_summary(table, params.figures_dir, params.table_name))))

# %% [markdown]
# ## Calibration of the distortion measure
#
# What `geom_mean` reads on known distortions of each dataset's first test batch (notebook 04): global shifts of
# 0.25 / 0.5 / 1.0 LR px, and blurs, gains and another patch's detail, which hold no motion; `above_floor_px` is the
# reading minus the network's floor on the undistorted (oracle-aligned) image.

# %%
calibration = report.gather_calibration(report.find_metrics_files(params.metrics_files))
if not calibration.empty:
    report.write_tables(calibration, params.figures_dir, params.table_name + "_calibration")
    display(Markdown(report.to_markdown(calibration)))

# %% [markdown]
# ## Dose-response: registration gain against the site's true distortion
#
# One point per dataset and variant (geom, geom+rad): the distortion removed (`geom_mean` and `oracle_geom` of
# baseline minus the variant's, LR px), the FRR gained and the oracle PSNR gained over baseline, against the mean norm
# of the site's true flow. Real datasets (no true flow) have no point.

# %%
dose = report.dose_response(table)
report.write_tables(dose, params.figures_dir, params.table_name + "_dose_response")
display(Markdown(report.to_markdown(dose)))
figure = report_figures.plot_dose_response(table, params.figures_dir, params.table_name)
if figure is not None:
    display(Image(filename=str(figure)))
