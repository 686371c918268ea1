"""Retrieval over the operator corpus (``data/corpus/*.md``) with SQLite FTS5 and bm25.

* :mod:`~engine.rag.chunking`: markdown documents split into passages of at most
  :data:`MAX_CHUNK_WORDS` words.
* :mod:`~engine.rag.index`: reading and hashing the corpus, building and opening its FTS5 index
  (rebuilt atomically when the corpus changes).
* :mod:`~engine.rag.retriever`: :class:`Retriever`, bm25 search shared between threads.
* :mod:`~engine.rag.passages`: user text made into a safe FTS5 query, and retrieved
  :class:`Passage` values made into numbered prompt lines that answers cite.
"""

from engine.rag.chunking import MAX_CHUNK_WORDS, Chunk, chunk_markdown
from engine.rag.index import DEFAULT_CORPUS_DIR, FTS_COLUMNS, FTS_WEIGHTS, INDEX_VERSION, corpus_hash
from engine.rag.passages import MAX_QUERY_TERMS, STOPWORDS, Passage, format_context, fts_query, query_terms
from engine.rag.retriever import MAX_K, Retriever

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
