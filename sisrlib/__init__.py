"""sisrlib: cross-sensor single-image super-resolution of Sentinel-2 (a reimplementation of CESBIO's
torchsisr)."""

__version__ = "0.1.0"
