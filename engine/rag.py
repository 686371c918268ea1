"""Retrieval over the operator corpus (``data/corpus/*.md``) with SQLite FTS5 and bm25.

The corpus is split into passages by :func:`chunk_markdown` (one or more passages per
heading, each at most :data:`MAX_CHUNK_WORDS` words), stored in a ``chunks`` table and
indexed by an FTS5 virtual table ``chunks_fts`` (porter stemmer over the unicode61
tokenizer) built with sqlite-utils.  :meth:`Retriever.search` ranks passages with FTS5's
``bm25()``.

Scores.  SQLite's ``bm25()`` returns the *negated* Okapi BM25 value so that
``ORDER BY bm25(...)`` ascending puts the best match first: k1 = 1.2, b = 0.75,
IDF = ln((N - n + 0.5) / (n + 0.5)) clamped to 1e-6 when not positive, the passage length is
the token count of all indexed columns (title, section, text), and a term's frequency is the
sum over columns of its count times the column weight (:data:`FTS_WEIGHTS`: a term in the
section heading counts twice).  :attr:`Passage.score` is that value negated back: the textbook
BM25 relevance, **higher is better**, about 0 for a passage that only matches very
common terms.

Queries.  User text is never passed to FTS5 as syntax.  :func:`fts_query` lowercases it,
keeps only runs of letters and digits, drops English stopwords, de-duplicates, keeps at
most :data:`MAX_QUERY_TERMS` terms, double-quotes each one and joins them with ``OR``
(bm25 then ranks passages that match more of the terms higher).  So ``what's "p95"?``
becomes ``"p95"`` and ``AND OR NEAR(`` becomes ``"near"``: no input can raise an FTS5
syntax error.

Rebuilds.  The index stores a hash of the corpus (file names and bytes, plus the chunker
and schema version) in a ``rag_meta`` table and is rebuilt only when that hash differs.
With a file ``db_path`` the new index is built in a temporary file next to it and moved
into place with :func:`os.replace`, so another process never sees a half-built index and a
crash leaves the old one intact; ``db_path`` must therefore be a file dedicated to this
index (never the telemetry store): a database holding other tables is refused.

Threads.  A :class:`Retriever` holds **one** SQLite connection opened with
``check_same_thread=False`` and serialises every use of it with a :class:`threading.Lock`.
One connection per call would not work for the in-memory index (each new ``:memory:``
connection is a new, empty database), and FTS queries over a corpus this size take well
under a millisecond, so the lock costs nothing measurable.  One instance can be shared by
all Streamlit sessions (``st.cache_resource``) and worker threads.
"""

from __future__ import annotations

import hashlib
import os
import re
import sqlite3
import tempfile
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import sqlite_utils

__all__ = [
    "DEFAULT_CORPUS_DIR",
    "FTS_COLUMNS",
    "FTS_WEIGHTS",
    "INDEX_VERSION",
    "MAX_CHUNK_WORDS",
    "MAX_K",
    "MAX_QUERY_TERMS",
    "STOPWORDS",
    "Chunk",
    "Passage",
    "Retriever",
    "chunk_markdown",
    "corpus_hash",
    "format_context",
    "fts_query",
    "query_terms",
]

DEFAULT_CORPUS_DIR = Path("data/corpus")
#: Bump when the chunker, the schema or the tokenizer changes: it is part of the corpus hash,
#: so every existing index file is rebuilt on its next open.
INDEX_VERSION = "1"
MAX_CHUNK_WORDS = 120
MAX_K = 20
MAX_QUERY_TERMS = 32

CHUNKS_TABLE = "chunks"
META_TABLE = "rag_meta"
FTS_COLUMNS = ("title", "section", "text")
#: bm25 column weights, in FTS_COLUMNS order: a query term in a section heading counts twice.
FTS_WEIGHTS = (1.0, 2.0, 1.0)
_OWN_TABLE_PREFIXES = (CHUNKS_TABLE, META_TABLE)

#: Words dropped from queries (STOPWORDS): they carry no topic and would only add noise to bm25.
#: Single letters left over from contractions ("what's" -> "what", "s") are included.
_STOPWORD_TEXT = """
    a about above after again against all am an and any are as at be because been before being
    below between both but by can could d did do does doing during each few for from further had
    has have having he her here hers herself him himself his how i if in into is it its itself
    just ll m me might more most must my myself no nor not now of on once only or other ought our
    ours ourselves own re s same shall she should so some such t than that the their theirs them
    themselves then there these they this those through to too under until up ve very was we were
    what when where which while who whom why will with would you your yours yourself yourselves
"""
STOPWORDS: frozenset[str] = frozenset(_STOPWORD_TEXT.split())

