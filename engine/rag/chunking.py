"""Markdown corpus documents split into passages (:class:`Chunk`) of at most
:data:`MAX_CHUNK_WORDS` words: one or more passages per heading, split on paragraph, line and
sentence boundaries, with fenced code blocks kept whole where they fit.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

__all__ = ["MAX_CHUNK_WORDS", "Chunk", "chunk_markdown", "word_count"]

MAX_CHUNK_WORDS = 120

_HEADING_RE = re.compile(r"^(#{1,6})[ \t]+(.+?)(?:[ \t]+#+)?[ \t]*$")
_FENCE_RE = re.compile(r"^[ \t]*(```|~~~)")
_SENTENCE_RE = re.compile(r"(?<=[.!?])\s+(?=\S)")


@dataclass(frozen=True, slots=True)
class Chunk:
    """One passage of a corpus document, before indexing."""

    doc: str  # the file stem, e.g. "runbook-llm-provider-errors"
    title: str  # the document's "# Title"
    section: str  # the heading the text sits under ("Parent / Child" for nested headings)
    text: str  # markdown text, at most MAX_CHUNK_WORDS words


def word_count(text: str) -> int:
    """The number of whitespace-separated words in ``text``."""
    return len(text.split())


def _pack(units: Iterable[str], joiner: str, max_words: int) -> list[str]:
    """Greedily join consecutive units (each already <= max_words) into pieces <= max_words."""
    pieces: list[str] = []
    current: list[str] = []
    count = 0
    for unit in units:
        n = word_count(unit)
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
    if word_count(block) <= max_words:
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
