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
# # 02 — Registration network pre-training
#
# Pre-trains the optical-flow network `R` of the paper on one dataset, self-supervised: `R(simulated LR, real LR)` must be consistent with random known warps, unbiased, symmetric, and align the simulated band onto the real one. If the run is already complete (its `last.ckpt` reached `max_steps`), training is skipped and the checkpoint is loaded.
#
# On the embedded (simulated) sites the true flows are known: the test split measures the end-point error (EPE) of the network against them.

# %% tags=["parameters"]
params_file = "../params/smoke/02_registration_x2.yaml"
figures_dir = None

# %%
from pathlib import Path

from sisrlib.checkpoint import load_registration
from sisrlib.data.datamodule import build_datamodule
from sisrlib.experiments.training_analysis import evaluate_registration
from sisrlib.figures import training as plots
from sisrlib.pipeline import notebook_params
from sisrlib.training.fit import fit

params = notebook_params(params_file)
profile = Path(params_file).parent.name
figures = Path(figures_dir) if figures_dir else Path("figures") / profile
print(params.name, '->', params.output_dir)

# %% [markdown]
# ## Pre-training (skipped when the run is complete)

# %%
result = fit(params)
print(('skipped, already trained: ' if result.skipped else 'trained: ') + f'{result.global_step} steps')
print('best checkpoint:', result.best_checkpoint)
plots.plot_loss_curves(result.metrics_csv, path=figures / f'02_{params.name}_losses.png');

# %% [markdown]
# ## Accuracy against the true flows of the test split

# %%
net = load_registration(result.best_checkpoint)
datamodule = build_datamodule(params.data, params.seed)
evaluation = evaluate_registration(net, params, datamodule, split='test')
print(f'test patches: {evaluation.n_patches}')
print(f'mean end-point error: {evaluation.mean_epe:.4f} LR px')
print(f'mean true flow magnitude: {evaluation.mean_true_norm:.4f} LR px')
print(f'EPE / true flow magnitude: {evaluation.ratio:.1%}')

# %%
plots.plot_flows(evaluation, path=figures / f'02_{params.name}_flows.png');

# %%
plots.plot_epe_vs_amplitude(evaluation, path=figures / f'02_{params.name}_epe.png');

# %%
plots.plot_overlays(evaluation, path=figures / f'02_{params.name}_overlays.png');
