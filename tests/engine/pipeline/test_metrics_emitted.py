"""A workload through the engine emits every metric the alerting and SLO rules read."""

from __future__ import annotations

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from engine import Engine, QueryRequest
from engine.config import load_settings
from observability.slo import metric_names_in_rules
from tests.engine.pipeline.failing import run_with_failing_provider


def test_every_metric_the_rules_use_has_samples(tmp_path):
    engine = Engine(load_settings(db_path=tmp_path / "arbor.db", metrics_port=0))
    queries = ["24: 4 7 8 8", "tictactoe: .../.../...", "connect4: 4453", "How does UCB1 work?"]
    for i, q in enumerate(queries):
        engine.run(QueryRequest(query=q, seed=i))
    run_with_failing_provider(engine)
    registry = engine.telemetry.metrics.registry
    engine.close()
    sampled = {
        family.name
        for family in text_string_to_metric_families(generate_latest(registry).decode())
        if family.samples
    }
    # counters are reported without their _total suffix by the parser
    sampled |= {f"{name}_total" for name in sampled}
    missing = metric_names_in_rules() - sampled
    assert not missing, f"rules read metrics the engine never emitted: {sorted(missing)}"
    assert {"mcts_requests_total", "mcts_llm_request_errors_total", "mcts_rag_queries_total"} <= sampled
