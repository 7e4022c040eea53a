"""Datasets: the Sen2Venµs v2 and WorldStrat-derived readers, the WorldStrat builder, the embedded simulated
sites built from a real Sentinel-2 scene, and the Lightning data module. Everything yields DN float32 tensors
(:class:`Sample` per pair, :class:`Batch` per batch)."""

from sisrlib.data.batch import Batch
from sisrlib.data.datamodule import CachedDataset, SRDataModule, build_datamodule, resolve_sites
from sisrlib.data.embedded import (
    PROFILES,
    REGIMES,
    EmbeddedBuild,
    EmbeddedProfile,
    build_embedded,
    load_scene,
)
from sisrlib.data.params import DataParams
from sisrlib.data.sample import Sample, collate_batch, select_bands
from sisrlib.data.sen2venus import (
    DEFAULT_TESTING_SITES,
    EMBEDDED_S2V1_SITES,
    EMBEDDED_S2V2_SITES,
    S2V1_SITES,
    S2V2_SITES,
    SITE_LISTS,
    TESTING_SITES,
    Sen2VenusLayout,
    Sen2VenusSite,
    available_sites,
    open_sites,
    sen2venus_layout,
)
from sisrlib.data.worldstrat import WorldStratDataset, build_worldstrat_dataset, worldstrat_correlation

__all__ = [
    "DEFAULT_TESTING_SITES",
    "EMBEDDED_S2V1_SITES",
    "EMBEDDED_S2V2_SITES",
    "PROFILES",
    "REGIMES",
    "S2V1_SITES",
    "S2V2_SITES",
    "SITE_LISTS",
    "TESTING_SITES",
    "Batch",
    "CachedDataset",
    "DataParams",
    "EmbeddedBuild",
    "EmbeddedProfile",
    "SRDataModule",
    "Sample",
    "Sen2VenusLayout",
    "Sen2VenusSite",
    "WorldStratDataset",
    "available_sites",
    "build_datamodule",
    "build_embedded",
    "build_worldstrat_dataset",
    "collate_batch",
    "load_scene",
    "open_sites",
    "resolve_sites",
    "select_bands",
    "sen2venus_layout",
    "worldstrat_correlation",
]
