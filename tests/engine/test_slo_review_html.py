"""The self-contained HTML review (engine/slo_review_html.py) and ``slo report --format html``,
on the store of tests/engine/test_slo_report.py (figures worked out by hand there and below),
parsed with html.parser: SLO names, figures equal to the JSON's, golden-suite status, alert
episodes from the ``alerts`` table, and nothing executable or remote from hostile store text.

The store (``_fill``) as of AS_OF over 28 days: availability 1020 events, 2 errors (SLI
1018/1020 = 99.804 %, budget remaining 1 - (2/1020)/0.01 = 80.39 %, consumed 19.6 %; nothing in
the 28 days before: n/a); latency 1020 events, none bad (100.0 % remaining); quality: no verdict,
no traffic. Firing at AS_OF (availability): page 6h/30m and ticket 3d/6h.
"""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from engine.slo_report import build_report, report_json
from engine.slo_review_html import build_html_review, render_html
from observability.slo.models import load_slos
from observability.slo.sqlite_source import SqliteSLOSource
from observability.store import ReadModel, RequestRow, Store
from observability.store.review_reads import latest_golden_run
from tests.engine.test_slo_report import AS_OF, D, _cli, _fill

HOSTILE_TASK = "<script>alert(1)</script>"
HOSTILE_PROVIDER = '<img src=http://evil.example/x.png onerror="alert(2)">'
HOSTILE_DIVERGENCE = '<a href="https://evil.example/">routing step 2</a>'
HOSTILE_SOURCE = "<iframe src=//evil.example/></iframe>"
#: Elements that fetch or embed something; none may appear in the document.
FETCHING = {"img", "iframe", "link", "object", "embed", "base", "frame", "audio", "video", "source", "track"}
URL_ATTRIBUTES = {
    "src",
    "href",
    "action",
    "formaction",
    "srcset",
    "poster",
    "data",
    "background",
    "xlink:href",
}


