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
# # Tutorial — flows, warping and composition
#
# Registration in this compendium is expressed with dense optical flows `[B, 2, H, W]` in pixels (channel 0 = x,
# channel 1 = y). `warp(x, f)` samples `x` at `p + f(p)` (bicubic, reflection padding). The flows used to pre-train the
# registration network are simulated as in the reference: a smooth wave plus a soft discontinuity along a random line.

# %% tags=["parameters"]
size = 96
max_range = 2.0
seed = 3

# %%
import torch

from sisrlib.data.embedded_scene import load_scene
from sisrlib.flow import compose_flows, flow_norm, simulate_flow, warp

scene = load_scene()
crop = scene.bands_10m[None, 2:3, 400 : 400 + size, 900 : 900 + size]
image = torch.from_numpy(crop.copy()).float() / 10000
generator = torch.Generator().manual_seed(seed)
flow = simulate_flow(1, size, size, max_range=max_range, generator=generator)
warped = warp(image, flow)

# %%
# NBVAL_CHECK_OUTPUT
print("zero flow is the identity:", torch.equal(warp(image, torch.zeros_like(flow)), image))
print(f"largest flow component: {flow.abs().max().item():.2f} px "
      f"(bound 2 x max_range = {2 * max_range:.1f} px)")

# %% [markdown]
# Composition: warping by `a` then by `b` is warping by `b + warp(a, b)`. The reference returned the plain sum
# `a + b` (a quirk, exact only for constant flows); both are available. To see the composition error rather than the
# interpolation blur of warping twice, compare on a smooth (low-passed) version of the image.

# %%
# NBVAL_CHECK_OUTPUT
second = simulate_flow(1, size, size, max_range=max_range, generator=generator)
from sisrlib.degradation import blur

smooth = blur(image, mtf=0.05)
twice = warp(warp(smooth, flow), second)
inner = (slice(None), slice(None), slice(12, -12), slice(12, -12))
for mode in ("exact", "reference"):
    once = warp(smooth, compose_flows(flow, second, mode=mode))
    error = (once - twice)[inner].abs().mean().item() * 10000
    print(f"{mode:9s} composition: mean error {error:6.1f} DN")

# %%
import matplotlib.pyplot as plt

fig, axes = plt.subplots(1, 3, figsize=(10, 3.4))
axes[0].imshow(image[0, 0], cmap="gray")
axes[0].set_title("B4, 10 m")
axes[1].imshow(warped[0, 0], cmap="gray")
axes[1].set_title("warped")
im = axes[2].imshow(flow_norm(flow)[0])
axes[2].set_title("flow norm (px)")
fig.colorbar(im, ax=axes[2])
for ax in axes:
    ax.set_axis_off()
