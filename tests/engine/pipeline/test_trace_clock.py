"""A request on a simulated clock has its spans and log lines on the same clock as its row."""

from __future__ import annotations

import sqlite3
import time

import pytest

from engine import Engine, QueryRequest
from engine.config import load_settings
from engine.faults import Faults, InjectedFault

#: 2020-09-13: years before any wall clock this test runs on, so a span left on the wall clock
#: misses the window by years, while the slack only covers the instants between the engine
#: measuring the latency and the last span closing (microseconds on an idle machine).
SIMULATED_TS = 1_600_000_000.0
SLACK_S = 0.5


@pytest.fixture
def engine(tmp_path):
    e = Engine(load_settings(db_path=tmp_path / "arbor.db", metrics_port=0))
    yield e
    e.close()


def _times(db, request_id: str) -> tuple[dict, list[tuple[str, float, float, float]], list[float]]:
    with sqlite3.connect(db) as con:
        con.row_factory = sqlite3.Row
        row = dict(con.execute("select * from requests where request_id = ?", (request_id,)).fetchone())
        spans = [
            (r["name"], r["start_ts"], r["end_ts"], r["duration_ms"])
            for r in con.execute("select * from spans where trace_id = ?", (row["trace_id"],))
        ]
        logs = [r["ts"] for r in con.execute("select ts from logs where trace_id = ?", (row["trace_id"],))]
    return row, spans, logs


def _assert_on_row_clock(row, spans, logs) -> None:
    lo, hi = row["ts"], row["ts"] + row["latency_ms"] / 1000 + SLACK_S
    assert spans and logs
    for name, start, end, duration_ms in spans:
        assert lo <= start <= end <= hi, (name, start, end, lo, hi)
        assert end - start == pytest.approx(duration_ms / 1000, abs=1e-6)  # durations unchanged
    for ts in logs:
        assert lo <= ts <= hi, (ts, lo, hi)


def test_simulated_request_spans_and_logs_lie_within_its_row(engine, tmp_path):
    events = list(
        engine.stream(
            QueryRequest(query="connect4: 4453", seed=1, router="rules"),
            live=False,
            ts=SIMULATED_TS,
            simulated=True,
        )
    )
    result = events[-1].result
    engine.telemetry.flush()
    row, spans, logs = _times(tmp_path / "arbor.db", result.request_id)
    assert row["ts"] == SIMULATED_TS and row["simulated"] == 1
    assert {"query", "agent.mcts", "synthesise"} <= {s[0] for s in spans}
    _assert_on_row_clock(row, spans, logs)
    query = next(s for s in spans if s[0] == "query")
    assert query[3] <= row["latency_ms"]  # the root span lies inside the request's latency


def test_failed_simulated_request_is_on_its_clock_too(engine, tmp_path):
    with pytest.raises(InjectedFault):
        list(
            engine.stream(
                QueryRequest(query="24: 4 7 8 8", seed=2),
                live=False,
                ts=SIMULATED_TS,
                simulated=True,
                faults=Faults(error=True),
                request_id="failed-simulated",
            )
        )
    engine.telemetry.flush()
    row, spans, logs = _times(tmp_path / "arbor.db", "failed-simulated")
    assert row["status"] == "error"
    _assert_on_row_clock(row, spans, logs)


def test_wall_clock_request_is_not_moved(engine, tmp_path):
    before = time.time()
    result = engine.run(QueryRequest(query="24: 4 7 8 8", seed=3))
    after = time.time()
    engine.telemetry.flush()
    row, spans, logs = _times(tmp_path / "arbor.db", result.request_id)
    assert before <= row["ts"] <= after
    for _, start, end, _ in spans:
        assert before <= start <= end <= after
    _assert_on_row_clock(row, spans, logs)
