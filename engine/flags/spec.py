"""What a feature flag says: :class:`FlagSpec` (pydantic, validated at every boundary).

A flag names ONE engine setting and its value (any key of
:class:`engine.experiments.specs.VariantOverrides`: ``use_mcts=false``, ``router=gru``,
``mcts_iterations=200`` ...; the value is validated by that model, so ``"false"`` becomes
``False`` and ``"200"`` becomes ``200``), a rollout percentage (0..100 in steps of 0.01 %, the
resolution of the 10,000 hash buckets), targeting rules, an ``enabled`` switch and a kill switch.
"""

from __future__ import annotations

import math
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from engine.experiments.specs import VariantOverrides
from engine.names import TaskName

__all__ = ["FLAG_NAME", "OVERRIDE_KEYS", "FlagSpec", "Targeting", "parse_override"]

#: A flag's name: lower-case letters, digits, ``_ . -``, starting with a letter or digit.
FLAG_NAME = r"^[a-z0-9][a-z0-9_.-]{0,63}$"
#: The engine settings a flag may set (the keys of VariantOverrides).
OVERRIDE_KEYS: tuple[str, ...] = tuple(VariantOverrides.model_fields)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Targeting(_Model):
    """Who a flag may apply to; every rule given must match (an empty rule matches everyone).

    ``units``: the unit ids (request ``user_id``, else the request id) allowed; ``tasks``: the
    request's resolved task (``game24``, ``tictactoe``, ``connect4``, ``freeform``) must be one
    of these; ``prefixes``: the query text must start with one of these (case-sensitive).
    """

    units: tuple[str, ...] = Field((), max_length=1000)
    tasks: tuple[TaskName, ...] = Field((), max_length=5)
    prefixes: tuple[str, ...] = Field((), max_length=100)

    @field_validator("units", "prefixes")
    @classmethod
    def _non_empty(cls, values: tuple[str, ...]) -> tuple[str, ...]:
        for v in values:
            if not v or len(v) > 200:
                raise ValueError("each entry must be 1..200 characters")
        return tuple(dict.fromkeys(values))

    @field_validator("tasks")
    @classmethod
    def _no_auto(cls, values: tuple[str, ...]) -> tuple[str, ...]:
        if "auto" in values:
            raise ValueError("target a resolved task (game24, tictactoe, connect4, freeform), not auto")
        return tuple(dict.fromkeys(values))

    @property
    def empty(self) -> bool:
        """True when the flag targets everyone."""
        return not (self.units or self.tasks or self.prefixes)

    def describe(self) -> str:
        """One line: the rules (``everyone`` when none)."""
        parts = []
        if self.tasks:
            parts.append("task in " + ", ".join(self.tasks))
        if self.units:
            shown = ", ".join(self.units[:5]) + (f" (+{len(self.units) - 5})" if len(self.units) > 5 else "")
            parts.append("unit in " + shown)
        if self.prefixes:
            parts.append("query starts with " + " | ".join(repr(p) for p in self.prefixes))
        return "; ".join(parts) or "everyone"


class FlagSpec(_Model):
    """One feature flag (see the module docstring).

    ``rollout_pct`` in [0, 100], a multiple of 0.01; ``salt`` (None: ``flag:<name>``) seeds the
    bucketing; ``enabled`` False or ``killed`` True: the flag applies to nobody.
    """

    name: str = Field(pattern=FLAG_NAME)
    key: str
    value: Any
    rollout_pct: float = Field(100.0, ge=0.0, le=100.0)
    targeting: Targeting = Field(default_factory=Targeting)
    salt: str | None = Field(None, min_length=1, max_length=100)
    enabled: bool = True
    killed: bool = False
    description: str = Field("", max_length=1000)

    @field_validator("rollout_pct")
    @classmethod
    def _resolution(cls, pct: float) -> float:
        if not math.isfinite(pct):
            raise ValueError("the rollout must be a finite number")
        basis = round(pct * 100)
        if abs(pct * 100 - basis) > 1e-6:
            raise ValueError(f"the rollout is resolved to 0.01 %: {pct!r} is finer than that")
        return basis / 100

    @model_validator(mode="after")
    def _override(self) -> FlagSpec:
        if self.key not in OVERRIDE_KEYS:
            raise ValueError(f"unknown override key {self.key!r}; one of: {', '.join(OVERRIDE_KEYS)}")
        if self.value is None:
            raise ValueError(f"the override {self.key} needs a value")
        try:
            checked = VariantOverrides.model_validate({self.key: self.value})
        except ValidationError as exc:
            msg = exc.errors()[0]["msg"]
            raise ValueError(f"bad value {self.value!r} for {self.key}: {msg}") from None
        object.__setattr__(self, "value", getattr(checked, self.key))
        return self

    @property
    def salt_value(self) -> str:
        """The bucketing salt: ``salt`` when set, else ``flag:<name>``."""
        return self.salt or f"flag:{self.name}"

    @property
    def override_text(self) -> str:
        """``key=value`` (booleans lower-case, as typed on the command line)."""
        v = self.value
        return f"{self.key}={str(v).lower() if isinstance(v, bool) else v}"

    @property
    def threshold(self) -> int:
        """Buckets below this (of 10,000) get the flag: the rollout in 1/10,000."""
        return round(self.rollout_pct * 100)


def parse_override(text: str) -> tuple[str, Any]:
    """``key=value`` as typed (``use_mcts=false``) -> (key, validated value).

    Raises:
        ValueError: no ``=``, an unknown key, or a value the key does not accept (one line).
    """
    key, sep, raw = text.partition("=")
    key, raw = key.strip(), raw.strip()
    if not sep or not key or not raw:
        raise ValueError(f"an override is key=value (e.g. use_mcts=false), got {text!r}")
    if key not in OVERRIDE_KEYS:
        raise ValueError(f"unknown override key {key!r}; one of: {', '.join(OVERRIDE_KEYS)}")
    try:
        checked = VariantOverrides.model_validate({key: raw})
    except ValidationError as exc:
        raise ValueError(f"bad value {raw!r} for {key}: {exc.errors()[0]['msg']}") from None
    return key, getattr(checked, key)
