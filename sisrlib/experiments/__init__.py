"""Experiments layer: the studies built on the library below it (evaluation of trained or imported models,
dataset analysis, metrics benchmark, training analysis, report). Each module here may import the layers below
(core, models, registration, data, metrics, run params / checkpoint reader, training, deployment) and its
siblings, never the commands, the pipeline or the notebooks."""
