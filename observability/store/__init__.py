"""The SQLite telemetry store (see :mod:`observability.store.core` for its guarantees).

Modules, one concern each:

* :mod:`.schema` -- table policies, migrations, ``SCHEMA_VERSION``, the row types writers build;
* :mod:`.files` -- read-only checks of a store file before it is opened, and their errors;
* :mod:`.rows` -- validation and normalisation of rows;
* :mod:`.transactions` -- the writing connection, ``BEGIN IMMEDIATE`` batches, lock retries;
* :mod:`.writer` -- the queue, batching, back-pressure and commit tickets;
* :mod:`.reads` -- the read model: every read query (one definition of "served");
* :mod:`.core` -- :class:`Store`, which puts them together.

This package never imports ``engine`` or streamlit.
"""

from observability.store.core import Store, StoreStats
from observability.store.reads import SERVED_SQL, ReadModel
from observability.store.schema import (
    ROW_TYPES,
    SCHEMA_VERSION,
    SERVED_STATUSES,
    ExposureRow,
    LogRow,
    MctsNodeRow,
    MctsRunRow,
    RequestRow,
    RoutingRow,
    SchemaError,
    SpanRow,
    StoreOpenError,
)
from observability.store.writer import StoreError

__all__ = [
    "ROW_TYPES",
    "SCHEMA_VERSION",
    "SERVED_SQL",
    "SERVED_STATUSES",
    "ExposureRow",
    "LogRow",
    "MctsNodeRow",
    "MctsRunRow",
    "ReadModel",
    "RequestRow",
    "RoutingRow",
    "SchemaError",
    "SpanRow",
    "Store",
    "StoreError",
    "StoreOpenError",
    "StoreStats",
]
