"""Signal handling of the command line (``python -m engine``): SIGTERM and SIGINT on the main
thread stop a command without a traceback and without losing recorded telemetry (see
``engine/__main__.py``)."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

__all__ = ["Interrupted", "Signals", "signal_name"]


class Interrupted(BaseException):
    """Raised on the main thread by the first SIGTERM/SIGINT of a command other than ``load``
    (a BaseException, like KeyboardInterrupt: the engine does not record it as a failure)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


class Signals:
    """The handler of SIGTERM and SIGINT for one ``main()`` call.

    The first signal is remembered in ``received``; it raises :class:`Interrupted` unless
    ``graceful`` (then the command polls ``received`` and stops on its own).  Repeats are
    ignored, so that the flush that follows the first one is not cut short.
    """

    def __init__(self) -> None:
        self.received: int | None = None
        self.graceful = False

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        if self.received is not None:
            return
        self.received = signum
        if not self.graceful:
            raise Interrupted(signum)

    def install(self) -> Callable[[], None]:
        """Handle SIGTERM and SIGINT (main thread only; elsewhere nothing changes); returns a
        function that puts the previous handlers back."""
        if threading.current_thread() is not threading.main_thread():
            return lambda: None
        previous: dict[int, Any] = {}
        for sig in (signal.SIGTERM, signal.SIGINT):
            previous[sig] = signal.signal(sig, self)

        def restore() -> None:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

        return restore


def signal_name(signum: int) -> str:
    """``SIGTERM``, ``SIGINT``, ... for a signal number."""
    return signal.Signals(signum).name
