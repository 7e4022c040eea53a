"""An imported torchsisr generator in the EVOLAND contract (DN in, DN out), as torchsisr's ONNX export builds
it: ``/10000``, standardisation, the bare network, un-standardisation, ``×10000``.

Its ONNX export is :func:`sisrlib.export.export_dn_model` (or ``sisr export CHECKPOINT``, which imports the
generator itself): the export layer builds on this package, not the other way round.
"""

from __future__ import annotations

from sisrlib.interop.torchsisr.generator import ImportedGenerator
from sisrlib.models.dn_model import DNModel


def imported_dn_model(imported: ImportedGenerator) -> DNModel:
    """The DN-in/DN-out model of an imported generator, as torchsisr's ONNX export builds it: ``/10000``,
    standardisation, the bare network (a joint model's 10 m then 20 m bands, all on the 10 m grid),
    un-standardisation, ``×10000``. ``[B, C, h, w]`` DN → ``[B, C, h·f, w·f]`` DN (float32); a
    :class:`sisrlib.models.dn_model.DNModel` in eval mode, ready for
    :func:`sisrlib.export.export_dn_model`."""
    return DNModel(imported.sisr, imported.standardisation, imported.standardisation).eval()
