"""Interoperability with other super-resolution code: importers of foreign checkpoints.

* :mod:`sisrlib.interop.torchsisr`: the Lightning checkpoints of CESBIO's torchsisr (the reference code of
  the paper, hal-04723225), read safely and mapped onto this library's generators and flow network.
"""

from sisrlib.interop.torchsisr import (
    ImportedGenerator,
    ImportedRegistration,
    import_generator,
    import_registration,
    imported_dn_model,
    read_torchsisr_checkpoint,
)

__all__ = [
    "ImportedGenerator",
    "ImportedRegistration",
    "import_generator",
    "import_registration",
    "imported_dn_model",
    "read_torchsisr_checkpoint",
]
