"""SLO event counts, budget buckets, attribution and firing alerts from Prometheus: the
Prometheus side of the SLO sources (the same interface as
:class:`~observability.slo.sqlite_source.SqliteSLOSource`, ``name = "prometheus"``).

**Which series, and why.** Counts come from the raw counters the SLO file names (its
``ratioMetric`` selectors), not from the recording rules generated from it:

* the recorded series (``slo:sli_error:ratio_rate<w>``) are *ratios*: they carry no event
  counts (the review reports ``total`` and ``bad``), exist only for the fixed windows 5m .. 3d
  and the SLO period (not for a 7d range, nor for the period before), only from when Prometheus
  started evaluating the rules, and they are ``rate()`` ratios, extrapolated to the window's
  edges;
* each window's count is instead the counters' exact growth evaluated at ``as_of`` (the
  ``time=`` parameter): per series, its value at ``as_of`` minus its value one window earlier
  (0 for a series born since), as :func:`observability.promql.queries.window_count` writes it.
  ``increase()`` alone would extrapolate to the window's edges and miss the first value of a
  series born inside the window, so it would never equal the store's exact count. Only series
  whose counter reset inside the window (a restarted process) fall back to ``increase()``,
  whose extrapolated, fractional growth is rounded to a whole count.

So Prometheus answers with the requests *scraped* by ``as_of``: a counter's value at ``as_of``
is its last scrape at or before it (and at ``as_of - w`` likewise), so requests finished within
one scrape interval before either edge may fall on the other side of it, and the exporter counts
a request when the store's writer records it, shortly after its timestamp. Windows longer than
Prometheus' retention (``make prometheus`` keeps 35 days) count what is retained, and
simulated-clock requests (``requests.simulated = 1``) never reach Prometheus: they exist only in
the SQLite store.

**Attribution.** The SLO counters carry a ``task`` label only (``mcts_requests_total{task,
status}``, ``mcts_request_duration_seconds{task}``, ``mcts_verdicts_total{task, verdict}``), so
the bad events are attributed by task; the other dimensions (last agent, provider, router,
variant) are left out of :meth:`PrometheusSLOSource.attribution` and named with their reason by
:meth:`PrometheusSLOSource.unattributable`, never invented.

**Alerts.** :meth:`PrometheusSLOSource.alerts` reads the ``ALERTS`` series of the generated
``SLOErrorBudgetBurn`` rules at ``as_of``: one :class:`PromAlert` per pending or firing
condition, with its SLO, severity, windows and factor from the rule's labels.

**Faults.** Every query goes through :class:`observability.promql.client.QueryClient` (a
deadline per query, a bounded reply) and its reply is validated; the source also bounds all the
queries of one source object by a total deadline (``total_timeout_s``, counted from its
creation: make one per page load or report; no query starts after it has passed, so the whole
takes at most ``total_timeout_s`` plus one query's deadline). Unreachable, slow, garbage, an
HTTP or Prometheus error, or values that cannot be counts (negative, infinite, ``bad > total``, several series
where one is expected) raise :class:`observability.promql.reply.PromSourceError` with a message
for the page.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Literal

from observability.durations import format_duration
from observability.metrics.catalogue import spec
from observability.promql.client import QueryClient
from observability.promql.matrix import RangeGrid, RangeSeries, parse_matrix
from observability.promql.queries import window_count
from observability.promql.reply import PromSourceError, Sample, UnusableReply, excerpt, parse_samples
from observability.slo.math import BucketCount, attribution_shares
from observability.slo.models import SLO
from observability.slo.selectors import parse_selector
from observability.slo.sqlite_source import ATTRIBUTION_DIMENSIONS, Counts

__all__ = ["ALERT_NAME", "PromAlert", "PrometheusSLOSource", "ScrapeStatus", "window_text"]

log = logging.getLogger(__name__)

#: The alert name of the generated burn-rate rules (observability/rules/slo_rules.yml).
ALERT_NAME = "SLOErrorBudgetBurn"
#: Label that tells the parts of one combined query apart (never a label of Arbor's metrics).
_PART = "arbor_part"


def window_text(seconds: float) -> str:
    """A window in seconds as a Prometheus duration in its largest whole unit (``300.0`` ->
    ``5m``, ``2419200.0`` -> ``28d``, ``0.5`` -> ``500ms``). Raises ValueError for a window
    that is not a positive whole number of milliseconds."""
    if not (isinstance(seconds, int | float) and math.isfinite(seconds) and seconds > 0):
        raise ValueError(f"a window must be a positive number of seconds, got {seconds!r}")
    millis = round(seconds * 1000)
    if millis <= 0 or abs(millis - seconds * 1000) > 1e-6 * max(1.0, seconds * 1000):
        raise ValueError(f"a window must be a whole number of milliseconds, got {seconds!r} s")
    return format_duration(timedelta(milliseconds=millis))


def _tag(expr: str, part: str) -> str:
    """``expr`` with the label ``arbor_part="<part>"`` added to its series."""
    return f'label_replace(\n  {expr},\n  "{_PART}", "{part}", "", ""\n)'


@dataclass(frozen=True)
class PromAlert:
    """One ``SLOErrorBudgetBurn`` condition Prometheus reports as ``pending`` or ``firing`` at
    ``as_of`` (from the ``ALERTS`` series): the SLO, ``severity`` (page or ticket), the
    ``long_window``/``short_window`` pair and the burn-rate ``factor`` from the rule's labels
    (None when a label is missing or not a number)."""

    slo: str
    severity: str
    state: Literal["pending", "firing"]
    long_window: str
    short_window: str
    factor: float | None
    as_of: float

    @property
    def firing(self) -> bool:
        """Whether the condition is firing (not just pending)."""
        return self.state == "firing"


@dataclass(frozen=True)
class ScrapeStatus:
    """How Prometheus last scraped the scrape ``job`` by ``as_of``: ``last_scrape_ts`` (unix s;
    None: no scrape of the job in Prometheus' 5-minute lookback) and ``up`` (whether that scrape
    succeeded; None without one)."""

    job: str
    last_scrape_ts: float | None
    up: bool | None
    as_of: float


class PrometheusSLOSource:
    """SLO counts, budget buckets, attribution (by task) and burn-rate alerts from the Prometheus
    server behind ``client``.

    ``total_timeout_s`` bounds every query this object sends, together, counted from its
    creation (None: only each query's own deadline, ``client.timeout_s``). Methods raise
    :class:`~observability.promql.reply.PromSourceError` when Prometheus cannot be reached,
    answers something unusable or the total deadline has passed, and ValueError for a window
    that is not a positive whole number of milliseconds.
    """

    name = "prometheus"

    def __init__(
        self,
        client: QueryClient,
        *,
        total_timeout_s: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if total_timeout_s is not None and not (math.isfinite(total_timeout_s) and total_timeout_s > 0):
            raise ValueError(f"total_timeout_s must be a positive number of seconds, got {total_timeout_s!r}")
        self.client = client
        self.url = client.url
        self.total_timeout_s = total_timeout_s
        self._clock = clock
        self._deadline = None if total_timeout_s is None else clock() + total_timeout_s

    # -- plumbing --------------------------------------------------------------------------

    def _unusable(self, reason: str) -> PromSourceError:
        message = f"Prometheus at {self.url} answered something unusable: {reason}"
        log.warning("%s", message)
        return PromSourceError(message, reachable=True)

    def _left(self) -> float | None:
        """Seconds left of the total deadline (None: no total deadline)."""
        if self._deadline is None:
            return None
        left = self._deadline - self._clock()
        if left <= 0:
            raise PromSourceError(
                f"Prometheus at {self.url} gave no complete answer within the total deadline of "
                f"{self.total_timeout_s:g}s for the SLO figures"
            )
        return left

    def _instant(self, query: str, at: float) -> list[Sample]:
        self._left()
        try:
            return parse_samples(*self.client.fetch(query, at=at))
        except UnusableReply as exc:
            raise self._unusable(str(exc)) from None

    def _range(self, query: str, grid: RangeGrid, what: str) -> list[tuple[str, tuple[str | None, ...]]]:
        """(part label, values on the grid) of each series of a combined range query."""
        self._left()
        try:
            series: list[RangeSeries] = parse_matrix(
                *self.client.fetch_range(query, start=grid.start, end=grid.end, step_s=grid.step_s)
            )
            return [(s.metric.get(_PART, ""), s.on_grid(grid)) for s in series]
        except UnusableReply as exc:
            raise self._unusable(f"{exc} for {what}") from None

    def _count(self, text: str, what: str) -> float:
        """A sample value that must be a count: finite and >= 0 (NaN is unusable too)."""
        value = float(text)
        if not math.isfinite(value) or value < 0:
            raise self._unusable(f"{what} of {excerpt(text, 30)}")
        return value

    def _whole(self, value: float) -> int:
        """A count as a whole number (increase()'s extrapolated growth is rounded)."""
        return round(value)

    def _pair(self, slo: SLO, total: float, other: float, what: str) -> tuple[int, int]:
        """(total, bad) from the total and the bad (or good) count of ``slo``; checks bad <= total."""
        n = self._whole(total)
        m = self._whole(other)
        if m > n:
            side = "bad" if slo.indicator.ratio_metric.bad is not None else "good"
            raise self._unusable(f"{m} {side} events but only {n} in total for {what}")
        return (n, m) if slo.indicator.ratio_metric.bad is not None else (n, n - m)

    @staticmethod
    def _selectors(slo: SLO) -> tuple[str, str]:
        """(total selector, bad-or-good selector) of the SLO's ratio metric, as PromQL text."""
        ratio = slo.indicator.ratio_metric
        other = ratio.bad if ratio.bad is not None else ratio.good
        assert other is not None  # the model requires exactly one of them
        return parse_selector(ratio.total).render(), parse_selector(other).render()

    @staticmethod
    def _growth(selector: str, window: str, by: str = "") -> str:
        body = window_count(selector).replace("$window", window)
        return f"sum{f' by ({by})' if by else ''} (\n  {body}\n)"

    def _parts(self, samples: Sequence[Sample], what: str) -> dict[str, float]:
        """Combined-query samples keyed by their part label; each part at most once."""
        out: dict[str, float] = {}
        for s in samples:
            part = s.metric.get(_PART)
            if part is None or part in out:
                raise self._unusable(f"an unexpected series {excerpt(dict(s.metric), 80)} for {what}")
            out[part] = self._count(s.value[1], what)
        return out

    # -- the SLOSource interface -----------------------------------------------------------

    def counts(self, slo: SLO, as_of: float, windows_s: Sequence[float]) -> list[Counts]:
        """The SLO's (total, bad) events for each window ending at ``as_of``, as Prometheus had
        scraped them by then (see the module docstring), in one query. A window without data
        counts 0 events."""
        if not windows_s:
            return []
        total_sel, other_sel = self._selectors(slo)
        texts = [window_text(w) for w in windows_s]
        exprs = []
        for i, window in enumerate(texts):
            exprs.append(_tag(self._growth(total_sel, window), f"t{i}"))
            exprs.append(_tag(self._growth(other_sel, window), f"o{i}"))
        values = self._parts(self._instant("\nor\n".join(exprs), as_of), f"the {slo.name} SLO's event counts")
        out = []
        for i, w in enumerate(windows_s):
            total, bad = self._pair(
                slo, values.get(f"t{i}", 0.0), values.get(f"o{i}", 0.0), f"the {slo.name} SLO over {texts[i]}"
            )
            out.append(Counts(as_of, float(w), total, bad))
        return out

    def buckets(self, slo: SLO, as_of: float, window_s: float, bucket_s: float) -> list[BucketCount]:
        """Events per bucket of ``bucket_s`` seconds over the window ending at ``as_of``, oldest
        first, empty buckets included, with the store's bucket ends (``as_of - (n - 1 - k) x
        bucket_s``); one range query evaluated at every bucket end. A first bucket that the
        window cuts short counts whole here (the store counts only its part in the window)."""
        step = window_text(bucket_s)
        window_text(window_s)
        if bucket_s != int(bucket_s):
            raise ValueError(f"a bucket must be a whole number of seconds, got {bucket_s!r}")
        count = max(1, math.ceil(window_s / bucket_s - 1e-9))
        start = as_of - count * bucket_s
        ends = [start + (k + 1) * bucket_s for k in range(count)]
        total_sel, other_sel = self._selectors(slo)
        query = "\nor\n".join(
            [_tag(self._growth(total_sel, step), "t"), _tag(self._growth(other_sel, step), "o")]
        )
        what = f"the {slo.name} SLO's buckets"
        try:
            grid = RangeGrid(start=ends[0], step_s=int(bucket_s), points=count)
        except ValueError as exc:
            raise ValueError(f"{window_s:g} s in buckets of {bucket_s:g} s: {exc}") from None
        by_part: dict[str, dict[int, float]] = {}
        for part, values in self._range(query, grid, what):
            if part not in ("t", "o") or part in by_part:
                raise self._unusable(f"an unexpected series (part {excerpt(part, 30)!r}) for {what}")
            by_part[part] = {k: self._count(v, what) for k, v in enumerate(values) if v is not None}
        out = []
        for k, end in enumerate(ends):
            total, bad = self._pair(
                slo, by_part.get("t", {}).get(k, 0.0), by_part.get("o", {}).get(k, 0.0), what
            )
            out.append(BucketCount(end, total, bad))
        return out

    def attribution(self, slo: SLO, as_of: float, window_s: float) -> dict[str, dict[str, float]]:
        """Shares of the SLO's bad events in the window by the dimensions its metrics carry
        (``task``): ``{"task": {"game24": 0.75, ...}}``; empty shares when there are no bad
        events. The dimensions left out are :meth:`unattributable`'s. A series without the label
        counts under ``"(none)"``."""
        dims = self._attributable(slo)
        if not dims:
            return {}
        total_sel, other_sel = self._selectors(slo)
        window = window_text(window_s)
        out: dict[str, dict[str, float]] = {}
        what = f"the {slo.name} SLO's attribution"
        for dim in dims:
            query = "\nor\n".join(
                [
                    _tag(self._growth(total_sel, window, by=dim), "t"),
                    _tag(self._growth(other_sel, window, by=dim), "o"),
                ]
            )
            per: dict[str, dict[str | None, float]] = {"t": {}, "o": {}}
            for s in self._instant(query, as_of):
                part = s.metric.get(_PART)
                key = s.metric.get(dim) or None
                if part not in per or key in per[part]:
                    raise self._unusable(f"an unexpected series {excerpt(dict(s.metric), 80)} for {what}")
                per[part][key] = self._count(s.value[1], what)
            bad_counts: dict[str | None, int] = {}
            for key in set(per["t"]) | set(per["o"]):
                _, bad = self._pair(slo, per["t"].get(key, 0.0), per["o"].get(key, 0.0), what)
                bad_counts[key] = bad
            out[dim] = attribution_shares(bad_counts)
        return out

    def unattributable(self, slo: SLO) -> dict[str, str]:
        """The attribution dimensions Prometheus cannot answer for ``slo``, each with the reason
        (the SLO's metrics carry no such label: "the SLO's metrics (mcts_requests_total) carry
        only the labels status, task")."""
        total_sel, other_sel = self._selectors(slo)
        names = sorted({parse_selector(total_sel).family, parse_selector(other_sel).family})
        labels = sorted(self._labels(slo))
        have = ", ".join(labels) or "none"
        reason = f"the SLO's metrics ({', '.join(names)}) carry only the labels {have}"
        return {dim: reason for dim in ATTRIBUTION_DIMENSIONS if dim not in labels}

    @staticmethod
    def _labels(slo: SLO) -> set[str]:
        """The labels every metric family the SLO reads carries (the catalogue's)."""
        ratio = slo.indicator.ratio_metric
        selectors = [s for s in (ratio.total, ratio.bad, ratio.good) if s is not None]
        sets = [set(spec(parse_selector(s).family).labels) for s in selectors]
        return set.intersection(*sets)

    def _attributable(self, slo: SLO) -> list[str]:
        labels = self._labels(slo)
        return [d for d in ATTRIBUTION_DIMENSIONS if d in labels]

    # -- alerts -----------------------------------------------------------------------------

    def alerts(self, as_of: float) -> list[PromAlert]:
        """The burn-rate conditions pending or firing at ``as_of`` (``ALERTS{alertname=
        "SLOErrorBudgetBurn"}``), firing first, then by SLO, severity and windows."""
        query = f'ALERTS{{alertname="{ALERT_NAME}"}}'
        found = []
        for s in self._instant(query, as_of):
            labels = s.metric
            state = labels.get("alertstate")
            if state not in ("pending", "firing"):
                raise self._unusable(f"an ALERTS series with alertstate {excerpt(state, 30)!r}")
            factor: float | None
            try:
                factor = float(labels.get("burn_rate", ""))
                factor = factor if math.isfinite(factor) else None
            except ValueError:
                factor = None
            found.append(
                PromAlert(
                    slo=labels.get("slo", ""),
                    severity=labels.get("severity", ""),
                    state="firing" if state == "firing" else "pending",
                    long_window=labels.get("long_window", ""),
                    short_window=labels.get("short_window", ""),
                    factor=factor,
                    as_of=as_of,
                )
            )
        return sorted(found, key=lambda a: (not a.firing, a.slo, a.severity, a.long_window, a.short_window))

    def scrape_status(self, job: str, as_of: float) -> ScrapeStatus:
        """When Prometheus last scraped ``job`` (a scrape job name, ``[a-zA-Z0-9_.:-]+``) by
        ``as_of`` and whether that scrape succeeded (``up``). Raises ValueError for a job name
        that is not one, PromSourceError like every query."""
        if not job or not all(c.isalnum() or c in "_.:-" for c in job) or not job.isascii():
            raise ValueError(f"not a scrape job name: {job!r}")
        up = f'up{{job="{job}"}}'
        query = f"{_tag(f'max(timestamp({up}))', 'ts')}\nor\n{_tag(f'max({up})', 'up')}"
        values = self._parts(self._instant(query, as_of), f"the scrapes of job {job!r}")
        if "up" in values and values["up"] not in (0.0, 1.0):
            raise self._unusable(f"up of {values['up']!r} for job {job!r}")
        return ScrapeStatus(
            job=job,
            last_scrape_ts=values.get("ts"),
            up=None if "up" not in values else values["up"] == 1.0,
            as_of=as_of,
        )
