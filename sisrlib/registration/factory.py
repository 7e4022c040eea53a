"""The flow network built from its parameters (a ``registration:`` params section)."""

from __future__ import annotations

from typing import Protocol

from sisrlib.registration.network import FlowEstimator, InputNormalisation


class FlowNetworkSpec(Protocol):
    """What :func:`build_flow_estimator` reads (``sisrlib.run_params.RegistrationParams`` provides it)."""

    @property
    def max_range(self) -> float: ...
    @property
    def depth(self) -> int: ...
    @property
    def start_filters(self) -> int: ...
    @property
    def min_skip_depth(self) -> int: ...
    @property
    def features(self) -> int: ...
    @property
    def input_normalisation(self) -> InputNormalisation: ...


def build_flow_estimator(params: FlowNetworkSpec) -> FlowEstimator:
    """The flow network described by ``params`` (random weights):
    ``net(left [B, H, W], right [B, H, W]) -> flow [B, 2, H, W]`` (LR px)."""
    return FlowEstimator(
        max_range=params.max_range,
        depth=params.depth,
        start_filters=params.start_filters,
        min_skip_depth=params.min_skip_depth,
        features=params.features,
        input_normalisation=params.input_normalisation,
    )


__all__ = ["FlowNetworkSpec", "build_flow_estimator"]
