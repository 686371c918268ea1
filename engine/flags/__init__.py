"""Feature flags: one engine setting, a rollout, targeting and a kill switch, kept in the store.

* :mod:`.spec` -- :class:`FlagSpec` and :class:`Targeting` (pydantic), ``parse_override``;
* :mod:`.evaluation` -- ``evaluate(flags, request, unit, pinned) -> tuple[AppliedFlag, ...]`` (pure)
  and ``apply_flags``;
* :mod:`.store` -- :class:`FlagStore`: list / get / set / kill / unkill / delete, each change
  audited with its actor, and the history;
* :mod:`.source` -- :class:`FlagSource`: the engine's per-process cache, re-read when the flags
  change (a kill is seen by the next request of every process).

Names are loaded on first use (PEP 562) so that the engine importing :mod:`.source` does not
import the experiments package (scipy) until the store holds a flag.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "FLAG_NAME",
    "OVERRIDE_KEYS",
    "AppliedFlag",
    "FlagChange",
    "FlagNotFound",
    "FlagSource",
    "FlagSpec",
    "FlagStore",
    "Targeting",
    "apply_flags",
    "evaluate",
    "parse_override",
]

_HOME = {
    "FLAG_NAME": "spec", "OVERRIDE_KEYS": "spec", "FlagSpec": "spec", "Targeting": "spec",
    "parse_override": "spec", "AppliedFlag": "evaluation", "apply_flags": "evaluation",
    "evaluate": "evaluation",
    "FlagChange": "store", "FlagNotFound": "store", "FlagStore": "store", "FlagSource": "source",
}  # fmt: skip


def __getattr__(name: str) -> Any:
    if name not in _HOME:
        raise AttributeError(f"module 'engine.flags' has no attribute {name!r}")
    return getattr(importlib.import_module(f"engine.flags.{_HOME[name]}"), name)
