"""Opening a store file: read-only checks before anything is written, and the errors that say what to do.

:func:`check_store_file` runs before the store's connection enables WAL or migrates, so a
foreign, newer or corrupt file is rejected untouched; :func:`open_error` turns a SQLite error
raised while opening into a :class:`~observability.store.schema.StoreOpenError` naming the file.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from observability.store.schema import SCHEMA_VERSION, SchemaError, StoreOpenError

__all__ = ["check_store_file", "open_error"]

_SQLITE_HEADER = b"SQLite format 3\x00"
_ELSEWHERE = "or point ARBOR_DB_PATH at another file"


def _foreign_error(path: Path, tables: list[str]) -> SchemaError:
    names = ", ".join(sorted(tables)[:5]) + (", ..." if len(tables) > 5 else "")
    return SchemaError(
        f"{path} is not an Arbor telemetry store: it is a SQLite database with other tables ({names}) "
        f"and no Arbor schema version; nothing was written to it. Point ARBOR_DB_PATH at a new file "
        "or an Arbor store"
    )


def _newer_error(path: Path, version: int) -> SchemaError:
    return SchemaError(
        f"{path} has schema version {version}, newer than this Arbor's {SCHEMA_VERSION}; "
        f"nothing was written to it. Upgrade Arbor, {_ELSEWHERE}"
    )


def _corrupt_error(path: Path, detail: str) -> StoreOpenError:
    return StoreOpenError(
        f"{path} is not a usable SQLite database ({detail}): it is corrupt or another kind of file. "
        f"Move it aside (Arbor then creates a new store there), {_ELSEWHERE}"
    )


def _dir_error(path: Path, detail: str) -> StoreOpenError:
    return StoreOpenError(
        f"cannot write in directory {path.parent} ({detail}): the store {path.name} and its -wal and "
        f"-shm files live there. Make the directory writable, {_ELSEWHERE}"
    )


def _read_only_error(path: Path) -> StoreOpenError:
    return StoreOpenError(
        f"{path} is read-only: Arbor writes its telemetry there. Make it writable, {_ELSEWHERE}"
    )


def _writable(path: Path) -> bool:
    return os.access(path, os.W_OK)


def check_store_file(path: Path) -> None:
    """Check ``path`` can hold a store, reading only: nothing is written to the file.

    Run before the store's connection enables WAL or migrates, so a foreign or newer file is
    rejected untouched.  A missing or empty file passes (a new store is created).

    Raises:
        StoreOpenError: the directory is missing and cannot be created or is not writable, the
            path is a directory, the file is read-only or unreadable, or it is not a SQLite database.
        SchemaError: the file's schema version is newer than this code's, or it is a SQLite
            database with tables of its own and no Arbor schema version.
    """
    path = Path(path)
    for parent in (path.parent, *path.parent.parents):
        if parent.exists():
            if not parent.is_dir():
                raise StoreOpenError(
                    f"cannot create the store {path}: {parent} is a file, not a directory; "
                    f"{_ELSEWHERE.removeprefix('or ')}"
                )
            break
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreOpenError(
            f"cannot create directory {path.parent} for the store {path.name} ({exc.strerror}). "
            f"Create it or make its parent writable, {_ELSEWHERE}"
        ) from None
    if path.is_dir():
        raise StoreOpenError(f"{path} is a directory, not a store file: {_ELSEWHERE.removeprefix('or ')}")
    if not path.exists() or path.stat().st_size == 0:
        if not _writable(path.parent):
            raise _dir_error(path, "not writable")
        return
    try:
        with path.open("rb") as fh:
            header = fh.read(len(_SQLITE_HEADER))
    except OSError as exc:
        raise StoreOpenError(f"cannot read {path} ({exc.strerror}): make it readable, {_ELSEWHERE}") from None
    if header != _SQLITE_HEADER:
        raise _corrupt_error(path, "no SQLite header")
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise open_error(path, exc) from None
    try:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        tables = [
            r[0]
            for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            if not r[0].startswith("sqlite_")
        ]
    except sqlite3.Error as exc:
        # Locked by another process's migration, or a WAL file in a read-only directory: leave
        # it to the open path (which retries locks and checks the schema again under its lock).
        transient = any(w in str(exc).lower() for w in ("unable to open", "locked", "busy"))
        if not transient:
            raise open_error(path, exc) from None
        version, tables = None, []
    finally:
        conn.close()
    if version is not None and version > SCHEMA_VERSION:
        raise _newer_error(path, version)
    if version == 0 and tables:
        raise _foreign_error(path, tables)
    if not _writable(path):
        raise _read_only_error(path)
    if not _writable(path.parent):
        raise _dir_error(path, "not writable")


def open_error(path: Path, exc: sqlite3.Error) -> StoreOpenError:
    """The StoreOpenError for a SQLite error raised while opening or migrating ``path``."""
    path = Path(path)
    text = str(exc)
    lowered = text.lower()
    if "not a database" in lowered or "malformed" in lowered or "corrupt" in lowered:
        return _corrupt_error(path, text)
    if "readonly" in lowered or "read-only" in lowered or "unable to open" in lowered:
        if path.parent.exists() and not _writable(path.parent):
            return _dir_error(path, "not writable")
        if path.exists() and not _writable(path):
            return _read_only_error(path)
    return StoreOpenError(
        f"cannot open the store {path} ({text}): check the file and its directory, {_ELSEWHERE}"
    )
