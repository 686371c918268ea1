"""The SLO sources built from the settings, for the two composition roots (the CLI's
``python -m engine slo report`` and the console's SLO page).

The SQLite source needs only the store's read model; the Prometheus one
(:class:`observability.slo.prometheus_source.PrometheusSLOSource`) is built here from
``ARBOR_PROMETHEUS_URL``, ``ARBOR_PROMETHEUS_TIMEOUT_S`` and the ``ARBOR_PROMETHEUS_*``
credentials of the one settings object.
"""

from __future__ import annotations

from engine.config import Settings
from observability.promql.client import QueryClient
from observability.slo.prometheus_source import PrometheusSLOSource

__all__ = ["TOTAL_DEADLINES", "prometheus_slo_source"]

#: All the Prometheus queries of one report (or page load) share a deadline of this many
#: per-query deadlines (``ARBOR_PROMETHEUS_TIMEOUT_S``): 3 x 5 s by default.
TOTAL_DEADLINES = 3


def prometheus_slo_source(settings: Settings) -> PrometheusSLOSource | None:
    """The SLO source at ``ARBOR_PROMETHEUS_URL`` with its timeout and credentials (None when the
    URL is unset); its queries share a total deadline of :data:`TOTAL_DEADLINES` per-query
    deadlines, counted from now, so build one per report or page load. Sends nothing.

    Raises ValueError for a URL or credentials the client cannot use (the message masks them).
    """
    if not settings.prometheus_url:
        return None
    client = QueryClient(
        settings.prometheus_url,
        settings.prometheus_timeout_s,
        username=settings.prometheus_username,
        password=settings.prometheus_password,
        bearer_token=settings.prometheus_bearer_token,
    )
    return PrometheusSLOSource(client, total_timeout_s=TOTAL_DEADLINES * settings.prometheus_timeout_s)
