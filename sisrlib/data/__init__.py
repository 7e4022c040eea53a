"""Datasets (layer: data; imports core, models and registration only). Everything yields DN float32 tensors
(:class:`~sisrlib.data.sample.Sample` per pair, :class:`~sisrlib.data.batch.Batch` per batch).

This package imports nothing, so that using one of its modules (e.g. the raster reader, or the embedded scene)
does not load the Lightning data module. Import from the modules:

* readers: :mod:`~sisrlib.data.sen2venus` (Sen2Venµs v2 sites, site lists), :mod:`~sisrlib.data.worldstrat`
  (wsx2 / wsx4, and their builder from the original WorldStrat), :mod:`~sisrlib.data.raster` (GeoTIFF / zip
  reading and writing), :mod:`~sisrlib.data.sample`, :mod:`~sisrlib.data.batch`, :mod:`~sisrlib.data.indexes`;
* the Lightning data module: :mod:`~sisrlib.data.datamodule` (``build_datamodule``, ``SRDataModule``) with its
  params :mod:`~sisrlib.data.params` (``DataParams``) and the fast checks :mod:`~sisrlib.data.checks`;
* the embedded simulated sites built from a real Sentinel-2 scene: :mod:`~sisrlib.data.embedded` (the build),
  :mod:`~sisrlib.data.embedded_scene`, :mod:`~sisrlib.data.embedded_layout`,
  :mod:`~sisrlib.data.embedded_simulation`, :mod:`~sisrlib.data.embedded_writers`, and the float64 separable
  MTF downscaling :mod:`~sisrlib.data.simulation`;
* notebook 01's data work: :mod:`~sisrlib.data.preparation` (views, distortion table),
  :mod:`~sisrlib.data.preparation_params`, :mod:`~sisrlib.data.real_datasets`, :mod:`~sisrlib.data.statistics`
  (its figures: :mod:`sisrlib.experiments.data_preparation`).
"""
