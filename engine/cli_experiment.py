"""``python -m engine experiment ...``: A/B experiments from the command line.

``experiment validate SPEC [SPEC ...]`` checks experiment spec files (YAML; a directory means
every ``*.yaml`` in it, with experiment ids unique across them) and prints one line per valid
spec.  Any problem is printed on stderr as ``FILE:LINE: FIELD: message`` (every problem of every
file, not just the first) and the exit status is 2; nothing is written anywhere.
``experiment run SPEC --units N`` runs (or resumes) an experiment: :mod:`engine.cli_experiment_run`.
``experiment analyze SPEC [--db FILE] [--as-of UNIX_S] [--json]`` prints the results table and
the decision (``--json``: the shape of :func:`engine.experiments.report.to_json`);
``experiment report SPEC [--format md|json] [--out FILE]`` writes the report.  A spec or store
problem is one line on stderr, status 2 (spec) or 4 (store).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from engine.cli_args import EXIT_STORE, EXIT_USAGE, Parser
from engine.cli_experiment_run import add_run_parser
from engine.experiments.specs import ExperimentSpec, SpecError, SpecProblem, id_line, load_spec

__all__ = [
    "add_experiment_parser",
    "describe_spec",
    "experiment_analyze",
    "experiment_report",
    "experiment_validate",
]


def add_experiment_parser(sub: Any) -> None:
    """Add the ``experiment`` command (``validate``) to the subparsers ``sub`` of ``python -m engine``."""
    exp = sub.add_parser("experiment", help="A/B experiments on engine settings: validate specs")
    exp_sub = exp.add_subparsers(dest="experiment_command", required=True, parser_class=Parser)
    v = exp_sub.add_parser("validate", help="check experiment spec files (YAML)")
    v.add_argument("specs", nargs="+", metavar="SPEC", help="a spec file, or a directory of them")
    v.set_defaults(func=experiment_validate)
    add_run_parser(exp_sub)
    for name, help_text in (("analyze", "print the results table and the decision"),
                            ("report", "write the report (Markdown or JSON)")):  # fmt: skip
        p = exp_sub.add_parser(name, help=help_text)
        p.add_argument("spec", metavar="SPEC", help="the experiment's spec file (YAML)")
        p.add_argument("--db", default=None, help="the store (default: ARBOR_DB_PATH)")
        p.add_argument("--as-of", type=float, default=None, dest="as_of", help="analyse up to this unix time")
        if name == "analyze":
            p.add_argument("--json", action="store_true", help="print the results as JSON")
        else:
            p.add_argument("--format", choices=("md", "json"), default="md")
            p.add_argument("--out", default=None, help="write here instead of stdout")
        p.set_defaults(func=experiment_analyze if name == "analyze" else experiment_report)


def describe_spec(spec: ExperimentSpec) -> str:
    """One line: the id, the variants with their weights and settings, the metrics."""
    arms = ", ".join(
        f"{v.name} {v.weight:.0%}"
        + (" (" + ", ".join(f"{k}={val}" for k, val in v.overrides.changes().items()) + ")")
        for v in spec.variants
    )
    guards = ", ".join(g.metric if g.slo is None else f"{g.metric}({g.slo})" for g in spec.guardrails)
    return (
        f"experiment {spec.id}: {len(spec.variants)} variants [{arms}], baseline {spec.baseline_name}; "
        f"primary {spec.primary_metric}" + (f"; guardrails {guards}" if guards else "")
        + f"; alpha {spec.alpha:g}, target MDE {spec.target_mde:.1%}"
        + ("; sequential" if spec.sequential else "")
    )  # fmt: skip


def _files(names: list[str]) -> list[Path]:
    """The spec files named (a directory: its ``*.yaml`` / ``*.yml``), each once, in order."""
    out: list[Path] = []
    seen: set[Path] = set()
    for name in names:
        path = Path(name)
        found = sorted([*path.glob("*.yaml"), *path.glob("*.yml")]) if path.is_dir() else [path]
        for file in found:
            key = file.resolve()
            if key not in seen:
                seen.add(key)
                out.append(file)
    return out


def experiment_validate(args: argparse.Namespace) -> int:
    """Validate the spec files named on the command line; 0 when all are valid, else 2."""
    problems: list[SpecProblem] = []
    valid: list[tuple[Path, ExperimentSpec]] = []
    for file in _files(args.specs):
        try:
            valid.append((file, load_spec(file)))
        except SpecError as exc:
            problems += exc.problems
    first: dict[str, Path] = {}
    for file, spec in valid:
        if spec.id in first:
            message = f"duplicate experiment id {spec.id!r}: {first[spec.id]} uses it too"
            problems.append(SpecProblem(str(file), id_line(file), "id", message))
        first.setdefault(spec.id, file)
    if problems:
        for p in problems:
            print(p, file=sys.stderr)
        print(f"python -m engine: error: {len(problems)} problem(s) in experiment specs", file=sys.stderr)
        return EXIT_USAGE
    for file, spec in valid:
        print(f"{file}: ok: {describe_spec(spec)}")
    return 0


def _analysis(args: argparse.Namespace) -> tuple[Any, Any] | int:
    """(analysis, decision) for the command's spec and store, or the exit status after an error line."""
    import sqlite3

    from engine.experiments.analysis import analyze, open_store
    from engine.experiments.decision import decide

    try:
        spec = load_spec(args.spec)
    except SpecError as exc:
        for p in exc.problems:
            print(p, file=sys.stderr)
        return EXIT_USAGE
    if args.db is None:
        from engine.config import ConfigError, load_settings

        try:
            db = load_settings().db_path
        except ConfigError as exc:
            print(f"python -m engine: error: {exc}", file=sys.stderr)
            return EXIT_USAGE
    else:
        db = Path(args.db)
    try:
        conn = open_store(db)
        try:
            analysis = analyze(conn, spec, args.as_of)
        finally:
            conn.close()
    except (OSError, sqlite3.Error) as exc:
        print(f"python -m engine: error: cannot analyse {spec.id} in {db}: {exc}", file=sys.stderr)
        return EXIT_STORE
    return analysis, decide(analysis)


