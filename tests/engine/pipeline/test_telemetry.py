"""Every request is recorded once, with its spans, routing decisions and MCTS run."""

from __future__ import annotations

import json
import os
import sqlite3

import pytest
from pydantic import SecretStr

from engine import Engine, QueryError, QueryRequest
from engine.config import load_settings
from engine.faults import Faults, InjectedFault
from engine.llm.types import ProviderUnavailable
from tests.engine.pipeline.failing import run_with_failing_provider

SECRET = "sk-test-SECRET-0123456789abcdef"


@pytest.fixture
def engine(tmp_path):
    settings = load_settings(db_path=tmp_path / "arbor.db", metrics_port=0, openai_api_key=SecretStr(SECRET))
    e = Engine(settings)
    yield e
    e.close()


def _rows(db, sql):
    """Rows as dicts, with the logs table's JSON attributes decoded."""
    with sqlite3.connect(db) as con:
        con.row_factory = sqlite3.Row
        rows = [dict(r) for r in con.execute(sql)]
    for r in rows:
        if isinstance(r.get("attributes"), str) and "seq" in r:
            r["attributes"] = json.loads(r["attributes"])
    return rows


def test_requests_spans_and_routing_are_recorded(engine, tmp_path):
    ok = [
        engine.run(QueryRequest(query=q, seed=i))
        for i, q in enumerate(["24: 4 7 8 8", "tictactoe: .../.../...", "What does the HRM agent do?"])
    ]
    with pytest.raises(QueryError):
        engine.run(QueryRequest(query="tictactoe: XXXX"))
    with pytest.raises(InjectedFault):
        list(
            engine.stream(QueryRequest(query="connect4: 4453", seed=1), live=False, faults=Faults(error=True))
        )
    engine.telemetry.flush()
    db = tmp_path / "arbor.db"
    rows = {r["request_id"]: r for r in _rows(db, "select * from requests")}
    assert len(rows) == 5
    assert sorted(r["status"] for r in rows.values()) == ["error", "invalid", "ok", "ok", "ok"]
    for result in ok:
        row = rows[result.request_id]
        assert (row["answer"], row["verdict"], row["trace_id"]) == (
            result.answer,
            result.verdict,
            result.trace_id,
        )
        decisions = _rows(db, f"select * from routing_decisions where request_id = '{result.request_id}'")
        assert [d["agent"] for d in sorted(decisions, key=lambda d: d["step"])] == [
            s.agent for s in result.steps
        ]
        spans = _rows(db, f"select * from spans where trace_id = '{result.trace_id}'")
        names = {s["name"] for s in spans}
        assert "query" in names and {f"agent.{a}" for a in result.agents_used} <= names
        root = next(s for s in spans if s["name"] == "query")
        ids = {s["span_id"] for s in spans}
        assert root["parent_id"] is None
        assert all(s["parent_id"] in ids for s in spans if s is not root)
    opening = ok[1]
    runs = _rows(db, f"select * from mcts_runs where request_id = '{opening.request_id}'")
    if "mcts" in opening.agents_used:
        assert len(runs) == 1 and runs[0]["iterations"] == opening.mcts["iterations"]
    freeform_spans = _rows(db, f"select name from spans where trace_id = '{ok[2].trace_id}'")
    assert {"rag.retrieve", "llm.complete"} <= {s["name"] for s in freeform_spans}
    failed = next(r for r in rows.values() if r["status"] == "error")
    assert "InjectedFault" in failed["error"]


def test_a_configured_key_never_reaches_the_store(engine, tmp_path):
    engine.run(QueryRequest(query=f"Is {SECRET} a key?", seed=1))
    engine.close()
    for path in tmp_path.iterdir():
        assert SECRET.encode() not in path.read_bytes(), path


def test_telemetry_off_writes_nothing(tmp_path):
    e = Engine(load_settings(db_path=tmp_path / "arbor.db", telemetry="off", metrics_port=0))
    e.run(QueryRequest(query="24: 4 7 8 8", seed=1))
    e.close()
    assert not (tmp_path / "arbor.db").exists()


def test_each_request_keeps_its_log_lines_in_order(engine, tmp_path):
    result = engine.run(QueryRequest(query="connect4: 4453", seed=3))
    engine.telemetry.flush()
    db = tmp_path / "arbor.db"
    lines = _rows(db, f"select * from logs where trace_id = '{result.trace_id}' order by seq")
    spans = {s["span_id"]: s for s in _rows(db, f"select * from spans where trace_id = '{result.trace_id}'")}
    assert [line["seq"] for line in lines] == list(range(len(lines)))
    assert lines[0]["message"].startswith("connect4 request started")
    assert lines[-1]["message"].startswith(
        f"answered in {result.latency_ms:.1f} ms: verdict {result.verdict}"
    )
    routed = [line["attributes"] for line in lines if line["message"].startswith("step ")]
    assert [a["agent"] for a in routed] == [s.agent for s in result.steps]
    # every line logged inside a span names a span of this trace; the agent lines name the agent's span
    for line in lines[:-1]:
        span = spans[line["span_id"]]
        if "agent" in (attrs := line["attributes"] or {}):
            assert span["name"] == f"agent.{attrs['agent']}"
    assert {line["correlation_id"] for line in lines} == {result.request_id}
    assert all(line["level"] == "INFO" for line in lines)