_TOKEN_RE = re.compile(r"[^\W_]+")  # runs of letters/digits, like FTS5's unicode61 tokenizer
_HEADING_RE = re.compile(r"^(#{1,6})[ \t]+(.+?)(?:[ \t]+#+)?[ \t]*$")
_FENCE_RE = re.compile(r"^[ \t]*(```|~~~)")
_SENTENCE_RE = re.compile(r"(?<=[.!?])\s+(?=\S)")
_WS_RE = re.compile(r"\s+")


@dataclass(frozen=True, slots=True)
class Chunk:
    """One passage of a corpus document, before indexing."""

    doc: str  # the file stem, e.g. "runbook-llm-provider-errors"
    title: str  # the document's "# Title"
    section: str  # the heading the text sits under ("Parent / Child" for nested headings)
    text: str  # markdown text, at most MAX_CHUNK_WORDS words


@dataclass(frozen=True, slots=True)
class Passage:
    """A retrieved passage.

    ``score`` is the Okapi BM25 relevance of the passage for the query, higher is better
    (the negation of SQLite's ``bm25()``, which is lower-is-better and negative).
    """

    doc: str
    title: str
    section: str
    text: str
    score: float


# --------------------------------------------------------------------------- chunking


def _words(text: str) -> int:
    return len(text.split())


def _pack(units: Iterable[str], joiner: str, max_words: int) -> list[str]:
    """Greedily join consecutive units (each already <= max_words) into pieces <= max_words."""
    pieces: list[str] = []
    current: list[str] = []
    count = 0
    for unit in units:
        n = _words(unit)
        if current and count + n > max_words:
            pieces.append(joiner.join(current))
            current, count = [], 0
        current.append(unit)
        count += n
    if current:
        pieces.append(joiner.join(current))
    return pieces


def _split_block(block: str, max_words: int) -> list[str]:
    """Split one paragraph into pieces of at most ``max_words`` words.

    Tries line boundaries (list items), then sentence boundaries, then plain word windows.
    """
    if _words(block) <= max_words:
        return [block]
    lines = [line for line in block.split("\n") if line.strip()]
    if len(lines) > 1:
        units = [u for line in lines for u in _split_block(line, max_words)]
        return _pack(units, "\n", max_words)
    sentences = _SENTENCE_RE.split(block.strip())
    if len(sentences) > 1:
        units = [u for s in sentences for u in _split_block(s, max_words)]
        return _pack(units, " ", max_words)
    words = block.split()
    return [" ".join(words[i : i + max_words]) for i in range(0, len(words), max_words)]


def _paragraphs(lines: Sequence[str]) -> list[str]:
    """Blank-line separated paragraphs; a fenced code block stays inside one paragraph."""
    paragraphs: list[str] = []
    current: list[str] = []
    in_fence = False
    for line in lines:
        if _FENCE_RE.match(line):
            in_fence = not in_fence
        if not line.strip() and not in_fence:
            if current:
                paragraphs.append("\n".join(current).strip("\n"))
                current = []
            continue
        current.append(line.rstrip())
    if current:
        paragraphs.append("\n".join(current).strip("\n"))
    return [p for p in paragraphs if p.strip()]


def _title_from_stem(doc: str) -> str:
    return re.sub(r"[-_]+", " ", doc).strip().capitalize() or doc


def chunk_markdown(text: str, doc: str, max_words: int = MAX_CHUNK_WORDS) -> list[Chunk]:
    """Split a markdown document into passages of at most ``max_words`` words.

    The first level-1 heading is the document title (the humanised ``doc`` if there is
    none).  Every other heading starts a section; nested headings are named
    ``"Parent / Child"``, and text before the first section belongs to a section named
    after the title.  Headings inside fenced code blocks are ignored.  A section longer
    than ``max_words`` is split on paragraph boundaries, then lines, then sentences, and
    only as a last resort inside a sentence.  Empty sections produce no passage.
    """
    if max_words < 1:
        raise ValueError(f"max_words must be >= 1, got {max_words}")
    title: str | None = None
    stack: list[tuple[int, str]] = []  # (level, heading) of the headings above the current text
    sections: list[tuple[str | None, list[str]]] = [(None, [])]  # None: the intro section
    in_fence = False
    for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        if _FENCE_RE.match(line):
            in_fence = not in_fence
        heading = None if in_fence else _HEADING_RE.match(line)
        if heading is None:
            sections[-1][1].append(line)
            continue
        level, name = len(heading.group(1)), heading.group(2).strip()
        if level == 1 and title is None:
            title = name
            continue
        while stack and stack[-1][0] >= level:
            stack.pop()
        stack.append((level, name))
        sections.append((" / ".join(h for _, h in stack), []))
    title = title or _title_from_stem(doc)
    chunks: list[Chunk] = []
    for name, lines in sections:
        pieces = [piece for para in _paragraphs(lines) for piece in _split_block(para, max_words)]
        for body in _pack(pieces, "\n\n", max_words):
            chunks.append(Chunk(doc=doc, title=title, section=name or title, text=body))
    return chunks


