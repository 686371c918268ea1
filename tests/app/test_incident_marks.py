"""AppTest: the Overview's and the SLO page's time charts shade the recorded incidents of their
window (one band per incident, clipped to the chart's window), with the title as hover text,
shown literally; an incident outside the window is not drawn.

Oracle: incident times chosen here, converted to the charts' naive-UTC axis by hand
(``datetime.utcfromtimestamp`` arithmetic), and the title escaped by hand.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path

from streamlit.testing.v1 import AppTest

from observability.store import RequestRow, Store
from observability.store.incidents import incident_row
from tests.app.console import open_page

AS_OF = 1_800_000_000.0  # 2027-01-15 08:00:00 UTC
TITLE = "Error <b>spike</b> & *not* markdown"
ESCAPED = "Error &lt;b&gt;spike&lt;/b&gt; &amp; *not* markdown"


def _axis(ts: float) -> str:
    """How Plotly's JSON writes a naive UTC datetime on the x axis."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S")


def _fill(path: Path, end: float) -> None:
    rows = [
        RequestRow(
            f"r{i}", ts=end - 30.0 * (i + 1), status="error" if i % 7 == 0 else "ok", latency_ms=50.0
        )._asdict()
        for i in range(100)
    ]
    incidents = [
        incident_row(kind="error_spike", title=TITLE, start_ts=end - 1800, end_ts=end - 900, simulated=True,
                     source="load:test", description="half the requests fail"),
        # starts 20 minutes before the charts' window and ends inside it: clipped at the window's start
        incident_row(kind="latency_regression", title="Slow", start_ts=end - 80 * 60, end_ts=end - 50 * 60,
                     simulated=True, source="load:test"),
        # a day before: outside every window drawn here
        incident_row(kind="provider_outage", title="Old outage", start_ts=end - 86_400, end_ts=end - 80_000,
                     simulated=True, source="load:test"),
    ]  # fmt: skip
    with Store(path, threaded=False) as store:
        store.submit("requests", rows)
        store.submit("incidents", incidents)
        store.flush()


def _specs(at: AppTest, keys: tuple[str, ...]) -> list[dict]:
    out = []
    for c in at.get("plotly_chart"):
        spec = json.loads(c.proto.spec)
        if any(k in c.proto.id for k in keys):
            out.append(spec)
    assert len(out) == len(keys), [c.proto.id for c in at.get("plotly_chart")]
    return out


def _bands(spec: dict) -> list[tuple[str, str]]:
    return [(s["x0"], s["x1"]) for s in spec["layout"].get("shapes", []) if s.get("type") == "rect"]


def _hovers(spec: dict) -> list[str]:
    return [a["hovertext"] for a in spec["layout"].get("annotations", []) if "hovertext" in a]


def _check(spec: dict, window_start: float, end: float) -> None:
    bands = _bands(spec)
    assert (_axis(end - 1800), _axis(end - 900)) in bands
    assert (_axis(window_start), _axis(end - 50 * 60)) in bands  # clipped
    assert len(bands) == 2  # the old outage is outside the window
    hovers = _hovers(spec)
    assert any(h.startswith(ESCAPED + " (simulated)<br>") and "half the requests fail" in h for h in hovers)
    assert not any("<b>" in h for h in hovers)


def test_overview_charts_shade_the_incidents_of_the_hour(tmp_path: Path) -> None:
    end = float(int(time.time()))  # whole seconds: the axis strings then have no fraction
    _fill(tmp_path / "arbor.db", end)
    at = open_page("../pages/overview.py")
    for spec in _specs(at, ("overview_traffic", "overview_latency")):
        bands = _bands(spec)
        assert len(bands) == 2
        # the page's window ends at its own "now", a moment after ``end``: compare to the second
        (x0, x1), (y0, y1) = sorted(bands)
        assert x1 == _axis(end - 50 * 60) and (y0, y1) == (_axis(end - 1800), _axis(end - 900))
        assert abs(datetime.fromisoformat(x0).timestamp() - (end - 3600)) < 60  # the window's start
        assert any(h.startswith(ESCAPED) for h in _hovers(spec))


def test_slo_charts_shade_the_incidents_of_the_period(tmp_path: Path) -> None:
    _fill(tmp_path / "arbor.db", AS_OF)
    at = open_page("../pages/slos.py", {"slo": "availability", "range": "1h", "as_of": str(int(AS_OF))})
    for spec in _specs(at, ("slo_budget", "slo_burn")):
        _check(spec, AS_OF - 3600, AS_OF)
