"""The one atomic writer of the package: every output file or folder is written under a temporary name in the
target's folder, then renamed, so that an interrupted run never leaves a partial output behind and an existing
target is replaced only by a complete one.

* :func:`atomic_output` yields a temporary file name (unique per call) beside the target;
* :func:`write_text_atomic` / :func:`write_bytes_atomic` write a whole file at once;
* :func:`atomic_directory` yields a temporary folder beside the target, renamed to it at the end.

On failure the temporary file or folder is removed and the target is left as it was. Files get the usual
permissions (0666 minus the umask), folders 0777 minus the umask (``tempfile`` would give 0600 / 0700). No
fsync: the guarantee is against interrupted runs, not against power loss.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = [
    "atomic_directory",
    "atomic_output",
    "move_aside",
    "remove_stale_directories",
    "remove_stale_files",
    "write_bytes_atomic",
    "write_text_atomic",
]


def _umask() -> int:
    """The process's umask (read by setting and restoring it)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _remove(path: Path) -> None:
    """Remove a file, a link or a folder tree if it exists."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists() or path.is_symlink():
        path.unlink(missing_ok=True)


def _file_prefix(target: Path, pid: int | None = None) -> str:
    """``.<stem>.tmp-<host>-<pid>.``: how the temporaries of ``target`` written by process ``pid`` start."""
    return f".{target.stem}.tmp-{socket.gethostname()}-{os.getpid() if pid is None else pid}."


@contextmanager
def atomic_output(path: str | Path) -> Iterator[str]:
    """Yield a temporary file name beside ``path``: renamed to ``path`` on success, removed on error.

    The parent folder is created if needed. The temporary name is
    ``.<stem>.tmp-<host>-<pid>.<random><suffix>``: the suffix is kept so that writers choosing a format from
    the extension still work; host and PID let :func:`remove_stale_files` find what a killed run left. The
    file exists (empty) when the block starts. An existing ``path`` is replaced only when the block succeeds.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=_file_prefix(target), suffix=target.suffix, dir=target.parent)
    os.close(fd)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, target)
    finally:
        _remove(Path(tmp))


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` through :func:`atomic_output`; returns ``path``."""
    with atomic_output(path) as tmp:
        Path(tmp).write_text(text, encoding="utf-8")
    return Path(path)


def write_bytes_atomic(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` through :func:`atomic_output`; returns ``path``."""
    with atomic_output(path) as tmp:
        Path(tmp).write_bytes(data)
    return Path(path)


@contextmanager
def atomic_directory(path: str | Path) -> Iterator[Path]:
    """Yield an empty temporary folder beside ``path``: renamed to ``path`` on success, removed on error.

    An existing ``path`` (file or folder; the caller decides whether it may be replaced) is moved aside under
    a temporary name, the new folder renamed into place, then the old one removed: if the rename fails, the
    old one is put back. The temporary folder is ``.<name>.partial-<pid>.<random>`` in the same folder (what
    :func:`remove_stale_directories` looks for after a killed run).
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.partial-{os.getpid()}.", dir=target.parent))
    try:
        os.chmod(tmp, 0o777 & ~_umask())
        yield tmp
        old: Path | None = None
        if target.exists() or target.is_symlink():
            old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
            os.rmdir(old)
            os.replace(target, old)
        try:
            os.replace(tmp, target)
        except BaseException:
            if old is not None:
                os.replace(old, target)
            raise
        if old is not None:
            _remove(old)
    finally:
        _remove(tmp)


def move_aside(path: str | Path, destination: str | Path) -> Path:
    """Move the file or folder ``path`` to ``destination`` (same file system), replacing what was there
    (e.g. a stale run folder set aside as ``<folder>.stale``); returns ``destination``."""
    source, target = Path(path), Path(destination)
    _remove(target)
    os.replace(source, target)
    return target


def _process_alive(pid: str) -> bool:
    """Whether process ``pid`` still runs (then its temporary folder is left alone)."""
    try:
        os.kill(int(pid), 0)
    except (ValueError, ProcessLookupError):
        return False
    except PermissionError:
        return True
    return True


def remove_stale_directories(path: str | Path) -> list[Path]:
    """Remove the temporary folders that :func:`atomic_directory` left beside ``path`` in runs that were
    killed (their process no longer exists); returns what was removed."""
    target = Path(path)
    removed: list[Path] = []
    if not target.parent.is_dir():
        return removed
    for stale in sorted(target.parent.glob(f".{target.name}.partial-*")):
        pid = stale.name[len(f".{target.name}.partial-") :].split(".", 1)[0]
        if stale.is_dir() and not _process_alive(pid):
            shutil.rmtree(stale, ignore_errors=True)
            removed.append(stale)
    return removed


def remove_stale_files(path: str | Path) -> list[Path]:
    """Remove the temporary files that :func:`atomic_output` left beside ``path`` in runs of this host that
    were killed (SIGKILL: no cleanup ran); those of live processes and of other hosts (shared file systems)
    are left alone. Returns what was removed."""
    target = Path(path)
    head = f".{target.stem}.tmp-{socket.gethostname()}-"
    removed: list[Path] = []
    if not target.parent.is_dir():
        return removed
    for stale in sorted(target.parent.glob(f"{glob.escape(head)}*{glob.escape(target.suffix)}")):
        pid = stale.name[len(head) :].split(".", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and stale.is_file() and not _process_alive(pid):
            stale.unlink(missing_ok=True)
            removed.append(stale)
    return removed
