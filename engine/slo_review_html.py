"""The SLO review as ONE self-contained HTML document that opens offline.

:func:`build_html_review` gathers what the document shows besides the report's figures (the
charts' series, the alert episodes recorded in the store's ``alerts`` table, how many of the
period's requests are simulated); :func:`render_html` writes the document:

* a header (as of, period, source, simulated-data label) and a generated summary;
* an overview table of every SLO (objective, SLI, budget remaining, consumed against the period
  before, status, alerts firing) and the golden-suite status;
* per SLO: tiles, budget remaining over time against the ideal line and the burn rate over time
  with the alert factors (Plotly charts, alert episodes shaded), the burn-rate table, the alert
  conditions, the alert episodes with their runbooks, the top offenders, and the summary;
* the review's stable JSON (:func:`engine.slo_report.report_json`) embedded as
  ``<script type="application/json" id="review-data">`` for tools.

Self-contained: plotly.js is inlined once in the ``<head>``; nothing is fetched (no ``src`` or
``href`` other than in-document anchors). Every text from the store or the SLO file goes
through :func:`html.escape`; the embedded JSON has ``<``, ``>`` and ``&`` as ``\\u`` escapes.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import plotly.graph_objects as go  # type: ignore[import-untyped]
from plotly.offline import get_plotlyjs  # type: ignore[import-untyped]

from engine.slo_report import (
    Report,
    SLOFigures,
    _burn,
    _span,
    _status,
    _summary,
    _when,
    golden_summary,
    report_json,
)
from engine.slo_series import BucketSource, SLOSeries, slo_series
from observability.slo.models import SLO
from observability.slo.sqlite_source import ATTRIBUTION_DIMENSIONS
from observability.store.reads import ReadModel
from observability.store.review_reads import RecordedEpisode, recorded_episodes

__all__ = ["RUNBOOKS", "HtmlReview", "build_html_review", "render_html"]

#: The runbook of each alert severity (files of data/corpus; the SLO page names the same ones).
RUNBOOKS = {
    "page": "data/corpus/runbook-error-budget-fast-burn.md",
    "ticket": "data/corpus/runbook-error-budget-slow-burn.md",
}
_AMBER_BELOW = 0.25  # a budget remaining below this share is amber (as the SLO page's tiles)
_SEVERITY_COLOURS = {"page": "#dc2626", "ticket": "#d97706"}
_REAL = "#2563eb"
_IDEAL = "#9ca3af"
_TOP = 3
_LONGEST = 8  # episodes listed one by one per SLO
_PLOTLY_CONFIG = {"displaylogo": False, "responsive": True, "displayModeBar": False}


@dataclass(frozen=True)
class HtmlReview:
    """What the HTML review shows: the ``report``, each SLO's chart ``series`` by name (missing:
    not charted, e.g. no traffic), the alert ``episodes`` recorded in the ``alerts`` table over
    the longest period (None: the store was not read), and ``simulated`` requests in that period."""

    report: Report
    series: Mapping[str, SLOSeries]
    episodes: tuple[RecordedEpisode, ...] | None
    simulated: int = 0


def build_html_review(
    report: Report, slos: Sequence[SLO], source: BucketSource, reads: ReadModel | None
) -> HtmlReview:
    """The review's extras for ``report`` (made by :func:`engine.slo_report.build_report` from
    ``slos``): chart series of every SLO with traffic from ``source``, and from the store
    ``reads`` the episodes of the ``alerts`` table and the simulated-request count (None: not read).

    Raises sqlite3.Error (or the source's own error) when a read fails.
    """
    by_name = {s.name: s for s in slos}
    series = {
        f.name: slo_series(by_name[f.name], source, report.as_of, f.period_s)
        for f in report.slos
        if f.total > 0 and f.name in by_name
    }
    if reads is None or not report.slos:
        return HtmlReview(report, series, None)
    longest = max(f.period_s for f in report.slos)
    names = [f.name for f in report.slos]
    episodes = tuple(recorded_episodes(reads, report.as_of - longest, report.as_of, names))
    totals = reads.status_totals(report.as_of - longest, math.nextafter(report.as_of, math.inf))
    simulated = sum(int(r["sim"] or 0) for r in totals)
    return HtmlReview(report, series, episodes, simulated)


# --------------------------------------------------------------------------- formatting


def _esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def _pct(value: float | None, digits: int = 2) -> str:
    if value is None:
        return "n/a"
    if math.isinf(value):
        return "-∞ %" if value < 0 else "∞ %"
    return f"{value * 100:.{digits}f} %"


def _ratio(value: float | None) -> str:
    """An objective or SLI with up to 3 decimals, trailing zeros dropped: 0.99 -> ``99 %``."""
    if value is None:
        return "n/a"
    return f"{value * 100:.3f}".rstrip("0").rstrip(".") + " %"


def _colour(remaining: float | None) -> str:
    if remaining is None:
        return "grey"
    if remaining < 0:
        return "red"
    return "amber" if remaining < _AMBER_BELOW else "green"


def _consumed(remaining: float | None) -> float | None:
    return None if remaining is None else 1 - remaining


def _delta_pp(f: SLOFigures) -> str:
    """Budget consumed now against the period before, in percentage points (``+12.3 pp``)."""
    now, before = _consumed(f.budget_remaining), _consumed(f.previous_budget_remaining)
    if now is None or before is None or not (math.isfinite(now) and math.isfinite(before)):
        return "n/a"
    return f"{(now - before) * 100:+.1f} pp"


def _dt(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC).replace(tzinfo=None)


def _json_script(data: Any) -> str:
    text = json.dumps(data, indent=1, allow_nan=False)
    return text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")


# --------------------------------------------------------------------------- charts


def _layout(fig: go.Figure, title: str, y_title: str) -> go.Figure:
    fig.update_layout(
        height=300,
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
        title={"text": title, "font": {"size": 14}},
        yaxis={"title": y_title},
        legend={"orientation": "h", "y": -0.2, "x": 0, "xanchor": "left", "yanchor": "top"},
        plot_bgcolor="white",
        paper_bgcolor="white",
        font={"family": "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif", "size": 11},
    )
    fig.update_yaxes(gridcolor="#e5e7eb", zerolinecolor="#6b7280")
    fig.update_xaxes(gridcolor="#f3f4f6")
    return fig


def _shade_episodes(fig: go.Figure, episodes: Sequence[RecordedEpisode], start: float, end: float) -> None:
    for ep in episodes:
        if ep.severity != "page":
            continue  # tickets (slow burns) would cover most of a bad week; pages are the events
        x0, x1 = max(ep.start_ts, start), min(end if ep.end_ts is None else ep.end_ts, end)
        if x1 > x0:
            colour = _SEVERITY_COLOURS.get(ep.severity or "", "#6b7280")
            fig.add_vrect(x0=_dt(x0), x1=_dt(x1), fillcolor=colour, opacity=0.12, line_width=0, layer="below")


def _budget_chart(s: SLOSeries, div_id: str) -> str:
    fig = go.Figure()
    ends = [p.ts for p in s.budget]
    fig.add_trace(
        go.Scatter(
            x=[_dt(s.start_ts), *(_dt(t) for t in ends)],
            y=[100.0, *(p.ideal * 100 for p in s.budget)],
            name="ideal (linear)",
            mode="lines",
            line={"color": _IDEAL, "dash": "dash"},
        )
    )
    remaining = [None if p.remaining is None or not math.isfinite(p.remaining) else p.remaining * 100
                 for p in s.budget]  # fmt: skip
    fig.add_trace(
        go.Scatter(x=[_dt(t) for t in ends], y=remaining, name="budget remaining", mode="lines",
                   line={"color": _REAL, "width": 2}, connectgaps=False)
    )  # fmt: skip
    _layout(fig, "Error budget remaining against the ideal line (UTC)", "budget remaining (%)")
    return fig.to_html(full_html=False, include_plotlyjs=False, div_id=div_id, config=_PLOTLY_CONFIG)


def _burn_chart(s: SLOSeries, f: SLOFigures, episodes: Sequence[RecordedEpisode], div_id: str) -> str:
    fig = go.Figure(
        go.Scatter(
            x=[_dt(p.ts) for p in s.burn],
            y=[p.burn for p in s.burn],
            name=f"burn rate ({s.burn_window} window)",
            mode="lines",
            line={"color": _REAL, "width": 2},
        )
    )
    fig.add_hline(y=1.0, line={"color": _IDEAL, "dash": "dot"}, annotation_text="1 = budget pace",
                  annotation_position="bottom left")  # fmt: skip
    for factor in sorted({a.factor for a in f.alerts}):
        rows = [a for a in f.alerts if a.factor == factor]
        label = ", ".join(f"{a.severity} {a.long}/{a.short}" for a in rows)
        fig.add_hline(
            y=factor,
            line={"color": _SEVERITY_COLOURS.get(rows[0].severity, "#6b7280"), "dash": "dash", "width": 1},
            annotation_text=f"{label} × {factor:.4g}",
            annotation_position="top right",
            annotation_font_size=10,
        )
    _shade_episodes(fig, episodes, s.start_ts, s.start_ts + s.period_s)
    _layout(fig, f"Burn rate over {s.burn_window} windows (UTC; red bands: page episodes)", "burn rate")
    return fig.to_html(full_html=False, include_plotlyjs=False, div_id=div_id, config=_PLOTLY_CONFIG)


# --------------------------------------------------------------------------- sections


def _header(review: HtmlReview) -> str:
    r = review.report
    period = "each SLO's own window" if r.period_s is None else _span(r.period_s)
    sim = ""
    if review.simulated:
        sim = (
            f'<p class="banner">Simulated data: {review.simulated:,} of the period\'s requests were '
            "recorded with a simulated clock (generated load, not production traffic).</p>"
        )
    return (
        "<header>"
        '<p class="kicker">Arbor · SLO review</p>'
        f"<h1>SLO review, as of {_esc(_when(r.as_of))}</h1>"
        f'<p class="meta">Period: <b>{_esc(period)}</b> ending at {_esc(_when(r.as_of))} '
        f"(unix {r.as_of:.0f}) · source: <b>{_esc(r.source)}</b> · {len(r.slos)} SLOs</p>"
        f"{sim}</header>"
    )


def _executive_summary(review: HtmlReview) -> str:
    r = review.report
    judged = [f for f in r.slos if f.sli is not None]
    met = [f for f in judged if f.sli is not None and f.sli >= f.objective]
    items = [
        f"<li><b>{len(met)} of {len(judged)}</b> SLOs with traffic met their objective"
        + (f"; {len(r.slos) - len(judged)} had no traffic" if len(judged) < len(r.slos) else "")
        + ".</li>"
    ]
    for f in sorted(judged, key=lambda f: f.budget_remaining if f.budget_remaining is not None else 0.0):
        items.append(
            f'<li><a href="#slo-{_esc(f.name)}">{_esc(f.display_name)}</a>: '
            f'<span class="pill {_colour(f.budget_remaining)}">{_esc(_status(f))}</span> '
            f"{_esc(_summary(f))}</li>"
        )
    firing = [(f, a) for f in r.slos for a in f.alerts if a.firing]
    if firing:
        text = ", ".join(f"{f.display_name} {a.severity} {a.long}/{a.short}" for f, a in firing)
        items.append(f"<li><b>Firing at as_of:</b> {_esc(text)}.</li>")
    else:
        items.append("<li>No burn-rate alert is firing at as_of.</li>")
    if review.episodes is not None:
        pages = sum(e.severity == "page" for e in review.episodes)
        tickets = sum(e.severity == "ticket" for e in review.episodes)
        items.append(
            f"<li>{len(review.episodes)} alert episode(s) recorded in the period "
            f"({pages} page, {tickets} ticket).</li>"
        )
    items.append(f"<li>Golden suite: {_esc(golden_summary(r.golden))}.</li>")
    return '<section id="summary"><h2>Summary</h2><ul class="summary">' + "".join(items) + "</ul></section>"


def _overview(review: HtmlReview) -> str:
    rows = []
    for f in review.report.slos:
        firing = ", ".join(f"{a.severity} {a.long}/{a.short}" for a in f.alerts if a.firing) or "none"
        colour = _colour(f.budget_remaining)
        rows.append(
            f'<tr data-slo="{_esc(f.name)}">'
            f'<td><a href="#slo-{_esc(f.name)}">{_esc(f.display_name)}</a></td>'
            f'<td class="num" data-field="objective">{_ratio(f.objective)}</td>'
            f'<td class="num" data-field="sli">{_ratio(f.sli)}</td>'
            f'<td class="num" data-field="total">{f.total:,}</td>'
            f'<td class="num" data-field="bad">{f.bad:,}</td>'
            f'<td class="num {colour}" data-field="budget_remaining">{_pct(f.budget_remaining, 1)}</td>'
            f'<td class="num" data-field="budget_consumed">{_pct(_consumed(f.budget_remaining), 1)}</td>'
            f'<td class="num" data-field="previous_consumed">'
            f"{_pct(_consumed(f.previous_budget_remaining), 1)}</td>"
            f'<td class="num">{_delta_pp(f)}</td>'
            f'<td><span class="pill {colour}">{_esc(_status(f))}</span></td>'
            f'<td class="{"firing" if firing != "none" else ""}">{_esc(firing)}</td></tr>'
        )
    return (
        '<section id="overview"><h2>Compliance</h2><table class="grid"><thead><tr><th>SLO</th>'
        '<th class="num">objective</th><th class="num">SLI</th><th class="num">events</th>'
        '<th class="num">bad</th><th class="num">budget remaining</th><th class="num">consumed</th>'
        '<th class="num">consumed, period before</th><th class="num">change</th><th>status</th>'
        "<th>alerts firing</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table>"
        '<p class="note">Budget consumed against the same length of time just before the period.</p>'
        "</section>"
    )


def _golden(review: HtmlReview) -> str:
    run = review.report.golden
    summary = golden_summary(run)
    body = f'<p data-field="golden">{_esc(summary[:1].upper() + summary[1:])}.</p>'
    if run is not None and run.results:
        rows = "".join(
            f'<tr><td>{_esc(r.name)}</td><td><span class="pill '
            f'{"green" if r.status == "pass" else "red"}">{_esc(r.status)}</span></td>'
            f"<td>{_esc(r.first_divergence or '—')}</td></tr>"
            for r in sorted(run.results, key=lambda r: (r.status == "pass", r.name))
        )
        body += (
            '<table class="grid"><thead><tr><th>golden</th><th>status</th><th>first divergence</th>'
            f"</tr></thead><tbody>{rows}</tbody></table>"
        )
    return f'<section id="golden"><h2>Golden suite</h2>{body}</section>'


def _tiles(f: SLOFigures) -> str:
    colour = _colour(f.budget_remaining)
    if f.time_to_exhaustion_s is not None:
        tte = _span(f.time_to_exhaustion_s)
    else:  # none: the budget is already spent, or the 1h burn is 0 or unknown
        tte = "spent" if f.budget_remaining is not None and f.budget_remaining <= 0 else "—"
    tiles = [
        ("Objective", _ratio(f.objective), ""),
        ("SLI", _ratio(f.sli), ""),
        ("Budget remaining", _pct(f.budget_remaining, 1), colour),
        ("Budget consumed", _pct(_consumed(f.budget_remaining), 1), ""),
        ("Consumed, period before", _pct(_consumed(f.previous_budget_remaining), 1), ""),
        ("Events / bad", f"{f.total:,} / {f.bad:,}", ""),
        ("Time to exhaustion", tte, ""),
    ]
    return '<div class="tiles">' + "".join(
        f'<div class="tile {c}"><div class="label">{_esc(label)}</div>'
        f'<div class="value">{_esc(v)}</div></div>'
        for label, v, c in tiles
    ) + "</div>"  # fmt: skip


def _burn_tables(f: SLOFigures) -> str:
    head = "".join(f'<th class="num">{_esc(w)}</th>' for w in f.burn_rates)
    cells = "".join(f'<td class="num">{_burn(b)}</td>' for b in f.burn_rates.values())
    alerts = "".join(
        f'<tr class="{"firing" if a.firing else ""}"><td>{_esc(a.severity)}</td>'
        f'<td>{_esc(a.long)} / {_esc(a.short)}</td><td class="num">{a.factor:.4g}</td>'
        f'<td class="num">{_burn(a.long_burn)}</td><td class="num">{_burn(a.short_burn)}</td>'
        f"<td>{'<b>firing</b>' if a.firing else 'inactive'}</td></tr>"
        for a in f.alerts
    )
    return (
        '<div class="two"><div><h4>Burn rate at as_of</h4><table class="grid"><thead><tr><th>window</th>'
        f"{head}</tr></thead><tbody><tr><td>burn</td>{cells}</tr></tbody></table>"
        '<p class="note">1 spends exactly the budget over the SLO window; n/a: no traffic.</p></div>'
        '<div><h4>Burn-rate alert conditions</h4><table class="grid"><thead><tr><th>severity</th>'
        '<th>long / short</th><th class="num">factor</th><th class="num">long burn</th>'
        f'<th class="num">short burn</th><th>state</th></tr></thead><tbody>{alerts}</tbody></table>'
        "</div></div>"
    )


def _factor(value: float | None) -> str:
    return "—" if value is None else f"{value:.4g}"


def _episode_row(e: RecordedEpisode, as_of: float) -> str:
    open_at_as_of = e.end_ts is None or e.end_ts > as_of
    end = "firing at as_of" if open_at_as_of else _when(e.end_ts or 0.0)
    lasted = _span(min(as_of, e.end_ts or as_of) - e.start_ts)
    return (
        f'<tr class="{"firing" if open_at_as_of else ""}"><td>{_esc(e.severity or "?")}</td>'
        f"<td>{_esc(e.long_window or '?')} / {_esc(e.short_window or '?')}</td>"
        f'<td class="num">{_factor(e.factor)}</td><td>{_esc(_when(e.start_ts))}</td><td>{_esc(end)}</td>'
        f'<td class="num">{_esc(lasted)}</td>'
        f'<td class="num">{"—" if e.peak_burn is None else f"{e.peak_burn:.3g}"}</td>'
        f"<td>{_esc(e.source or '?')}</td></tr>"
    )


def _episodes(name: str, episodes: Sequence[RecordedEpisode] | None, since: float, as_of: float) -> str:
    """Per alert condition: episodes, time firing within the period, longest, peak burn and the
    runbook; then the longest :data:`_LONGEST` episodes."""
    if episodes is None:
        return '<h4>Alert episodes</h4><p class="note">The store was not read: no alert episodes.</p>'
    mine = [e for e in episodes if e.slo == name and e.start_ts <= as_of and (e.end_ts or as_of) > since]
    if not mine:
        return (
            '<h4>Alert episodes</h4><p class="note">No alert episode recorded in the store\'s alerts table '
            "for this period (the SLOs page and <code>python -m engine slo alerts</code> record them).</p>"
        )

    def within(e: RecordedEpisode) -> float:
        return max(0.0, min(as_of, e.end_ts or as_of) - max(since, e.start_ts))

    groups: dict[tuple[str, str, str], list[RecordedEpisode]] = {}
    for e in mine:
        key = (e.severity or "?", e.long_window or "?", e.short_window or "?")
        groups.setdefault(key, []).append(e)
    summary = []
    for (severity, long, short), eps in sorted(groups.items(), key=lambda kv: (kv[0][0] != "page", kv[0])):
        peaks = [e.peak_burn for e in eps if e.peak_burn is not None]
        firing = any(e.end_ts is None or e.end_ts > as_of for e in eps)
        summary.append(
            f'<tr class="{"firing" if firing else ""}" data-condition="{_esc(f"{severity} {long}/{short}")}">'
            f"<td>{_esc(severity)}</td><td>{_esc(long)} / {_esc(short)}</td>"
            f'<td class="num">{_factor(eps[0].factor)}</td>'
            f'<td class="num" data-field="episodes">{len(eps)}</td>'
            f'<td class="num">{_esc(_span(sum(within(e) for e in eps)))}</td>'
            f'<td class="num">{_esc(_span(max(within(e) for e in eps)))}</td>'
            f'<td class="num">{"—" if not peaks else f"{max(peaks):.3g}"}</td>'
            f"<td>{'<b>firing</b>' if firing else 'resolved'}</td>"
            f"<td><code>{_esc(RUNBOOKS.get(severity, '—'))}</code></td></tr>"
        )
    longest = sorted(mine, key=lambda e: (-within(e), -e.start_ts))[:_LONGEST]
    more = len(mine) - len(longest)
    return (
        f'<h4>Alert episodes <span class="note">({len(mine)} in the period, from the store\'s alerts table)'
        '</span></h4><table class="grid episodes-summary"><thead><tr><th>severity</th><th>long / short</th>'
        '<th class="num">factor</th><th class="num">episodes</th><th class="num">time firing</th>'
        '<th class="num">longest</th><th class="num">peak burn</th><th>at as_of</th><th>runbook</th></tr>'
        "</thead><tbody>" + "".join(summary) + "</tbody></table>"
        f'<p class="note">The {len(longest)} longest episodes'
        + (f" ({more} shorter ones not listed)" if more else "")
        + ':</p><table class="grid episodes"><thead><tr><th>severity</th><th>long / short</th>'
        '<th class="num">factor</th><th>start</th><th>end</th><th class="num">lasted</th>'
        '<th class="num">peak burn</th><th>recorded by</th></tr></thead><tbody>'
        + "".join(_episode_row(e, as_of) for e in longest)
        + "</tbody></table>"
    )


def _offenders(f: SLOFigures) -> str:
    if f.bad == 0:
        return '<h4>Top offenders</h4><p class="note">No bad events in the period: nothing to attribute.</p>'
    blocks = []
    for dim in ATTRIBUTION_DIMENSIONS:
        shares = list(f.attribution.get(dim, {}).items())[:_TOP]
        bars = (
            "".join(
                f'<div class="bar"><span class="name">{_esc(value)}</span><span class="track">'
                f'<span class="fill" style="width:{max(0.0, min(1.0, share)) * 100:.1f}%"></span></span>'
                f'<span class="share">{_pct(share, 1)}</span></div>'
                for value, share in shares
            )
            or '<p class="note">—</p>'
        )
        blocks.append(f'<div class="dim"><div class="label">{_esc(dim)}</div>{bars}</div>')
    return (
        f'<h4>Top offenders <span class="note">(share of the {f.bad:,} bad events)</span></h4>'
        f'<div class="offenders">{"".join(blocks)}</div>'
    )


def _slo_section(review: HtmlReview, f: SLOFigures) -> str:
    threshold = f", threshold {f.threshold_s * 1000:g} ms" if f.threshold_s is not None else ""
    series = review.series.get(f.name)
    mine = [e for e in (review.episodes or ()) if e.slo == f.name]
    if series is not None:
        charts = (
            '<div class="two charts">'
            f'<div class="chart">{_budget_chart(series, f"budget-{f.name}")}</div>'
            f'<div class="chart">{_burn_chart(series, f, mine, f"burn-{f.name}")}</div></div>'
        )
    else:
        charts = '<p class="note">No events in the period: nothing to chart.</p>'
    return (
        f'<section class="slo" id="slo-{_esc(f.name)}" data-slo="{_esc(f.name)}">'
        f'<h2>{_esc(f.display_name)} <span class="pill {_colour(f.budget_remaining)}">'
        f"{_esc(_status(f))}</span></h2>"
        f'<p class="meta"><code>{_esc(f.name)}</code> · {_esc(f.kind)}{_esc(threshold)} · objective '
        f"{_ratio(f.objective)} over a {_esc(_span(f.window_s))} window · figures over the "
        f"{_esc(_span(f.period_s))} ending at as_of</p>"
        f'<p class="lead">{_esc(_summary(f))}</p>'
        f"{_tiles(f)}{charts}{_burn_tables(f)}"
        f"{_episodes(f.name, review.episodes, review.report.as_of - f.period_s, review.report.as_of)}"
        f"{_offenders(f)}</section>"
    )


def _definitions() -> str:
    return (
        '<section id="definitions"><h2>Definitions</h2><p class="note">Events are served requests '
        "(status ok or error). Availability: bad = error; latency: bad = slower than the threshold; "
        "quality: among judged requests, bad = incorrect. A window ending at as_of holds "
        "as_of − window &lt; ts ≤ as_of. SLI = 1 − bad/total; budget remaining = 1 − (bad/total)/(1 − "
        "objective), negative when overspent; burn rate = (bad/total)/(1 − objective). An alert fires "
        "when both its long and short windows burn faster than its factor (budget share × SLO window / "
        "long window). Time to exhaustion: budget remaining at the 1h burn rate. Attribution: the bad "
        "events by task, last agent, provider, router and experiment variant.</p></section>"
    )


_CSS = """
:root{--fg:#111827;--muted:#6b7280;--line:#e5e7eb;--bg:#f9fafb;--green:#15803d;--amber:#b45309;--red:#b91c1c}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--fg);
 font:14px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
main{max-width:1180px;margin:0 auto;padding:28px 32px 48px;background:#fff;min-height:100vh}
header{border-bottom:3px solid var(--fg);padding-bottom:12px;margin-bottom:8px}
.kicker{margin:0;text-transform:uppercase;letter-spacing:.08em;font-size:12px;color:var(--muted)}
h1{margin:4px 0 6px;font-size:26px}
h2{font-size:19px;margin:28px 0 8px;padding-bottom:4px;border-bottom:1px solid var(--line)}
h4{font-size:14px;margin:18px 0 6px}
.meta{color:var(--muted);margin:2px 0 8px}
.lead{font-size:15px;margin:6px 0 12px}
.note{color:var(--muted);font-size:12px;margin:4px 0}
.banner{background:#fef3c7;border:1px solid #f59e0b;border-radius:6px;padding:6px 10px;margin:10px 0 0}
ul.summary{margin:6px 0;padding-left:20px}
ul.summary li{margin:3px 0}
a{color:#1d4ed8;text-decoration:none}
table.grid{border-collapse:collapse;width:100%;font-size:13px;margin:4px 0}
table.grid th,table.grid td{border-bottom:1px solid var(--line);padding:5px 8px;text-align:left;
 vertical-align:top}
table.grid th{background:#f3f4f6;font-weight:600;font-size:12px;color:#374151}
.num{text-align:right!important;font-variant-numeric:tabular-nums;white-space:nowrap}
th.num{white-space:normal}
td.green{color:var(--green);font-weight:600}td.amber{color:var(--amber);font-weight:600}
td.red{color:var(--red);font-weight:600}
tr.firing td,td.firing{background:#fef2f2}
.pill{display:inline-block;border-radius:999px;padding:0 9px;font-size:12px;font-weight:600;
 vertical-align:middle}
.pill.green{background:#dcfce7;color:var(--green)}.pill.amber{background:#fef3c7;color:var(--amber)}
.pill.red{background:#fee2e2;color:var(--red)}.pill.grey{background:#f3f4f6;color:var(--muted)}
.tiles{display:grid;grid-template-columns:repeat(auto-fit,minmax(140px,1fr));gap:8px;margin:8px 0 12px}
.tile{border:1px solid var(--line);border-radius:8px;padding:8px 10px;border-top:4px solid #d1d5db}
.tile.green{border-top-color:var(--green)}.tile.amber{border-top-color:#f59e0b}.tile.red{border-top-color:var(--red)}
.tile .label{font-size:11px;color:var(--muted);text-transform:uppercase;letter-spacing:.04em}
.tile .value{font-size:18px;font-weight:600;font-variant-numeric:tabular-nums}
.two{display:grid;grid-template-columns:1fr 1fr;gap:16px}
.chart{border:1px solid var(--line);border-radius:8px;padding:4px;min-height:308px}
.offenders{display:grid;grid-template-columns:repeat(auto-fit,minmax(200px,1fr));gap:10px 18px}
.dim .label{font-weight:600;font-size:12px;margin-bottom:2px}
.bar{display:grid;grid-template-columns:minmax(60px,1.2fr) 1fr 54px;gap:6px;align-items:center;font-size:12px}
.bar .name{overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
.bar .track{background:#f3f4f6;border-radius:3px;height:10px;display:block}
.bar .fill{background:#dc2626;border-radius:3px;height:10px;display:block}
.bar .share{text-align:right;font-variant-numeric:tabular-nums}
section.slo{margin-top:12px}
code{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:12px;background:#f3f4f6;padding:0 4px;
 border-radius:3px}
footer{margin-top:32px;color:var(--muted);font-size:12px;border-top:1px solid var(--line);padding-top:8px}
@media (max-width:900px){.two{grid-template-columns:1fr}}
@page{margin:12mm}
@media print{body{background:#fff;font-size:12px}main{padding:0;max-width:none}section.slo{break-before:page}
 table.grid{font-size:11px}table.grid th,table.grid td{padding:3px 5px}.two{grid-template-columns:1fr}
 .chart,table,.tiles{break-inside:avoid}a{color:inherit}}
"""


def render_html(review: HtmlReview, generated_ts: float | None = None) -> str:
    """The review as one self-contained HTML document (see the module docstring); ``generated_ts``
    (unix s) is printed in the footer when given."""
    r = review.report
    toc = " · ".join(f'<a href="#slo-{_esc(f.name)}">{_esc(f.display_name)}</a>' for f in r.slos)
    generated = "" if generated_ts is None else f" Generated {_esc(_when(generated_ts))}."
    body = (
        f"<main>{_header(review)}"
        f'<nav class="meta">Contents: <a href="#summary">Summary</a> · <a href="#overview">Compliance</a> · '
        f'<a href="#golden">Golden suite</a> · {toc} · <a href="#definitions">Definitions</a></nav>'
        f"{_executive_summary(review)}{_overview(review)}{_golden(review)}"
        + "".join(_slo_section(review, f) for f in r.slos)
        + _definitions()
        + f"<footer>Computed by Arbor: SLO figures from the {_esc(r.source)} source; alert episodes,"
        " golden runs and the simulated-data count from the SQLite store."
        f"{generated} This file is self-contained and opens offline.</footer></main>"
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>SLO review, as of {_esc(_when(r.as_of))}</title><style>{_CSS}</style>"
        f'<script type="text/javascript">{get_plotlyjs()}</script>'
        f'<script type="application/json" id="review-data">{_json_script(report_json(r))}</script>'
        f"</head><body>{body}</body></html>\n"
    )
