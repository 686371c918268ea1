"""bm25 search over the corpus's FTS5 index (:mod:`engine.rag.index`), shared between threads.

:meth:`Retriever.search` ranks passages with FTS5's ``bm25()``.

Scores.  SQLite's ``bm25()`` returns the *negated* Okapi BM25 value so that
``ORDER BY bm25(...)`` ascending puts the best match first: k1 = 1.2, b = 0.75,
IDF = ln((N - n + 0.5) / (n + 0.5)) clamped to 1e-6 when not positive, the passage length is
the token count of all indexed columns (title, section, text), and a term's frequency is the
sum over columns of its count times the column weight
(:data:`~engine.rag.index.FTS_WEIGHTS`: a term in the section heading counts twice).
:attr:`~engine.rag.passages.Passage.score` is that value negated back: the textbook BM25
relevance, **higher is better**, about 0 for a passage that only matches very common terms.

Threads.  A :class:`Retriever` holds **one** SQLite connection opened with
``check_same_thread=False`` and serialises every use of it with a :class:`threading.Lock`.
One connection per call would not work for the in-memory index (each new ``:memory:``
connection is a new, empty database), and FTS queries over a corpus this size take well
under a millisecond, so the lock costs nothing measurable.  One instance can be shared by
all Streamlit sessions (``st.cache_resource``) and worker threads.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from types import TracebackType

from engine.rag.index import (
    CHUNKS_TABLE,
    DEFAULT_CORPUS_DIR,
    FTS_WEIGHTS,
    META_TABLE,
    open_index,
    read_corpus,
)
from engine.rag.passages import Passage, fts_query

__all__ = ["MAX_K", "Retriever"]

MAX_K = 20

_BM25 = f"bm25({CHUNKS_TABLE}_fts, {', '.join(map(repr, FTS_WEIGHTS))})"
_SEARCH_SQL = f"""
SELECT c.doc, c.title, c.section, c.text, {_BM25} AS bm25
FROM {CHUNKS_TABLE}_fts JOIN {CHUNKS_TABLE} AS c ON c.rowid = {CHUNKS_TABLE}_fts.rowid
WHERE {CHUNKS_TABLE}_fts MATCH ?
ORDER BY bm25, c.id
LIMIT ?
"""


class Retriever:
    """bm25 search over the corpus.  Build it with :meth:`from_corpus`; share it freely
    between threads (see the module docstring); :meth:`close` it when done."""

    def __init__(
        self, conn: sqlite3.Connection, corpus_dir: Path, db_path: Path | None, rebuilt: bool
    ) -> None:
        """Internal: use :meth:`from_corpus`."""
        self._conn: sqlite3.Connection | None = conn
        self._lock = threading.Lock()
        self.corpus_dir = corpus_dir
        self.db_path = db_path
        #: Whether opening (or the last :meth:`refresh`) rebuilt the index.
        self.rebuilt = rebuilt

    # -- construction

    @classmethod
    def from_corpus(cls, corpus_dir: Path = DEFAULT_CORPUS_DIR, db_path: Path | None = None) -> Retriever:
        """Open the index of ``corpus_dir`` (its ``*.md`` files), building it if needed.

        ``db_path=None`` builds an in-memory index.  With a path, an index whose stored
        corpus hash matches is reused as is; otherwise it is rebuilt (atomically, see
        :mod:`engine.rag.index`).  Raises FileNotFoundError for a missing corpus directory and
        ValueError when ``db_path`` is not a file dedicated to this index.
        """
        corpus_dir = Path(corpus_dir)
        db_path = Path(db_path) if db_path is not None else None
        conn, rebuilt = open_index(db_path, *read_corpus(corpus_dir))
        return cls(conn, corpus_dir, db_path, rebuilt)

    # -- queries

    def search(self, query: str, k: int = 4) -> list[Passage]:
        """The ``k`` (1..20) passages that best match ``query``, best first.

        Any text is accepted (see :func:`fts_query`); a query with nothing searchable in it
        (empty, whitespace, punctuation, only stopwords) returns [].  Ties keep corpus order.
        Raises ValueError for a bad ``k``, TypeError for a non-string query and
        RuntimeError after :meth:`close`.
        """
        if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_K:
            raise ValueError(f"k must be an integer from 1 to {MAX_K}, got {k!r}")
        if not isinstance(query, str):
            raise TypeError(f"query must be a string, got {type(query).__name__}")
        match = fts_query(query)
        if not match:
            return []
        with self._lock:
            conn = self._require_open()
            rows = conn.execute(_SEARCH_SQL, (match, k)).fetchall()
        return [
            Passage(doc=doc, title=title, section=section, text=text, score=-float(bm25))
            for doc, title, section, text, bm25 in rows
        ]

    def meta(self) -> dict[str, str]:
        """The index metadata: corpus_hash, index_version, build_count, built_at, docs, chunks."""
        with self._lock:
            return self._meta_unlocked()

    def _meta_unlocked(self) -> dict[str, str]:
        conn = self._require_open()
        return {str(k): str(v) for k, v in conn.execute(f"SELECT key, value FROM {META_TABLE}")}

    @property
    def corpus_hash(self) -> str:
        """The corpus hash the open index was built from."""
        return self.meta()["corpus_hash"]

    def refresh(self) -> bool:
        """Re-hash the corpus and rebuild the index if it changed; returns whether it did.

        Cheap when nothing changed (the corpus files are read and hashed).  Searches from
        other threads wait for the swap and then see the new index.
        """
        digest, docs = read_corpus(self.corpus_dir)
        with self._lock:
            meta = self._meta_unlocked()
            if meta.get("corpus_hash") == digest:
                self.rebuilt = False
                return False
            builds = int(meta.get("build_count", "0"))
            conn, _ = open_index(self.db_path, digest, docs, builds)
            old, self._conn = self._conn, conn
            if old is not None:
                old.close()
            self.rebuilt = True
            return True

    # -- lifecycle

    def _require_open(self) -> sqlite3.Connection:
        if self._conn is None:
            raise RuntimeError("the Retriever is closed")
        return self._conn

    def close(self) -> None:
        """Close the connection; further searches raise RuntimeError.  Idempotent."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __enter__(self) -> Retriever:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        where = str(self.db_path) if self.db_path is not None else ":memory:"
        return f"Retriever(corpus_dir={str(self.corpus_dir)!r}, db={where!r})"
