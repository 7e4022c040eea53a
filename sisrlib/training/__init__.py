"""SR training and registration pre-training: params, the LightningModule, ``fit`` and checkpoint loading."""

from sisrlib.training.checkpoint import LoadedGenerator, load_generator, load_registration
from sisrlib.training.fit import RunResult, fit
from sisrlib.training.params import ExperimentParams, load_experiment

__all__ = [
    "ExperimentParams",
    "LoadedGenerator",
    "RunResult",
    "fit",
    "load_experiment",
    "load_generator",
    "load_registration",
]
