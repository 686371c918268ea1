"""The engine's link to observability: the SQLite store, the tracer and the metrics.

:func:`engine.wiring.build_telemetry` builds them once per process (``ARBOR_TELEMETRY=off``
gives a no-op instance, for measuring their cost); ``Telemetry`` itself only takes
them.  A request's ended spans are held in memory by trace (a tracer collector: no
record is built yet) until the request is recorded; then ONE deferred job goes to the store's writer thread,
which builds the span records and the rows (request, routing decisions, spans,
logs, MCTS run, and for a request of an experiment its unit's exposure),
validates them and updates the metrics there -- the LLM and
retrieval metrics too, counted from the ``llm.complete`` and ``rag.retrieve``
spans -- so the query itself pays for its spans' ids and clocks and a queue put
(about 30-60 µs a request; ``benchmarks/telemetry_bench.py``).  Spans also go to OTLP when
``ARBOR_OTLP_ENDPOINT`` is set.  A request's log lines (``Telemetry.log``,
plus warnings that ``engine.*`` loggers emit inside its spans) are held the
same way and stored in ``logs``; they also go to Python logging (logger
``arbor.request``) when that level is enabled.  Every span and line carries
the request's correlation id.  Request statuses: ``ok``; ``error`` (the
engine failed: counts against the availability SLO); ``invalid`` (the input
was rejected: excluded from it); ``cancelled`` (the caller stopped reading).
The secrets given as ``Telemetry(secrets=...)`` (the composition root passes
the configured API keys, as it does to the tracer) are masked in everything
recorded, even where a user pasted one into a query.

Modules: :mod:`~engine.telemetry.recorder` (:class:`Telemetry`, which holds a request's spans
and log lines and hands them to the store), :mod:`~engine.telemetry.rows` (the rows a recorded
request writes) and :mod:`~engine.telemetry.traced_provider` (the spans around LLM calls and the
metrics counted from them).
"""

from engine.telemetry.recorder import COMMIT_TIMEOUT_S, REQUEST_LOGGER, Telemetry
from engine.telemetry.rows import FailedRequest, RequestMeta
from engine.telemetry.traced_provider import fallback_note

__all__ = [
    "COMMIT_TIMEOUT_S",
    "REQUEST_LOGGER",
    "FailedRequest",
    "RequestMeta",
    "Telemetry",
    "fallback_note",
]
