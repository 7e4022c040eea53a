"""Reading checkpoint files without running code from them: the one ``torch.load`` of the package.

Checkpoints are shared between labs, and unpickling a foreign object can run arbitrary code. Every checkpoint
this package reads (its own training checkpoints, torchsisr's) goes through :func:`load_weights_only`:
``torch.load(weights_only=True)``, i.e. tensors, numbers, strings, ``None``, lists, tuples and (ordered)
dicts, plus the globals of :data:`SAFE_GLOBALS`. A file that needs anything else is refused with
:class:`~sisrlib.errors.UnsafeCheckpointError` naming the file and the global(s) it asked for; nothing in it
is run. This module imports neither Lightning nor the training code, so export, inference and the torchsisr
importer can use it.
"""

from __future__ import annotations

import pickle
import re
import warnings
import zipfile
from pathlib import Path
from typing import Any

import torch

from sisrlib.errors import CheckpointError, UnsafeCheckpointError

#: Python globals that the checkpoints we read need beyond what ``torch.load(weights_only=True)`` accepts by
#: default. None: our run params are stored as a plain mapping, band names as lists of strings, and what
#: Lightning adds (loops, callback states, Adam and cosine-schedule states, the AMP grad-scaler state) holds
#: only tensors and plain values; torchsisr's checkpoints hold nothing more either. A global added here must
#: also be allowed around Lightning's own ``trainer.fit``/``trainer.test`` loads in
#: :mod:`sisrlib.training.fit` (``torch.serialization.safe_globals``); ``tests/test_checkpoint_safety.py``
#: checks that a real training checkpoint needs none.
SAFE_GLOBALS: tuple[Any, ...] = ()

_GLOBAL_IN_MESSAGE = re.compile(r"GLOBAL ([A-Za-z_][\w.]*)")


def unsafe_globals(path: Path, exc: BaseException) -> list[str]:
    """The globals a refused file asks for: every one torch lists for a zip checkpoint, else the one the
    weights-only unpickler stopped at (read from its message); empty when no global is named."""
    names: list[str] = []
    if zipfile.is_zipfile(path):
        try:
            names = list(torch.serialization.get_unsafe_globals_in_checkpoint(path))
        except Exception:  # a damaged archive: fall back on the message
            names = []
    return names or sorted(set(_GLOBAL_IN_MESSAGE.findall(str(exc))))


def load_weights_only(
    path: str | Path,
    map_location: str | torch.device = "cpu",
    *,
    what: str = "checkpoint",
    missing_fix: str = "fix the path",
    unreadable_fix: str = "fix the path",
    unsafe_fix: str = "use the file as the training that wrote it left it",
    expected: str = "a Lightning checkpoint with a state_dict",
) -> dict[str, Any]:
    """The top-level dictionary of a checkpoint file, read with ``torch.load(weights_only=True)``.

    Args:
        path: the file.
        map_location: where tensors are put (default CPU: GPU-trained files load on a CPU-only machine).
        what: how messages name the file ("checkpoint", "torchsisr checkpoint", ...).
        missing_fix, unreadable_fix, unsafe_fix: how to fix a missing, unreadable or refused file.
        expected: what the top-level dictionary should be, for the message when it is not a dictionary.

    Raises:
        FileNotFoundError: the file does not exist.
        UnsafeCheckpointError: the file needs Python globals beyond tensors and plain values (nothing run).
        CheckpointError: the file is truncated, corrupt, not a torch file, or not a dictionary.
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{what} {p} does not exist; {missing_fix}")
    try:
        with warnings.catch_warnings():
            # the weights-only unpickler warns about the pickle protocol of files not written by torch.save
            warnings.filterwarnings("ignore", message="Detected pickle protocol", category=UserWarning)
            with torch.serialization.safe_globals(list(SAFE_GLOBALS)):
                ckpt = torch.load(p, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        names = unsafe_globals(p, exc)
        if names:
            needs = f"it needs the Python global(s) {names} to be unpickled"
        else:  # no global named: garbage, or pickled data of a kind the weights-only unpickler refuses
            reason = re.search(r"WeightsUnpickler error:\s*(.+)", str(exc))
            detail = reason.group(1).strip() if reason else (str(exc).splitlines() or ["UnpicklingError"])[0]
            needs = (
                f"it cannot be read as tensors and plain values ({detail}): it is corrupt, not a torch "
                "checkpoint, or holds pickled objects of another kind"
            )
        raise UnsafeCheckpointError(
            f"{what} {p}: refused: {needs}. sisrlib reads checkpoints with torch.load(weights_only=True) "
            "and refuses to unpickle foreign objects, because unpickling them can run arbitrary code; "
            f"{unsafe_fix}"
        ) from None
    except Exception as exc:  # zip/EOF/storage errors of a truncated, corrupt or foreign file
        detail = str(exc).splitlines()[0] if str(exc) else ""
        raise CheckpointError(
            f"{what} {p} cannot be read ({type(exc).__name__}: {detail}); it is truncated, corrupt or not a "
            f"torch checkpoint: {unreadable_fix}"
        ) from exc
    if not isinstance(ckpt, dict):
        raise CheckpointError(
            f"{what} {p}: expected a dictionary ({expected}), found {type(ckpt).__name__}; "
            f"it is not a {what} file"
        )
    return ckpt
