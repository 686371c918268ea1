"""Row conversion for the store: validate rows against a table's shape and normalise their values.

A row is a mapping of column -> value.  :class:`RowPreparer` copies it into a dict SQLite can
store: JSON columns take dict/list (serialised here) or a JSON string (checked); booleans become
0/1; enums their value; numpy scalars and other int/float/str subclasses plain Python scalars;
NaN is stored as NULL (SQLite's own conversion; in a required column it counts as missing);
``auto_ts`` columns left out are stamped with the clock (unix s).  Anything
else -- an unknown table or column, a missing required column, a value outside the column's
choices or of a type SQLite cannot store -- raises ``ValueError`` naming the table and column.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Mapping
from enum import Enum
from typing import Any

from observability.store.schema import POLICIES, TablePolicy, TableShape

__all__ = ["Row", "RowPreparer", "Tables"]

Row = Mapping[str, Any]
Tables = Mapping[str, "Row | Iterable[Row]"]
_SCALARS = (str, int, float, bytes, type(None))
_STORABLE = frozenset(_SCALARS)
_MAX_SHAPES = 1024  # row shapes remembered per preparer (callers passing ad-hoc keys do not grow it)


def _json_default(value: Any) -> Any:
    if hasattr(value, "tolist"):  # numpy arrays and scalars
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


_EMPTY_JSON: dict[type, str] = {dict: "{}", list: "[]", tuple: "[]"}
# Stateless, so safe to share; UTF-8 kept as it is (as span rows always had it).
_JSON = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, default=_json_default)


class RowPreparer:
    """Validates and normalises rows for the tables of ``shapes`` (as the file has them).

    Args:
        shapes: the writable tables' shapes, from :func:`observability.store.schema.describe`.
        clock: returns unix seconds, for ``auto_ts`` columns a row leaves out.
    """

    def __init__(self, shapes: Mapping[str, TableShape], clock: Callable[[], float]) -> None:
        self._shapes = dict(shapes)
        self._clock = clock
        # (table, the row's keys in order) -> its JSON columns: rows are built from a few fixed
        # shapes, so the unknown-column check and the JSON look-ups run once a shape.
        self._json_keys: dict[tuple[str, tuple[str, ...]], tuple[str, ...]] = {}

    @property
    def tables(self) -> dict[str, tuple[str, ...]]:
        """Writable tables and their columns, in file order."""
        return {name: shape.columns for name, shape in self._shapes.items()}

    def prepare(self, table: str, row_or_rows: Row | Iterable[Row]) -> list[dict[str, Any]]:
        """One row (a mapping) or an iterable of rows for ``table``, copied and normalised.

        Raises:
            ValueError: unknown table or column, a row that is not a mapping, a missing primary
                key or required column, a value outside the column's choices, or one SQLite
                cannot store.
        """
        shape = self._shapes.get(table)
        if shape is None:
            raise ValueError(f"unknown table {table!r}; tables: {sorted(self._shapes)}")
        if isinstance(row_or_rows, Mapping):
            rows: Iterable[Any] = (row_or_rows,)
        elif isinstance(row_or_rows, (str, bytes)):
            raise ValueError(f"{table}: rows must be mappings, got {type(row_or_rows).__name__}")
        else:
            rows = row_or_rows
        policy = POLICIES[table]
        return [self._normalise(table, shape, policy, row) for row in rows]

    def prepare_tables(self, tables: Tables) -> list[tuple[str, list[dict[str, Any]]]]:
        """``{table: rows}`` prepared table by table, tables without rows left out.

        Raises:
            ValueError: as :meth:`prepare`, for any row.
        """
        groups = [(table, self.prepare(table, rows)) for table, rows in tables.items()]
        return [(t, rows) for t, rows in groups if rows]

    def _normalise(self, table: str, shape: TableShape, policy: TablePolicy, row: Any) -> dict[str, Any]:
        if not isinstance(row, Mapping):
            raise ValueError(f"{table}: each row must be a mapping, got {type(row).__name__}")
        out = dict(row)
        keys = tuple(out)
        json_keys = self._json_keys.get((table, keys))
        if json_keys is None:  # a new shape of row for this table: checked once, then remembered
            unknown = set(keys) - shape.column_set
            if unknown:
                columns = list(shape.columns)
                raise ValueError(f"{table}: unknown column(s) {sorted(unknown)}; columns: {columns}")
            json_keys = tuple(key for key in keys if key in policy.json_columns)
            if len(self._json_keys) < _MAX_SHAPES:
                self._json_keys[(table, keys)] = json_keys
        for key in json_keys:
            out[key] = _json_value(table, key, out[key])
        if not set(map(type, out.values())) <= _STORABLE:  # rare: bool, enum, numpy, subclasses
            for key, value in out.items():
                if type(value) not in _STORABLE:
                    out[key] = _scalar(table, key, value)
        for key, allowed in policy.choices.items():
            if key in out and out[key] not in allowed:
                raise ValueError(f"{table}.{key}: {out[key]!r} is not one of {sorted(map(str, allowed))}")
        for key in policy.auto_ts:
            if out.get(key) is None:
                out[key] = float(self._clock())
        missing = [c for c in shape.required if _missing(out.get(c))]
        if missing:
            raise ValueError(f"{table}: missing required column(s) {sorted(missing)}")
        return out


def _missing(value: Any) -> bool:
    """None, or NaN (which SQLite stores as NULL)."""
    return value is None or (type(value) is float and value != value)


def _scalar(table: str, key: str, value: Any) -> Any:
    """``value`` as a plain SQLite scalar (bool -> 0/1, enum -> its value, numpy -> Python)."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, Enum):
        return _scalar(table, key, value.value)
    if isinstance(value, int):  # int subclasses
        return int(value)
    if isinstance(value, float):  # numpy.float64 and other float subclasses
        return None if math.isnan(value) else float(value)
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, bytes):
        return bytes(value)
    if hasattr(value, "item") and callable(value.item):  # numpy scalars (int64, bool_, float32)
        item = value.item()
        if type(item) in (*_SCALARS, bool):
            return _scalar(table, key, item) if type(item) in (bool, float) else item
    raise ValueError(
        f"{table}.{key}: cannot store a {type(value).__name__} (use str, int, float, bytes or None)"
    )


def _json_value(table: str, key: str, value: Any) -> str | None:
    """A JSON column's value as JSON text (a string is checked, anything else serialised)."""
    if value is None:
        return None
    empty = _EMPTY_JSON.get(type(value))
    if empty is not None and not value:  # most log lines carry no attributes
        return empty
    if isinstance(value, str):
        try:
            json.loads(value)
        except ValueError as exc:
            raise ValueError(f"{table}.{key}: a string for a JSON column must be valid JSON") from exc
        return value
    try:
        return _JSON.encode(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{table}.{key}: not JSON serialisable: {exc}") from exc