def experiment_analyze(args: argparse.Namespace) -> int:
    """Print the results table and the decision (or ``--json``); 0, 2 for a bad spec, 4 for the store."""
    import json

    from engine.experiments.report import results_table, to_json

    got = _analysis(args)
    if isinstance(got, int):
        return got
    analysis, decision = got
    if args.json:
        print(json.dumps(to_json(analysis, decision), indent=2, allow_nan=False))
        return 0
    print("\n".join(results_table(analysis)))
    print(f"SRM p {analysis.srm.p_value:.3g}" + (" (MISMATCH)" if analysis.srm.mismatch else ""))
    for b in analysis.slo_burn:
        rate = "n/a" if b.burn_rate is None else f"{b.burn_rate:.2f}"
        print(f"SLO {b.slo} burn, {b.variant}: {rate} ({b.bad} bad of {b.total}; limit {b.limit:g})")
    print(f"decision: {decision.action}" + (f" {decision.variant}" if decision.variant else ""))
    for reason in decision.reasons:
        print(f"  - {reason}")
    return 0


def experiment_report(args: argparse.Namespace) -> int:
    """Write the report as Markdown or JSON to ``--out`` or stdout; 0, 2 (spec or file), 4 (store)."""
    import json

    from engine.experiments.report import to_json, to_markdown

    got = _analysis(args)
    if isinstance(got, int):
        return got
    analysis, decision = got
    if args.format == "json":
        text = json.dumps(to_json(analysis, decision), indent=2, allow_nan=False) + "\n"
    else:
        text = to_markdown(analysis, decision)
    if args.out is None:
        sys.stdout.write(text)
        return 0
    try:
        Path(args.out).write_text(text, encoding="utf-8")
    except OSError as exc:
        print(f"python -m engine: error: cannot write {args.out}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    print(f"wrote {args.out}")
    return 0
