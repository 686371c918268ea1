"""The SLO page's service (pages/slos.py): the SLO review and its series, exact from the SQLite
store or from Prometheus, read through short-lived caches.

Figures come from :func:`engine.slo_report.build_report` over
:class:`observability.slo.sqlite_source.SqliteSLOSource` (``source="sqlite"``) or
:class:`observability.slo.prometheus_source.PrometheusSLOSource` (``source="prometheus"``, at
``ARBOR_PROMETHEUS_URL``); the series for the charts from the source's per-bucket counts and
:mod:`observability.slo.math`. Reads never raise for a store that cannot be read, a bad SLO
file, telemetry switched off, or Prometheus unset, unreachable, slow or answering garbage: those
come back as a message.
"""

from __future__ import annotations

import html
import json
import math
import sqlite3
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import streamlit as st

from app import runtime
from app.links import LinkWarning, bad_events_url, link_choice, link_number, runbook_link
from engine.slo_report import AlertRow, Report, SLOFigures, build_report, render_markdown, report_json
from engine.slo_review_html import build_html_review, render_html
from engine.slo_series import SLOSeries, bucket_plan
from engine.slo_series import slo_series as _series
from engine.slo_sources import prometheus_slo_source
from observability.durations import parse_duration
from observability.promql.reply import PromSourceError
from observability.slo.models import DEFAULT_SLOS_PATH, SLO, SLOConfigError, load_slo_set, load_slos
from observability.slo.prometheus_source import PrometheusSLOSource, ScrapeStatus
from observability.slo.sqlite_source import ATTRIBUTION_DIMENSIONS, SqliteSLOSource
from observability.store.reads import ReadModel
from observability.store.review_reads import latest_golden_run

__all__ = [
    "AS_OF_CHOICES",
    "ATTRIBUTION_DIMENSIONS",
    "RANGES",
    "SLO_TTL_S",
    "SOURCES",
    "AlertRow",
    "Offender",
    "SLOFigures",
    "SLOLink",
    "SLOPage",
    "SLOSeries",
    "bucket_plan",
    "now",
    "parse_slo_link",
    "period_of",
    "prometheus_key",
    "prometheus_scrape",
    "prometheus_source",
    "resolve_as_of",
    "review_html",
    "review_html_download",
    "runbook_link",
    "slo_names",
    "slo_page",
    "slo_series",
    "store_facts",
    "store_path",
    "top_offenders",
]

#: How long the page's figures are reused (s); "now" is rounded down to this many seconds.
SLO_TTL_S = 10
#: Time-range presets; "window" is each SLO's own window (data/slos.yaml ``timeWindow``).
RANGES = ("1h", "1d", "7d", "28d", "window")
#: ``latest``: the store's newest request (simulated or older data); ``now``: the wall clock;
#: ``custom``: a chosen UTC time.
AS_OF_CHOICES = ("latest", "now", "custom")
#: Where the page's figures come from: the store (exact) or Prometheus (ARBOR_PROMETHEUS_URL).
SOURCES = ("sqlite", "prometheus")


@dataclass(frozen=True)
class SLOLink:
    """A deep link's values (None: not in the link) and a warning per value not used."""

    slo: str | None
    range: str | None
    as_of: float | None
    warnings: tuple[LinkWarning, ...]

    @property
    def problems(self) -> tuple[str, ...]:
        """The warnings as lines of text."""
        return tuple(w.text for w in self.warnings)


def parse_slo_link(params: Mapping[str, str], names: list[str]) -> SLOLink:
    """``/slos?slo=latency&range=7d&as_of=1800000000``: an SLO of ``names``, a preset of
    :data:`RANGES` and a unix time; an unknown value is ignored with a warning naming it."""
    warnings: list[LinkWarning] = []
    slo = link_choice(params, "slo", names, warnings, default="the SLO with the least budget left")
    rng = link_choice(params, "range", RANGES, warnings, default="each SLO's window")
    as_of = link_number(
        params,
        "as_of",
        warnings,
        whole=False,
        low=0.0,
        high=1e11,
        default="the page's default time",
        clamp=False,
    )
    return SLOLink(slo, rng, as_of, tuple(warnings))


def period_of(range_key: str, slo: SLO | None = None) -> timedelta | None:
    """The period of a preset: None for ``"window"`` without an SLO (each SLO's own window),
    the SLO's window with one. Raises ValueError for an unknown preset."""
    if range_key not in RANGES:
        raise ValueError(f"unknown range {range_key!r}; ranges: {RANGES}")
    if range_key == "window":
        return None if slo is None else slo.period
    return parse_duration(range_key)