# --------------------------------------------------------------------------- queries


def query_terms(query: str) -> list[str]:
    """The search terms of ``query``: lowercase letter/digit runs, stopwords dropped,
    de-duplicated in order of first appearance, at most :data:`MAX_QUERY_TERMS`."""
    terms: list[str] = []
    seen: set[str] = set()
    for token in _TOKEN_RE.findall(query.lower()):
        if token in STOPWORDS or token in seen:
            continue
        seen.add(token)
        terms.append(token)
        if len(terms) == MAX_QUERY_TERMS:
            break
    return terms


def fts_query(query: str) -> str:
    """``query`` as a safe FTS5 MATCH expression: each term double-quoted, joined by ``OR``.

    Returns ``""`` when nothing searchable is left.  Terms only contain letters and digits,
    so they need no escaping; quoting makes FTS5 read ``AND``/``OR``/``NOT``/``NEAR`` and
    column names as plain words.
    """
    return " OR ".join(f'"{term}"' for term in query_terms(query))


# --------------------------------------------------------------------------- corpus


def _read_corpus(corpus_dir: Path) -> tuple[str, list[tuple[str, str]]]:
    """The corpus hash and the ``(stem, text)`` of every ``*.md`` file, from one read of each
    file (so the stored hash always describes the indexed text)."""
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
    return _read_corpus(Path(corpus_dir))[0]


def _read_meta(conn: sqlite3.Connection) -> dict[str, str]:
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


def _build_index(
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
                    "words": _words(chunk.text),
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


# --------------------------------------------------------------------------- retriever


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
        corpus hash matches is reused as is; otherwise it is rebuilt (atomically, see the
        module docstring).  Raises FileNotFoundError for a missing corpus directory and
        ValueError when ``db_path`` is not a file dedicated to this index.
        """
        corpus_dir = Path(corpus_dir)
        db_path = Path(db_path) if db_path is not None else None
        conn, rebuilt = cls._open(db_path, *_read_corpus(corpus_dir))
        return cls(conn, corpus_dir, db_path, rebuilt)

    @staticmethod
    def _open(
        db_path: Path | None, digest: str, docs: Sequence[tuple[str, str]], builds: int = 0
    ) -> tuple[sqlite3.Connection, bool]:
        """A connection to an index of ``docs`` and whether it was (re)built.

        ``builds`` is the build count so far, for an in-memory index (a file keeps its own).
        """
        if db_path is None:
            conn = sqlite3.connect(":memory:", check_same_thread=False)
            _build_index(conn, docs, digest, build_count=builds + 1)
            return conn, True
        read_only = db_path.resolve().as_uri() + "?mode=ro"  # as_uri escapes '?', '#', '%' in the path
        meta: dict[str, str] = {}
        if db_path.exists():
            probe = sqlite3.connect(read_only, uri=True)
            try:
                meta = _read_meta(probe)
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
                    _build_index(build, docs, digest, build_count=int(meta.get("build_count", "0")) + 1)
                finally:
                    build.close()
                os.replace(tmp, db_path)
            finally:
                tmp.unlink(missing_ok=True)
        conn = sqlite3.connect(read_only, uri=True, check_same_thread=False)
        return conn, rebuilt

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
        digest, docs = _read_corpus(self.corpus_dir)
        with self._lock:
            meta = self._meta_unlocked()
            if meta.get("corpus_hash") == digest:
                self.rebuilt = False
                return False
            builds = int(meta.get("build_count", "0"))
            conn, _ = self._open(self.db_path, digest, docs, builds)
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


# --------------------------------------------------------------------------- prompts


def format_context(passages: Sequence[Passage]) -> str:
    """Passages as numbered prompt lines, one per passage: ``[1] (doc § section) text``.

    Whitespace inside the text is collapsed so every passage is exactly one line (the
    offline provider extracts from lines starting with ``[n] ``).  [] gives ``""``.
    """
    lines = []
    for i, p in enumerate(passages, start=1):
        text = _WS_RE.sub(" ", p.text).strip()
        section = _WS_RE.sub(" ", p.section).strip()
        lines.append(f"[{i}] ({p.doc} § {section}) {text}")
    return "\n".join(lines)
