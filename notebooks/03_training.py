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
# # 03 — Super-resolution training
#
# Trains one run from its params (baseline, geom: the HR target registered onto the LR input by the pre-trained flow network, geom+rad: plus the low-frequency radiometric correction). Training is skipped when the run's checkpoint is complete.
#
# The last table measures what the paper is about on the test split: the flow between the downscaled prediction and the input (geometric distortion left by the model, LR px) and the LR-fidelity error (radiometry of the input kept or not).

# %% tags=["parameters"]
params_file = "../params/smoke/03_training_x2_geomrad.yaml"
figures_dir = None

# %%
from pathlib import Path

import pandas as pd
from IPython.display import display

from sisrlib.checkpoint import load_generator, load_registration
from sisrlib.data.datamodule import build_datamodule
from sisrlib.experiments.training_analysis import distortion_summary, prediction_examples
from sisrlib.figures import training as plots
from sisrlib.pipeline import notebook_params
from sisrlib.training.fit import fit

params = notebook_params(params_file)
profile = Path(params_file).parent.name
figures = Path(figures_dir) if figures_dir else Path("figures") / profile
print(params.name, '->', params.output_dir)

# %% [markdown]
# ## Training (skipped when the run is complete)

# %%
result = fit(params)
print(('skipped, already trained: ' if result.skipped else 'trained: ') + f'{result.global_step} steps')
print('best checkpoint:', result.best_checkpoint)
plots.plot_loss_curves(result.metrics_csv, path=figures / f'03_{params.name}_losses.png');

# %% [markdown]
# ## Predictions beside bicubic and the target (test split)

# %%
generator = load_generator(result.best_checkpoint)
datamodule = build_datamodule(params.data, params.seed)
joint = params.model.lr_to_hr is not None  # the 10 m + 20 m EVOLAND model: notebook 08 shows and evaluates it
if joint:
    print('joint 10 m + 20 m model (bands ' + ' '.join(generator.target_bands) + '): see notebook 08')
else:
    examples = prediction_examples(generator, datamodule, n=3)
    plots.plot_predictions(examples, path=figures / f'03_{params.name}_predictions.png');

# %% [markdown]
# ## Distortion left in the predictions (test split)

# %%
if params.registration.checkpoint is not None and not joint:
    flow_net = load_registration(params.registration.checkpoint)
    summary = distortion_summary(generator, flow_net, datamodule, params.registration.channel,
                                 margin=params.training.validation_margin)
    display(pd.DataFrame([summary.as_dict()], index=[params.name]))
else:
    print('no registration network in these params: no geometric distortion measure')
