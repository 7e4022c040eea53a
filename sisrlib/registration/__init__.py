"""Optical-flow registration: warping and flow simulation, the flow network, its pre-training, and the
registration of the HR target onto the LR input inside SR training (geom, rad)."""

from sisrlib.registration.flow import (
    compose_flows,
    flow_norm,
    simulate_flow,
    smooth_flow,
    upsample_flow,
    warp,
)
from sisrlib.registration.network import (
    INPUT_NORMALISATIONS,
    FlowEstimator,
    InputNormalisation,
    normalise_images,
    normalise_rows,
)
from sisrlib.registration.pretraining import RegistrationLosses, pretraining_loss
from sisrlib.registration.target import RegisteredTarget, register_target

__all__ = [
    "INPUT_NORMALISATIONS",
    "FlowEstimator",
    "InputNormalisation",
    "RegisteredTarget",
    "RegistrationLosses",
    "compose_flows",
    "flow_norm",
    "normalise_images",
    "normalise_rows",
    "pretraining_loss",
    "register_target",
    "simulate_flow",
    "smooth_flow",
    "upsample_flow",
    "warp",
]
