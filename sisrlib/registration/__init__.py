"""Optical-flow registration: warping and flow simulation, the flow network, its pre-training, and the
registration of the HR target onto the LR input inside SR training (geom, rad)."""

from sisrlib.registration.flow import compose_flows, flow_norm, simulate_flow, smooth_flow, upsample_flow, warp

__all__ = ["compose_flows", "flow_norm", "simulate_flow", "smooth_flow", "upsample_flow", "warp"]
