"""The composition root: settings -> store, tracer, metrics, exporters, telemetry and engine.

Every process kind builds through here once: the CLI (``python -m engine query|load|...``, which
also drives the load generator) and the console (``app``'s ``get_engine``).  A golden-trace
replayer or an experiment runner builds its own engine the same way, or passes other
collaborators to :class:`engine.pipeline.Engine` directly.

* the store opens ``settings.db_path`` with the backlog bound (``ARBOR_STORE_MAX_BACKLOG``) and
  the durability mode (``ARBOR_DURABILITY``);
* the tracer and the telemetry mask the configured secrets (API keys, Prometheus credentials,
  credentials in the Prometheus/OTLP URLs): nothing is registered process-wide;
* the metrics use Prometheus multiprocess mode when ``settings.metrics_dir`` is set (the one
  documented piece of process-wide state: prometheus_client reads that directory from the
  environment);
* spans also go to OTLP/HTTP when ``settings.otlp_endpoint`` is set (batched, in the background);
* library warnings inside a request's spans are kept with its log lines for the runtime's life;
* with ``serve_metrics`` the ``/metrics`` exporter starts on ``settings.metrics_port`` (0: off; a
  port in use is logged and the process runs on without it).

``ARBOR_TELEMETRY=off`` gives an engine with no store, tracer or metrics.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from engine.config import Settings, load_settings
from engine.pipeline import Engine
from engine.telemetry import Telemetry
from observability.activity import Activity
from observability.exporters import BatchingExporter, OtlpHttpExporter
from observability.metrics import Metrics, enable_multiprocess, start_exporter
from observability.redaction import normalise_secrets, url_secrets
from observability.store import Store
from observability.tracing import SpanExporter, Tracer

__all__ = ["Runtime", "build_runtime", "build_telemetry", "configured_secrets"]

log = logging.getLogger(__name__)


def configured_secrets(settings: Settings) -> tuple[str, ...]:
    """Every secret ``settings`` holds, to be masked in whatever is recorded: the LLM API keys,
    the Prometheus password and bearer token, and credentials inside the Prometheus and OTLP URLs
    (as written and percent-decoded)."""
    found: list[object] = [
        settings.openai_api_key,
        settings.anthropic_api_key,
        settings.prometheus_password,
        settings.prometheus_bearer_token,
    ]
    for url in (settings.prometheus_url, settings.otlp_endpoint):
        if url:
            found.extend(url_secrets(url))
    return normalise_secrets(found)


def build_telemetry(
    settings: Settings, *, span_exporters: tuple[SpanExporter, ...] | None = None
) -> Telemetry:
    """The store, tracer and metrics ``settings`` ask for, as one :class:`Telemetry` that keeps
    library warnings with their request (until it is closed).  ``span_exporters`` default to
    the OTLP exporter when ``settings.otlp_endpoint`` is set.  A no-op telemetry when
    ``settings.telemetry`` is ``off``.

    Raises:
        StoreOpenError: the database cannot be opened or migrated.
    """
    if not settings.telemetry_enabled:
        return Telemetry()
    if settings.metrics_dir is not None:
        enable_multiprocess(settings.metrics_dir)
    if span_exporters is None:
        span_exporters = _span_exporters(settings)
    secrets = configured_secrets(settings)
    activity = Activity()  # requests in flight: the store's writer stays out of their way
    telemetry = Telemetry(
        store=Store(
            settings.db_path,
            max_backlog=settings.store_max_backlog,
            activity=activity,
            max_defer_s=settings.store_max_defer_s,
        ),
        activity=activity,
        tracer=Tracer(span_exporters, secrets=secrets),
        metrics=Metrics(),
        durability=settings.durability,
        secrets=secrets,
    )
    telemetry.capture_logs("engine")
    return telemetry


def _span_exporters(settings: Settings) -> tuple[SpanExporter, ...]:
    if settings.otlp_endpoint:
        return (BatchingExporter(OtlpHttpExporter(settings.otlp_endpoint)),)
    return ()


@dataclass(frozen=True)
class Runtime:
    """One process's wired parts.  ``close()`` flushes and stops them in order: the engine's
    requests in flight are recorded, spans exported, the store committed and closed."""

    settings: Settings
    telemetry: Telemetry
    engine: Engine
    span_exporters: tuple[SpanExporter, ...] = ()
    metrics_port: int | None = None

    @property
    def store(self) -> Store | None:
        """The telemetry store (None when telemetry is off)."""
        return self.telemetry.store

    @property
    def tracer(self) -> Tracer | None:
        """The tracer (None when telemetry is off)."""
        return self.telemetry.tracer

    @property
    def metrics(self) -> Metrics | None:
        """The Prometheus metrics (None when telemetry is off)."""
        return self.telemetry.metrics

    def close(self) -> None:
        """Flush and release everything: the tracer (and its exporters), the store, the log
        handler, the retriever.  Idempotent."""
        self.engine.close()

    def __enter__(self) -> Runtime:
        """Use as a context manager that closes the runtime."""
        return self

    def __exit__(self, *exc_info: object) -> None:
        """Close the runtime."""
        self.close()


def build_runtime(
    settings: Settings | None = None, *, serve_metrics: bool = False, **engine_kw: Any
) -> Runtime:
    """Wire one process: telemetry from ``settings`` (default: read from ``ARBOR_*``), the engine
    with it, and with ``serve_metrics`` the ``/metrics`` exporter on ``settings.metrics_port``.
    ``engine_kw`` are further :class:`Engine` collaborators (``llm``, ``retriever``, ``gru``,
    ``clock``, ``sleep``, ``provider_factory``).

    Raises:
        ConfigError: the settings are invalid (only when read here).
        StoreOpenError: the database cannot be opened or migrated.
    """
    settings = settings if settings is not None else load_settings()
    span_exporters = _span_exporters(settings) if settings.telemetry_enabled else ()
    telemetry = build_telemetry(settings, span_exporters=span_exporters)
    engine = Engine(settings, telemetry=telemetry, **engine_kw)
    port = None
    metrics = telemetry.metrics
    if serve_metrics and metrics is not None and settings.metrics_port:
        try:
            port = start_exporter(settings.metrics_port, metrics.registry, multiproc_dir=settings.metrics_dir)
        except OSError as exc:
            log.warning("metrics exporter not started on port %s: %s", settings.metrics_port, exc)
    return Runtime(settings, telemetry, engine, span_exporters, port)
