"""Arbor's telemetry: tracing, logging, the SQLite store, Prometheus metrics (to come)."""

__all__: list[str] = []
