"""What the console says about a request that went wrong or was answered by a fallback.

Pure (no streamlit import): plain text for the pages to show.  ``ENGINE_ERRORS`` are the errors
a well-formed request can meet; pages catch exactly these and show :func:`error_message`, never a
traceback.
"""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import ValidationError

from engine import QueryError, QueryRequest
from engine.llm import LLMError, ProviderNotConfigured
from engine.routing import RouterUnavailable
from engine.telemetry import fallback_note as _fallback_note

__all__ = ["ENGINE_ERRORS", "ValidationError", "error_message", "fallback_note", "validation_problems"]

#: What can go wrong with a well-formed request; shown as messages, never as tracebacks.
ENGINE_ERRORS: tuple[type[Exception], ...] = (QueryError, RouterUnavailable, LLMError)


def error_message(exc: Exception, request: QueryRequest | None = None) -> str:
    """One line an operator can act on, for an error in ENGINE_ERRORS."""
    if isinstance(exc, RouterUnavailable):
        name = request.router if request is not None else "requested"
        return f"The {name} router is unavailable: {exc}"
    if isinstance(exc, QueryError):
        return f"The query cannot be answered: {exc}"
    if isinstance(exc, ProviderNotConfigured):
        return (
            f"Configuration error, the request was not run: {exc}. Set {exc.setting} in the environment "
            "or .env and restart the console, or pick another LLM provider."
        )
    return f"The LLM provider failed: {exc}"


def fallback_note(provider: str | None, fallback_from: str | None, fallback_error: str | None) -> str | None:
    """``"Answered by the offline fallback after openai failed: <error>"`` for an answer (or a
    recorded request) that a fallback LLM provider gave; None when no provider failed.  Plain text:
    the error part quotes a provider's message, so render it with ``st.text``, never as markdown."""
    note = _fallback_note(provider, fallback_from, fallback_error)
    return None if note is None else note[0].upper() + note[1:]


def validation_problems(exc: ValidationError, labels: Mapping[str, str] | None = None) -> list[str]:
    """One line per invalid field of a form's request, ``"<field>: <pydantic's message>"``; the
    field is its dotted location, shown as ``labels[field]`` when the form gives it a label."""
    problems = []
    for err in exc.errors():
        field = ".".join(map(str, err["loc"]))
        problems.append(f"{(labels or {}).get(field, field)}: {err['msg']}")
    return problems
