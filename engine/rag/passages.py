"""The text around a search: user text made into a safe FTS5 query, and the retrieved
:class:`Passage` made into numbered prompt lines that answers cite (``[1]``, ``[2]``...).

Queries.  User text is never passed to FTS5 as syntax.  :func:`fts_query` lowercases it,
keeps only runs of letters and digits, drops English stopwords, de-duplicates, keeps at
most :data:`MAX_QUERY_TERMS` terms, double-quotes each one and joins them with ``OR``
(bm25 then ranks passages that match more of the terms higher).  So ``what's "p95"?``
becomes ``"p95"`` and ``AND OR NEAR(`` becomes ``"near"``: no input can raise an FTS5
syntax error.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["MAX_QUERY_TERMS", "STOPWORDS", "Passage", "format_context", "fts_query", "query_terms"]

MAX_QUERY_TERMS = 32

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
_WS_RE = re.compile(r"\s+")


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
