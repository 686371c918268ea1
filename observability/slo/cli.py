"""``python -m observability.slo``: regenerate the Prometheus rule files from data/slos.yaml.

``--check`` only compares: exit 0 when the committed files equal freshly generated ones, 1
(listing the stale files) when not, 2 when the SLO file is invalid (the message names it).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from observability.slo.models import DEFAULT_SLOS_PATH, SLOConfigError, load_slo_set
from observability.slo.rules import DEFAULT_RULES_DIR, RULE_FILES, check_rules, write_rules

__all__ = ["main"]

PROG = "python -m observability.slo"


def main(argv: Sequence[str] | None = None) -> int:
    """CLI: regenerate the rule files, or with --check verify they are up to date; the exit code."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Generate Prometheus SLO recording and alerting rules from data/slos.yaml.",
    )
    parser.add_argument(
        "--slos", type=Path, default=DEFAULT_SLOS_PATH, help="SLO file (default: %(default)s)"
    )
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_RULES_DIR, help="rules directory (default: %(default)s)"
    )
    parser.add_argument(
        "--check", action="store_true", help="only verify the files are up to date (exit 1 if not)"
    )
    args = parser.parse_args(argv)
    try:
        config = load_slo_set(args.slos)
    except SLOConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        if args.check:
            stale = check_rules(config, args.out)
            if stale:
                print(f"out of date in {args.out}: {', '.join(stale)}; run `{PROG}`", file=sys.stderr)
                return 1
            print(f"{len(RULE_FILES)} rule files in {args.out} are up to date")
            return 0
        for path in write_rules(config, args.out):
            print(f"wrote {path}")
    except OSError as exc:
        print(f"error: cannot access {args.out}: {exc}", file=sys.stderr)
        return 2
    return 0