def test_correlation_id_is_the_callers_or_else_the_request_id(engine, tmp_path):
    from observability.tracing import correlation_scope

    given = engine.run(QueryRequest(query="24: 3 3 8 8", seed=1, correlation_id="load-run-7"))
    with correlation_scope("session-42"):
        ambient = engine.run(QueryRequest(query="24: 3 3 8 8", seed=1))
    own = engine.run(QueryRequest(query="24: 3 3 8 8", seed=1))
    engine.telemetry.flush()
    db = tmp_path / "arbor.db"
    for result, expected in ((given, "load-run-7"), (ambient, "session-42"), (own, own.request_id)):
        (row,) = _rows(db, f"select correlation_id from requests where request_id = '{result.request_id}'")
        assert row["correlation_id"] == expected
        for table in ("spans", "logs"):
            ids = _rows(
                db, f"select distinct correlation_id from {table} where trace_id = '{result.trace_id}'"
            )
            assert [r["correlation_id"] for r in ids] == [expected], table


def test_a_failed_request_logs_why_and_provider_warnings_join_the_trace(tmp_path):
    settings = load_settings(
        db_path=tmp_path / "arbor.db",
        metrics_port=0,
        llm_provider="openai",
        openai_api_key=SecretStr(SECRET),
        openai_base_url="http://127.0.0.1:9/v1",  # nothing listens: the chain falls back to offline
        llm_max_attempts=1,
    )
    with Engine(settings) as e:
        result = e.run(QueryRequest(query="How do I investigate high p95 latency?", seed=1))
        with pytest.raises(QueryError):
            e.run(QueryRequest(query="24: 1 2 3 99", seed=1))
    db = tmp_path / "arbor.db"
    lines = _rows(db, f"select * from logs where trace_id = '{result.trace_id}' order by seq")
    warning = next(line for line in lines if line["level"] == "WARNING")
    assert warning["logger"] == "engine.llm.chain" and warning["message"].startswith("openai failed")
    (span,) = _rows(db, f"select name from spans where span_id = '{warning['span_id']}'")
    assert span["name"] == "llm.complete"
    (invalid,) = _rows(db, "select trace_id from requests where status = 'invalid'")
    (line,) = _rows(db, f"select * from logs where trace_id = '{invalid['trace_id']}'")
    assert line["level"] == "WARNING" and "99 is out of range" in line["message"]
    for path in tmp_path.iterdir():
        assert SECRET.encode() not in path.read_bytes(), path


def _sample(registry, name, **labels):
    value = registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


def test_llm_and_retrieval_metrics_agree_with_the_stored_spans(engine, tmp_path):
    """LLM and retrieval metrics are counted from the spans in the writer thread: the
    registry's counts, tokens and errors equal what the store's spans say.  A chain's provider
    calls each have an ``llm.call`` span (counted); an ``llm.complete`` span is counted only when
    it wraps no chain (here: the injected failing provider)."""
    from collections import Counter

    for i, q in enumerate(["What does the HRM agent do?", "How does UCB1 work?", "24: 4 7 8 8"]):
        engine.run(QueryRequest(query=q, seed=i))
    run_with_failing_provider(engine)
    engine.telemetry.flush()
    spans = _rows(tmp_path / "arbor.db", "select name, status, attributes from spans")
    calls = [(s["status"], json.loads(s["attributes"])) for s in spans if s["name"] == "llm.call"]
    whole = [(s["status"], json.loads(s["attributes"])) for s in spans if s["name"] == "llm.complete"]
    unchained = [(st, a) for st, a in whole if not a.get("chain")]
    assert calls and len(whole) == len(calls) + 1 and len(unchained) == 1
    assert unchained[0][0] == "error" and unchained[0][1]["exception.type"] == "ProviderUnavailable"
    answered = [a for status, a in calls if status == "ok"]
    assert answered and all(status == "ok" for status, _ in calls)  # offline: nothing fails
    counted = Counter(a["provider"] for _, a in calls) + Counter(a["provider"] for _, a in unchained)
    reg = engine.telemetry.metrics.registry
    for provider, n in counted.items():
        assert _sample(reg, "mcts_llm_request_latency_seconds_count", provider=provider) == n
    providers = {a["provider"] for a in answered}
    for direction in ("input", "output"):
        total = sum(_sample(reg, "mcts_llm_tokens_total", provider=p, direction=direction) for p in providers)
        assert total == sum(a[f"{direction}_tokens"] for a in answered) > 0
    failed_provider = unchained[0][1]["provider"]
    errors = _sample(
        reg, "mcts_llm_request_errors_total", provider=failed_provider, error_type="ProviderUnavailable"
    )
    assert errors == 1
    retrievals = [s for s in spans if s["name"] == "rag.retrieve"]
    assert _sample(reg, "mcts_rag_queries_total") == len(retrievals) == 3  # the freeform requests
    docs = sum(json.loads(s["attributes"])["documents"] for s in retrievals)
    assert _sample(reg, "mcts_rag_documents_retrieved_sum") == docs


