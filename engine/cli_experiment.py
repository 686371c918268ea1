"""``python -m engine experiment ...``: A/B experiments from the command line.

``experiment validate SPEC [SPEC ...]`` checks experiment spec files (YAML; a directory means
every ``*.yaml`` in it, with experiment ids unique across them) and prints one line per valid
spec.  Any problem is printed on stderr as ``FILE:LINE: FIELD: message`` (every problem of every
file, not just the first) and the exit status is 2; nothing is written anywhere.
``experiment run SPEC --units N`` runs (or resumes) an experiment: :mod:`engine.cli_experiment_run`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from engine.cli_args import EXIT_USAGE, Parser
from engine.cli_experiment_run import add_run_parser
from engine.experiments.specs import ExperimentSpec, SpecError, SpecProblem, id_line, load_spec

__all__ = ["add_experiment_parser", "describe_spec", "experiment_validate"]


def add_experiment_parser(sub: Any) -> None:
    """Add the ``experiment`` command (``validate``) to the subparsers ``sub`` of ``python -m engine``."""
    exp = sub.add_parser("experiment", help="A/B experiments on engine settings: validate specs")
    exp_sub = exp.add_subparsers(dest="experiment_command", required=True, parser_class=Parser)
    v = exp_sub.add_parser("validate", help="check experiment spec files (YAML)")
    v.add_argument("specs", nargs="+", metavar="SPEC", help="a spec file, or a directory of them")
    v.set_defaults(func=experiment_validate)
    add_run_parser(exp_sub)


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
