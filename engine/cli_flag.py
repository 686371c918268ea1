"""``python -m engine flag ...``: feature flags from the command line.

``flag list`` prints every flag (name, override, rollout, targeting, state, last change);
``flag show NAME`` one flag with its change history; ``flag set NAME --override key=value
--rollout PCT [--task T ...] [--unit U ...] [--prefix P ...] [--no-targeting] [--salt S]
[--description TEXT] [--enable|--disable] [--actor WHO]`` creates a flag (``--override`` and
``--rollout`` required) or changes the options given of an existing one (its kill switch is
kept); ``flag kill NAME``, ``flag unkill NAME`` and ``flag delete NAME`` (each ``[--actor WHO]``);
``flag history [NAME]``.  Every change is recorded with its actor (default: ``$USER``, else the
login name) and time.
``--db FILE`` names the store (default ``ARBOR_DB_PATH``).  A bad argument, an invalid flag or
an unknown flag name is one line on stderr and exit status 2; a store fault is status 4.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from engine.cli_args import EXIT_USAGE, Parser, float_in, int_in
from engine.flags.spec import FlagSpec, Targeting, parse_override
from engine.flags.store import FlagChange, FlagNotFound, FlagStore, spec_from_row
from engine.names import GAME_TASKS

__all__ = ["add_flag_parser", "describe_flag"]

_TASKS = (*GAME_TASKS, "freeform")


def add_flag_parser(sub: Any) -> None:
    """Add the ``flag`` command to the subparsers ``sub`` of ``python -m engine``."""
    flag = sub.add_parser("flag", help="feature flags: list, show, set, kill, unkill, delete, history")
    fsub = flag.add_subparsers(dest="flag_command", required=True, parser_class=Parser)

    def command(name: str, help_text: str, *, named: bool = True, actor: bool = False) -> Any:
        p = fsub.add_parser(name, help=help_text)
        if named:
            p.add_argument("name", metavar="NAME", help="the flag's name")
        if actor:
            p.add_argument("--actor", default=None, help="who makes the change (default: $USER)")
        p.add_argument("--db", default=None, help="the store (default: ARBOR_DB_PATH)")
        p.set_defaults(func=_main)
        return p

    command("list", "print every flag", named=False)
    command("show", "print one flag and its change history")
    s = command("set", "create a flag, or change the options given of one", actor=True)
    s.add_argument("--override", default=None, metavar="KEY=VALUE", help="the setting, e.g. use_mcts=false")
    s.add_argument("--rollout", type=float_in(0.0, 100.0), default=None, metavar="PCT", help="% of units")
    s.add_argument("--task", action="append", choices=_TASKS, default=None, help="target a task (repeatable)")
    s.add_argument("--unit", action="append", default=None, help="target a unit id (repeatable)")
    s.add_argument("--prefix", action="append", default=None, help="target a query prefix (repeatable)")
    s.add_argument("--no-targeting", action="store_true", help="clear every targeting rule")
    s.add_argument("--salt", default=None, help="bucketing salt (default: flag:NAME)")
    s.add_argument("--description", default=None)
    on = s.add_mutually_exclusive_group()
    on.add_argument("--enable", dest="enabled", action="store_const", const=True, default=None)
    on.add_argument("--disable", dest="enabled", action="store_const", const=False)
    command("kill", "turn a flag off everywhere at the next request", actor=True)
    command("unkill", "release a flag's kill switch", actor=True)
    command("delete", "remove a flag (its history stays)", actor=True)
    h = command("history", "print the change history (of one flag, or all)", named=False)
    h.add_argument("name", nargs="?", default=None, metavar="NAME")
    h.add_argument("--limit", type=int_in(1, 10_000), default=50)


def _when(ts: float | None) -> str:
    return "" if ts is None else datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _state(spec: FlagSpec) -> str:
    return "killed" if spec.killed else ("on" if spec.enabled else "disabled")


def describe_flag(spec: FlagSpec) -> str:
    """One line: name, override, rollout, targeting and state."""
    return (
        f"{spec.name}: {spec.override_text} to {spec.rollout_pct:g}% of units; "
        f"targeting {spec.targeting.describe()}; {_state(spec)}"
    )


def _change_line(c: FlagChange) -> str:
    setting = c.setting
    return f"{_when(c.ts)}  {c.actor}  {c.action} {c.flag}" + (f" -> {setting}" if setting else "")


def _fail(message: str) -> int:
    print(f"python -m engine: error: {message}", file=sys.stderr)
    return EXIT_USAGE


def _store(args: argparse.Namespace) -> FlagStore | int:
    if args.db is not None:
        return FlagStore(Path(args.db))
    from engine.config import ConfigError, load_settings

    try:
        return FlagStore(load_settings().db_path)
    except ConfigError as exc:
        return _fail(str(exc))


def _login_name() -> str:
    """``$USER``, else the login name the system knows (``getpass``), else empty."""
    try:
        return os.environ.get("USER") or getpass.getuser()
    except (OSError, KeyError):
        return ""


def _actor(args: argparse.Namespace) -> str | None:
    actor = args.actor if args.actor is not None else _login_name()
    actor = actor.strip()
    return actor if actor and len(actor) <= 200 and actor.isprintable() else None


def _main(args: argparse.Namespace) -> int:
    store = _store(args)
    if isinstance(store, int):
        return store
    cmd = args.flag_command
    try:
        if cmd == "list":
            rows = store.rows()
            if not rows:
                print("no flags")
            for row in rows:
                try:
                    spec = spec_from_row(row)
                except ValueError as exc:
                    print(f"{row['flag']}: never applied: {exc}")
                    continue
                by = f"updated by {row.get('updated_by')} at {_when(row.get('updated_ts'))}"
                print(f"{describe_flag(spec)}; {by}")
            return 0
        if cmd == "show":
            spec = store.get(args.name)
            print(describe_flag(spec))
            if spec.salt:
                print(f"salt: {spec.salt}")
            if spec.description:
                print(f"description: {spec.description}")
            for c in store.history(args.name):
                print("  " + _change_line(c))
            return 0
        if cmd == "history":
            for c in store.history(args.name, args.limit):
                print(_change_line(c))
            return 0
        actor = _actor(args)
        if actor is None:
            return _fail("say who makes the change: --actor WHO (or set $USER)")
        if cmd == "set":
            return _set(store, args, actor)
        change = {"kill": store.kill, "unkill": store.unkill, "delete": store.delete}[cmd](args.name, actor)
        print(f"{change.action} {change.flag} by {change.actor} at {_when(change.ts)}")
        return 0
    except (FlagNotFound, ValueError) as exc:  # no such flag; a flag row in the store that is invalid
        return _fail(str(exc))


def _set(store: FlagStore, args: argparse.Namespace, actor: str) -> int:
    try:
        existing: FlagSpec | None = store.get(args.name)
    except FlagNotFound:
        existing = None
    except ValueError:  # an invalid row: replaced as a new flag
        existing = None
    if existing is None and (args.override is None or args.rollout is None):
        return _fail(f"flag {args.name!r} is new: give --override KEY=VALUE and --rollout PCT")
    data: dict[str, Any] = existing.model_dump() if existing is not None else {"name": args.name}
    try:
        if args.override is not None:
            data["key"], data["value"] = parse_override(args.override)
    except ValueError as exc:
        return _fail(str(exc))
    if args.rollout is not None:
        data["rollout_pct"] = args.rollout
    targeting = {} if args.no_targeting else dict(data.get("targeting") or {})
    for opt, field in (("task", "tasks"), ("unit", "units"), ("prefix", "prefixes")):
        given = getattr(args, opt)
        if given is not None:
            targeting[field] = tuple(given)
    data["targeting"] = targeting
    for opt in ("salt", "description", "enabled"):
        if getattr(args, opt) is not None:
            data[opt] = getattr(args, opt)
    try:
        spec = FlagSpec.model_validate({**data, "targeting": Targeting.model_validate(targeting)})
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        return _fail(f"invalid flag: {where + ': ' if where else ''}{first['msg']}")
    change = store.set(spec, actor)
    print(f"set {describe_flag(store.get(spec.name))} (by {change.actor} at {_when(change.ts)})")
    return 0
