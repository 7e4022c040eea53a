"""Parameters of a training or registration pre-training run (the top level of ``params/*/02_*.yaml`` and
``params/*/03_*.yaml``).

Defaults follow the reference's paper configuration (torchsisr): ESRGAN trained with 0.1·MSE + LPIPS,
a relativistic (DRA-BCE) UNet-SN discriminator of weight 0.005 from step 1340, Adam lr 2e-4 with cosine warm
restarts (T_0 1500, T_mult 2), validation margin 64 px.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, ClassVar, Literal

import yaml

from sisrlib.bands import StandardisationName
from sisrlib.data.params import DataParams
from sisrlib.degradation import PSF_KERNELS, PsfKernel
from sisrlib.models.params import DiscriminatorParams, ModelParams
from sisrlib.params import from_mapping, load, read_yaml, to_mapping
from sisrlib.registration.pretraining import PENALTIES, Composition, Penalty
from sisrlib.registration.target import RadiometricModel
from sisrlib.simulation_params import SimulationParams, WaldParams

#: Lightning accelerators this project can run on (``tpu``/``hpu`` need packages it does not install).
ACCELERATORS = ("auto", "cpu", "gpu", "cuda", "mps")
#: Lightning precisions.
PRECISIONS = ("32-true", "16-mixed", "bf16-mixed", "16-true", "bf16-true", "64-true", "32", "16", "bf16")


def _at_least(section: str, params: Any, **minimum: float) -> None:
    """ValueError naming ``section.key`` for a numeric field below its ``minimum`` (null fields pass)."""
    for key, low in minimum.items():
        value = getattr(params, key)
        if value is not None and value < low:
            raise ValueError(f"{section}.{key} must be >= {low:g}, got {value}")


@dataclass(frozen=True)
class RegistrationParams:
    """The flow network, its weights, and how it is used.

    ``checkpoint``: a pre-training run's checkpoint (``.../checkpoints/best.ckpt``), needed when
    ``geometric`` or
    ``radiometric`` is on (SR training), or to resume pre-training from pre-trained weights (null: random
    init).
    ``channel``: index in the input bands of the band the flow is estimated on (reference: 2 = B4 for 10 m
    inputs, 0 = B5 for 20 m inputs). ``max_range``: bound of the flow norm (LR px). ``flow_max_range``,
    ``flow_max_width``: the random flows of pre-training (torchsisr). ``composition``: flow composition of the
    pre-training loss (``exact``, or the reference's plain sum ``reference``). ``sim_mtf``: MTF of the LR
    simulation of the target.
    """

    checkpoint: str | None = None
    channel: int = 2
    max_range: float = 10.0
    depth: int = 4
    start_filters: int = 64
    min_skip_depth: int = 2
    features: int = 32
    geometric: bool = False
    radiometric: bool = False
    flow_max_range: float = 2.0
    flow_max_width: float = 10.0
    composition: Composition = "exact"
    sim_mtf: float = 0.4
    #: Pre-training loss weights of the flow, bias, consistency and data terms (reference: all 1). A term of
    #: weight 0 is not evaluated (saves its pass of the network) and not logged.
    flow_weight: float = 1.0
    bias_weight: float = 1.0
    consistency_weight: float = 1.0
    data_weight: float = 1.0
    #: Pre-training penalty of the three flow terms (flow, bias, consistency; in pixels) and of the data term
    #: (standardised units): ``smooth_l1`` (the reference), ``l1`` or ``mse``.
    flow_penalty: Penalty = "smooth_l1"
    data_penalty: Penalty = "smooth_l1"
    #: Pre-training: σ (LR px) of a Gaussian low-pass removed from the data-term residual
    #: ``warp(src, f1) − real`` before its penalty, so that slowly varying radiometric differences (band
    #: offsets, low-frequency fields) do not drown the geometric signal (null: no filtering, the reference).
    data_highpass: float | None = None
    #: Pre-training only: train on random ``crop_size``² crops of the LR patches (null: whole patches, the
    #: reference). Cheaper steps for CPU budgets; the network is fully convolutional.
    crop_size: int | None = None
    #: Normalisation of the flow network's inputs: ``image`` (ours: per image) or ``reference_rows``
    #: (torchsisr's ``F.instance_norm`` on ``[B, H, W]``: per image row; needed by its published networks).
    input_normalisation: Literal["image", "reference_rows"] = "image"
    #: PSF of the target's LR simulation (``sim_mtf``; :data:`sisrlib.degradation.PsfKernel`): ``exact``
    #: (half-width ⌈4σ⌉) or ``reference`` (torchsisr's 7×7 kernel: effective MTF 0.454 at ×4 for 0.4).
    psf_kernel: Literal["exact", "reference"] = "exact"
    #: The radiometric correction of SR training (with ``radiometric``): ``additive`` (torchsisr's low-passed
    #: residual: offset and low frequencies) or ``affine`` (ours: a per-patch, per-band gain and offset fitted
    #: first, for an HR stored in other units; :mod:`sisrlib.registration.target`).
    radiometric_model: RadiometricModel = "additive"
    #: Where SR training's registration flow comes from: ``network`` (the flow network: the method) or
    #: ``true_flow`` (the batch's stored true flow, simulated sites only: an oracle registration that shows
    #: what the network's error costs; the radiometric correction then uses the true flow too; ``checkpoint``
    #: is required as for ``network``).
    flow_source: Literal["network", "true_flow"] = "network"

    def __post_init__(self) -> None:
        if self.flow_source not in ("network", "true_flow"):
            raise ValueError(
                f"registration.flow_source must be 'network' or 'true_flow', got {self.flow_source!r}"
            )
        if self.max_range <= 0 or self.flow_max_range <= 0:
            raise ValueError(
                f"max_range and flow_max_range must be > 0, got {self.max_range}, {self.flow_max_range}"
            )
        if not 0.0 < self.sim_mtf < 1.0:
            raise ValueError(f"sim_mtf must lie in (0, 1), got {self.sim_mtf}")
        if min(self.loss_weights) < 0 or max(self.loss_weights) <= 0:
            raise ValueError(f"registration loss weights must be >= 0 and not all 0, got {self.loss_weights}")
        for key in ("flow_penalty", "data_penalty"):
            if getattr(self, key) not in PENALTIES:
                raise ValueError(f"{key} must be one of {list(PENALTIES)}, got {getattr(self, key)!r}")
        if self.data_highpass is not None and self.data_highpass <= 0:
            raise ValueError(f"data_highpass must be > 0 LR px or null, got {self.data_highpass}")
        if self.crop_size is not None and self.crop_size < 8:
            raise ValueError(f"crop_size must be >= 8 or null, got {self.crop_size}")

    @property
    def loss_weights(self) -> tuple[float, float, float, float]:
        """(flow, bias, consistency, data) weights of the pre-training loss."""
        return (self.flow_weight, self.bias_weight, self.consistency_weight, self.data_weight)

    @property
    def enabled(self) -> bool:
        """Whether SR training registers its targets."""
        return self.geometric or self.radiometric


@dataclass(frozen=True)
class AdversarialParams:
    """Relativistic average BCE adversarial term (DRA-BCE, torchsisr) and its discriminator's optimiser."""

    enabled: bool = False
    weight: float = 0.005
    #: Training step from which the generator term gets a gradient and the discriminator is trained.
    start_step: int = 1340
    #: ``from_start_step`` (ours: first active at step ``start_step``) or ``after_start_step`` (torchsisr:
    #: active when ``global_step > start_step``, one step later).
    start_convention: Literal["from_start_step", "after_start_step"] = "from_start_step"
    lr: float = 1e-4
    t_0: int = 6000
    t_mult: int = 2
    #: Real labels are 1 − label_smoothing in the discriminator loss.
    label_smoothing: float = 0.1
    #: Target bands the discriminator sees (null: all target bands); ``discriminator.num_in_ch`` must match.
    bands: list[str] | None = None
    discriminator: DiscriminatorParams = field(default_factory=DiscriminatorParams)

    def __post_init__(self) -> None:
        _at_least("training.adversarial", self, weight=0.0, start_step=0, t_0=1, t_mult=1)
        if self.lr <= 0:
            raise ValueError(f"training.adversarial.lr must be > 0, got {self.lr}")
        if self.start_convention not in ("from_start_step", "after_start_step"):
            raise ValueError(
                "training.adversarial.start_convention must be 'from_start_step' or 'after_start_step', got "
                f"{self.start_convention!r}"
            )
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ValueError(
                f"training.adversarial.label_smoothing must lie in [0, 1), got {self.label_smoothing}"
            )


@dataclass(frozen=True)
class LossParams:
    """Weights of the per-band pixel losses (each averaged over bands), on standardised tensors.

    ``lpips_weights``: a folder holding ``lpips_weights.pt`` (piq's LPIPS layer weights) and
    ``vgg16-397923af.pth`` (torchvision's ImageNet VGG16), or null to look in the torch hub cache
    (``$TORCH_HOME/hub/checkpoints``). Nothing is ever downloaded.
    """

    mse: float = 0.1
    l1: float = 0.0
    lpips: float = 1.0
    lpips_weights: str | None = None
    #: Weight of an L1 term on the high-pass residuals (x − Gaussian(x, ``highpass_sigma`` HR px)) of
    #: prediction and target: rewards the fine detail a pixel loss averages out under misregistration
    #: (0: off, the reference).
    highpass_l1: float = 0.0
    highpass_sigma: float = 1.0
    #: Weight of an L1 term on the amplitude spectra of prediction and target at frequencies of at least
    #: ``fft_min_frequency`` Nyquist (HR): asks for the target's detail energy, insensitive to where the
    #: detail lies (a translation does not change an amplitude spectrum). 0: off, the reference.
    fft_amplitude_l1: float = 0.0
    fft_min_frequency: float = 0.5
    #: Weight of the per-band L1 between the prediction from the *simulated* input (``training.simulation``)
    #: and the target (torchsisr's ``l1_sim``; the EVOLAND model's only pixel loss).
    l1_sim: float = 0.0
    #: Weight of the per-band L1 of the Wald branch (``training.wald``): real Sentinel-2 degraded by 2,
    #: super-resolved back to 20 m and compared with the original on ``training.wald.bands``.
    wald_l1: float = 0.0
    #: Per-band weights multiplying each band's value of every pixel term before the band average (bands
    #: not listed: 1; null: all 1). torchsisr's EVOLAND run sums the averages of two band groups (B2 B3 B4 B8
    #: and B5 B6 B7 B8A), which is weight 2 on each of the 8 bands here.
    band_weights: dict[str, float] | None = None

    #: Numeric fields that are not loss weights (every other number of this section is one).
    NOT_WEIGHTS: ClassVar[tuple[str, ...]] = ("highpass_sigma", "fft_min_frequency")

    def __post_init__(self) -> None:
        for key, value in self.weights.items():
            if value < 0:
                raise ValueError(f"training.losses.{key} must be >= 0 (0 turns the term off), got {value}")
        if self.highpass_sigma <= 0:
            raise ValueError(f"training.losses.highpass_sigma must be > 0 HR px, got {self.highpass_sigma}")
        if not 0.0 <= self.fft_min_frequency < 1.0:
            raise ValueError(
                "training.losses.fft_min_frequency must lie in [0, 1) (relative to the HR Nyquist "
                f"frequency), got {self.fft_min_frequency}"
            )
        for band, value in (self.band_weights or {}).items():
            if not value >= 0:
                raise ValueError(f"training.losses.band_weights.{band} must be >= 0, got {value}")

    @property
    def real_input_weights(self) -> dict[str, float]:
        """The weights of the terms on the prediction from the real input: every weight but the simulated
        branch's (``l1_sim``) and the Wald branch's (``wald_l1``)."""
        return {k: v for k, v in self.weights.items() if k not in ("l1_sim", "wald_l1")}

    @property
    def weights(self) -> dict[str, float]:
        """Every loss weight of the section by name (the numeric fields not in :attr:`NOT_WEIGHTS`)."""
        return {
            f.name: float(getattr(self, f.name))
            for f in fields(self)
            if f.name not in self.NOT_WEIGHTS
            and isinstance(getattr(self, f.name), int | float)
            and not isinstance(getattr(self, f.name), bool)
        }


@dataclass(frozen=True)
class TrainingParams:
    """Optimisation, schedule, validation and hardware of a run."""

    #: ``sr``: train the generator; ``pretrain_registration``: train the flow network only (torchsisr).
    mode: Literal["sr", "pretrain_registration"] = "sr"
    standardisation: StandardisationName = "sen2venusx2"
    losses: LossParams = field(default_factory=LossParams)
    adversarial: AdversarialParams = field(default_factory=AdversarialParams)
    lr: float = 2e-4
    t_0: int = 1500
    t_mult: int = 2
    #: Training steps; -1: no step limit (``max_epochs`` decides).
    max_steps: int = 167_500
    #: Training epochs (passes over the training split); null: no epoch limit (``max_steps`` decides). The
    #: WorldStrat paper runs: 400 epochs.
    max_epochs: int | None = None
    #: Validate every this many training steps.
    val_check_interval: int = 134
    limit_val_batches: int | None = None
    limit_test_batches: int | None = None
    #: Pixels (output grid) cropped on every side before validation/test losses and metrics.
    validation_margin: int = 64
    #: Pixels cropped before training losses; null: the generator's prediction margin (reference).
    training_margin: int | None = None
    #: SR training only: train the generator on one random ``crop_size``² window (LR px) of each batch, the
    #: target being registered on the whole patch first and cropped at the matching HR window (null: whole
    #: patches, the reference). Cheaper steps for CPU budgets; ``training_margin`` still applies inside it.
    crop_size: int | None = None
    #: Validate at the end of every epoch (the WorldStrat paper runs) instead of every
    #: ``val_check_interval`` steps.
    validate_every_epoch: bool = False
    #: Lightning precision: ``32-true``, ``16-mixed``, ``bf16-mixed``.
    precision: str = "32-true"
    accelerator: str = "auto"
    devices: int | str = "auto"
    num_nodes: int = 1
    #: Lightning strategy (``auto``, ``ddp``, ``ddp_find_unused_parameters_true``, ...).
    strategy: str = "auto"
    #: Checkpoint to resume from (optimisers, schedulers, step); ``last`` =
    #: ``<output_dir>/checkpoints/last.ckpt``
    #: when it exists.
    resume_from: str | None = None
    #: Skip training when ``last.ckpt`` has already reached ``max_steps``.
    skip_if_done: bool = True
    log_every_n_steps: int = 10
    #: torch.set_num_threads for the run (CPU); null leaves it unchanged.
    num_threads: int | None = None
    #: Run the test loop on the best checkpoint after training.
    test_after_fit: bool = False
    #: Batch simulation (``losses.l1_sim`` and the ``validation/sim_*`` metrics).
    simulation: SimulationParams = field(default_factory=SimulationParams)
    #: Wald branch (``losses.wald_l1``).
    wald: WaldParams = field(default_factory=WaldParams)
    #: Remap each target band, per patch, linearly onto the min/max of the input band of the same name
    #: (torchsisr's ``align_min_max``; on for the EVOLAND model, off in the paper's runs).
    align_min_max: bool = False
    #: PSF of the training simulation, the Wald degradation and the validation / test LR-fidelity and
    #: geometric metrics: ``exact`` (ours) or ``reference`` (torchsisr's 7x7 kernel); see
    #: :mod:`sisrlib.degradation`.
    psf_kernel: PsfKernel = "exact"
    #: Validation metrics: ``basic`` (RMSE, PSNR, LR RMSE / bias) or ``reference`` (torchsisr's default set:
    #: also SSIM, HR RMSE, high-gradient RMSE, FFT high-frequency power and TV variations, the ``sim_``
    #: metrics on the simulated input, and Wald PSNR / HR RMSE when the Wald branch is on).
    validation_metrics: Literal["basic", "reference"] = "basic"
    #: Checkpoints kept besides ``best.ckpt`` (min ``validation/total_loss``, the pixel losses) and
    #: ``last.ckpt``, as torchsisr keeps them: ``step_{global_step:06d}.ckpt`` every this many steps (null:
    #: none; torchsisr: 500), ``best_total.ckpt`` (min validation loss with the adversarial term),
    #: ``best_brisque.ckpt`` (min validation BRISQUE of the predictions, when its weights
    #: ``brisque_svm_weights.pt`` are in ``brisque_weights`` or the torch hub cache; skipped with a warning
    #: otherwise).
    checkpoint_every_n_steps: int | None = None
    best_total_checkpoint: bool = False
    best_brisque_checkpoint: bool = False
    brisque_weights: str | None = None

    def __post_init__(self) -> None:
        if self.max_steps == -1 and self.max_epochs is None:
            raise ValueError("training.max_steps is -1 (no step limit): set training.max_epochs")
        _at_least(
            "training",
            self,
            max_steps=1 if self.max_steps != -1 else -1,
            max_epochs=1,
            checkpoint_every_n_steps=1,
            val_check_interval=1,
            t_0=1,
            t_mult=1,
            limit_val_batches=1,
            limit_test_batches=1,
            validation_margin=0,
            training_margin=0,
            num_nodes=1,
            log_every_n_steps=1,
            num_threads=1,
        )
        if self.lr <= 0:
            raise ValueError(f"training.lr must be > 0, got {self.lr}")
        if self.accelerator not in ACCELERATORS:
            raise ValueError(
                f"training.accelerator must be one of {list(ACCELERATORS)}, got {self.accelerator!r}"
            )
        if self.precision not in PRECISIONS:
            raise ValueError(f"training.precision must be one of {list(PRECISIONS)}, got {self.precision!r}")
        if isinstance(self.devices, int) and self.devices < 1:
            raise ValueError(f"training.devices must be >= 1 or 'auto', got {self.devices}")
        if isinstance(self.devices, str) and self.devices != "auto":
            raise ValueError(f"training.devices must be a count (>= 1) or 'auto', got {self.devices!r}")
        adversarial = self.adversarial.enabled and self.adversarial.weight > 0
        if self.mode == "sr" and max(self.losses.weights.values(), default=0.0) <= 0 and not adversarial:
            raise ValueError(
                f"training.losses: every loss weight is 0 ({self.losses.weights}) and no adversarial term is "
                "on: nothing to train; give at least one weight > 0"
            )
        if self.crop_size is not None and self.crop_size < 8:
            raise ValueError(
                f"training.crop_size must be >= 8 LR px or null (whole patches), got {self.crop_size}"
            )
        if self.psf_kernel not in PSF_KERNELS:
            raise ValueError(
                f"training.psf_kernel must be one of {list(PSF_KERNELS)}, got {self.psf_kernel!r}"
            )
        if self.validation_metrics not in ("basic", "reference"):
            raise ValueError(
                f"training.validation_metrics must be 'basic' or 'reference', got {self.validation_metrics!r}"
            )


@dataclass(frozen=True)
class ExperimentParams:
    """One run: ``name``, ``seed``, ``output_dir`` (``build/<profile>/runs/<name>``) and its sections."""

    name: str
    data: DataParams
    output_dir: str
    seed: int = 42
    model: ModelParams = field(default_factory=ModelParams)
    registration: RegistrationParams = field(default_factory=RegistrationParams)
    training: TrainingParams = field(default_factory=TrainingParams)

    @property
    def checkpoint_dir(self) -> Path:
        return Path(self.output_dir) / "checkpoints"

    @property
    def best_checkpoint(self) -> Path:
        return self.checkpoint_dir / "best.ckpt"

    @property
    def last_checkpoint(self) -> Path:
        return self.checkpoint_dir / "last.ckpt"

    @property
    def best_total_checkpoint(self) -> Path:
        return self.checkpoint_dir / "best_total.ckpt"

    @property
    def best_brisque_checkpoint(self) -> Path:
        return self.checkpoint_dir / "best_brisque.ckpt"

    def step_checkpoint(self, step: int) -> Path:
        """``<output_dir>/checkpoints/step_{step:06d}.ckpt``."""
        return self.checkpoint_dir / f"step_{step:06d}.ckpt"

    def to_mapping(self) -> dict[str, Any]:
        mapping: dict[str, Any] = to_mapping(self)
        return mapping


def parse_override(text: str) -> tuple[str, Any]:
    """``key.sub=value`` (value parsed as YAML: numbers, booleans, null, lists) → (dotted key, value)."""
    if "=" not in text:
        raise ValueError(f"--set expects key=value (dotted key), got {text!r}")
    key, raw = text.split("=", 1)
    key = key.strip()
    if not key:
        raise ValueError(f"--set expects key=value with a non-empty key, got {text!r}")
    try:
        return key, yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError as exc:
        problem = getattr(exc, "problem", None) or type(exc).__name__
        raise ValueError(
            f"--set {text}: the value {raw!r} is not valid YAML ({problem}); write a number, true/false, "
            "null, a list like [1, 2], or quote a string"
        ) from exc


def load_experiment(path: str | Path, overrides: dict[str, Any] | None = None) -> ExperimentParams:
    """Load and validate an experiment params YAML (unknown keys are errors listing the valid keys)."""
    return load(ExperimentParams, path, overrides)


def experiment_from_mapping(data: dict[str, Any], where: str = "params") -> ExperimentParams:
    return from_mapping(ExperimentParams, data, where)


__all__ = [
    "AdversarialParams",
    "DiscriminatorParams",
    "ExperimentParams",
    "LossParams",
    "RegistrationParams",
    "SimulationParams",
    "TrainingParams",
    "WaldParams",
    "experiment_from_mapping",
    "load_experiment",
    "parse_override",
    "read_yaml",
]
