"""``python -m engine golden ...``: golden traces from the command line (README "Golden traces").

``golden run [--suite DIR] [--json] [--repeat N] [--no-latency-gate] [--deadline S]`` replays every
golden of the suite (default ``ARBOR_GOLDEN_DIR``, data/golden) with a progress bar on stderr, prints
one line per golden (or, with ``--json``, the run's JSON document) and records the run in the
store's ``golden_runs``.  Exit status 1 on any regression or error (and on a latency regression
unless ``--no-latency-gate``: then the latency verdict is printed, not enforced); 0 otherwise.

``golden capture REQUEST_ID --name NAME [--suite DIR] [--repeat N] [--force]`` captures a stored
request; ``golden capture --request FILE --name NAME`` captures a request given as QueryRequest JSON
(with a seed); ``golden capture --update [NAME ...] --reason TEXT`` re-baselines goldens (all when no
name is given).  A refused capture is one line on stderr saying why (status 2).

``golden history [--limit N] [--json]`` lists past suite runs from the store, newest first.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from engine.cli_args import Parser, fail, float_in, int_in, problems

__all__ = ["add_golden_parser", "golden_capture", "golden_history", "golden_run"]

_BAR = 30


def add_golden_parser(sub: Any) -> None:
    """Add the ``golden`` command (run, capture, history) to the subparsers ``sub``."""
    golden = sub.add_parser("golden", help="golden traces: capture requests, replay the suite, diff")
    gsub = golden.add_subparsers(dest="golden_command", required=True, parser_class=Parser)
    r = gsub.add_parser("run", help="replay the golden suite and compare; exit 1 on a regression or error")
    r.add_argument("--suite", default=None, help="suite directory (default: ARBOR_GOLDEN_DIR, data/golden)")
    r.add_argument("--json", action="store_true", help="print the run as one JSON document")
    r.add_argument("--repeat", type=int_in(1, 50), default=1, help="replays per golden (latency: median)")
    r.add_argument(
        "--no-latency-gate",
        action="store_true",
        help="print the suite's latency verdict but do not fail on it (shared machines, CI)",
    )
    r.add_argument(
        "--deadline", type=float_in(0.0, 86400.0, low_open=True), default=None, help="seconds for the run"
    )
    r.set_defaults(func=golden_run)
    c = gsub.add_parser("capture", help="capture a stored request as a golden, or re-baseline goldens")
    c.add_argument("target", nargs="*", help="REQUEST_ID; with --update: golden names (default: all)")
    c.add_argument("--name", default=None, help="the golden's name (its file is NAME.json)")
    c.add_argument("--request", default=None, help="capture this QueryRequest JSON file (with a seed)")
    c.add_argument("--update", action="store_true", help="re-baseline existing goldens (needs --reason)")
    c.add_argument("--reason", default=None, help="why the behaviour changed (recorded in the golden)")
    c.add_argument("--suite", default=None, help="suite directory (default: ARBOR_GOLDEN_DIR, data/golden)")
    c.add_argument(
        "--repeat", type=int_in(1, 50), default=None, help="replays (default: ARBOR_GOLDEN_REPEAT)"
    )
    c.add_argument("--force", action="store_true", help="overwrite an existing golden of that name")
    c.set_defaults(func=golden_capture)
    h = gsub.add_parser("history", help="past suite runs from the store, newest first")
    h.add_argument("--limit", type=int_in(1, 10_000), default=20)
    h.add_argument("--json", action="store_true")
    h.set_defaults(func=golden_history)


def _settings() -> Any:
    from engine.config import ConfigError, load_settings

    try:
        return load_settings()
    except ConfigError as exc:
        fail(str(exc))


def _progress(done: int, total: int, name: str, status: str) -> None:
    filled = int(_BAR * done / total) if total else _BAR
    print(
        f"\r[{'#' * filled}{'.' * (_BAR - filled)}] {done}/{total}  {status:<10} {name[:40]:<40}",
        end="",
        file=sys.stderr,
        flush=True,
    )


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} ms"


def golden_run(args: argparse.Namespace) -> int:
    """``golden run``: replay the suite; 1 on a regression or error (see the module docstring)."""
    from engine.golden import GoldenError, run_suite

    settings = _settings()
    suite = Path(args.suite) if args.suite else settings.golden_dir
    try:
        result = run_suite(
            suite,
            settings=settings,
            repeat=args.repeat,
            latency_gate=not args.no_latency_gate,
            progress=_progress,
            deadline_s=args.deadline,
        )
    except GoldenError as exc:
        print(file=sys.stderr)
        fail(str(exc))
    print(file=sys.stderr)
    if args.json:
        print(json.dumps(result.as_json(), indent=2))
    else:
        for r in result.results:
            if r.status == "pass":
                change = "" if r.latency_change is None else f", {r.latency_change:+.0%}"
                golden = _ms(r.golden_latency_ms)
                print(f"PASS        {r.name}  ({_ms(r.latency_ms)}; golden {golden}{change})")
            else:
                print(f"{r.status.upper():<11} {r.name}: {r.first_divergence}")
        print(
            f"{result.passed} passed, {result.failed} regressions, {result.errors} errors "
            f"in {result.duration_s:.1f} s (repeat {result.repeat})"
        )
        print(f"latency: {result.latency.detail}")
        if result.recorded:
            print(f"recorded as golden run {result.run_id}")
        elif not settings.telemetry_enabled:
            print("not recorded: ARBOR_TELEMETRY=off (no store)")
    if result.record_error:
        print(f"python -m engine: warning: the run was not recorded: {result.record_error}", file=sys.stderr)
    return 0 if result.ok else 1


def golden_capture(args: argparse.Namespace) -> int:
    """``golden capture``: capture a request or re-baseline goldens; 2 when refused."""
    from engine.golden import CaptureRefused, GoldenError, capture, capture_request, recapture
    from engine.models import QueryRequest

    settings = _settings()
    suite = Path(args.suite) if args.suite else None
    if args.update:
        if args.request or args.name:
            fail("--update re-baselines existing goldens by name: drop --request / --name")
        if not args.reason or not args.reason.strip():
            fail("--update needs --reason TEXT: why did the behaviour change?")
        try:
            outcomes = recapture(
                args.target, args.reason, settings=settings, suite_dir=suite, repeat=args.repeat
            )
        except GoldenError as exc:
            fail(str(exc))
        for o in outcomes:
            if o.result is not None:
                print(f"re-baselined {o.name}: {o.result.path} ({o.result.replays} replays)")
            else:
                print(f"not re-baselined {o.name}: {o.error}", file=sys.stderr)
        return 0 if all(o.result is not None for o in outcomes) else 1
    if not args.name:
        fail("capture needs --name NAME (or --update to re-baseline)")
    if args.reason:
        fail("--reason goes with --update")
    try:
        if args.request:
            if args.target:
                fail("give either REQUEST_ID or --request FILE, not both")
            try:
                text = Path(args.request).read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                fail(f"cannot read --request {args.request}: {exc}")
            try:
                request = QueryRequest.model_validate_json(text)
            except ValidationError as exc:
                fail(f"--request {args.request}: {problems(exc, as_flags=False)}")
            result = capture_request(
                request,
                args.name,
                settings=settings,
                suite_dir=suite,
                repeat=args.repeat,
                overwrite=args.force,
            )
        else:
            if len(args.target) != 1:
                fail("capture takes one REQUEST_ID (or --request FILE)")
            result = capture(
                args.target[0],
                args.name,
                settings=settings,
                suite_dir=suite,
                repeat=args.repeat,
                overwrite=args.force,
            )
    except CaptureRefused as exc:
        fail(f"capture refused: {exc}")
    g = result.golden
    print(
        f"captured {result.name}: {result.path} ({result.replays} replays; answer {g.answer[:60]!r}, "
        f"verdict {g.verdict}, {len(g.routing)} routing steps, latency {g.latency_ms.total:.1f} ms)"
    )
    return 0


def golden_history(args: argparse.Namespace) -> int:
    """``golden history``: past suite runs, newest first."""
    from engine.golden import suite_history

    settings = _settings()
    if not Path(settings.db_path).exists():
        fail(f"no telemetry store at {settings.db_path} (ARBOR_DB_PATH): no suite has been run there")
    runs = suite_history(settings.db_path, args.limit)
    if args.json:
        keys = ("run_id", "ts", "passed", "failed", "errors")
        print(json.dumps([{k: getattr(r, k) for k in keys} for r in runs], indent=2))
        return 0
    if not runs:
        print("no golden suite runs recorded yet")
    for r in runs:
        print(
            f"{r.run_id}  ts {r.ts:.0f}  {r.passed}/{r.total} passed ({r.pass_rate:.0%}), "
            f"{r.failed} regressions, {r.errors} errors"
        )
    return 0
