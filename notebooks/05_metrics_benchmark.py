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
# # 05 — Metrics benchmark
#
# How do image-quality metrics respond to the distortions of cross-sensor super-resolution? HR patches are distorted one distortion at a time — sub-pixel shift, contrast loss, noise, periodic pattern — crossed with blur levels (MTF), and every metric compares them with the undistorted patch (torchsisr's metrics benchmark). All metrics see the same simulated patches. The FDA metrics (FRR, …) need an "input" spectrum: `fda_input: simulated` (ours, the HR patch degraded with MTF `input_mtf` and bicubic-upsampled) or `sentinel2` (torchsisr's, the real Sentinel-2 patch bicubic-upsampled); `pattern_kind` (`seeded` ours, `reference` torchsisr's 4 × 4 table), `blur_padding` (`reflect` ours, `zeros` torchsisr's) and `tv_norm` (`l1` ours, per pixel; `l2` torchsisr's, piq's L2 total variation) choose the other conventions; the params below say which ones this run uses. Metrics whose pretrained weights are not present locally are skipped (listed below), and so are the optional piq metrics (IW-SSIM, DSS, FSIM, SR-SIM, MDSI, VSI, DISTS, CLIP-IQA) unless piq and a torchvision build matching the installed torch are installed; the default metrics need only torch and torchmetrics, and LPIPS, PieAPP and BRISQUE are our own implementations that run when their weight files are present.

# %% tags=["parameters"]
params_file = "../params/smoke/05_metrics_benchmark.yaml"

# %%
import logging

from IPython.display import Image, Markdown, display

from sisrlib.experiments.metrics_benchmark import runner, summary
from sisrlib.pipeline import notebook_params

logging.basicConfig(level=logging.WARNING)
params = notebook_params(params_file)
params

# %%
result = runner.benchmark(params)
for name, reason in result.skipped.items():
    print(f"skipped {name}: {reason}")

# %% [markdown]
# ## Which metric responds to which distortion
#
# Range of each metric along each distortion (without blur), and across blur levels, divided by the metric's largest range: 1 = the distortion it responds to most, 0 = ignored; the sign gives the direction.
#
# FRR_Noise reads 0 in this table although it is not 0 in the figures: FRR counts a prediction's spectrum only up to the target's, so noise added to an unblurred patch (the column's MTF "none") restores nothing and leaves FRR at 100 % in both frequency ranges. Only after a blur has removed the highest frequencies does noise refill them — FRR over 0.8–1.0 Nyquist then exceeds FRR over 0.6–0.8 and FRR_Noise turns positive (see its figure: the MTF 0.01 and 0.1 curves), then falls back to 0 when the noise saturates both ranges.

# %%
display(Markdown(summary.summary_markdown(result.summary)))

# %% [markdown]
# ## Responses (one figure per metric: four distortions, one curve per MTF)

# %%
for path in result.files:
    if path.suffix == ".png":
        display(Image(filename=str(path)))
