"""``python -m engine slo ...``: the SLO review from the command line.

``slo report [--period 28d] [--as-of UNIX_TS] [--source sqlite] [--format md|json|html] [--out
FILE] [--slos FILE] [--db FILE]`` prints (or writes) the review of every SLO in the SLO file over
the period ending at ``as_of`` (default: now), from the telemetry store (``--db``, default
``ARBOR_DB_PATH``), read only; ``html`` is one self-contained document (charts embedded,
opens offline; :mod:`engine.slo_review_html`). ``--source prometheus`` is not yet available:
it exits with status 2 and says so. A bad SLO file, period or output file is one
error message naming the problem (status 2); a missing or unreadable store is status 4.

``slo alerts [--period 28d] [--as-of UNIX_TS] [--slos FILE] [--db FILE]`` replays the burn-rate
alert rules over the period (every 5 minutes) into alert episodes and upserts them into the
store's ``alerts`` table (re-running it updates the same rows); prints one line per episode.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from engine.cli_args import EXIT_STORE, Parser, fail, float_in
from engine.slo_report import build_report, render_markdown, report_json
from engine.slo_review_html import build_html_review, render_html
from observability.durations import parse_duration
from observability.slo.alert_store import replay_store, save_episodes
from observability.slo.models import DEFAULT_SLOS_PATH, SLO, SLOConfigError, load_slos
from observability.slo.sqlite_source import SqliteSLOSource
from observability.store import Store
from observability.store.reads import ReadModel
from observability.store.review_reads import latest_golden_run

__all__ = ["add_slo_parser", "slo_alerts", "slo_report"]

_NOT_YET = "is not yet available (this release reports from SQLite)"


def _duration(text: str) -> Any:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_slo_parser(sub: Any) -> None:
    """Add the ``slo`` command (with ``report``) to the subparsers ``sub`` of ``python -m engine``."""
    slo = sub.add_parser("slo", help="SLO status, error budgets, burn-rate alerts and the review document")
    slo_sub = slo.add_subparsers(dest="slo_command", required=True, parser_class=Parser)
    r = slo_sub.add_parser("report", help="the SLO review over a period, as Markdown, JSON or HTML")
    r.add_argument("--period", type=_duration, default=None, help="e.g. 7d, 28d (default: each SLO's window)")
    r.add_argument("--as-of", type=float_in(0.0, 1e11), default=None, help="unix seconds (default: now)")
    r.add_argument(
        "--source", choices=("sqlite", "prometheus"), default="sqlite", help="prometheus: not yet available"
    )
    r.add_argument(
        "--format", choices=("md", "json", "html"), default="md", help="html: one self-contained file"
    )
    r.add_argument("--out", default=None, help="write the document here instead of stdout")
    r.add_argument("--slos", default=str(DEFAULT_SLOS_PATH), help="SLO file (default: data/slos.yaml)")
    r.add_argument("--db", default=None, help="telemetry store (default: ARBOR_DB_PATH)")
    r.set_defaults(func=slo_report)
    a = slo_sub.add_parser("alerts", help="replay the burn-rate alert rules into the alerts table")
    a.add_argument("--period", type=_duration, default=None, help="e.g. 7d, 28d (default: each SLO's window)")
    a.add_argument("--as-of", type=float_in(0.0, 1e11), default=None, help="unix seconds (default: now)")
    a.add_argument("--slos", default=str(DEFAULT_SLOS_PATH), help="SLO file (default: data/slos.yaml)")
    a.add_argument("--db", default=None, help="telemetry store (default: ARBOR_DB_PATH)")
    a.set_defaults(func=slo_alerts)


def _store_path(db: str | None) -> Path:
    if db is not None:
        return Path(db)
    from engine.config import ConfigError, load_settings

    try:
        return load_settings().db_path
    except ConfigError as exc:
        fail(str(exc).splitlines()[0])


def _slos_and_store(args: argparse.Namespace, nothing: str) -> tuple[list[SLO], Path]:
    """The SLOs of ``--slos`` and the existing store file of ``--db`` (or ARBOR_DB_PATH); a bad
    SLO file exits 2, a missing store EXIT_STORE, saying ``nothing`` would be done."""
    try:
        slos = load_slos(args.slos)
    except SLOConfigError as exc:
        fail(str(exc))
    path = _store_path(args.db)
    if not path.is_file():
        fail(f"no telemetry store at {path} (set ARBOR_DB_PATH or --db); {nothing}", EXIT_STORE)
    return slos, path


def slo_report(args: argparse.Namespace) -> int:
    """Run ``slo report``; returns the exit status (errors exit through :func:`fail`).

    Raises sqlite3.Error when the store cannot be read (the CLI turns it into status 4).
    """
    if args.source != "sqlite":
        fail(f"--source {args.source} {_NOT_YET}")
    slos, path = _slos_and_store(args, "nothing to report")
    as_of = time.time() if args.as_of is None else args.as_of
    reads = ReadModel(path)
    source = SqliteSLOSource(reads)
    report = build_report(slos, source, as_of, args.period, golden=latest_golden_run(reads))
    if args.format == "json":
        text = json.dumps(report_json(report), indent=2, allow_nan=False)
    elif args.format == "html":
        text = render_html(build_html_review(report, slos, source, reads), generated_ts=time.time())
    else:
        text = render_markdown(report)
    if args.out is None:
        print(text)
        return 0
    try:
        Path(args.out).write_text(text + "\n", encoding="utf-8")
    except OSError as exc:
        fail(f"cannot write {args.out}: {exc.strerror or exc}")
    print(f"wrote the SLO review ({args.format}) to {args.out}")
    return 0


def slo_alerts(args: argparse.Namespace) -> int:
    """Run ``slo alerts``: replay, upsert the episodes, print them; returns the exit status.

    Raises sqlite3.Error / StoreError when the store cannot be read or written (status 4).
    """
    slos, path = _slos_and_store(args, "nothing to replay")
    if args.period is not None and args.period.total_seconds() < 300:
        fail(f"--period must be at least 5m, got {args.period}")
    as_of = time.time() if args.as_of is None else args.as_of
    episodes = replay_store(slos, SqliteSLOSource(ReadModel(path)), as_of, args.period)
    with Store(path, threaded=False) as store:
        save_episodes(store, episodes)
    for ep in episodes:
        end = "firing" if ep.end_ts is None else f"resolved {ep.end_ts:.0f}"
        print(
            f"{ep.slo} {ep.severity} {ep.long_window}/{ep.short_window} factor {ep.factor:g}:"
            f" from {ep.start_ts:.0f}, {end}, peak burn {ep.peak_burn:.3g}"
        )
    firing = sum(ep.firing for ep in episodes)
    print(f"{len(episodes)} alert episode(s), {firing} firing, stored in {path}")
    return 0
