"""``python -m engine canary {run,list,show}``: canary releases from the command line.

``canary run SPEC [--seed S] [--simulated]`` ramps the spec's candidate through its traffic steps
(:func:`engine.canary.run_canary`), with a progress line on stderr, one line per decision that
changes the share, and one JSON line on stdout at the end (the :class:`~engine.canary.CanaryReport`
fields, ``signal`` and ``flushed``), printed after the store is flushed.  ``--simulated`` stamps
requests on a simulated clock (fast; rows marked simulated).

Exit status of ``run``: 0 promoted to 100 %; 5 rolled back; 6 stalled (a step never gathered
enough requests); 2 a bad argument or spec (one line per problem, nothing run); 3 the store could
not be flushed; 4 the store cannot be opened; 128 + the signal number when SIGTERM/SIGINT stopped
it (no new request starts, everything recorded is kept and the run is marked ``stopped``).

``canary list [--db FILE]`` prints one line per run, newest first; ``canary show RUN_ID [--db
FILE] [--json]`` prints the run and its timeline (every evaluation with each guardrail's value
against its threshold, the decision and reason).  Unknown run: status 2.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from typing import Any

from engine.cli_args import Parser, fail, int_in, spec_or_fail
from engine.cli_signals import print_run_summary, run_graceful

__all__ = [
    "EXIT_ROLLED_BACK",
    "EXIT_STALLED",
    "add_canary_parser",
    "canary_list",
    "canary_run",
    "canary_show",
]

#: ``canary run`` exit status when the canary was rolled back.
EXIT_ROLLED_BACK = 5
#: ``canary run`` exit status when a step never gathered enough requests.
EXIT_STALLED = 6


def add_canary_parser(sub: Any) -> None:
    """Add the ``canary`` command and its subcommands to the subparsers ``sub``."""
    c = sub.add_parser("canary", help="canary releases: ramp a candidate configuration, promote or roll back")
    c_sub = c.add_subparsers(dest="canary_command", required=True, parser_class=Parser)
    r = c_sub.add_parser("run", help="run a canary spec (YAML) through the engine")
    r.add_argument("spec", metavar="SPEC", help="the canary spec file (YAML)")
    r.add_argument("--seed", type=int_in(0, 2**63 - 1), default=None, help="run seed (default: the spec's)")
    r.add_argument("--simulated", action="store_true", help="stamp requests on a simulated clock (fast)")
    r.set_defaults(func=canary_run)
    ls = c_sub.add_parser("list", help="list canary runs, newest first")
    ls.add_argument("--db", default=None, help="the store (default: ARBOR_DB_PATH)")
    ls.set_defaults(func=canary_list)
    sh = c_sub.add_parser("show", help="a canary run's timeline")
    sh.add_argument("run_id", metavar="RUN_ID")
    sh.add_argument("--db", default=None, help="the store (default: ARBOR_DB_PATH)")
    sh.add_argument("--json", action="store_true", help="print JSON")
    sh.set_defaults(func=canary_show)


def _progress(p: Any) -> None:
    print(
        f"\rstep {p.step_index + 1} ({p.share_pct:g} %)  baseline {p.baseline_sent}  canary {p.canary_sent}  "
        f"evaluations {p.evaluations}  last {p.last_decision or '-'}   ",
        end="",
        file=sys.stderr,
        flush=True,
    )


def canary_run(args: argparse.Namespace) -> int:
    """Run the canary of ``args.spec``; returns the exit status (see the module docstring)."""
    from engine.canary import RunConfigError, load_canary_spec, run_canary

    spec = spec_or_fail(load_canary_spec, args.spec, "canary")
    report, signals, flush_error = run_graceful(
        lambda engine, stop: run_canary(
            engine, spec, seed=args.seed, simulated=args.simulated, progress=_progress, stop=stop
        ),
        (RunConfigError,),
    )
    print(f"canary {report.canary} run {report.run_id}: {report.status} — {report.reason}", file=sys.stderr)
    status = print_run_summary(report, signals, flush_error)  # 3 not flushed, 128 + signal stopped
    if status != 0:
        return status
    return {"promoted": 0, "rolled_back": EXIT_ROLLED_BACK, "stalled": EXIT_STALLED}.get(report.status, 1)


def _db(args: argparse.Namespace) -> str:
    if args.db:
        return str(args.db)
    from engine.config import load_settings

    return str(load_settings().db_path)


def _open(args: argparse.Namespace) -> Any:
    from pathlib import Path

    from observability.store.experiment_runs import reader

    path = _db(args)
    if not Path(path).is_file():
        fail(f"no store at {path} (set ARBOR_DB_PATH or --db)")
    return reader(path)


def canary_list(args: argparse.Namespace) -> int:
    """Print one line per canary run, newest first."""
    from datetime import UTC, datetime

    from observability.store.canary_store import read_runs

    with _open(args) as conn:
        runs = read_runs(conn)
    if not runs:
        print("no canary runs recorded")
        return 0
    for r in runs:
        when = datetime.fromtimestamp(r.started_ts, UTC).strftime("%Y-%m-%d %H:%M:%S")
        print(
            f"{r.run_id}  {r.canary:<24} {r.status:<12} {r.share_pct:>5g} %  {when} UTC  "
            f"baseline {r.baseline_requests} / canary {r.canary_requests}"
            + ("  (simulated)" if r.simulated else "")
        )
    return 0


def _num(x: float | None) -> str:
    return "-" if x is None else f"{x:.4g}"


def canary_show(args: argparse.Namespace) -> int:
    """Print a run and its timeline (``--json``: as JSON)."""
    from observability.store.canary_store import read_run, read_steps

    with _open(args) as conn:
        run = read_run(conn, args.run_id)
        steps = read_steps(conn, args.run_id) if run is not None else []
    if run is None:
        fail(f"no canary run {args.run_id!r} in the store (python -m engine canary list shows them)")
    if args.json:
        print(json.dumps({"run": dataclasses.asdict(run), "steps": [dataclasses.asdict(s) for s in steps]}))
        return 0
    print(f"canary {run.canary} run {run.run_id}: {run.status} at {run.share_pct:g} % (seed {run.seed}"
          f"{', simulated clock' if run.simulated else ''})")  # fmt: skip
    print(f"reason: {run.reason or '-'}")
    for s in steps:
        print(
            f"#{s.seq:<3} step {s.step_index + 1} {s.share_pct:>5g} %  {s.decision:<8} "
            f"window b{s.baseline_window}/c{s.canary_window}  step b{s.baseline_step}/c{s.canary_step}"
        )
        for g in s.guardrails:
            print(
                f"       {g.guardrail:<24} {g.verdict:<7} value {_num(g.value):>9}  "
                f"threshold {_num(g.threshold):>9}"
            )
        print(f"       {s.reason}")
    return 0