def test_a_failed_request_keeps_the_routing_decisions_it_got_to(engine, tmp_path):
    """The decisions stored for a failed request are exactly those the caller saw streamed: the
    step that failed has no confidence or latency."""
    from engine.events import RouteDecision

    seen = []
    with pytest.raises(InjectedFault):
        for event in engine.stream(
            QueryRequest(query="24: 4 7 8 8", seed=3), live=False, faults=Faults(error=True)
        ):
            if isinstance(event, RouteDecision):
                seen.append(event)
    engine.telemetry.flush()
    (request,) = _rows(tmp_path / "arbor.db", "select request_id, status, agents_used from requests")
    assert json.loads(request["agents_used"]) == list(dict.fromkeys(d.chosen for d in seen))
    assert request["status"] == "error" and seen
    rows = _rows(
        tmp_path / "arbor.db",
        f"select * from routing_decisions where request_id = '{request['request_id']}' order by step",
    )
    assert [(r["step"], r["agent"], r["reason"]) for r in rows] == [
        (d.step, d.chosen, d.reason) for d in seen
    ]
    assert [json.loads(r["probabilities"]) for r in rows] == [d.probabilities for d in seen]
    assert rows[-1]["confidence"] is None and rows[-1]["latency_ms"] is None
    reg = engine.telemetry.metrics.registry
    counted = {
        d.chosen: _sample(reg, "mcts_agent_requests_total", agent=d.chosen, task="game24") for d in seen
    }
    assert counted == {
        a: float(sum(d.chosen == a for d in seen)) for a in counted
    }  # SQLite agent mix = Prometheus
    last = seen[-1].chosen
    assert _sample(reg, "mcts_agent_request_latency_seconds_count", agent=last) == sum(
        d.chosen == last for d in seen[:-1]
    )  # the unfinished step is counted but has no latency


def test_a_failed_request_records_the_provider_it_was_using(engine, tmp_path):
    """A request that fails records the LLM provider it asked for, and the injected provider
    failure as its fallback error (so SLO attribution can name the provider of an outage); a
    task request that fails made no LLM call and says ``none``, as its successful rows do."""
    freeform = QueryRequest(
        query="What does the error budget fast-burn alert mean?", seed=2, provider="offline"
    )
    with pytest.raises(ProviderUnavailable):
        for _ in engine.stream(freeform, live=False, faults=Faults(provider_error=True)):
            pass
    with pytest.raises(InjectedFault):
        for _ in engine.stream(
            QueryRequest(query="24: 4 7 8 8", seed=3), live=False, faults=Faults(error=True)
        ):
            pass
    engine.run(QueryRequest(query="24: 4 7 8 8", seed=3))
    engine.telemetry.flush()
    rows = _rows(
        tmp_path / "arbor.db",
        "select task, status, provider, fallback_from, fallback_error from requests order by ts",
    )
    assert [(r["task"], r["status"], r["provider"]) for r in rows] == [
        ("freeform", "error", "offline"),
        ("game24", "error", "none"),
        ("game24", "ok", "none"),
    ]
    assert rows[0]["fallback_from"] == "offline" and rows[0]["fallback_error"].startswith(
        "ProviderUnavailable: injected provider error"
    )
    assert rows[1]["fallback_from"] is None and rows[1]["fallback_error"] is None


def test_a_request_makes_no_system_call_for_its_telemetry(engine, tmp_path, monkeypatch):
    """Ids, the flags' signal and the span clock are read without a system call: on a request's
    path one releases the GIL to the store's writer and, in a VM, costs ~10 µs (issue 16, item 6).
    The code before this change made four a request (two ``urandom`` for ids, a ``getpid``, a
    ``stat`` of the signal file)."""
    calls: list[str] = []
    for name in ("stat", "urandom", "getpid", "open"):
        real = getattr(os, name)

        def counted(*args, _real=real, _name=name, **kwargs):
            calls.append(_name)
            return _real(*args, **kwargs)

        monkeypatch.setattr(os, name, counted)
    for query in ("24: 4 7 8 8", "tictactoe: X.O/.X./..O"):
        engine.run(QueryRequest(query=query, seed=1))  # warm: first-use work (connections, files)
    calls.clear()
    for query in ("24: 4 7 8 8", "tictactoe: X.O/.X./..O", "24: 1 1 1 1"):
        engine.run(QueryRequest(query=query, seed=2))
    assert calls == []
    engine.telemetry.flush()  # everything was recorded all the same
    assert len(_rows(tmp_path / "arbor.db", "SELECT request_id FROM requests")) == 5
