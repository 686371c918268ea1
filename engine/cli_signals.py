"""Signal handling of the command line (``python -m engine``): SIGTERM and SIGINT on the main
thread stop a command without a traceback and without losing recorded telemetry (see
``engine/__main__.py``)."""

from __future__ import annotations

import dataclasses
import json
import signal
import sys
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

from engine.cli_args import EXIT_NOT_RECORDED, fail
from observability.store import StoreError

__all__ = [
    "Interrupted",
    "Signals",
    "close_runtime",
    "print_run_summary",
    "run_graceful",
    "signal_name",
]


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


def close_runtime(runtime: Any) -> str | None:
    """Close ``runtime`` (an :class:`engine.wiring.Runtime`): every request counted in a run's
    report is committed when this returns.  Returns None, or why the store could not be flushed
    (a :class:`~observability.store.StoreError` is caught, never raised)."""
    try:
        runtime.close()
    except StoreError as exc:
        return str(exc)
    return None


def print_run_summary(report: Any, signals: Signals, flush_error: str | None) -> int:
    """Print the one JSON line that ends a graceful run (``load``, ``experiment run``, ``canary
    run``): the fields of the dataclass ``report``, ``signal`` (the name of the signal that
    stopped it, or null) and ``flushed``; a line on stderr when the store could not be flushed
    (``flush_error``).

    Returns the exit status: 3 when not flushed, else 0, or 128 + the signal number."""
    summary = dataclasses.asdict(report)
    summary["signal"] = None if signals.received is None else signal_name(signals.received)
    summary["flushed"] = flush_error is None
    print(json.dumps(summary), flush=True)
    if flush_error is not None:
        print(f"python -m engine: error: telemetry not fully written: {flush_error}", file=sys.stderr)
        return EXIT_NOT_RECORDED
    return 0 if signals.received is None else 128 + signals.received


def run_graceful(
    run: Callable[[Any, Callable[[], bool]], Any], config_errors: tuple[type[Exception], ...]
) -> tuple[Any, Signals, str | None]:
    """Build this process's runtime and call ``run(engine, stop)``, SIGTERM and SIGINT making
    ``stop()`` true (the run ends at its next boundary; nothing is cut short); then flush and
    close the runtime.  Returns (what ``run`` returned, the signals, the flush error or None).

    Raises:
        SystemExit: ``run`` raised one of ``config_errors`` (its message, exit status 2).
    """
    from engine.wiring import build_runtime

    signals = Signals()
    signals.graceful = True
    restore = signals.install()
    try:
        runtime = build_runtime()
        try:
            report = run(runtime.engine, lambda: signals.received is not None)
        except config_errors as exc:
            runtime.close()
            fail(str(exc))
        except BaseException:
            runtime.close()
            raise
        finally:
            print(file=sys.stderr)
        flush_error = close_runtime(runtime)
    finally:
        restore()
    return report, signals, flush_error
