"""Prometheus metrics of the engine.

* :mod:`~observability.metrics.catalogue`: every family declared once (name, kind, help,
  labels, buckets); :data:`METRIC_NAMES` and :data:`BUCKETS` derive from it.
* :mod:`~observability.metrics.recorder`: :class:`Metrics`, the families on one injectable
  registry with typed, validating recording methods.
* :mod:`~observability.metrics.multiprocess`: prometheus_client's multiprocess mode
  (:func:`enable_multiprocess`; its ``PROMETHEUS_MULTIPROC_DIR`` environment variable is the
  project's one documented piece of process-global state).
* :mod:`~observability.metrics.exporter`: the ``/metrics`` HTTP exporter
  (:func:`start_exporter` once per address and port, :func:`stop_exporter`).

Single process::

    metrics = Metrics()                       # a private CollectorRegistry, see Metrics.registry
    start_exporter(9464, registry=metrics.registry)
    metrics.observe_request("game24", "ok", 0.042)

Importing this package does not import prometheus_client (see the multiprocess module).
"""

from observability.metrics.catalogue import (
    BUCKETS,
    CATALOGUE,
    LLM_TOKEN_DIRECTIONS,
    METRIC_NAMES,
    REQUEST_STATUSES,
    VERDICTS,
    MetricSpec,
    bucket_label,
    catalogue_markdown,
)
from observability.metrics.exporter import (
    exporter_registry,
    running_exporters,
    start_exporter,
    stop_exporter,
)
from observability.metrics.multiprocess import (
    MULTIPROC_ENV,
    MultiprocessError,
    enable_multiprocess,
    multiprocess_dir,
    sweep_dead_processes,
)
from observability.metrics.recorder import Metrics

__all__ = [
    "BUCKETS",
    "CATALOGUE",
    "LLM_TOKEN_DIRECTIONS",
    "METRIC_NAMES",
    "MULTIPROC_ENV",
    "REQUEST_STATUSES",
    "VERDICTS",
    "MetricSpec",
    "Metrics",
    "MultiprocessError",
    "bucket_label",
    "catalogue_markdown",
    "enable_multiprocess",
    "exporter_registry",
    "multiprocess_dir",
    "running_exporters",
    "start_exporter",
    "stop_exporter",
    "sweep_dead_processes",
]
