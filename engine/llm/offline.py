"""The offline provider: deterministic, no network, extractive answers from the caller's passages.

Prompt convention (what the pipeline sends): a system message and a user message; the *last* user
message may hold retrieved passages, one per ``[n] text`` line (a passage continues on the following
lines until the next ``[m] `` line or the ``Question:`` line), followed by ``Question: ...``::

    Answer from the passages.
    [1] Paris is the capital of France. It lies on the Seine.
    [2] Berlin is the capital of Germany.
    Question: What river does Paris lie on?

The answer is EXTRACTIVE: the 1-3 passage sentences with the highest weighted term overlap with the
question, each copied verbatim and followed by its citation ``[n]``, best first.  Terms are lower-cased
words minus stopwords, with a trailing plural ``s`` folded (:func:`engine.llm.text.terms`).  A shared
term weighs its smoothed inverse document frequency over the given passages,
``ln((1 + N) / (1 + df)) + 1``, so a term found in every passage counts less than a distinctive one.
Further sentences are added only if they score at least ``min_relative_score`` of the best.  Ties go
to the earlier passage, then the earlier sentence.

Nothing is ever invented: with no passages the text says no offline answer is available
(``finish_reason="no_context"``); with passages that share no term with the question it says so too
(``finish_reason="no_match"``).  Token counts are approximations (:func:`engine.llm.text.count_tokens`,
``tokens_estimated=True``); cost is 0.0.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from engine.llm.text import count_tokens, join_sentences, split_sentences, terms
from engine.llm.types import LLMRequest, LLMResponse

__all__ = [
    "NO_CONTEXT_TEXT",
    "OFFLINE_MODEL",
    "OfflineProvider",
    "Passage",
    "ScoredSentence",
    "parse_prompt",
    "rank_sentences",
]

OFFLINE_MODEL = "offline-extractive-v1"
NO_CONTEXT_TEXT = (
    "No offline answer is available: the offline provider answers only by quoting retrieved passages, "
    "and none were supplied."
)
_NO_MATCH_TEXT = (
    "No offline answer is available: none of the {n} supplied passage(s) shares a content word with "
    "the question."
)
_PASSAGE_LINE = re.compile(r"^\s*\[(\d+)\]\s+(.*)$")
_QUESTION_LINE = re.compile(r"^\s*question\s*:\s*(.*)$", re.IGNORECASE)
_TOKEN_END = re.compile(r"\w+|[^\w\s]")


@dataclass(frozen=True, slots=True)
class Passage:
    """A retrieved passage: its citation number ``n`` and its text."""

    number: int
    text: str


@dataclass(frozen=True, slots=True)
class ScoredSentence:
    """A candidate sentence: verbatim ``text``, the ``passage`` number it cites, its ``score`` (sum of
    the idf weights of the question terms it contains) and its position for tie-breaking."""

    text: str
    passage: int
    score: float
    order: tuple[int, int]


def parse_prompt(text: str) -> tuple[tuple[Passage, ...], str]:
    """``(passages, question)`` from a user message following the module's prompt convention.

    Without a ``Question:`` line the question is every line that is not part of a passage.
    """
    passages: list[Passage] = []
    current: tuple[int, list[str]] | None = None
    question_lines: list[str] | None = None
    other: list[str] = []

    def flush() -> None:
        if current is not None:
            body = " ".join(" ".join(current[1]).split())
            if body:
                passages.append(Passage(current[0], body))

    for line in text.splitlines():
        if question_lines is not None:
            question_lines.append(line)
            continue
        q = _QUESTION_LINE.match(line)
        p = _PASSAGE_LINE.match(line)
        if q:
            flush()
            current = None
            question_lines = [q.group(1)]
        elif p:
            flush()
            current = (int(p.group(1)), [p.group(2)])
        elif current is not None:
            current[1].append(line)
        else:
            other.append(line)
    flush()
    question = " ".join(question_lines if question_lines is not None else other)
    return tuple(passages), " ".join(question.split())


def rank_sentences(passages: Sequence[Passage], question: str) -> list[ScoredSentence]:
    """Every passage sentence sharing a term with ``question``, best first (see module docstring)."""
    q_terms = set(terms(question))
    if not q_terms or not passages:
        return []
    doc_terms = [set(terms(p.text)) for p in passages]
    n = len(passages)
    idf = {t: math.log((1 + n) / (1 + sum(t in d for d in doc_terms))) + 1.0 for t in q_terms}
    scored: list[ScoredSentence] = []
    for i, passage in enumerate(passages):
        for j, sentence in enumerate(split_sentences(passage.text)):
            overlap = q_terms.intersection(terms(sentence))
            if overlap:
                score = sum(idf[t] for t in sorted(overlap))
                scored.append(ScoredSentence(sentence, passage.number, score, (i, j)))
    scored.sort(key=lambda s: (-s.score, s.order))
    return scored


def _truncate_to_tokens(text: str, max_tokens: int) -> str:
    """The prefix of ``text`` holding its first ``max_tokens`` approximate tokens, plus an ellipsis."""
    for k, match in enumerate(_TOKEN_END.finditer(text), start=1):
        if k == max_tokens:
            return text[: match.end()] + "…"
    return text


class OfflineProvider:
    """Deterministic extractive provider (see the module docstring).  Thread-safe (stateless).

    ``max_sentences``: 1-3 sentences are quoted.  ``min_relative_score``: a sentence after the first
    is quoted only if its score is at least this fraction of the best score.  ``clock``: monotonic
    seconds, for ``latency_s``.  Never raises for a well-formed request.
    """

    def __init__(
        self,
        *,
        name: str = "offline",
        max_sentences: int = 3,
        min_relative_score: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not 1 <= max_sentences <= 3:
            raise ValueError("max_sentences must be 1, 2 or 3")
        if not 0.0 <= min_relative_score <= 1.0:
            raise ValueError("min_relative_score must be in [0, 1]")
        self.name = name
        self.max_sentences = max_sentences
        self.min_relative_score = min_relative_score
        self._clock = clock

    def __repr__(self) -> str:
        return f"OfflineProvider(name={self.name!r}, max_sentences={self.max_sentences})"

    def answer(self, request: LLMRequest) -> tuple[str, str]:
        """``(text, finish_reason)`` for ``request``; finish_reason is ``"extractive"``, ``"length"``
        (cut to ``max_tokens``), ``"no_context"`` or ``"no_match"``."""
        users = [m.content for m in request.messages if m.role == "user"]
        passages, question = parse_prompt(users[-1] if users else "")
        if not passages:
            return NO_CONTEXT_TEXT, "no_context"
        ranked = rank_sentences(passages, question)
        if not ranked:
            return _NO_MATCH_TEXT.format(n=len(passages)), "no_match"
        chosen: list[ScoredSentence] = []
        seen: set[str] = set()
        for cand in ranked:
            if len(chosen) == self.max_sentences or cand.score < self.min_relative_score * ranked[0].score:
                break
            if cand.text not in seen:
                seen.add(cand.text)
                chosen.append(cand)
        parts: list[str] = []
        used = 0
        for cand in chosen:
            part = f"{cand.text} [{cand.passage}]"
            cost = count_tokens(part) + (1 if parts else 0)
            if used + cost > request.max_tokens:
                if not parts:  # even the best sentence is too long: quote its beginning
                    keep = max(1, request.max_tokens - 4)  # room for the ellipsis and "[n]"
                    return _truncate_to_tokens(cand.text, keep) + f" [{cand.passage}]", "length"
                return join_sentences(parts), "length"
            parts.append(part)
            used += cost
        return join_sentences(parts), "extractive"

    def complete(self, request: LLMRequest) -> LLMResponse:
        """The extractive answer as an :class:`LLMResponse` (``extractive=True``, cost 0.0, priced)."""
        started = self._clock()
        text, finish = self.answer(request)
        return LLMResponse(
            text=text,
            provider=self.name,
            model=OFFLINE_MODEL,
            input_tokens=sum(count_tokens(m.content) for m in request.messages),
            output_tokens=count_tokens(text),
            cost_usd=0.0,
            latency_s=self._clock() - started,
            attempts=1,
            extractive=True,
            finish_reason=finish,
            priced=True,
            tokens_estimated=True,
        )
