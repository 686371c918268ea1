"""The SLO page's service (pages/slos.py): the SLO review and its series, exact from the SQLite
store, read through short-lived caches.

Figures come from :func:`engine.slo_report.build_report` over
:class:`observability.slo.sqlite_source.SqliteSLOSource`; the series for the charts from the
source's per-bucket counts and :mod:`observability.slo.math`. Reads never raise for a store that
cannot be read, a bad SLO file or telemetry switched off: those come back as a message.
"""

from __future__ import annotations

import html
import json
import math
import sqlite3
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import streamlit as st

from app import runtime
from app.links import bad_events_url, runbook_link
from engine.slo_report import AlertRow, Report, SLOFigures, build_report, render_markdown, report_json
from engine.slo_review_html import build_html_review, render_html
from engine.slo_series import SLOSeries, bucket_plan
from engine.slo_series import slo_series as _series
from observability.durations import parse_duration
from observability.slo.models import DEFAULT_SLOS_PATH, SLO, SLOConfigError, load_slos
from observability.slo.sqlite_source import ATTRIBUTION_DIMENSIONS, SqliteSLOSource
from observability.store.reads import ReadModel
from observability.store.review_reads import latest_golden_run

__all__ = [
    "AS_OF_CHOICES",
    "ATTRIBUTION_DIMENSIONS",
    "RANGES",
    "SLO_TTL_S",
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
    "resolve_as_of",
    "review_html",
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


@dataclass(frozen=True)
class SLOLink:
    """A deep link's values (None: not in the link) and its problems, one line each."""

    slo: str | None
    range: str | None
    as_of: float | None
    problems: tuple[str, ...]


def parse_slo_link(params: Mapping[str, str], names: list[str]) -> SLOLink:
    """``/slos?slo=latency&range=7d&as_of=1800000000``: an SLO of ``names``, a preset of
    :data:`RANGES` and a unix time; an unknown value is a problem naming it, and ignored."""
    problems = []
    slo = params.get("slo")
    if slo is not None and slo not in names:
        problems.append(f"The link names an unknown SLO {slo!r}; SLOs: {', '.join(names)}.")
        slo = None
    rng = params.get("range")
    if rng is not None and rng not in RANGES:
        problems.append(f"The link's range {rng!r} is not one of {', '.join(RANGES)}.")
        rng = None
    as_of = None
    raw = params.get("as_of")
    if raw is not None:
        try:
            as_of = float(raw)
            if not (math.isfinite(as_of) and 0 <= as_of <= 1e11):
                raise ValueError
        except ValueError:
            problems.append(f"The link's as_of {raw!r} is not a unix time in seconds.")
            as_of = None
    return SLOLink(slo, rng, as_of, tuple(problems))


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
    file, an unreadable store. ``stored`` counts every request in the store, ``latest_ts`` is the
    newest one's time; ``simulated`` counts the simulated requests among those in the longest
    period (any status)."""

    report: Report | None
    markdown: str = ""
    json_text: str = ""
    slo_names: tuple[str, ...] = ()
    stored: int = 0
    latest_ts: float | None = None
    simulated: int = 0
    message: str | None = None


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


def slo_page(range_key: str, as_of: float) -> SLOPage:
    """The SLO review over ``range_key`` (one of :data:`RANGES`) ending at ``as_of``, cached for
    :data:`SLO_TTL_S` seconds. Never raises for telemetry off, a bad SLO file or an unreadable
    store (a page with ``message``); raises ValueError for an unknown range."""
    period_of(range_key)
    store = runtime.get_store()
    if store is None:
        return SLOPage(None, message="Telemetry is off (ARBOR_TELEMETRY=off): no SLO can be computed.")
    try:
        return _cached_page(str(store.path), store.stats.committed_rows, range_key, as_of)
    except (sqlite3.Error, SLOConfigError) as exc:
        return SLOPage(None, message=_problem(exc))


@st.cache_data(ttl=SLO_TTL_S, show_spinner=False)
def _cached_series(db_path: str, committed: int, name: str, range_key: str, as_of: float) -> SLOSeries:
    slo = next(s for s in _slos() if s.name == name)
    source = _source()
    assert source is not None
    period = period_of(range_key, slo)
    assert period is not None
    return _series(slo, source, as_of, period.total_seconds())


def slo_series(name: str, range_key: str, as_of: float) -> SLOSeries | str:
    """The chart series of the SLO ``name`` over ``range_key`` ending at ``as_of`` (cached), or a
    message when they cannot be read. Raises ValueError for an unknown range."""
    period_of(range_key)
    store = runtime.get_store()
    if store is None:
        return "Telemetry is off: no series."
    try:
        return _cached_series(str(store.path), store.stats.committed_rows, name, range_key, as_of)
    except (sqlite3.Error, SLOConfigError) as exc:
        return _problem(exc)
    except StopIteration:
        return f"No SLO named {name!r} in {DEFAULT_SLOS_PATH}."


def review_html(report: Report, db_path: str) -> str:
    """The review ``report`` (of the store at ``db_path``) as the self-contained HTML document of
    ``python -m engine slo report --format html``, with the alert episodes the page stored. Runs
    when the download button is clicked (no Streamlit calls: it may run outside a script run).

    Never raises for an unreadable store or SLO file: the document then says what went wrong."""
    try:
        source = SqliteSLOSource(ReadModel(Path(db_path)))
        return render_html(build_html_review(report, _slos(), source, source.reads), generated_ts=time.time())
    except (sqlite3.Error, SLOConfigError, OSError) as exc:
        message = html.escape(_problem(exc) if not isinstance(exc, OSError) else f"The store: {exc}")
        return (
            '<!DOCTYPE html><html><head><meta charset="utf-8"><title>SLO review</title></head>'
            f"<body><p>The SLO review could not be built. {message}</p></body></html>"
        )


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
