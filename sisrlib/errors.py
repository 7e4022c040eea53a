"""Exceptions for bad input: their message says what was found, what was expected, and how to fix it."""


class SisrError(Exception):
    """Base class of the library's expected errors (bad input, missing data or weights)."""


class DataError(SisrError, ValueError):
    """A dataset, site, file, row or patch does not match what the readers expect."""


class MissingDependencyError(SisrError, RuntimeError):
    """An optional package, a dataset or model weights are needed but not installed or supplied."""
