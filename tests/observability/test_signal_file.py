"""The flags' signal file: a mapped read sees another process's change at once (no system call
per read), a file replaced or deleted by hand is mapped anew at the next refresh, and where the
file cannot be mapped every read falls back to ``stat``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from observability.store.signal_file import SIGNAL_BYTES, SignalWatch, signal_path, touch_signal

ROOT = Path(__file__).resolve().parents[2]


def test_the_watch_creates_a_zero_signal_and_maps_it(tmp_path: Path) -> None:
    path = signal_path(tmp_path / "a.db")
    watch = SignalWatch(str(path))
    assert watch.mapped and path.stat().st_size == SIGNAL_BYTES
    assert watch() == b"\0" * SIGNAL_BYTES
    watch.close()


def test_a_touch_from_another_process_is_seen_by_the_next_read_without_a_system_call(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "a.db"
    watch = SignalWatch(str(signal_path(db)))
    before = watch()
    inode = signal_path(db).stat().st_ino
    code = f"from observability.store.signal_file import touch_signal; touch_signal({str(db)!r})"
    subprocess.run([sys.executable, "-c", code], check=True, env={**os.environ, "PYTHONPATH": str(ROOT)})

    def no_stat(*args: object, **kwargs: object) -> None:
        raise AssertionError("a mapped read must not stat the file")

    monkeypatch.setattr(os, "stat", no_stat)
    after = watch()
    monkeypatch.undo()
    assert after != before  # the other process's bytes, through the shared mapping
    assert signal_path(db).stat().st_ino == inode  # overwritten in place, not replaced
    assert watch() == after  # unchanged until the next touch
    touch_signal(db)
    assert watch() != after
    watch.close()


def test_a_replaced_or_deleted_file_is_mapped_anew_at_the_next_refresh(tmp_path: Path) -> None:
    path = signal_path(tmp_path / "a.db")
    watch = SignalWatch(str(path))
    replacement = tmp_path / "new"
    replacement.write_bytes(b"12345678")
    os.replace(replacement, path)  # by hand: a new inode the mapping does not see
    assert watch() == b"\0" * SIGNAL_BYTES
    watch.refresh()
    assert watch() == b"12345678"
    path.unlink()
    watch.refresh()  # re-created with a zero signal
    assert watch.mapped and watch() == b"\0" * SIGNAL_BYTES
    watch.close()


def test_an_old_text_signal_file_is_overwritten_in_place(tmp_path: Path) -> None:
    """A file written by an earlier version (a time in ns as text, 19 bytes) still signals."""
    db = tmp_path / "a.db"
    signal_path(db).write_text("1795815367248006088")
    watch = SignalWatch(str(signal_path(db)))
    before = watch()
    touch_signal(db)
    assert watch() != before
    watch.close()


def test_a_file_that_cannot_be_opened_falls_back_to_stat(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A read-only directory (as root cannot be made one, ``os.open`` refuses instead)."""
    db = tmp_path / "a.db"
    touch_signal(db)

    def refuse(*args: object, **kwargs: object) -> int:
        raise PermissionError("read-only")

    monkeypatch.setattr(os, "open", refuse)
    watch = SignalWatch(str(signal_path(db)))
    monkeypatch.undo()
    assert not watch.mapped
    before = watch()
    assert before is not None  # the stat triple
    touch_signal(db)
    assert watch() != before  # a change still seen (new modification time)


def test_a_missing_directory_falls_back_and_maps_once_it_exists(tmp_path: Path) -> None:
    path = signal_path(tmp_path / "later" / "a.db")
    watch = SignalWatch(str(path))
    assert not watch.mapped and watch() is None
    path.parent.mkdir()
    touch_signal(tmp_path / "later" / "a.db")
    assert watch() is not None  # the stat fallback sees the file
    watch.refresh()
    assert watch.mapped and len(watch()) == SIGNAL_BYTES  # type: ignore[arg-type]
    watch.close()
