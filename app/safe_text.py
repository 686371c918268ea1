"""Untrusted text made safe for Streamlit's Markdown renderer (pure logic: no streamlit import).

Streamlit renders CommonMark + GFM (react-markdown/remark) not only in ``st.markdown`` but also in
``st.caption``, ``st.error``/``warning``/``info``/``success``, ``st.title``/``header``/``subheader``,
and in widget, metric, expander and tab labels and ``help`` tooltips.  Raw HTML is shown only with
``unsafe_allow_html`` (never used by the console), and ``javascript:`` links are neutralised, but a
Markdown image — inline ``![a](http://host/b.png)``, reference ``![a][r]``/``![r]`` with a
definition ``[r]: http://host/b.png`` — is fetched by the browser as soon as the text is shown.  Text
from users, URL query parameters, the store or an LLM must therefore never reach the renderer as
Markdown that can form an image.

Two transformations, both pure functions of a string:

- :func:`plain` escapes every ASCII punctuation character (CommonMark allows a backslash before any
  of them), so the text renders literally: no emphasis, links, images, headings, lists, code, maths
  (``$``) or directives (``:red[...]``).  For labels, captions, errors and any interpolated value.
- :func:`sanitize_markdown` keeps an answer's Markdown formatting (emphasis, lists, code, tables,
  links, ``[n]`` citations) but drops images (replaced by ``[image removed: alt]``) and raw HTML
  (tags, comments, declarations; autolinks keep their address as text), then, as a last guard over
  the whole text, breaks every remaining ``![`` into ``!\\[`` so no image can be parsed whatever the
  brackets, nesting or code spans around it.  Links stay: a link loads nothing until it is clicked.
"""

from __future__ import annotations

import re
import string

__all__ = ["inert_markdown", "plain", "plotly_text", "sanitize_markdown"]

_PUNCT = frozenset(string.punctuation)

# Raw HTML as CommonMark defines it (spec 0.31, section 6.6): open and closing tags and declarations
# by one pattern, and the delimited kinds (comments, processing instructions, CDATA) by a linear scan.
_ATTR = r"""(?:\s+[A-Za-z_:][A-Za-z0-9_.:-]*(?:\s*=\s*(?:[^\s"'=<>`]+|'[^']*'|"[^"]*"))?)"""
_TAG = re.compile(
    r"<[A-Za-z][A-Za-z0-9-]*" + _ATTR + r"*\s*/?>"  # open tag
    r"|</[A-Za-z][A-Za-z0-9-]*\s*>"  # closing tag
    r"|<![A-Za-z][^>]*>"  # declaration
)
_DELIMITED = (("<!--", "-->"), ("<?", "?>"), ("<![CDATA[", "]]>"))
_MAX_HTML_PASSES = 8
# Autolinks <scheme:...> and <address@host>: shown as their address (GFM links http(s) ones itself).
_AUTOLINK = re.compile(
    r"<([A-Za-z][A-Za-z0-9+.-]{1,31}:[^\s<>]*"
    r"|[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*)>"
)
# Images whose alt text has no brackets: inline ![alt](dest "title") and full/collapsed reference
# ![alt][ref] / ![alt][].  Shortcut references ![ref] are matched only when [ref]: is defined.
_IMG_INLINE = re.compile(
    r"(?<!\\)!\[([^\[\]]*)\]\(\s*(?:<[^<>\n]*>|(?:[^\s()\\]|\\.|\([^\s()]*\))*)"
    r"""(?:\s+(?:"[^"]*"|'[^']*'|\([^()]*\)))?\s*\)"""
)
_IMG_REF = re.compile(r"(?<!\\)!\[([^\[\]]*)\]\[([^\[\]]*)\]")
_IMG_SHORTCUT = re.compile(r"(?<!\\)!\[([^\[\]]+)\](?![\[(])")
_DEFINITION = re.compile(r"^ {0,3}\[((?:[^\[\]\\]|\\.)+)\]:", re.MULTILINE)
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})", re.MULTILINE)


def plain(text: str) -> str:
    """``text`` escaped so that Streamlit's Markdown shows it literally (every ASCII punctuation
    character backslash-escaped; letters, digits, spaces and non-ASCII unchanged).

    Each line break becomes a Markdown hard break (two spaces before it) so multi-line messages keep
    their lines; use it for values, captions, labels and error messages.
    """
    escaped = "".join("\\" + ch if ch in _PUNCT else ch for ch in text)
    return escaped.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "  \n")