class _Doc(HTMLParser):
    """Elements (tag, attributes), the text under each element with a ``data-field`` or
    ``data-condition`` or ``id``, and every script's attributes and text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str | None]]] = []
        self.scripts: list[tuple[dict[str, str | None], str]] = []
        self.text: list[str] = []
        self._stack: list[tuple[str, dict[str, str | None], list[str]]] = []
        self.fields: list[tuple[dict[str, str | None], str]] = []
        self._script: tuple[dict[str, str | None], list[str]] | None = None
        self._row: str | None = None
        #: (SLO of the overview row, data-field) -> the cell's text
        self.cells: dict[tuple[str | None, str], str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        self.elements.append((tag, a))
        if tag == "script":
            self._script = (a, [])
        if tag == "tr":
            self._row = a.get("data-slo")
        if tag in {"td", "tr", "p", "section", "h1", "h2", "title", "li", "span", "div"}:
            self._stack.append((tag, a, []))

    def handle_endtag(self, tag: str) -> None:
        if tag == "tr":
            self._row = None
        if tag == "script" and self._script is not None:
            self.scripts.append((self._script[0], "".join(self._script[1])))
            self._script = None
        if self._stack and self._stack[-1][0] == tag:
            _, a, parts = self._stack.pop()
            text = " ".join("".join(parts).split())
            self.fields.append((a, text))
            if a.get("data-field"):
                self.cells[(self._row, str(a["data-field"]))] = text
            if self._stack:
                self._stack[-1][2].append(text + " ")

    def handle_data(self, data: str) -> None:
        if self._script is not None:
            self._script[1].append(data)
            return
        self.text.append(data)
        if self._stack:
            self._stack[-1][2].append(data)

    def field(self, name: str, value: str) -> list[str]:
        return [t for a, t in self.fields if a.get(name) == value]


def _parse(text: str) -> _Doc:
    doc = _Doc()
    doc.feed(text)
    doc.close()
    return doc


def _golden_rows() -> list[dict[str, Any]]:
    return [
        {"run_id": "r1", "golden_id": "g1", "ts": AS_OF - 100, "status": "regression",
         "first_divergence": "old"},
        {"run_id": "r2", "golden_id": "g1", "ts": AS_OF - 50, "status": "pass"},
        {"run_id": "r2", "golden_id": "g2", "ts": AS_OF - 50, "status": "regression",
         "first_divergence": HOSTILE_DIVERGENCE},
        {"run_id": "r2", "golden_id": "g3", "ts": AS_OF - 50, "status": "error",
         "first_divergence": "timeout"},
    ]  # fmt: skip


def _alert(
    alert_id: str,
    severity: str,
    windows: tuple[str, str],
    factor: float,
    start: float,
    end: float | None,
    slo: str = "availability",
    source: str = "sqlite-replay",
) -> dict[str, Any]:
    return {
        "alert_id": alert_id, "name": "SLOErrorBudgetBurn", "slo": slo, "severity": severity,
        "state": "firing" if end is None else "resolved", "ts": start, "resolved_ts": end, "burn_rate": 10.0,
        "threshold": factor, "long_window": windows[0], "short_window": windows[1], "source": source,
        "message": "", "simulated": 0,
    }  # fmt: skip


def _alerts() -> list[dict[str, Any]]:
    return [
        _alert("a-page", "page", ("6h", "30m"), 5.6, AS_OF - 2 * 3600, None),  # firing, 2h so far
        _alert(
            "a-ticket",
            "ticket",
            ("3d", "6h"),
            0.9333333333,
            AS_OF - 3 * D,
            AS_OF - 2 * D,
            source=HOSTILE_SOURCE,
        ),
        _alert(
            "a-old", "ticket", ("3d", "6h"), 0.9333333333, AS_OF - 40 * D, AS_OF - 35 * D
        ),  # before the period
        _alert("a-other", "page", ("1h", "5m"), 13.44, AS_OF - 600, None, slo="not_in_the_slo_file"),
    ]


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("slo_html") / "arbor.db"
    _fill(path)
    with Store(path, threaded=False) as s:
        s.submit("golden_runs", _golden_rows())
        s.submit("alerts", _alerts())
        s.flush()
    return path


def _review(path: Path) -> tuple[str, dict[str, Any]]:
    reads = ReadModel(path)
    source = SqliteSLOSource(reads)
    slos = load_slos()
    report = build_report(slos, source, AS_OF, golden=latest_golden_run(reads))
    return render_html(build_html_review(report, slos, source, reads)), report_json(report)


@pytest.fixture(scope="module")
def review(db: Path) -> tuple[str, _Doc, dict[str, Any]]:
    text, data = _review(db)
    return text, _parse(text), data


def test_document_has_every_slo_and_the_figures_by_hand(review: tuple[str, _Doc, dict[str, Any]]) -> None:
    text, doc, _ = review
    assert text.startswith("<!DOCTYPE html>")
    assert (
        doc.field("id", "slo-availability")
        and doc.field("id", "slo-latency")
        and doc.field("id", "slo-quality")
    )
    headings = [t for a, t in doc.fields if a == {} and t.startswith(("Availability", "Latency", "Correct"))]
    assert any(h.startswith("Latency under 500 ms") for h in headings)
    cells = {field: t for (slo, field), t in doc.cells.items() if slo == "availability"}
    assert cells == {
        "objective": "99 %", "sli": "99.804 %", "total": "1,020", "bad": "2", "budget_remaining": "80.4 %",
        "budget_consumed": "19.6 %", "previous_consumed": "n/a",
    }  # fmt: skip
    assert doc.cells[(None, "golden")].startswith(
        "Run r2 at 2027-01-15 07:59 UTC: 1 passed, 1 regression, 1 error"
    )
    overview = [t for a, t in doc.fields if a.get("data-slo") == "availability" and "Availability" in t]
    assert any("page 6h/30m, ticket 3d/6h" in t for t in overview)
    latency = [t for a, t in doc.fields if a.get("data-slo") == "latency"]
    assert any("100.0 %" in t and "met" in t for t in latency)
    quality = [t for a, t in doc.fields if a.get("data-slo") == "quality"]
    assert any("no traffic" in t for t in quality)


def test_embedded_json_and_overview_equal_the_json(review: tuple[str, _Doc, dict[str, Any]]) -> None:
    _, doc, data = review
    (embedded,) = [body for a, body in doc.scripts if a.get("type") == "application/json"]
    assert json.loads(embedded) == data
    assert data["golden"] == {
        "run_id": "r2", "ts": AS_OF - 50, "passed": 1, "failed": 1, "errors": 1,
        "results": [
            {"name": "g1", "status": "pass", "first_divergence": None},
            {"name": "g2", "status": "regression", "first_divergence": HOSTILE_DIVERGENCE},
            {"name": "g3", "status": "error", "first_divergence": "timeout"},
        ],
    }  # fmt: skip
    for s in data["slos"]:
        cells = {field: t for (slo, field), t in doc.cells.items() if slo == s["name"]}
        assert cells["total"] == f"{s['total']:,}" and cells["bad"] == f"{s['bad']:,}"
        expected_sli = "n/a" if s["sli"] is None else f"{s['sli'] * 100:.3f}".rstrip("0").rstrip(".") + " %"
        assert cells["sli"] == expected_sli
        remaining = s["budget_remaining"]
        assert cells["budget_remaining"] == ("n/a" if remaining is None else f"{remaining * 100:.1f} %")


def _plot(text: str, div_id: str) -> list[dict[str, Any]]:
    match = re.search(r'Plotly\.newPlot\(\s*"' + re.escape(div_id) + r'",\s*(\[.*?\]),\s*\{', text, re.S)
    assert match, div_id
    return json.loads(match.group(1))


def test_charts_end_at_the_period_figures(review: tuple[str, _Doc, dict[str, Any]]) -> None:
    text, _, data = review
    avail = next(s for s in data["slos"] if s["name"] == "availability")
    budget = {t["name"]: t for t in _plot(text, "budget-availability")}
    # the budget line ends at the period's budget remaining (80.39 %); the ideal line at 0
    assert budget["budget remaining"]["y"][-1] == pytest.approx(avail["budget_remaining"] * 100)
    assert budget["budget remaining"]["y"][-1] == pytest.approx(80.392157, rel=1e-6)
    assert budget["ideal (linear)"]["y"][0] == 100.0 and budget["ideal (linear)"]["y"][-1] == pytest.approx(
        0.0
    )
    (burn,) = _plot(text, "burn-availability")
    # 28 days: 6h burn windows; the last one holds the 20 recent requests, 2 errors: (2/20)/0.01 = 10
    assert burn["name"] == "burn rate (6h window)" and burn["y"][-1] == pytest.approx(10.0)
    assert "budget-quality" not in text  # no traffic: nothing charted
    assert text.count("Plotly.newPlot(") == 4


def test_alert_episodes_from_the_alerts_table(review: tuple[str, _Doc, dict[str, Any]]) -> None:
    _, doc, _ = review
    page = doc.field("data-condition", "page 6h/30m")
    ticket = doc.field("data-condition", "ticket 3d/6h")
    # one page episode firing for 2h at as_of; one ticket episode of 1 day, resolved; the one 40
    # days back and the unknown SLO's are not in the period's review
    assert len(page) == 1 and page[0].split()[:8] == ["page", "6h", "/", "30m", "5.6", "1", "2h", "2h"]
    assert "firing" in page[0] and "runbook-error-budget-fast-burn.md" in page[0]
    assert len(ticket) == 1 and ticket[0].split()[:8] == [
        "ticket",
        "3d",
        "/",
        "6h",
        "0.9333",
        "1",
        "1d",
        "1d",
    ]
    assert "resolved" in ticket[0] and "runbook-error-budget-slow-burn.md" in ticket[0]
    text = " ".join(t for _, t in doc.fields)
    assert "2 alert episode(s) recorded in the period (1 page, 1 ticket)" in text
    assert "13.44" not in " ".join(page + ticket)


def _hostile_store(path: Path) -> None:
    _fill(path)
    row = RequestRow("evil", ts=AS_OF - 5, status="error", latency_ms=900.0, task=HOSTILE_TASK,
                     provider=HOSTILE_PROVIDER, router="rules", variant="<b>B</b>")  # fmt: skip
    with Store(path, threaded=False) as s:
        s.submit("requests", [row._asdict()])
        s.submit("golden_runs", _golden_rows())
        s.submit("alerts", _alerts())
        s.flush()


def test_hostile_store_text_is_inert_and_nothing_is_fetched(tmp_path: Path) -> None:
    _hostile_store(tmp_path / "arbor.db")
    text, data = _review(tmp_path / "arbor.db")
    doc = _parse(text)
    # the hostile strings are shown as text ...
    shown = "".join(doc.text)
    for hostile in (HOSTILE_TASK, HOSTILE_PROVIDER, HOSTILE_DIVERGENCE, HOSTILE_SOURCE):
        assert hostile in shown
        assert hostile not in text  # ... and never as markup
    # ... nothing in the document fetches: no fetching element, no URL attribute other than an
    # in-document anchor or data:, no script with a src, no url() in styles
    tags = {tag for tag, _ in doc.elements}
    assert not tags & FETCHING, tags & FETCHING
    for tag, attrs in doc.elements:
        for name, value in attrs.items():
            if name in URL_ATTRIBUTES:
                assert (value or "").startswith(("#", "data:")), (tag, name, value)
            assert not name.startswith("on"), (tag, name)
            if name == "style":
                assert "url(" not in (value or "")
        if tag == "meta":
            assert "http-equiv" not in attrs
    head = [{"type": "text/javascript"}, {"type": "application/json", "id": "review-data"}]
    assert [a for a, _ in doc.scripts][:2] == head
    assert all(a == {} or a == {"type": "text/javascript"} for a, _ in doc.scripts[2:])
    inline = [body for a, body in doc.scripts if a.get("type") != "application/json"]
    assert len(inline[0]) > 1_000_000 and "Plotly" in inline[0]  # plotly.js, inlined once
    assert all(len(body) < 200_000 for body in inline[1:])  # the charts' calls, no second copy
    assert all(HOSTILE_TASK not in body and "evil.example" not in body for body in inline[1:])
    (embedded,) = [body for a, body in doc.scripts if a.get("type") == "application/json"]
    assert "<" not in embedded and json.loads(embedded) == data
    assert any("<script>" in v for v in data["slos"][0]["attribution"]["task"])


def test_cli_writes_the_html_review(db: Path, tmp_path: Path) -> None:
    target = tmp_path / "review.html"
    out = _cli("--db", str(db), "--as-of", str(AS_OF), "--format", "html", "--out", str(target), cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert f"wrote the SLO review (html) to {target}" in out.stdout
    doc = _parse(target.read_text(encoding="utf-8"))
    (embedded,) = [body for a, body in doc.scripts if a.get("type") == "application/json"]
    as_json = _cli("--db", str(db), "--as-of", str(AS_OF), "--format", "json", cwd=tmp_path)
    assert as_json.returncode == 0, as_json.stderr
    assert json.loads(embedded) == json.loads(as_json.stdout)
    assert json.loads(as_json.stdout)["golden"]["run_id"] == "r2"
    assert doc.field("id", "slo-availability")


def test_markdown_and_empty_store_golden_status(db: Path, tmp_path: Path) -> None:
    from engine.slo_report import render_markdown

    reads = ReadModel(db)
    report = build_report(load_slos(), SqliteSLOSource(reads), AS_OF, golden=latest_golden_run(reads))
    md = render_markdown(report)
    assert "Golden suite: run r2 at 2027-01-15 07:59 UTC: 1 passed, 1 regression, 1 error." in md
    assert "| g3 | error | timeout |" in md and "| g1 |" not in md  # only the failing goldens are listed
    empty = tmp_path / "empty.db"
    _fill(empty)
    text, data = _review(empty)
    assert data["golden"] is None
    assert _parse(text).cells[(None, "golden")] == "No golden suite run recorded."
    assert "No alert episode recorded in the store's alerts table" in text