@dataclass(frozen=True)
class SLOPage:
    """Everything the page shows above the per-SLO charts.

    ``message`` (and no ``report``) when there is nothing to compute: telemetry off, a bad SLO
    file, an unreadable store, Prometheus unset or unable to answer. ``stored`` counts every
    request in the store, ``latest_ts`` is the newest one's time; ``simulated`` counts the
    store's simulated requests among those in the longest period (any status), also with the
    Prometheus ``source``, which never sees them."""

    report: Report | None
    markdown: str = ""
    json_text: str = ""
    slo_names: tuple[str, ...] = ()
    stored: int = 0
    latest_ts: float | None = None
    simulated: int = 0
    message: str | None = None
    source: str = "sqlite"


def _slos() -> list[SLO]:
    return load_slos(DEFAULT_SLOS_PATH)


def _source() -> SqliteSLOSource | None:
    store = runtime.get_store()
    if store is None:
        return None
    store.wait(timeout_s=5.0)  # this console's pending telemetry first
    return SqliteSLOSource(store.reads)


def resolve_as_of(choice: str, custom_ts: float | None, latest_ts: float | None, now: float) -> float:
    """The ``as_of`` (unix s) of an as-of choice: ``now`` rounded down to :data:`SLO_TTL_S`
    seconds (so the cache serves repeated runs), the store's ``latest_ts`` (``now`` when it is
    empty), or ``custom_ts``. Raises ValueError for an unknown choice or a missing custom time."""
    if choice == "now" or (choice == "latest" and latest_ts is None):
        return float(math.floor(now / SLO_TTL_S) * SLO_TTL_S)
    if choice == "latest":
        assert latest_ts is not None
        return latest_ts
    if choice == "custom" and custom_ts is not None:
        return custom_ts
    raise ValueError(f"as-of choice {choice!r} needs a time" if choice == "custom" else f"unknown {choice!r}")


@st.cache_data(ttl=SLO_TTL_S, show_spinner=False)
def _cached_page(db_path: str, committed: int, range_key: str, as_of: float) -> SLOPage:
    """The page for one store file, range and as_of; ``committed`` drops the cache as soon as
    this console records more."""
    slos = _slos()
    source = _source()
    assert source is not None
    report = build_report(slos, source, as_of, period_of(range_key), golden=latest_golden_run(source.reads))
    longest = max(f.period_s for f in report.slos)
    stored, latest = source.reads.request_facts()
    # simulated requests of any status in (as_of - longest, as_of], from the hourly roll-up
    simulated = source.reads.rollups.counts(max(as_of - longest, 0.0), as_of, ("simulated",)).get(1)
    return SLOPage(
        report=report,
        markdown=render_markdown(report),
        json_text=json.dumps(report_json(report), indent=2, allow_nan=False),
        slo_names=tuple(s.name for s in slos),
        stored=stored,
        latest_ts=latest,
        simulated=0 if simulated is None else simulated.n,
    )


_NOT_CONFIGURED = "Prometheus is not configured (ARBOR_PROMETHEUS_URL is unset): choose SQLite."


def prometheus_source() -> PrometheusSLOSource | str:
    """A Prometheus SLO source for one page load (its queries share a total deadline), or why
    there is none: ``ARBOR_PROMETHEUS_URL`` unset, or a URL the client cannot use."""
    try:
        source = prometheus_slo_source(runtime.get_settings())
    except ValueError as exc:
        return f"ARBOR_PROMETHEUS_URL cannot be used: {exc}"
    if source is None:
        return _NOT_CONFIGURED
    return source


def prometheus_key() -> str | None:
    """``ARBOR_PROMETHEUS_URL`` as the caches' key (None: unset); cheap, sends nothing."""
    return runtime.get_settings().prometheus_url or None


def _prometheus() -> PrometheusSLOSource:
    """A fresh source (its total deadline starts now); PromSourceError when there is none."""
    source = prometheus_source()
    if isinstance(source, str):
        raise PromSourceError(source, reachable=False)
    return source


@st.cache_data(ttl=SLO_TTL_S, show_spinner=False)
def _cached_prom_report(url: str, range_key: str, as_of: float) -> Report:
    """The review from Prometheus, with the store's golden-suite status when there is a store
    (errors are raised, so never cached)."""
    store_source = _source()
    golden = latest_golden_run(store_source.reads) if store_source is not None else None
    return build_report(_slos(), _prometheus(), as_of, period_of(range_key), golden=golden)


