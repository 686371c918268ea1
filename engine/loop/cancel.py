"""Cooperative cancellation of a running query: a token another thread (a console's Stop button,
a signal handler) sets, and the loop checks at its boundaries.

The loop checks the token before each step and before the answer is put together; a live MCTS
search checks it at each tree snapshot (every ``snapshot_every`` iterations).  Nothing is
interrupted mid-step: an agent's call (an LLM request, a search between snapshots) finishes first.
A cancelled query raises :class:`QueryCancelled` and is recorded with status ``cancelled``.
"""

from __future__ import annotations

import threading

__all__ = ["CancelToken", "QueryCancelled"]


class QueryCancelled(Exception):
    """The query was cancelled through its :class:`CancelToken` (``reason`` says by whom)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class CancelToken:
    """A one-way cancel request, safe to set from any thread: :meth:`cancel` once, then
    :attr:`cancelled` stays True.  One token per query."""

    __slots__ = ("_event", "_reason")

    def __init__(self) -> None:
        self._event = threading.Event()
        self._reason = "cancelled"

    def cancel(self, reason: str = "cancelled by the caller") -> None:
        """Ask the query to stop at its next boundary (the first reason given is kept)."""
        if not self._event.is_set():
            self._reason = reason
            self._event.set()

    @property
    def cancelled(self) -> bool:
        """True once :meth:`cancel` was called."""
        return self._event.is_set()

    @property
    def reason(self) -> str:
        """Why the query was cancelled ("cancelled" until :meth:`cancel` names a reason)."""
        return self._reason

    def check(self) -> None:
        """Raise :class:`QueryCancelled` when cancelled; nothing otherwise."""
        if self._event.is_set():
            raise QueryCancelled(self._reason)
