"""Generate the tutorial notebooks of notebooks/tutorials/ (executed and checked by nbval in `make test`)."""

from write_notebook import write_notebook

write_notebook(
    "notebooks/tutorials/fda_metrics.ipynb",
    [
        (
            "md",
            """
# Tutorial — Frequency Domain Analysis on a pair of images

The FDA metrics of the paper compare the radial FFT amplitude profile of a prediction with those of the target (HR)
and of the bicubic-upsampled input (LR): **FRR** says which share of the possible restoration of high frequencies was
achieved (0 % = no better than bicubic, 100 % = the target's spectrum), **FRO** how far the prediction overshoots the
target's spectrum, **FRU** how far it falls below the input's. Here the "target" is a real Sentinel-2 10 m crop, the
input is that crop degraded ×2 (MTF 0.1 at the 20 m Nyquist), and we judge three "predictions": the bicubic input
itself, the target, and an over-sharpened target.
""",
        ),
        ("code", "crop_size = 128\nrow, col = 600, 700"),
        (
            "code",
            """
import torch

from sisrlib.data.embedded import load_scene
from sisrlib.degradation import mtf_downscale, upsample
from sisrlib.metrics import fda

scene = load_scene()
target = torch.from_numpy(scene.bands_10m[None, :, row : row + crop_size, col : col + crop_size].copy()).float()
target = target / 10000  # reflectance
lr = mtf_downscale(target, 2, mtf=0.1)
bicubic = upsample(lr, 2)
sharpened = target + 1.5 * (target - upsample(mtf_downscale(target, 2, 0.4), 2))
print(tuple(target.shape), tuple(lr.shape), tuple(bicubic.shape))
""",
        ),
        (
            "md",
            "Profiles with the reference's ring construction (`size = 2 W`): ring 0 is empty by construction.",
        ),
        (
            "code",
            """
size = 2 * crop_size
freqs, p_target = fda.fft_profile(target, size)
_, p_input = fda.fft_profile(bicubic, size)
_, p_sharp = fda.fft_profile(sharpened, size)
print("rings:", freqs.numel(), "| ring 0 empty:", bool(torch.isnan(p_target[:, 0]).all()))
t_db, i_db, s_db = fda.to_db(p_target), fda.to_db(p_input), fda.to_db(p_sharp)
""",
        ),
        (
            "code",
            """
# NBVAL_CHECK_OUTPUT
for name, pred_db in [("bicubic", i_db), ("target", t_db), ("sharpened", s_db)]:
    frr, arr, prr = fda.frr(pred_db, t_db, i_db)
    fro, fru = fda.fro_fru(pred_db, t_db, i_db)
    print(f"{name:10s} FRR {frr.mean().item():6.1f} %   FRO {fro.mean().item():5.1f} %   FRU {fru.mean().item():5.1f} %")
""",
        ),
        (
            "code",
            """
import matplotlib.pyplot as plt

fig, ax = plt.subplots(figsize=(5, 3.5))
for name, db in [("target (10 m)", t_db), ("bicubic input", i_db), ("sharpened", s_db)]:
    ax.plot(freqs[1:], db[2, 1:], label=name)
ax.set_xlabel("frequency (× Nyquist)")
ax.set_ylabel("signal attenuation (dB), B4")
ax.legend();
""",
        ),
    ],
)

write_notebook(
    "notebooks/tutorials/registration_example.ipynb",
    [
        (
            "md",
            """
# Tutorial — flows, warping and composition

Registration in this compendium is expressed with dense optical flows `[B, 2, H, W]` in pixels (channel 0 = x,
channel 1 = y). `warp(x, f)` samples `x` at `p + f(p)` (bicubic, reflection padding). The flows used to pre-train the
registration network are simulated as in the reference: a smooth wave plus a soft discontinuity along a random line.
""",
        ),
        ("code", "size = 96\nmax_range = 2.0\nseed = 3"),
        (
            "code",
            """
import torch

from sisrlib.data.embedded import load_scene
from sisrlib.registration import compose_flows, flow_norm, simulate_flow, warp

scene = load_scene()
image = torch.from_numpy(scene.bands_10m[None, 2:3, 400 : 400 + size, 900 : 900 + size].copy()).float() / 10000
generator = torch.Generator().manual_seed(seed)
flow = simulate_flow(1, size, size, max_range=max_range, generator=generator)
warped = warp(image, flow)
""",
        ),
        (
            "code",
            """
# NBVAL_CHECK_OUTPUT
print("zero flow is the identity:", torch.equal(warp(image, torch.zeros_like(flow)), image))
print(f"largest flow component: {flow.abs().max().item():.2f} px (bound 2 x max_range = {2 * max_range:.1f} px)")
""",
        ),
        (
            "md",
            """
Composition: warping by `a` then by `b` is warping by `b + warp(a, b)`. The reference returned the plain sum
`a + b` (a quirk, exact only for constant flows); both are available. To see the composition error rather than the
interpolation blur of warping twice, compare on a smooth (low-passed) version of the image.
""",
        ),
        (
            "code",
            """
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
""",
        ),
        (
            "code",
            """
import matplotlib.pyplot as plt

fig, axes = plt.subplots(1, 3, figsize=(10, 3.4))
axes[0].imshow(image[0, 0], cmap="gray"); axes[0].set_title("B4, 10 m")
axes[1].imshow(warped[0, 0], cmap="gray"); axes[1].set_title("warped")
im = axes[2].imshow(flow_norm(flow)[0]); axes[2].set_title("flow norm (px)")
fig.colorbar(im, ax=axes[2])
for ax in axes: ax.set_axis_off()
""",
        ),
    ],
)