def _prometheus_page(range_key: str, as_of: float) -> SLOPage:
    key = prometheus_key()
    if key is None:
        return SLOPage(None, message=_NOT_CONFIGURED, source="prometheus")
    try:
        report = _cached_prom_report(key, range_key, as_of)
    except PromSourceError as exc:
        return SLOPage(
            None, message=f"{exc}. Choose SQLite for the store's exact figures.", source="prometheus"
        )
    stored, latest, simulated = 0, None, 0
    store_source = _source()
    if store_source is not None:  # the store's facts: the as-of default and its simulated requests
        longest = max(f.period_s for f in report.slos)
        stored, latest = store_source.reads.request_facts()
        totals = store_source.reads.status_totals(as_of - longest, math.nextafter(as_of, math.inf))
        simulated = sum(int(r["sim"] or 0) for r in totals)
    return SLOPage(
        report=report,
        markdown=render_markdown(report),
        json_text=json.dumps(report_json(report), indent=2, allow_nan=False),
        slo_names=tuple(s.name for s in report.slos),
        stored=stored,
        latest_ts=latest,
        simulated=simulated,
        source="prometheus",
    )


@st.cache_data(ttl=15, show_spinner=False)
def _cached_scrape(url: str, job: str) -> ScrapeStatus:
    return _prometheus().scrape_status(job, now())


def prometheus_scrape() -> ScrapeStatus | str:
    """When Prometheus last scraped the console's scrape job (``metadata.scrapeJob`` of
    data/slos.yaml) and whether that scrape succeeded, re-asked at most every 15 s; or why it
    cannot tell (a message)."""
    key = prometheus_key()
    if key is None:
        return _NOT_CONFIGURED
    try:
        job = load_slo_set(DEFAULT_SLOS_PATH).metadata.scrape_job
        return _cached_scrape(key, job)
    except (PromSourceError, SLOConfigError, ValueError) as exc:
        return str(exc)


@st.cache_data(ttl=SLO_TTL_S, show_spinner=False)
def _cached_names() -> tuple[str, ...]:
    return tuple(s.name for s in _slos())


def slo_names() -> tuple[str, ...] | str:
    """The SLO names of data/slos.yaml in file order, or the message of an invalid file."""
    try:
        return _cached_names()
    except SLOConfigError as exc:
        return _problem(exc)


def _problem(exc: Exception) -> str:
    if isinstance(exc, SLOConfigError):
        return f"The SLO file {DEFAULT_SLOS_PATH} is invalid: {exc}"
    return f"The store could not be read: {exc}"


def store_facts() -> tuple[int, float | None] | str:
    """(requests stored, newest request's time) of the console's store, or a message (telemetry
    off, an unreadable store)."""
    source = _source()
    if source is None:
        return "Telemetry is off (ARBOR_TELEMETRY=off): no requests are recorded, so no SLO can be computed."
    try:
        return source.reads.request_facts()
    except sqlite3.Error as exc:
        return _problem(exc)


def slo_page(range_key: str, as_of: float, source: str = "sqlite") -> SLOPage:
    """The SLO review over ``range_key`` (one of :data:`RANGES`) ending at ``as_of`` from
    ``source`` (one of :data:`SOURCES`), cached for :data:`SLO_TTL_S` seconds. Never raises for
    telemetry off, a bad SLO file, an unreadable store or Prometheus unset or unable to answer
    (a page with ``message``); raises ValueError for an unknown range or source."""
    period_of(range_key)
    if source not in SOURCES:
        raise ValueError(f"unknown source {source!r}; sources: {SOURCES}")
    if source == "prometheus":
        try:
            return _prometheus_page(range_key, as_of)
        except (sqlite3.Error, SLOConfigError) as exc:
            return SLOPage(None, message=_problem(exc), source="prometheus")
    store = runtime.get_store()
    if store is None:
        return SLOPage(None, message="Telemetry is off (ARBOR_TELEMETRY=off): no SLO can be computed.")
    try:
        return _cached_page(str(store.path), store.stats.committed_rows, range_key, as_of)
    except (sqlite3.Error, SLOConfigError) as exc:
        return SLOPage(None, message=_problem(exc))


@st.cache_data(ttl=SLO_TTL_S, show_spinner=False)
def _cached_series(db_path: str, committed: int, name: str, range_key: str, as_of: float) -> SLOSeries:
    source = _source()
    assert source is not None
    return _named_series(source, name, range_key, as_of)


