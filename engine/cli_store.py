"""``python -m engine store ...``: maintenance of the telemetry store.

``store rebuild-rollups`` recomputes the per-minute request roll-ups (``request_rollups``, see
:mod:`observability.store.rollups`) from the ``requests`` rows, e.g. after rows were imported
with the trigger missing or the roll-ups are suspected to be wrong.  It opens the store first,
so an older file is migrated (which backfills the roll-ups) before the rebuild.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from engine.cli_args import EXIT_USAGE, fail

__all__ = ["add_store_parser"]


def _db_path(args: argparse.Namespace) -> Path:
    if args.db is not None:
        return Path(args.db)
    from engine.config import ConfigError, load_settings

    try:
        return load_settings().db_path
    except ConfigError as exc:
        fail(str(exc).splitlines()[0], EXIT_USAGE)


def _rebuild_rollups(args: argparse.Namespace) -> int:
    """``store rebuild-rollups``: migrate the file if need be, then recompute its roll-ups in one go."""
    from observability.store import Store
    from observability.store.rollups import rebuild
    from observability.store.transactions import connect

    path = _db_path(args)
    if not path.is_file():
        fail(f"no telemetry store at {path}: nothing to rebuild (set ARBOR_DB_PATH or give --db)", EXIT_USAGE)
    Store(path, threaded=False).close()  # checks the file and migrates it (StoreOpenError: exit 4)
    conn = connect(path, busy_timeout_ms=5000)
    try:
        report = rebuild(conn)
    finally:
        conn.close()
    summary: dict[str, Any] = {
        "db": str(path),
        "requests": report.requests,
        "groups": report.groups,
        "elapsed_s": round(report.elapsed_s, 3),
    }
    if args.json:
        print(json.dumps(summary))
    else:
        print(
            f"rebuilt the roll-ups of {report.requests:,} request(s) into {report.groups:,} "
            f"minute group(s) in {report.elapsed_s:.2f}s ({path})"
        )
    return 0


def add_store_parser(sub: Any, parser_class: type[argparse.ArgumentParser]) -> None:
    """Add the ``store`` command and its subcommands to the subparsers ``sub``."""
    st = sub.add_parser("store", help="telemetry store maintenance")
    st_sub = st.add_subparsers(dest="store_command", required=True, parser_class=parser_class)
    rb = st_sub.add_parser(
        "rebuild-rollups", help="recompute the per-minute request roll-ups from the request rows"
    )
    rb.add_argument("--db", default=None, help="store file (default: ARBOR_DB_PATH)")
    rb.add_argument("--json", action="store_true", help="print one JSON object")
    rb.set_defaults(func=_rebuild_rollups)
