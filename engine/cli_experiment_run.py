"""``python -m engine experiment run SPEC --units N [--seed S] [--concurrency C]``.

Runs (or resumes) an experiment through the real engine (:mod:`engine.experiments.runner`,
wired by :func:`engine.wiring.build_runtime`), with a progress bar on stderr and one JSON line
on stdout at the end, printed after the store is flushed:

``{"experiment", "seed", "concurrency", "units", "requests", "units_complete", "skipped", "sent",
"ok", "errors", "invalid", "wall_s", "p50_ms", "p95_ms", "per_variant": {variant: {"units",
"sent", "ok", "errors", "invalid", "judged", "correct", "latency_ms_mean", "latency_ms_p50"}},
"recorded": {variant: {"units", "ok", "error", ...}}, "stopped", "signal", "flushed"}``

SIGTERM or SIGINT stops it like ``load``: no new query starts, the running ones finish, the store
is flushed, the summary printed, and the status is 128 + the signal number; run the same command
again to resume.  Status 2: a bad argument, spec or workload, settings that differ from those
the experiment was run with in this store, or another run of it in progress; 3: the store could
not be flushed; 4: the store cannot be opened.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from engine.cli_args import int_in, spec_or_fail
from engine.cli_signals import print_run_summary, run_graceful

__all__ = ["add_run_parser", "experiment_run"]

_WIDTH = 30


def add_run_parser(exp_sub: Any) -> None:
    """Add ``run`` to the ``experiment`` subcommands ``exp_sub``."""
    r = exp_sub.add_parser(
        "run", help="send an experiment's workload through the engine, unit by unit (resumable)"
    )
    r.add_argument("spec", metavar="SPEC", help="the experiment spec file (YAML)")
    r.add_argument("--units", type=int_in(1, 200_000), required=True, help="units (users) the experiment has")
    r.add_argument("--seed", type=int_in(0, 2**63 - 1), default=None, help="run seed (default: the spec's)")
    r.add_argument("--concurrency", type=int_in(1, 64), default=2, help="units run at once")
    r.set_defaults(func=experiment_run)


def _bar(p: Any) -> None:
    total = max(1, p.requests_total)
    filled = int(_WIDTH * p.requests_done / total)
    print(
        f"\r[{'#' * filled}{'.' * (_WIDTH - filled)}] {p.requests_done}/{p.requests_total} requests  "
        f"units {p.units_done}/{p.units_total}  ok {p.ok}  errors {p.errors}  invalid {p.invalid}"
        + (f"  (skipped {p.skipped} already recorded)" if p.skipped else ""),
        end="",
        file=sys.stderr,
        flush=True,
    )


def experiment_run(args: argparse.Namespace) -> int:
    """Run the experiment of ``args.spec`` with ``args.units`` units; returns the exit status."""
    from engine.experiments.runner import RunConfigError, run_experiment
    from engine.experiments.specs import load_spec

    spec = spec_or_fail(load_spec, args.spec, "experiment")
    report, signals, flush_error = run_graceful(
        lambda engine, stop: run_experiment(
            engine,
            spec,
            units=args.units,
            seed=args.seed,
            concurrency=args.concurrency,
            progress=_bar,
            stop=stop,
        ),
        (RunConfigError,),
    )
    return print_run_summary(report, signals, flush_error)
