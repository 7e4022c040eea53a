"""The one atomic writer: success renames, failure leaves neither a partial target nor a temporary, an
existing target is replaced only on success, permissions follow the umask."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from sisrlib.atomic import (
    atomic_directory,
    atomic_output,
    remove_stale_directories,
    write_bytes_atomic,
    write_text_atomic,
)


class BoomError(RuntimeError):
    pass


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def umask_022() -> Iterator[None]:
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_atomic_output_renames_on_success(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "table.csv"
    with atomic_output(target) as tmp:
        assert Path(tmp).parent == target.parent
        assert Path(tmp).suffix == ".csv"
        assert not target.exists()
        Path(tmp).write_text("a,b\n", encoding="utf-8")
    assert target.read_text(encoding="utf-8") == "a,b\n"
    assert sorted(p.name for p in target.parent.iterdir()) == ["table.csv"]


def test_atomic_output_names_are_unique_per_call(tmp_path: Path) -> None:
    target = tmp_path / "x.txt"
    with atomic_output(target) as a, atomic_output(target) as b:
        assert a != b
        Path(a).write_text("a", encoding="utf-8")
        Path(b).write_text("b", encoding="utf-8")
    assert target.read_text(encoding="utf-8") == "a"  # the outer block finishes last
    assert [p.name for p in tmp_path.iterdir()] == ["x.txt"]


def test_failure_leaves_neither_target_nor_temporary(tmp_path: Path) -> None:
    target = tmp_path / "out.bin"
    with pytest.raises(BoomError), atomic_output(target) as tmp:
        Path(tmp).write_bytes(b"partial")
        raise BoomError
    assert list(tmp_path.iterdir()) == []


def test_existing_target_replaced_only_on_success(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    target.write_text("old", encoding="utf-8")
    with pytest.raises(BoomError), atomic_output(target) as tmp:
        Path(tmp).write_text("new", encoding="utf-8")
        raise BoomError
    assert target.read_text(encoding="utf-8") == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]
    assert write_text_atomic(target, "new ü") == target
    assert target.read_text(encoding="utf-8") == "new ü"
    assert write_bytes_atomic(target, b"\x00\x01") == target
    assert target.read_bytes() == b"\x00\x01"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_file_permissions_follow_the_umask(tmp_path: Path, umask_022: None) -> None:
    assert _mode(write_text_atomic(tmp_path / "a.txt", "x")) == 0o644
    os.umask(0o077)
    assert _mode(write_bytes_atomic(tmp_path / "b.bin", b"x")) == 0o600


def test_atomic_directory_success_failure_and_replacement(tmp_path: Path, umask_022: None) -> None:
    target = tmp_path / "build"
    with atomic_directory(target) as tmp:
        assert tmp.is_dir() and tmp.parent == tmp_path and not any(tmp.iterdir())
        (tmp / "a.txt").write_text("1", encoding="utf-8")
        assert not target.exists()
    assert (target / "a.txt").read_text(encoding="utf-8") == "1"
    assert _mode(target) == 0o755
    assert [p.name for p in tmp_path.iterdir()] == ["build"]

    with pytest.raises(BoomError), atomic_directory(target) as tmp:
        (tmp / "b.txt").write_text("2", encoding="utf-8")
        raise BoomError
    assert sorted(p.name for p in target.iterdir()) == ["a.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["build"]

    with atomic_directory(target) as tmp:
        (tmp / "b.txt").write_text("2", encoding="utf-8")
    assert sorted(p.name for p in target.iterdir()) == ["b.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["build"]


def test_failed_directory_never_created_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(BoomError), atomic_directory(tmp_path / "new") as tmp:
        (tmp / "x").mkdir()
        raise BoomError
    assert list(tmp_path.iterdir()) == []


def test_remove_stale_directories_keeps_live_ones(tmp_path: Path) -> None:
    dead = tmp_path / ".build.partial-999999999.abc"
    live = tmp_path / f".build.partial-{os.getpid()}.def"
    other = tmp_path / ".other.partial-999999999.abc"
    for d in (dead, live, other):
        d.mkdir()
    assert remove_stale_directories(tmp_path / "build") == [dead]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([live.name, other.name])
