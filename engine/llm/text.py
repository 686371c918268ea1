"""Small deterministic text helpers: approximate token counts, content terms, sentence splitting.

The token count is an APPROXIMATION (words and single punctuation marks), not any provider's
tokenizer: real BPE tokenizers typically give 10-40 % more tokens on English prose.  It is used for
the offline provider and for servers that report no usage; responses mark such counts
``tokens_estimated=True``.
"""

from __future__ import annotations

import re

__all__ = [
    "LIST_MARKERS",
    "STOPWORDS",
    "count_tokens",
    "fold",
    "join_sentences",
    "split_sentences",
    "terms",
    "tokenize",
]

_TOKEN = re.compile(r"\w+|[^\w\s]")
_WORD = re.compile(r"[^\W_]+")
# A sentence ends at . ! or ? (optionally followed by closing quotes/brackets) before whitespace and
# an upper-case letter, digit, quote or bracket.  Abbreviations such as "Dr. Smith" split wrongly;
# that is acceptable for extractive answers, which only ever copy text verbatim.
_SENTENCE_END = re.compile(r"[.!?][\"')\]]*(?=\s+[\"'(\[]?[A-Z0-9])")
# A list item ("- " or "* ") after the end of a sentence or a colon starts a sentence of its own,
# so a bulleted list flattened onto one line is still one item per sentence.
_LIST_ITEM = re.compile(r"(?<=[.:;!?])\s+(?=[-*] \S)")
#: The markers that start a list-item sentence.
LIST_MARKERS = ("- ", "* ")

_STOPWORD_TEXT = """
    a about above after again against all am an and any are as at be because been before being below
    between both but by can could did do does doing down during each few for from further had has have
    having he her here hers herself him himself his how i if in into is it its itself just me more most
    my myself no nor not of off on once only or other our ours ourselves out over own same she should so
    some such than that the their theirs them themselves then there these they this those through to too
    under until up very was we were what when where which while who whom why will with would you your
    yours yourself yourselves s t
"""
STOPWORDS: frozenset[str] = frozenset(_STOPWORD_TEXT.split())


def tokenize(text: str) -> list[str]:
    """Approximate tokens: runs of word characters and single punctuation marks, in order."""
    return _TOKEN.findall(text)


def count_tokens(text: str) -> int:
    """The number of :func:`tokenize` tokens in ``text`` (an approximation of billing tokens)."""
    return sum(1 for _ in _TOKEN.finditer(text))


def fold(word: str) -> str:
    """A minimal plural/3rd-person fold: drop one trailing ``s`` from a word of 4+ letters unless it
    ends in ``ss``, ``us`` or ``is`` (``lies`` -> ``lie``, ``rivers`` -> ``river``; ``paris``, ``class``,
    ``virus`` unchanged).  Deliberately not a stemmer: it only merges the commonest inflection."""
    if len(word) >= 4 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def terms(text: str) -> list[str]:
    """Content terms of ``text``, in order: lower-cased word tokens (letters and digits) minus
    :data:`STOPWORDS`, each passed through :func:`fold`."""
    return [fold(w) for w in _WORD.findall(text.lower()) if w not in STOPWORDS]


def split_sentences(text: str) -> list[str]:
    """The sentences of ``text``, whitespace-normalised, each copied verbatim otherwise; empty ones
    dropped.  A list item (``- `` or ``* `` after a sentence's end or a colon) is a sentence of its
    own, marker included."""
    flat = " ".join(text.split())
    if not flat:
        return []
    out: list[str] = []
    start = 0
    for match in _SENTENCE_END.finditer(flat):
        out.append(flat[start : match.end()].strip())
        start = match.end()
    out.append(flat[start:].strip())
    return [item.strip() for s in out for item in _LIST_ITEM.split(s) if item.strip()]


def join_sentences(parts: list[str]) -> str:
    """Quoted sentences as one text: side by side, except that a list item (see
    :func:`split_sentences`) starts a line of its own and the text after a list starts a new
    paragraph, so the answer reads (and renders as Markdown) as the list it came from."""
    text = ""
    for i, part in enumerate(parts):
        if i == 0:
            text = part
        elif part.startswith(LIST_MARKERS):
            text += "\n" + part
        elif parts[i - 1].startswith(LIST_MARKERS):
            text += "\n\n" + part
        else:
            text += " " + part
    return text
