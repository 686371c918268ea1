"""What a reader sees of Markdown source that only uses backslash escapes and hard breaks (the
output of ``app.safe_text.plain``), for asserting on AppTest element values: CommonMark drops the
backslash before any ASCII punctuation character, and "two spaces + newline" is a line break."""

from __future__ import annotations

import re
import string

_ESCAPE = re.compile(r"\\([" + re.escape(string.punctuation) + r"])")


def shown(source: str) -> str:
    """``source`` with its backslash escapes resolved and hard breaks turned into newlines."""
    return _ESCAPE.sub(r"\1", source).replace("  \n", "\n")


def shown_all(elements) -> list[str]:
    """``shown`` of each element's ``value`` (e.g. ``at.error``, ``at.warning``)."""
    return [shown(e.value) for e in elements]
