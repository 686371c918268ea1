"""Arbor's telemetry: tracing, structured logs, the SQLite store and Prometheus metrics.

Never imports streamlit or ``engine``.  The core types are re-exported here; the console's
readers live in their own modules, imported where used (``observability.promql`` pulls in an
HTTP client, ``observability.overview`` and ``observability.traces`` read the store)::

    from observability import Store, Tracer, Metrics
    store = Store("data/runtime/arbor.db")
"""

from observability.logs import configure_logging
from observability.metrics import Metrics, enable_multiprocess, start_exporter
from observability.store import Store, StoreError
from observability.tracing import Span, SpanRecord, Tracer, correlation_scope

__all__ = [
    "Metrics",
    "Span",
    "SpanRecord",
    "Store",
    "StoreError",
    "Tracer",
    "configure_logging",
    "correlation_scope",
    "enable_multiprocess",
    "start_exporter",
]
