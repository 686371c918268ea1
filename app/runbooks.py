"""The Runbooks page's service (pages/runbooks.py): the runbooks of the corpus (data/corpus/
runbook-*.md), listed with their titles, and one runbook's text.

A name comes from a URL (``/runbooks?name=<stem>``), so it is checked against the files that
exist, never used to build a path: an unknown, malformed or unreadable runbook comes back as a
message, never an exception.  Rendering is the page's: through ``components.safe_markdown``, so
a runbook cannot make the browser load anything (images and raw HTML are dropped).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from app.links import parse_runbook_link, runbook_link, runbook_name, runbook_url

__all__ = [
    "CORPUS_DIR",
    "MAX_BYTES",
    "Runbook",
    "RunbookInfo",
    "find_runbook",
    "list_runbooks",
    "parse_runbook_link",
    "runbook_link",
    "runbook_name",
    "runbook_url",
]

#: Where the runbooks live (the RAG corpus, shipped with the code).
CORPUS_DIR = Path(__file__).resolve().parents[1] / "data" / "corpus"
#: A runbook larger than this (bytes) is not shown.
MAX_BYTES = 512_000
_NAME = re.compile(r"^runbook-[a-z0-9][a-z0-9-]{0,99}$")
_TITLE = re.compile(r"^#\s+(.+?)\s*#*\s*$", re.MULTILINE)


@dataclass(frozen=True)
class RunbookInfo:
    """A runbook of the corpus: ``name`` (the file stem, e.g. ``runbook-error-budget-fast-burn``),
    ``title`` (its first ``#`` heading, else the name) and ``url`` (the Runbooks page on it)."""

    name: str
    title: str
    url: str


@dataclass(frozen=True)
class Runbook:
    """One runbook's Markdown ``text`` (untrusted for rendering: show it through safe_markdown)."""

    info: RunbookInfo
    text: str


def _title(path: Path) -> str:
    """The first level-1 heading of the file's first 4 kB (the stem when there is none)."""
    try:
        with path.open("rb") as fh:
            head = fh.read(4096).decode("utf-8", errors="replace")
    except OSError:
        return path.stem
    match = _TITLE.search(head)
    return match.group(1) if match else path.stem


def list_runbooks(directory: Path | None = None) -> tuple[RunbookInfo, ...]:
    """The runbooks in ``directory`` (default :data:`CORPUS_DIR`: ``runbook-*.md`` files with a
    well-formed stem), by name; empty when the directory cannot be read."""
    directory = CORPUS_DIR if directory is None else directory
    try:
        paths = sorted(p for p in directory.glob("runbook-*.md") if p.is_file() and _NAME.match(p.stem))
    except OSError:
        return ()
    return tuple(RunbookInfo(p.stem, _title(p), runbook_url(p.stem)) for p in paths)


def find_runbook(name: str, directory: Path | None = None) -> Runbook | str:
    """The runbook called ``name`` (a stem such as ``runbook-high-latency-p95``) in ``directory``
    (default :data:`CORPUS_DIR`), or a message saying why there is none: a name that is not a
    runbook name, no such runbook (listing the ones there are), a file too large, or not
    readable as UTF-8 text."""
    directory = CORPUS_DIR if directory is None else directory
    known = {info.name: info for info in list_runbooks(directory)}
    if not _NAME.match(name):
        return f"{name[:120]!r} is not a runbook name (runbook-<words>, lowercase). Choose one below."
    info = known.get(name)
    if info is None:
        listed = ", ".join(known) or "none"
        return f"There is no runbook {name!r} in {directory}. Runbooks: {listed}."
    path = directory / f"{name}.md"
    try:
        if path.stat().st_size > MAX_BYTES:
            return f"The runbook {name!r} is larger than {MAX_BYTES:,} bytes: open {path} instead."
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return f"The runbook {name!r} cannot be read: {exc}"
    return Runbook(info, text)
