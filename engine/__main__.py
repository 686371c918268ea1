"""Command line: ``python -m engine <command> ...``.

Exit status:

* 0: done.
* 2: bad arguments or input (out-of-range numbers, a malformed position, an unreadable
  workload ...); one line on stderr names the problem, nothing is run.
* 3: ``query`` computed its answer and printed it (``load``: its summary), but the telemetry
  could not be written to the store (the failure is reported on stderr beside it).
* 4: the telemetry store cannot be opened or written (read-only, corrupt, a newer schema, not
  an Arbor store ...); one message on stderr names the file and what to do, no traceback.

SIGTERM and SIGINT (handled on the main thread) never print a traceback and never lose
recorded telemetry: ``load`` stops starting requests, lets the running ones finish, flushes
the store and prints its JSON summary; any other command is interrupted where it is, its
engine is closed (flushed) on the way out, and one line on stderr says so.  Either way the
exit status is 128 + the signal number.  A repeated signal is ignored while the flush runs
(``kill -9`` still ends the process).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sqlite3
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from engine.cli_args import (
    EXIT_NOT_RECORDED,
    EXIT_STORE,
    Parser,
    fail,
    float_in,
    int_in,
    problems,
)
from engine.cli_canary import add_canary_parser
from engine.cli_experiment import add_experiment_parser
from engine.cli_flag import add_flag_parser
from engine.cli_golden import add_golden_parser
from engine.cli_signals import Interrupted, Signals, close_runtime, print_run_summary, signal_name
from engine.cli_slo import add_slo_parser
from engine.cli_store import add_store_parser
from engine.mcts import SearchConfig, TerminalStateError, search
from engine.names import PROVIDERS, QUERY_TASKS, ROUTERS, step_number
from engine.tasks import TASK_NAMES, ParseError, load_task
from engine.workload import MAX_LOAD_REQUESTS
from observability.store import StoreError, StoreOpenError


def _search(args: argparse.Namespace) -> int:
    task = load_task(args.task)
    try:
        state = task.parse(args.state)
        config = SearchConfig(
            iterations=args.iterations,
            seed=args.seed,
            c=args.c,
            selection=args.selection,
            widening_k=args.widening_k,
            cache=not args.no_cache,
            solver=not args.no_solver,
        )
        result = search(task, state, config)
    except ParseError as exc:
        fail(f"bad --state for {args.task}: {exc}")
    except ValidationError as exc:
        fail(problems(exc, as_flags=True))
    except TerminalStateError as exc:
        fail(str(exc))
    s = result.stats
    if args.json:
        payload: dict[str, Any] = {
            "task": task.name,
            "state": task.render(state),
            "best_action": s.best_action_label,
            "principal_variation": list(result.pv),
            "stats": {
                "iterations": s.iterations,
                "root_visits": s.root_visits,
                "root_value": s.root_value,
                "best_action_visits": s.best_action_visits,
                "best_action_value": s.best_action_value,
                "total_simulations": s.total_simulations,
                "cache_hits": s.cache_hits,
                "cache_misses": s.cache_misses,
                "cache_hit_rate": s.cache_hit_rate,
                "seed": s.seed,
                "termination_reason": s.termination_reason,
                "elapsed_ms": s.elapsed_s * 1000,
                "sims_per_sec": s.sims_per_sec,
                "tree_size": s.tree_size,
                "max_depth": s.max_depth,
            },
            "actions": [
                {
                    "action": a.label,
                    "visits": a.visits,
                    "value": a.value,
                    "prior": a.prior,
                    "proven": a.proven,
                }
                for a in s.action_stats
            ],
        }
        if result.best_terminal is not None:
            payload["best_terminal"] = task.render(result.best_terminal)
            payload["best_terminal_return"] = result.best_terminal_return
        print(json.dumps(payload, indent=2))
        return 0
    print(task.describe(state))
    print(
        f"\nbest action: {s.best_action_label}  (visits {s.best_action_visits}, "
        f"value {s.best_action_value:+.3f})"
    )
    print(f"principal variation: {' '.join(result.pv)}")
    if result.best_terminal is not None:
        print(
            f"best terminal found: {task.render(result.best_terminal)} (return {result.best_terminal_return})"
        )
    print(
        f"iterations {s.iterations}  root value {s.root_value:+.3f}  "
        f"tree {s.tree_size} nodes, depth {s.max_depth}\n"
        f"cache {s.cache_hits} hits / {s.cache_misses} misses ({s.cache_hit_rate:.1%})  seed {s.seed}  "
        f"stopped: {s.termination_reason}  {s.elapsed_s * 1000:.1f} ms ({s.sims_per_sec:,.0f} sims/s)"
    )
    print("\naction  visits   value   prior  proven")
    for a in s.action_stats:
        proven = "" if a.proven is None else f"{a.proven:+.0f}"
        print(f"{a.label:>6}  {a.visits:>6}  {a.value:+.3f}  {a.prior:.3f}  {proven}")
    return 0


def _runtime() -> Any:
    """The process's wired engine and telemetry (``engine.wiring.build_runtime``): the CLI's one
    composition root.  Raises ConfigError / StoreOpenError like the builder."""
    from engine.wiring import build_runtime

    return build_runtime()


def _query(args: argparse.Namespace) -> int:
    from engine import QueryError, QueryRequest
    from engine.llm import ProviderNotConfigured
    from engine.routing import RouterUnavailable

    try:
        request = QueryRequest(
            query=args.query,
            task=args.task,
            seed=args.seed,
            router=args.router,
            provider=args.provider,
            mcts_iterations=args.iterations,
            use_mcts=not args.no_mcts,
            use_rag=not args.no_rag,
            max_steps=args.max_steps,
        )
    except ValidationError as exc:
        fail(problems(exc, as_flags=False))
    runtime = _runtime()
    try:
        result = runtime.engine.run(request)
    except (QueryError, RouterUnavailable, ProviderNotConfigured) as exc:
        unrecorded = _close(runtime)
        if unrecorded:
            print(f"python -m engine: warning: {unrecorded}", file=sys.stderr)
        fail(str(exc))
    except BaseException:
        _close(runtime)
        raise
    # The answer is printed whatever happens to its telemetry; a failed write is reported beside it.
    unrecorded = _close(runtime)
    status = _print_result(result, args.json)
    if unrecorded:
        sys.stdout.flush()
        print(
            f"python -m engine: error: the answer above was computed, but {unrecorded}",
            file=sys.stderr,
        )
        return EXIT_NOT_RECORDED
    return status


def _close(runtime: Any) -> str | None:
    """Close ``runtime`` (flushing its telemetry); None, or what could not be written and why."""
    try:
        runtime.close()
    except (StoreError, sqlite3.Error, OSError) as exc:
        return f"its telemetry was not recorded in the store: {exc}"
    return None


def _print_result(result: Any, as_json: bool) -> int:
    if as_json:
        print(json.dumps(dataclasses.asdict(result), indent=2, default=str))
        return 0
    from engine.loop.confidence import final_confidence  # the rule the confidence follows

    print(f"answer: {result.answer or '(none)'}  [{result.answer_kind}]")
    print(f"verdict: {result.verdict} ({result.verdict_detail})")
    print(
        f"confidence: {result.confidence:.3f}  agents: {', '.join(result.agents_used)}  "
        f"stop: {result.stop_reason}"
    )
    print(f"  = {final_confidence(result.steps).text}")
    print(f"latency: {result.latency_ms:.1f} ms  seed: {result.seed}  router: {result.router}")
    for step in result.steps:
        probs = " ".join(f"{a}={p:.2f}" for a, p in step.probabilities.items())
        print(f"  step {step_number(step.index)}: {step.agent:<4} [{probs}] {step.reason}")
        print(f"          -> {step.answer} (confidence {step.confidence:.2f}; {step.evidence})")
    for i, p in enumerate(result.passages, 1):
        print(f"  [{i}] {p.doc} § {p.section} (bm25 {p.score:.2f})")
    return 0


def _train_router(args: argparse.Namespace) -> int:
    from engine.routing.training import train_router, workload_requests

    root = Path(args.workloads)
    needed = ("game24.jsonl", "tictactoe_tactics.jsonl", "connect4_tactics.jsonl")
    if not root.is_dir():
        fail(f"--workloads {root}: no such directory (it must hold {', '.join(needed)})")
    missing = [name for name in needed if not (root / name).is_file()]
    if missing:
        fail(f"--workloads {root}: missing {', '.join(missing)} (it must hold {', '.join(needed)})")
    try:
        requests = workload_requests(root, seed=args.seed)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        fail(f"--workloads {root}: cannot read the workloads ({type(exc).__name__}: {exc})")
    total = len(requests)

    def progress(done: int) -> None:
        if done % 25 == 0 or done == total:
            print(f"\rlabelled {done}/{total} queries", end="", file=sys.stderr, flush=True)

    report = train_router(
        requests,
        Path(args.out),
        epochs=args.epochs,
        seed=args.seed,
        progress=progress,
        deadline_s=args.deadline_s,
        class_weight=args.class_weight,
    )
    print(file=sys.stderr)
    summary = {k: report[k] for k in ("data", "held_out", "end_to_end")}
    print(json.dumps(summary, indent=2))
    return 0


def _load(args: argparse.Namespace, signals: Signals | None = None) -> int:
    from engine.faults import FaultPlan
    from engine.workload import LoadConfig, read_workload, run_load

    try:
        faults = FaultPlan.parse(args.faults)
    except ValueError as exc:
        fail(f"--faults {exc}")
    planned = args.rate * args.duration
    if (args.clock == "wall" or args.requests is None) and planned > MAX_LOAD_REQUESTS:
        fail(
            f"--rate {args.rate:g} x --duration {args.duration:g} is {planned:,.0f} requests, "
            f"more than the {MAX_LOAD_REQUESTS:,} one run may issue: lower --rate or --duration"
        )
    try:
        rows = read_workload(Path(args.workload))
        if args.router is not None:  # one router for every row, e.g. a fixed single-agent baseline
            rows = [{**row, "router": args.router} for row in rows]
        cfg = LoadConfig(
            rate=args.rate,
            duration_s=args.duration,
            concurrency=args.concurrency,
            faults=faults,
            seed=args.seed,
            clock=args.clock,
            days=args.days,
            requests=args.requests,
            correlation_id=args.correlation_id,
        )
    except OSError as exc:
        fail(f"cannot read --workload {args.workload}: {exc.strerror or exc}")
    except ValueError as exc:
        fail(str(exc).splitlines()[0])
    width = 30

    def progress(done: int, total: int, ok: int, errors: int) -> None:
        if done % max(1, total // 200) and done != total:
            return
        filled = int(width * done / total)
        print(
            f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total}  ok {ok}  errors {errors}",
            end="",
            file=sys.stderr,
            flush=True,
        )

    signals = signals or Signals()
    signals.graceful = True  # from here on a signal stops the run; it never interrupts a flush
    runtime = _runtime()
    if args.empty_store:
        _require_empty_store(runtime)
    try:
        report = run_load(
            runtime.engine,
            rows,
            cfg,
            progress=progress,
            stop=lambda: signals.received is not None,
            store=runtime.store,
        )
    finally:
        print(file=sys.stderr)
        flush_error = close_runtime(runtime)
    return print_run_summary(report, signals, flush_error)


def _require_empty_store(runtime: Any) -> None:
    """``load --empty-store``: exit 2, before any request, when the store already holds requests
    (a second ``make demo`` would otherwise add a second simulated history on top of the first)."""
    store = runtime.store
    if store is None:
        return
    try:
        held = store.reads.count("requests")
    except sqlite3.Error as exc:  # an unreadable store: the run would fail the same way
        runtime.close()
        fail(f"cannot read the store {store.path}: {exc}")
    if held:
        runtime.close()
        fail(
            f"the store {store.path} already holds {held:,} requests; this run fills an empty one."
            " Move the file away (with its -wal and -shm files) or set ARBOR_DB_PATH to a new path"
        )


def _auth_add_user(args: argparse.Namespace) -> int:
    """``auth add-user``: hash a password (read from stdin or a no-echo prompt) into the users file."""
    import getpass
    import re

    from engine import auth
    from engine.config import ConfigError, load_settings

    if not re.fullmatch(auth.NAME_PATTERN, args.name):
        fail(
            f"bad user name {args.name!r}: use 1-64 letters, digits and . _ @ -, "
            "starting with a letter or digit"
        )
    path = Path(args.users_file) if args.users_file else None
    if path is None:
        try:  # ARBOR_AUTH=password with a users file that does not exist yet must not stop us here
            path = load_settings(auth="none").auth_users_file
        except ConfigError as exc:
            fail(str(exc).splitlines()[0])
    if path is None:
        fail("give --users-file PATH or set ARBOR_AUTH_USERS_FILE")
    if sys.stdin.isatty():
        password = getpass.getpass(f"Password for {args.name}: ")
        if not auth.same_password(password, getpass.getpass("Again: ")):
            fail("the two passwords differ; nothing was written")
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    try:
        password_hash = auth.hash_password(password)
    except ValueError as exc:
        fail(f"{exc}; nothing was written")
    try:
        users = auth.load_users(path) if path.exists() else auth.UsersFile()
        users, created = auth.upsert_user(users, args.name, password_hash, args.role)
        auth.save_users(path, users)
    except auth.UsersFileError as exc:
        fail(f"{exc}; nothing was written")
    except OSError as exc:
        fail(f"cannot write {path}: {exc.strerror or exc}")
    print(f"{'added' if created else 'updated'} {args.name} ({args.role}) in {path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``python -m engine``."""
    parser = Parser(prog="python -m engine", description="Arbor's embedded engine.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    p = sub.add_parser("search", help="run MCTS on one position and print the best action")
    p.add_argument("--task", required=True, choices=TASK_NAMES)
    p.add_argument("--state", required=True, help='position text, e.g. "X.O/.X./..O", "4453" or "4 7 8 8"')
    p.add_argument("--iterations", type=int_in(1, 1_000_000), default=1000)
    p.add_argument(
        "--seed",
        type=int_in(0, 2**63 - 1),
        default=None,
        help="random seed (0 is a real seed); drawn if omitted",
    )
    p.add_argument("--c", type=float_in(0.0, 100.0), default=1.414, help="exploration constant")
    p.add_argument("--selection", choices=("ucb1", "puct"), default="ucb1")
    p.add_argument(
        "--widening-k",
        type=float_in(0.0, 1e6, low_open=True),
        default=None,
        help="progressive widening k (off if omitted)",
    )
    p.add_argument("--no-cache", action="store_true", help="turn the simulation cache off")
    p.add_argument("--no-solver", action="store_true", help="do not propagate proven values")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=_search)

    q = sub.add_parser("query", help="answer one query with the multi-agent pipeline")
    q.add_argument("query", help='e.g. "24: 4 7 8 8", "tictactoe: X.O/.X./..O", or a question')
    q.add_argument("--task", default="auto", choices=QUERY_TASKS)
    q.add_argument("--seed", type=int_in(0, 2**53 - 1), default=None)
    q.add_argument("--router", default="rules", choices=ROUTERS)
    q.add_argument("--provider", default=None, choices=PROVIDERS)
    q.add_argument("--iterations", type=int_in(1, 10_000), default=1000, help="MCTS iterations")
    q.add_argument("--max-steps", type=int_in(1, 10), default=3)
    q.add_argument("--no-mcts", action="store_true")
    q.add_argument("--no-rag", action="store_true")
    q.add_argument("--json", action="store_true", help="print the QueryResult as JSON")
    q.set_defaults(func=_query)

    ld = sub.add_parser("load", help="generate load from a workload file, with fault injection")
    ld.add_argument("--workload", default="data/workloads/mixed.jsonl")
    ld.add_argument(
        "--rate", type=float_in(0.0, 1000.0, low_open=True), default=20.0, help="requests per second"
    )
    ld.add_argument(
        "--duration",
        type=float_in(0.0, 86_400.0, low_open=True),
        default=60.0,
        help=f"seconds (wall clock mode); rate x duration at most {MAX_LOAD_REQUESTS:,} requests",
    )
    ld.add_argument("--concurrency", type=int_in(1, 64), default=4)
    ld.add_argument("--router", default=None, choices=ROUTERS, help="route every request with this router")
    ld.add_argument("--faults", default="", help='e.g. "provider_error=0.05,latency_ms=200@0.1,error=0.01"')
    ld.add_argument("--seed", type=int_in(0, 2**63 - 1), default=0)
    ld.add_argument("--clock", choices=("wall", "simulated"), default="wall")
    ld.add_argument(
        "--days", type=float_in(0.0, 365.0, low_open=True), default=28.0, help="simulated timeline length"
    )
    ld.add_argument(
        "--requests",
        type=int_in(1, MAX_LOAD_REQUESTS),
        default=None,
        help=f"simulated mode: number of requests (1..{MAX_LOAD_REQUESTS:,})",
    )
    ld.add_argument(
        "--correlation-id", default=None, help="shared by the run's requests (default: load-<seed>-<random>)"
    )
    ld.add_argument(
        "--empty-store",
        action="store_true",
        help="refuse to run unless the store holds no requests yet (make demo uses it)",
    )
    ld.set_defaults(func=_load)

    t = sub.add_parser("train-router", help="label routing states from engine runs and train the GRU router")
    t.add_argument("--workloads", default="data/workloads")
    t.add_argument("--out", default="data/models")
    t.add_argument("--epochs", type=int_in(1, 100_000), default=300)
    t.add_argument("--seed", type=int_in(0, 2**32 - 1), default=0)
    t.add_argument(
        "--deadline-s",
        type=int_in(1, 86_400),
        default=3600,
        help="total seconds for labelling; queries not started by then are skipped (the report says so)",
    )
    t.add_argument(
        "--class-weight",
        choices=("balanced", "sqrt", "none"),
        default="balanced",
        help="weigh training steps by inverse label frequency (balanced), its square root, or not",
    )
    t.set_defaults(func=_train_router)

    au = sub.add_parser("auth", help="console access control (ARBOR_AUTH=password users)")
    au_sub = au.add_subparsers(dest="auth_command", required=True, parser_class=Parser)
    add = au_sub.add_parser(
        "add-user", help="add a user, or set an existing user's password and role (password from stdin)"
    )
    add.add_argument("name", help="user name: 1-64 letters, digits and . _ @ -")
    add.add_argument("--role", required=True, choices=("viewer", "operator"))
    add.add_argument("--users-file", default=None, help="default: ARBOR_AUTH_USERS_FILE")
    add.set_defaults(func=_auth_add_user)
    add_slo_parser(sub)
    add_golden_parser(sub)
    add_store_parser(sub, Parser)
    add_experiment_parser(sub)
    add_flag_parser(sub)
    add_canary_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    args = build_parser().parse_args(argv)
    signals = Signals()
    signals.graceful = args.func is _load  # load stops on its own and always prints its summary
    restore = signals.install()
    try:
        return _run(args, signals)
    except Interrupted as exc:
        print(
            f"python -m engine: stopped by {signal_name(exc.signum)}",
            file=sys.stderr,
        )
        return 128 + exc.signum
    finally:
        restore()


def _run(args: argparse.Namespace, signals: Signals) -> int:
    """Run the chosen command; a store fault becomes one message on stderr and EXIT_STORE."""
    try:
        if args.func is _load:
            return _load(args, signals)
        return int(args.func(args))
    except StoreOpenError as exc:  # SchemaError included
        fail(f"the telemetry store cannot be used: {exc}", EXIT_STORE)
    except StoreError as exc:
        fail(f"the telemetry store failed: {exc}", EXIT_STORE)
    except sqlite3.Error as exc:
        fail(
            f"the telemetry store failed ({type(exc).__name__}: {exc}); check ARBOR_DB_PATH, its file "
            "and directory",
            EXIT_STORE,
        )


if __name__ == "__main__":
    raise SystemExit(main())
