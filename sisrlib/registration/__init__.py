"""Optical-flow registration: the flow network, its pre-training, and the registration of the HR target onto
the LR input inside SR training (geom, rad). Flows (warping, simulation) are in :mod:`sisrlib.flow`."""

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
    "normalise_images",
    "normalise_rows",
    "pretraining_loss",
    "register_target",
]
