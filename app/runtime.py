"""The console's composition root: the only place that builds the settings, the embedded engine
(with its store and metrics exporter) and the Prometheus source.

Long-lived objects are created once per process with ``st.cache_resource``; callers must not
mutate what these functions return.  The area modules (``app.query``, ``app.telemetry``,
``app.explorer``, ``app.routing``) reach them through this module's attributes
(``runtime.get_engine()``), so a test can replace one with ``monkeypatch.setattr``.
"""

from __future__ import annotations

import atexit
import logging

import streamlit as st

from engine import Engine
from engine.config import ConfigError, Settings, load_settings
from engine.tasks import Task, load_task
from engine.wiring import build_runtime
from observability.promql import PromSource, SourceStatus
from observability.store import Store

__all__ = [
    "ConfigError",
    "Settings",
    "get_engine",
    "get_prom_source",
    "get_settings",
    "get_store",
    "prometheus_status",
    "task",
]

log = logging.getLogger(__name__)


@st.cache_resource
def get_settings() -> Settings:
    """The console's settings, read once from ARBOR_* variables and .env (raises ConfigError)."""
    return load_settings()


@st.cache_resource
def get_engine() -> Engine:
    """One embedded engine per process, shared by every session (thread-safe; do not mutate).

    Built by the composition root ``engine.wiring.build_runtime``, which also starts the metrics
    exporter once per process (``ARBOR_METRICS_PORT``, 0 disables it; a port already in use is
    logged and the console runs on without it).
    """
    runtime = build_runtime(get_settings(), serve_metrics=True)
    atexit.register(_close_at_exit, runtime.engine)
    return runtime.engine


def _close_at_exit(engine: Engine) -> None:
    """Flush the console's engine when the process ends: Streamlit stops its server on SIGTERM
    and SIGINT and the interpreter then runs atexit, so every request the console answered is
    in the store (and its spans exported).  A write error is logged, never raised at exit."""
    try:
        engine.close()
    except Exception as exc:
        log.error("telemetry not fully flushed at exit: %s", exc)


def get_store() -> Store | None:
    """The engine's telemetry store (shared, thread-safe reads), or None when telemetry is off."""
    return get_engine().telemetry.store


@st.cache_resource
def get_prom_source() -> PromSource | None:
    """The Prometheus source at ``ARBOR_PROMETHEUS_URL``, or None when it is not configured.

    Uses ``ARBOR_PROMETHEUS_TIMEOUT_S`` (total deadline per query) and the credentials
    (``ARBOR_PROMETHEUS_USERNAME``/``_PASSWORD`` or ``_BEARER_TOKEN``, or userinfo in the URL);
    every credential, also one in the URL's query, is among the secrets the composition root
    (``engine.wiring.configured_secrets``) hands to the tracer and telemetry.  Creating it does
    not contact the server; ask ``status()``."""
    settings = get_settings()
    url = settings.prometheus_url
    if not url:
        return None
    return PromSource(
        url,
        settings.prometheus_timeout_s,
        username=settings.prometheus_username,
        password=settings.prometheus_password,
        bearer_token=settings.prometheus_bearer_token,
    )


@st.cache_data(ttl=15, show_spinner=False)
def prometheus_status() -> SourceStatus | None:
    """Whether the configured Prometheus answers (re-asked at most every 15 s), or None when
    ``ARBOR_PROMETHEUS_URL`` is unset.  Never raises: an unreachable server is a status."""
    source = get_prom_source()
    return None if source is None else source.status()


def task(name: str) -> Task:
    """The task domain called ``name`` (examples, reward range); raises ValueError for an unknown one."""
    return load_task(name)
