"""Row conversion for the store: validate rows against a table's shape and normalise their values.

A row is a mapping of column -> value.  :class:`RowPreparer` copies it into a dict SQLite can
store: JSON columns take dict/list (serialised here) or a JSON string (checked); booleans become
0/1; enums their value; numpy scalars and other int/float/str subclasses plain Python scalars;
NaN becomes None; ``auto_ts`` columns left out are stamped with the clock (unix s).  Anything
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


def _json_default(value: Any) -> Any:
    if hasattr(value, "tolist"):  # numpy arrays and scalars
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


_EMPTY_JSON: dict[type, str] = {dict: "{}", list: "[]", tuple: "[]"}
_JSON = json.JSONEncoder(separators=(",", ":"), default=_json_default)  # stateless: safe to share


class RowPreparer:
    """Validates and normalises rows for the tables of ``shapes`` (as the file has them).

    Args:
        shapes: the writable tables' shapes, from :func:`observability.store.schema.describe`.
        clock: returns unix seconds, for ``auto_ts`` columns a row leaves out.
    """

    def __init__(self, shapes: Mapping[str, TableShape], clock: Callable[[], float]) -> None:
        self._shapes = dict(shapes)
        self._clock = clock

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
        unknown = row.keys() - shape.column_set
        if unknown:
            raise ValueError(f"{table}: unknown column(s) {sorted(unknown)}; columns: {list(shape.columns)}")
        json_cols = policy.json_columns
        out: dict[str, Any] = {}
        for key, value in row.items():
            kind = type(value)
            if key in json_cols:
                value = _json_value(table, key, value)
            elif kind is float:
                if value != value:  # NaN: SQLite stores it as NULL anyway; say so explicitly
                    value = None
            elif kind not in _SCALARS:
                value = _scalar(table, key, value)
            out[key] = value
        for key, allowed in policy.choices.items():
            if key in out and out[key] not in allowed:
                raise ValueError(f"{table}.{key}: {out[key]!r} is not one of {sorted(map(str, allowed))}")
        for key in policy.auto_ts:
            if out.get(key) is None:
                out[key] = float(self._clock())
        missing = [c for c in shape.required if out.get(c) is None]
        if missing:
            raise ValueError(f"{table}: missing required column(s) {sorted(missing)}")
        return out


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
