"""Argument handling of the command line (``python -m engine``): exit codes, a parser that
exits with status 2, bounded number types, and one-line error messages.

A bad argument is one line on stderr naming it and what is allowed, never a traceback.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

from pydantic import ValidationError

T = TypeVar("T")

__all__ = [
    "EXIT_NOT_RECORDED",
    "EXIT_STORE",
    "EXIT_USAGE",
    "Parser",
    "fail",
    "float_in",
    "int_in",
    "problems",
    "spec_or_fail",
]

EXIT_USAGE = 2
"""Bad arguments or input: nothing was run."""
EXIT_NOT_RECORDED = 3
"""The answer (or load summary) was printed but its telemetry could not be written."""
EXIT_STORE = 4
"""The telemetry store cannot be opened or written."""
_MAX_DIGITS = 20  # of a numeric argument, checked before it is converted


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors exit with status 2 and one line (no usage dump)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def fail(message: str, status: int = EXIT_USAGE) -> NoReturn:
    """Print ``python -m engine: error: <message>`` on stderr and exit with ``status``."""
    print(f"python -m engine: error: {message}", file=sys.stderr)
    raise SystemExit(status)


def int_in(low: int, high: int | None = None) -> Any:
    """An argparse type: a whole number in ``low..high`` (no upper bound when None)."""

    def convert(text: str) -> int:
        body = text.strip().removeprefix("-").removeprefix("+")
        if not body.isascii() or not body.isdigit():
            raise argparse.ArgumentTypeError(f"{text[:30]!r} is not a whole number")
        if len(body) > _MAX_DIGITS:
            raise argparse.ArgumentTypeError(f"a number of {len(body)} digits is out of range")
        value = int(text)
        if value < low or (high is not None and value > high):
            where = f"in {low:,}..{high:,}" if high is not None else f"at least {low:,}"
            raise argparse.ArgumentTypeError(f"{value:,} is out of range: it must be {where}")
        return value

    return convert


def float_in(low: float, high: float, *, low_open: bool = False) -> Any:
    """An argparse type: a finite number in ``[low, high]`` (``(low, high]`` with ``low_open``)."""

    def convert(text: str) -> float:
        if len(text) > 40:
            raise argparse.ArgumentTypeError(f"{text[:30]!r}... is not a number")
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        too_low = value <= low if low_open else value < low
        if not math.isfinite(value) or too_low or value > high:
            bounds = f"{'(' if low_open else '['}{low:g}, {high:g}]"
            raise argparse.ArgumentTypeError(f"{text} is out of range: it must be in {bounds}")
        return value

    return convert


def problems(exc: ValidationError, *, as_flags: bool) -> str:
    """Every field problem of ``exc`` on one line; fields named as ``--flags`` or as fields."""
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "query"
        msg = str(err["msg"]).removeprefix("Value error, ")
        parts.append(f"{'--' + where.replace('_', '-') if as_flags else where}: {msg}")
    return "; ".join(parts)


def spec_or_fail(load: Callable[[Any], T], path: Any, kind: str) -> T:
    """``load(path)`` (an experiment or canary spec loader); on a :class:`SpecError` every problem
    on stderr, one line each, then exit status 2 ("nothing was run")."""
    from engine.experiments.specs import SpecError

    try:
        return load(path)
    except SpecError as exc:
        for p in exc.problems:
            print(p, file=sys.stderr)
        fail(f"{len(exc.problems)} problem(s) in the {kind} spec; nothing was run")
