"""Exceptions for bad input: their message says what was found, what was expected, and how to fix it."""


class SisrError(Exception):
    """Base class of the library's expected errors (bad input, missing data or weights)."""


class DataError(SisrError, ValueError):
    """A dataset, site, file, row or patch does not match what the readers expect."""


class MissingDependencyError(SisrError, RuntimeError):
    """An optional package, a dataset or model weights are needed but not installed or supplied."""


class CheckpointError(SisrError, ValueError):
    """A checkpoint file cannot be used: unreadable, not a sisrlib training checkpoint, or content that does
    not fit (a missing or mistyped key, weights that do not fit the network, non-finite weights)."""


class UnsafeCheckpointError(CheckpointError):
    """A checkpoint needs Python objects beyond tensors and plain values to be read: refused, never
    unpickled (unpickling a foreign object can run arbitrary code)."""
