"""Which flags apply to a request, and the request they make: pure functions.

A flag applies to a request when it is enabled and not killed, every targeting rule matches, and
the unit's bucket is below the rollout: ``bucket(salt, name, unit) < rollout_pct * 100`` with
:func:`engine.experiments.assignment.bucket` (SHA-256 of ``"<salt>:<name>:<unit>"`` modulo
10,000; the salt defaults to ``flag:<name>``, so every flag buckets units independently of the
others and of every experiment).  The unit is the request's ``user_id``, else its request id
(then each request is bucketed on its own).

Precedence: flags are considered in name order; when two flags set the same key, the first by
name wins and the later one does not apply (it is not recorded).  Keys in ``pinned`` (the
settings an experiment variant sets for this request) are never changed by a flag: the variant
wins and such a flag does not apply.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import Any

from engine.experiments.assignment import bucket
from engine.experiments.specs import VariantOverrides
from engine.flags.spec import FlagSpec
from engine.models import QueryRequest

__all__ = ["AppliedFlag", "apply_flags", "evaluate", "matches"]


@dataclass(frozen=True, slots=True)
class AppliedFlag:
    """A flag that applied to one request: its name, the setting and value it set, the unit
    bucketed and its bucket in [0, 10000)."""

    name: str
    key: str
    value: Any
    unit: str
    bucket: int


def matches(flag: FlagSpec, request: QueryRequest, unit: str, task: str | None = None) -> bool:
    """Whether ``request`` (from ``unit``) passes the flag's targeting rules (not the rollout);
    ``task``: the request's resolved task when already known."""
    t = flag.targeting
    if t.units and unit not in t.units:
        return False
    if t.tasks and (task or request.resolved_task()) not in t.tasks:
        return False
    return not (t.prefixes and not request.query.startswith(t.prefixes))


def evaluate(
    flags: Iterable[FlagSpec], request: QueryRequest, unit: str, pinned: Collection[str] = ()
) -> tuple[AppliedFlag, ...]:
    """The flags that apply to ``request`` from ``unit``, in name order (see the module docstring
    for the rules and the precedence).  Pure: the same arguments give the same answer.

    Raises:
        ValueError: ``unit`` is empty.
    """
    if not unit:
        raise ValueError("a flag needs a unit to bucket (the user id or the request id)")
    taken = set(pinned)
    task = request.resolved_task()
    applied: list[AppliedFlag] = []
    for flag in sorted(flags, key=lambda f: f.name):
        if not flag.enabled or flag.killed or flag.threshold == 0 or flag.key in taken:
            continue
        if not matches(flag, request, unit, task):
            continue
        b = bucket(flag.salt_value, flag.name, unit)
        if b < flag.threshold:
            applied.append(AppliedFlag(flag.name, flag.key, flag.value, unit, b))
            taken.add(flag.key)
    return tuple(applied)


def apply_flags(request: QueryRequest, applied: Iterable[AppliedFlag]) -> QueryRequest:
    """``request`` with the applied flags' settings (validated again as a QueryRequest); the
    request itself when none applied."""
    changes = {a.key: a.value for a in applied}
    if not changes:
        return request
    return VariantOverrides.model_validate(changes).apply(request)