@st.cache_data(ttl=SLO_TTL_S, show_spinner=False)
def _cached_prom_series(url: str, name: str, range_key: str, as_of: float) -> SLOSeries:
    return _named_series(_prometheus(), name, range_key, as_of)


def _named_series(
    source: SqliteSLOSource | PrometheusSLOSource, name: str, range_key: str, as_of: float
) -> SLOSeries:
    slo = next(s for s in _slos() if s.name == name)
    period = period_of(range_key, slo)
    assert period is not None
    return _series(slo, source, as_of, period.total_seconds())


def slo_series(name: str, range_key: str, as_of: float, source: str = "sqlite") -> SLOSeries | str:
    """The chart series of the SLO ``name`` over ``range_key`` ending at ``as_of`` from
    ``source`` (cached), or a message when they cannot be read. Raises ValueError for an
    unknown range."""
    period_of(range_key)
    if source == "prometheus":
        key = prometheus_key()
        if key is None:
            return _NOT_CONFIGURED
        try:
            return _cached_prom_series(key, name, range_key, as_of)
        except (PromSourceError, SLOConfigError) as exc:
            return str(exc)
        except StopIteration:
            return f"No SLO named {name!r} in {DEFAULT_SLOS_PATH}."
    store = runtime.get_store()
    if store is None:
        return "Telemetry is off: no series."
    try:
        return _cached_series(str(store.path), store.stats.committed_rows, name, range_key, as_of)
    except (sqlite3.Error, SLOConfigError) as exc:
        return _problem(exc)
    except StopIteration:
        return f"No SLO named {name!r} in {DEFAULT_SLOS_PATH}."


def review_html(report: Report, db_path: str, settings: runtime.Settings | None = None) -> str:
    """The review ``report`` (of the store at ``db_path``) as the self-contained HTML document of
    ``python -m engine slo report --format html``, with the alert episodes the page stored; its
    charts from the report's source (for ``"prometheus"``, the one ``settings`` configure). Runs
    when the download button is clicked (no Streamlit calls: it may run outside a script run).

    Never raises for an unreadable store or SLO file or a Prometheus that cannot answer: the
    document then says what went wrong."""
    try:
        reads = ReadModel(Path(db_path))
        prometheus = None
        if report.source == "prometheus":
            prometheus = prometheus_slo_source(settings) if settings is not None else None
            if prometheus is None:
                raise PromSourceError("Prometheus is not configured (ARBOR_PROMETHEUS_URL is unset)")
        source = prometheus if prometheus is not None else SqliteSLOSource(reads)
        return render_html(build_html_review(report, _slos(), source, reads), generated_ts=time.time())
    except (sqlite3.Error, SLOConfigError, OSError, PromSourceError, ValueError) as exc:
        if isinstance(exc, PromSourceError | ValueError):
            message = html.escape(str(exc))
        else:
            message = html.escape(_problem(exc) if not isinstance(exc, OSError) else f"The store: {exc}")
        return (
            '<!DOCTYPE html><html><head><meta charset="utf-8"><title>SLO review</title></head>'
            f"<body><p>The SLO review could not be built. {message}</p></body></html>"
        )


def review_html_download(report: Report, db_path: str) -> Callable[[], str]:
    """What the HTML download button calls when clicked: :func:`review_html` of ``report`` with
    this console's settings (for a report from Prometheus)."""
    settings = runtime.get_settings()
    return lambda: review_html(report, db_path, settings)


def store_path() -> str | None:
    """The console's store file (None when telemetry is off)."""
    store = runtime.get_store()
    return None if store is None else str(store.path)


@dataclass(frozen=True)
class Offender:
    """One of an SLO's top offenders: an attribution ``dimension``'s ``value`` (``"(none)"``: the
    requests without one), its ``share`` of the period's bad events, and ``traces_url``, the
    Traces page listing those bad events (None when a link cannot select them)."""

    dimension: str
    value: str
    share: float
    traces_url: str | None


def top_offenders(figures: SLOFigures, as_of: float, top: int = 3) -> tuple[Offender, ...]:
    """The ``top`` largest shares of each attribution dimension of ``figures`` (the period
    ``as_of - period_s < ts <= as_of``), each with the link to its bad events' traces."""
    since, kind, threshold = as_of - figures.period_s, figures.kind, figures.threshold_s
    return tuple(
        Offender(dim, value, share, bad_events_url(kind, threshold, dim, value, since, as_of))
        for dim in ATTRIBUTION_DIMENSIONS
        for value, share in list(figures.attribution.get(dim, {}).items())[:top]
    )


def now() -> float:
    """The wall clock (unix s); a seam for tests."""
    return time.time()
