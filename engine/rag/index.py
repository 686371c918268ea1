"""The corpus on disk and its SQLite FTS5 index file: reading and hashing ``data/corpus/*.md``,
building the ``chunks`` table with its FTS5 index ``chunks_fts`` (porter stemmer over the
unicode61 tokenizer, built with sqlite-utils) and the ``rag_meta`` table, and opening an index.

Rebuilds.  The index stores a hash of the corpus (file names and bytes, plus the chunker
and schema version) in a ``rag_meta`` table and is rebuilt only when that hash differs.
With a file ``db_path`` the new index is built in a temporary file next to it and moved
into place with :func:`os.replace`, so another process never sees a half-built index and a
crash leaves the old one intact; ``db_path`` must therefore be a file dedicated to this
index (never the telemetry store): a database holding other tables is refused.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import sqlite_utils

from engine.rag.chunking import MAX_CHUNK_WORDS, chunk_markdown, word_count

__all__ = [
    "CHUNKS_TABLE",
    "DEFAULT_CORPUS_DIR",
    "FTS_COLUMNS",
    "FTS_WEIGHTS",
    "INDEX_VERSION",
    "META_TABLE",
    "build_index",
    "corpus_hash",
    "open_index",
    "read_corpus",
    "read_meta",
]

DEFAULT_CORPUS_DIR = Path("data/corpus")
#: Bump when the chunker, the schema or the tokenizer changes: it is part of the corpus hash,
#: so every existing index file is rebuilt on its next open.
INDEX_VERSION = "1"

CHUNKS_TABLE = "chunks"
META_TABLE = "rag_meta"
FTS_COLUMNS = ("title", "section", "text")
#: bm25 column weights, in FTS_COLUMNS order: a query term in a section heading counts twice.
FTS_WEIGHTS = (1.0, 2.0, 1.0)
_OWN_TABLE_PREFIXES = (CHUNKS_TABLE, META_TABLE)


def read_corpus(corpus_dir: Path) -> tuple[str, list[tuple[str, str]]]:
    """The corpus hash and the ``(stem, text)`` of every ``*.md`` file, from one read of each
    file (so the stored hash always describes the indexed text).

    Raises FileNotFoundError for a missing directory and ValueError for a file that is not UTF-8.
    """
    if not corpus_dir.is_dir():
        raise FileNotFoundError(f"RAG corpus directory not found: {corpus_dir}")
    h = hashlib.sha256(f"arbor-rag:{INDEX_VERSION}:{MAX_CHUNK_WORDS}:{FTS_COLUMNS}\n".encode())
    docs: list[tuple[str, str]] = []
    for path in sorted(p for p in corpus_dir.glob("*.md") if p.is_file()):
        data = path.read_bytes()
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ValueError(f"RAG corpus file {path} is not UTF-8 text: {exc}") from None
        h.update(path.name.encode("utf-8") + b"\0")
        h.update(hashlib.sha256(data).digest())
        docs.append((path.stem, text))
    return h.hexdigest(), docs


def corpus_hash(corpus_dir: Path) -> str:
    """SHA-256 over the corpus's ``*.md`` file names and bytes, the index version, the chunk
    size and the indexed columns: the index is rebuilt exactly when this changes."""
    return read_corpus(Path(corpus_dir))[0]


def read_meta(conn: sqlite3.Connection) -> dict[str, str]:
    """The metadata of an index database; {} for a new or empty file.

    Raises ValueError when the file is not SQLite or holds tables that are not ours.
    """
    try:
        names = [row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    except sqlite3.DatabaseError as exc:
        raise ValueError(f"not an SQLite database: {exc}") from exc
    foreign = [n for n in names if not n.startswith(_OWN_TABLE_PREFIXES)]
    if foreign:
        raise ValueError(f"holds tables that are not the RAG index ({', '.join(sorted(foreign)[:5])})")
    if META_TABLE not in names:
        return {}
    return {str(k): str(v) for k, v in conn.execute(f"SELECT key, value FROM {META_TABLE}")}


def build_index(
    conn: sqlite3.Connection, docs: Sequence[tuple[str, str]], digest: str, build_count: int
) -> None:
    """Create the chunks table, its FTS5 index and the metadata in ``conn`` (an empty database)."""
    rows = []
    for stem, text in docs:
        for ordinal, chunk in enumerate(chunk_markdown(text, stem)):
            rows.append(
                {
                    "doc": chunk.doc,
                    "title": chunk.title,
                    "section": chunk.section,
                    "ordinal": ordinal,
                    "text": chunk.text,
                    "words": word_count(chunk.text),
                }
            )
    db = sqlite_utils.Database(conn)
    chunks = db.table(CHUNKS_TABLE)
    chunks.create(
        {"id": int, "doc": str, "title": str, "section": str, "ordinal": int, "text": str, "words": int},
        pk="id",
    )
    if rows:
        chunks.insert_all(rows)
    chunks.enable_fts(list(FTS_COLUMNS), fts_version="FTS5", tokenize="porter")
    db.table(META_TABLE).insert_all(
        [
            {"key": "corpus_hash", "value": digest},
            {"key": "index_version", "value": INDEX_VERSION},
            {"key": "build_count", "value": str(build_count)},
            {"key": "built_at", "value": f"{time.time():.3f}"},
            {"key": "docs", "value": str(len(docs))},
            {"key": "chunks", "value": str(len(rows))},
        ],
        pk="key",
    )
    conn.commit()


def open_index(
    db_path: Path | None, digest: str, docs: Sequence[tuple[str, str]], builds: int = 0
) -> tuple[sqlite3.Connection, bool]:
    """A connection to an index of ``docs`` (``(stem, text)`` pairs hashed to ``digest``) and
    whether it was (re)built.

    ``db_path=None`` builds an in-memory index; ``builds`` is the build count so far, for an
    in-memory index (a file keeps its own).  A file whose stored hash equals ``digest`` is
    opened read-only as is; otherwise the index is rebuilt in a temporary file and moved into
    place.  Raises ValueError when ``db_path`` holds something other than this index.
    """
    if db_path is None:
        conn = sqlite3.connect(":memory:", check_same_thread=False)
        build_index(conn, docs, digest, build_count=builds + 1)
        return conn, True
    read_only = db_path.resolve().as_uri() + "?mode=ro"  # as_uri escapes '?', '#', '%' in the path
    meta: dict[str, str] = {}
    if db_path.exists():
        probe = sqlite3.connect(read_only, uri=True)
        try:
            meta = read_meta(probe)
        except ValueError as exc:
            raise ValueError(f"{db_path} cannot hold the RAG index: it {exc}") from None
        finally:
            probe.close()
    rebuilt = meta.get("corpus_hash") != digest
    if rebuilt:
        db_path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{db_path.name}.", suffix=".tmp", dir=db_path.parent)
        os.close(fd)
        tmp = Path(tmp_name)
        try:
            build = sqlite3.connect(tmp)
            try:
                build_index(build, docs, digest, build_count=int(meta.get("build_count", "0")) + 1)
            finally:
                build.close()
            os.replace(tmp, db_path)
        finally:
            tmp.unlink(missing_ok=True)
    conn = sqlite3.connect(read_only, uri=True, check_same_thread=False)
    return conn, rebuilt