def plotly_text(text: str) -> str:
    """``text`` for a Plotly label, hover text or annotation, shown literally: Plotly reads a subset of
    HTML there (``<a href>``, ``<span style>``, ``<br>``, entities), so ``&``, ``<`` and ``>`` become
    entities."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _label(text: str) -> str:
    """A reference label normalised as CommonMark matches them (case-folded, whitespace collapsed)."""
    return " ".join(text.split()).casefold()


def _segments(text: str) -> list[tuple[bool, str]]:
    """``text`` split into (is_code, piece): fenced code blocks and inline code spans are code.

    An approximation of CommonMark's parsing used only for cosmetics (which parts keep raw HTML and
    image syntax verbatim); safety never depends on it (see :func:`sanitize_markdown`).
    """
    out: list[tuple[bool, str]] = []
    pos = 0
    while pos < len(text):
        fence = _FENCE.search(text, pos)
        prose_end = fence.start() if fence else len(text)
        out += _code_spans(text[pos:prose_end])
        if fence is None:
            break
        mark = fence.group(1)
        closing = re.compile(rf"^ {{0,3}}{re.escape(mark[0])}{{{len(mark)},}}[ \t]*$", re.MULTILINE)
        line_end = text.find("\n", fence.end())
        body_start = len(text) if line_end < 0 else line_end + 1
        close = closing.search(text, body_start)
        end = len(text) if close is None else close.end()
        out.append((True, text[fence.start() : end]))
        pos = end
    return out


def _code_spans(prose: str) -> list[tuple[bool, str]]:
    """``prose`` split at inline code spans: a run of n backticks up to the next run of exactly n."""
    out: list[tuple[bool, str]] = []
    pos = start = 0
    while True:
        opening = re.compile(r"(?<![`\\])`+").search(prose, pos)
        if opening is None:
            break
        n = len(opening.group(0))
        closing = re.compile(rf"(?<!`)`{{{n}}}(?!`)").search(prose, opening.end())
        if closing is None:
            pos = opening.end()
            continue
        out.append((False, prose[start : opening.start()]))
        out.append((True, prose[opening.start() : closing.end()]))
        pos = start = closing.end()
    out.append((False, prose[start:]))
    return [(code, piece) for code, piece in out if piece]


def _cut(text: str, start: str, end: str) -> str:
    """``text`` without every ``start ... end`` span (the first ``end`` after each ``start``).  Linear:
    once a ``start`` has no ``end`` after it, no later one has either."""
    out: list[str] = []
    pos = 0
    while (i := text.find(start, pos)) >= 0 and (j := text.find(end, i + len(start))) >= 0:
        out.append(text[pos:i])
        pos = j + len(end)
    out.append(text[pos:])
    return "".join(out)


def _strip_html(prose: str) -> str:
    """``prose`` without raw HTML.  Removing one tag can join the pieces of another (``<<b>img ...>``),
    so it repeats; after a few passes whatever could still start a tag is shown as text (``&lt;``)."""
    for _ in range(_MAX_HTML_PASSES):
        before = prose
        for start, end in _DELIMITED:
            prose = _cut(prose, start, end)
        last = prose.rfind(">")  # a tag ends with ">": nothing after the last one can match
        prose = _TAG.sub("", prose[: last + 1]) + prose[last + 1 :]
        if prose == before:
            return prose
    return re.sub(r"<(?=[A-Za-z/!?])", "&lt;", prose)


def _clean_prose(prose: str, defined: frozenset[str]) -> str:
    """Raw HTML and images removed from a piece of prose (not code)."""
    prose = _strip_html(_AUTOLINK.sub(lambda m: m.group(1), prose))

    def removed(match: re.Match[str]) -> str:
        alt = " ".join(match.group(1).split())
        return "\\[image removed" + (": " + plain(alt) if alt else "") + "\\]"

    prose = _IMG_INLINE.sub(removed, prose)
    prose = _IMG_REF.sub(removed, prose)
    return _IMG_SHORTCUT.sub(lambda m: removed(m) if _label(m.group(1)) in defined else m.group(0), prose)


def sanitize_markdown(text: str) -> str:
    """Markdown from an LLM or the corpus, made safe to render: the same text with its formatting,
    links and ``[n]`` citations, but without images (each replaced by ``[image removed: alt]``) or
    raw HTML (tags and comments dropped, autolinks shown as their address).

    Code spans and fenced code blocks keep their text, except that — like everywhere else — a
    ``![`` becomes ``!\\[``: that final guard runs over the whole result, so no Markdown image can
    survive even where the code detection here and the browser's parser disagree.
    """
    defined = frozenset(_label(m.group(1)) for m in _DEFINITION.finditer(text))
    cleaned = "".join(piece if code else _clean_prose(piece, defined) for code, piece in _segments(text))
    return cleaned.replace("![", "!\\[")


# -- answers: no links either -------------------------------------------------------------------------
# An answer from an LLM is shown with its formatting but without anything it could make the reader
# open: inline links [text](url) read "text (url)", reference links [text][ref] read "text", link
# reference definitions and bare web addresses are shown as text (GFM would link "http://...",
# "www...." and e-mail addresses by itself).  ``[n]`` citations stay as they are: they link nowhere.
_LINK_INLINE = re.compile(
    r"(?<![\\!])\[([^\[\]]*)\]\(\s*(<[^<>\n]*>|(?:[^\s()\\]|\\.|\([^\s()]*\))*)"
    r"""(?:\s+(?:"[^"]*"|'[^']*'|\([^()]*\)))?\s*\)"""
)
_LINK_REF = re.compile(r"(?<![\\!])\[([^\[\]]+)\]\[[^\[\]]*\]")
_DEFINITION_LINE = re.compile(r"^ {0,3}\[(?:[^\[\]\\]|\\.)+\]:.*$", re.MULTILINE)
_BARE_ADDRESS = re.compile(r"(?i)\b[a-z][a-z0-9+.-]{1,31}:(?=\S)|\bwww\.|@")


def _unlink_prose(prose: str) -> str:
    prose = _DEFINITION_LINE.sub(lambda m: plain(m.group(0)), prose)
    prose = _LINK_INLINE.sub(lambda m: f"{m.group(1)} ({m.group(2).strip('<>')})", prose)
    prose = _LINK_REF.sub(lambda m: m.group(1), prose)
    return _BARE_ADDRESS.sub(lambda m: m.group(0)[:-1] + "\\" + m.group(0)[-1], prose)


def inert_markdown(text: str) -> str:
    """Markdown from an LLM or the corpus made inert: :func:`sanitize_markdown` (no images, no raw
    HTML), and no links either -- an inline link becomes ``text (address)``, a reference link its
    text, and bare addresses (``scheme:...``, ``www.``, e-mail) are escaped so GFM does not link
    them.  Emphasis, lists, tables, code and ``[n]`` citations are kept; code is left as it is."""
    cleaned = sanitize_markdown(text)
    return "".join(piece if code else _unlink_prose(piece) for code, piece in _segments(cleaned))
