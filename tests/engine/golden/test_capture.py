"""Capture from the store (the request_json migration), refusals with their reasons, re-baselining."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

import pytest

from engine import Engine, QueryRequest
from engine.golden import CaptureRefused, capture, capture_request, read_golden, recapture, run_suite
from engine.models import Overrides
from engine.rag import Retriever
from observability.store import RequestRow, Store


def _row(db, request_id: str) -> dict[str, Any]:
    with sqlite3.connect(db) as con:
        con.row_factory = sqlite3.Row
        return dict(con.execute("SELECT * FROM requests WHERE request_id = ?", (request_id,)).fetchone())


def test_every_request_row_stores_its_full_validated_request(settings) -> None:
    sent = QueryRequest(
        query="connect4: 4453",
        seed=11,
        use_rag=False,
        mcts_iterations=120,
        max_steps=2,
        router="hybrid",
        overrides=Overrides(mcts_c=0.7, hybrid_weight=0.3),
    )
    with Engine(settings) as engine:
        result = engine.run(sent)
        with pytest.raises(Exception, match="invalid"):
            engine.run(QueryRequest(query="tictactoe: XXXX", seed=2))
    row = _row(settings.db_path, result.request_id)
    assert QueryRequest.model_validate_json(row["request_json"]) == sent
    with sqlite3.connect(settings.db_path) as con:
        invalid = con.execute("SELECT request_json FROM requests WHERE status = 'invalid'").fetchone()[0]
    assert json.loads(invalid)["query"] == "tictactoe: XXXX"  # failures keep their request too


def test_capture_a_stored_request_and_replay_it(settings) -> None:
    with Engine(settings) as engine:
        result = engine.run(
            QueryRequest(query="24: 3 3 8 8", mcts_iterations=150, router="gru")
        )  # seed generated
    captured = capture(result.request_id, "from-store", settings=settings, repeat=2)
    g = read_golden(captured.path)
    assert captured.path == settings.golden_dir / "from-store.json" and captured.replays == 2
    assert g.request.seed == result.seed and g.request.router == "gru" and g.request.mcts_iterations == 150
    assert g.request.settings.mcts_c == settings.mcts_c
    assert g.answer == result.answer == "8/(3-8/3)" and g.verdict == "correct" and g.quality == 1.0
    assert [s.agent for s in g.routing] == result.agents_used
    assert g.source_request_id == result.request_id and g.repetitions == 2 and len(g.latency_ms.samples) == 2
    assert [s.name for s in g.spans] == ["query"]
    assert run_suite(settings.golden_dir, settings=settings, latency_gate=False).passed == 1


def _insert(settings, **row: Any) -> str:
    with Store(settings.db_path) as store:
        store.submit("requests", RequestRow(**row)._asdict())
    return row["request_id"]


def test_refusals_say_why(settings) -> None:
    with pytest.raises(CaptureRefused, match="no telemetry store"):
        capture("nope", "x", settings=settings)
    legacy = _insert(settings, request_id="legacy", ts=1.0, query="24: 4 7 8 8", seed=1, answer="8*(7+4-8)")
    with pytest.raises(CaptureRefused, match="recorded without its full request"):
        capture(legacy, "x", settings=settings)
    with pytest.raises(CaptureRefused, match="no request 'missing'"):
        capture("missing", "x", settings=settings)
    failed = _insert(settings, request_id="failed", ts=1.0, status="error", error="boom", seed=1,
                     request_json=QueryRequest(query="24: 4 7 8 8").model_dump_json())  # fmt: skip
    with pytest.raises(CaptureRefused, match="did not answer \\(status error: boom\\)"):
        capture(failed, "x", settings=settings)
    online = QueryRequest(query="What is a burn rate?", provider="openai", seed=1)
    with pytest.raises(CaptureRefused, match="online LLM provider openai"):
        capture_request(online, "x", settings=settings)
    with pytest.raises(CaptureRefused, match="has no seed"):
        capture_request(QueryRequest(query="24: 4 7 8 8"), "x", settings=settings)
    with pytest.raises(CaptureRefused, match="bad golden name"):
        capture_request(QueryRequest(query="24: 4 7 8 8", seed=1), "../escape", settings=settings)
    as_json = QueryRequest(query="24: 4 7 8 8").model_dump_json()
    drifted = _insert(
        settings,
        request_id="drifted",
        ts=1.0,
        seed=1,
        answer="(8-4)*(7-1)",
        agents_used=["hrm"],
        request_json=as_json,
    )
    with pytest.raises(
        CaptureRefused, match="does not reproduce the recorded request: recorded answer '\\(8-4\\)"
    ):
        capture(drifted, "x", settings=settings, repeat=1)
    assert not settings.golden_dir.exists() or not list(settings.golden_dir.glob("*.json"))


class FlakyRetriever:
    """The corpus retriever, but every other search drops the best passage (nondeterminism)."""

    def __init__(self) -> None:
        self.inner = Retriever.from_corpus()
        self.calls = 0

    def search(self, query: str, k: int = 4):
        self.calls += 1
        hits = self.inner.search(query, k=k)
        return hits[1:] if self.calls % 2 == 0 else hits

    def close(self) -> None:
        self.inner.close()


def test_a_request_that_does_not_reproduce_is_refused(settings) -> None:
    flaky = FlakyRetriever()
    request = QueryRequest(query="How is the error budget remaining computed?", seed=3)
    with pytest.raises(CaptureRefused, match="not reproducible: replay 2 differs from replay 1: "):
        capture_request(request, "flaky", settings=settings, repeat=2, retriever=flaky)
    flaky.close()
    assert not (settings.golden_dir / "flaky.json").exists()


def test_existing_goldens_are_only_rewritten_by_an_explicit_rebaseline(settings) -> None:
    request = QueryRequest(query="tictactoe: X.O/.X./..O", seed=4, mcts_iterations=100)
    first = capture_request(request, "ttt", settings=settings, repeat=1)
    with pytest.raises(
        CaptureRefused, match="already exists: re-baseline it with `golden capture --update ttt"
    ):
        capture_request(request, "ttt", settings=settings)
    with pytest.raises(CaptureRefused, match="needs a reason"):
        recapture(["ttt"], "  ", settings=settings)
    # hand-edit the golden as if an older engine had produced another answer
    data = json.loads(first.path.read_text(encoding="utf-8"))
    data.update(answer="a1", engine_version="arbor 0.0.9")
    first.path.write_text(json.dumps(data), encoding="utf-8")
    (out,) = recapture(["ttt"], "block detection now prefers c2", settings=settings, repeat=1)
    g = read_golden(first.path)
    assert out.error is None and g.answer == "c2" and g.request == first.golden.request
    assert [(h.reason, h.previous_engine_version) for h in g.history] == [
        ("block detection now prefers c2", "arbor 0.0.9")
    ]
    (missing,) = recapture(["nope"], "why", settings=settings)
    assert missing.result is None and "no such golden file" in missing.error
