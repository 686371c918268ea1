"""The first five migrations of the telemetry store (issue 4 and after), frozen: the core request
telemetry, MCTS runs, SLO/golden/experiment tables, log lines and LLM fallback provenance.
:mod:`observability.store.schema` lists them, in order, with the later ones.

Types: str -> TEXT, int -> INTEGER, float -> FLOAT (REAL affinity).  JSON columns are TEXT.
"""

from __future__ import annotations

from sqlite_utils import Database

__all__ = ["v1_core", "v2_mcts", "v3_slo_golden_experiments", "v4_logs", "v5_llm_fallback"]


def v1_core(db: Database) -> None:
    """requests, spans, routing_decisions and the schema_meta log."""
    db.table("schema_meta").create({"version": int, "name": str, "applied_at": float}, pk="version")
    db.table("requests").create(
        {
            "request_id": str, "trace_id": str, "ts": float, "task": str, "query": str, "answer": str,
            "answer_kind": str, "verdict": str, "quality": float, "confidence": float, "agents_used": str,
            "stop_reason": str, "latency_ms": float, "seed": int, "router": str, "provider": str,
            "status": str, "error": str, "user_id": str,
        },
        pk="request_id",
        not_null={"ts", "status"},
        defaults={"status": "ok"},
    )  # fmt: skip
    db.table("requests").create_index(["ts"], index_name="idx_requests_ts")
    db.table("requests").create_index(["task"], index_name="idx_requests_task")
    db.table("requests").create_index(["trace_id"], index_name="idx_requests_trace_id")
    db.table("spans").create(
        {
            "span_id": str, "trace_id": str, "parent_id": str, "name": str, "start_ts": float,
            "end_ts": float, "duration_ms": float, "status": str, "attributes": str, "correlation_id": str,
        },
        pk="span_id",
        not_null={"trace_id", "name"},
    )  # fmt: skip
    db.table("spans").create_index(["trace_id"], index_name="idx_spans_trace_id")
    db.table("spans").create_index(["correlation_id"], index_name="idx_spans_correlation_id")
    # The primary key (request_id, step) is the index on routing_decisions(request_id).
    db.table("routing_decisions").create(
        {
            "request_id": str, "step": int, "agent": str, "reason": str, "probabilities": str,
            "features": str, "confidence": float, "latency_ms": float,
        },
        pk=("request_id", "step"),
        not_null={"agent"},
    )  # fmt: skip


def v2_mcts(db: Database) -> None:
    """mcts_runs (one per search), mcts_nodes (the flat tree), mcts_snapshots (growth for the scrubber)."""
    db.table("mcts_runs").create(
        {
            "run_id": str, "request_id": str, "ts": float, "task": str, "position": str, "iterations": int,
            "seed": int, "best_action": str, "root_value": float, "termination_reason": str,
            "tree_size": int, "cache_hit_rate": float, "elapsed_ms": float, "config": str,
        },
        pk="run_id",
        not_null={"ts"},
    )  # fmt: skip
    db.table("mcts_runs").create_index(["request_id"], index_name="idx_mcts_runs_request_id")
    db.table("mcts_runs").create_index(["ts"], index_name="idx_mcts_runs_ts")
    db.table("mcts_nodes").create(
        {
            "run_id": str, "node_id": int, "parent_id": int, "depth": int, "label": str, "visits": int,
            "value": float, "prior": float,
        },
        pk=("run_id", "node_id"),
    )  # fmt: skip
    db.table("mcts_snapshots").create(
        {"run_id": str, "iteration": int, "payload": str}, pk=("run_id", "iteration"), not_null={"payload"}
    )


def v3_slo_golden_experiments(db: Database) -> None:
    """Experiment/cost columns on requests; golden_runs, experiments, exposures, flags, alerts."""
    requests = db.table("requests")
    requests.add_column("experiment", str)
    requests.add_column("variant", str)
    requests.add_column("simulated", int, not_null_default=0)
    requests.add_column("tokens", int)
    requests.add_column("cost_usd", float)
    requests.create_index(["experiment", "variant"], index_name="idx_requests_experiment")
    db.table("golden_runs").create(
        {
            "run_id": str, "golden_id": str, "ts": float, "status": str, "request_id": str, "trace_id": str,
            "first_divergence": str, "diff": str, "quality": float, "golden_quality": float,
            "latency_ms": float, "golden_latency_ms": float,
        },
        pk=("run_id", "golden_id"),
        not_null={"ts", "status"},
    )  # fmt: skip
    db.table("golden_runs").create_index(["ts"], index_name="idx_golden_runs_ts")
    db.table("experiments").create(
        {
            "experiment": str, "name": str, "status": str, "salt": str, "variants": str, "metrics": str,
            "config": str, "decision": str, "decision_reasons": str, "created_ts": float, "updated_ts": float,
        },
        pk="experiment",
        not_null={"status"},
        defaults={"status": "draft"},
    )  # fmt: skip
    db.table("exposures").create(
        {"experiment": str, "request_id": str, "variant": str, "user_id": str, "bucket": int, "ts": float},
        pk=("experiment", "request_id"),
        not_null={"variant", "ts"},
    )
    db.table("exposures").create_index(["experiment", "variant"], index_name="idx_exposures_variant")
    db.table("flags").create(
        {
            "flag": str, "enabled": int, "rollout_pct": float, "targeting": str, "kill_switch": int,
            "description": str, "updated_ts": float,
        },
        pk="flag",
        not_null={"enabled", "rollout_pct", "kill_switch"},
        defaults={"enabled": 1, "rollout_pct": 0.0, "kill_switch": 0},
    )  # fmt: skip
    db.table("alerts").create(
        {
            "alert_id": str, "name": str, "slo": str, "severity": str, "state": str, "ts": float,
            "resolved_ts": float, "burn_rate": float, "threshold": float, "long_window": str,
            "short_window": str, "source": str, "message": str, "simulated": int, "updated_ts": float,
        },
        pk="alert_id",
        not_null={"state", "simulated"},
        defaults={"state": "firing", "simulated": 0},
    )  # fmt: skip
    db.table("alerts").create_index(["ts"], index_name="idx_alerts_ts")


def v4_logs(db: Database) -> None:
    """logs: a request's structured log lines (ts in unix seconds, level name, logger, message,
    the ids of the span that logged, extra fields as JSON), in order (seq) within their trace."""
    db.table("logs").create(
        {
            "trace_id": str, "seq": int, "ts": float, "level": str, "logger": str, "message": str,
            "correlation_id": str, "span_id": str, "attributes": str,
        },
        pk=("trace_id", "seq"),
        not_null={"ts", "level", "message"},
    )  # fmt: skip
    db.table("logs").create_index(["correlation_id"], index_name="idx_logs_correlation_id")
    db.table("requests").add_column("correlation_id", str)
    db.table("requests").create_index(["correlation_id"], index_name="idx_requests_correlation_id")


def v5_llm_fallback(db: Database) -> None:
    """requests.fallback_from and requests.fallback_error: which LLM providers failed before the
    one recorded in ``provider`` answered, and how the first failed (NULL: none failed)."""
    db.table("requests").add_column("fallback_from", str)
    db.table("requests").add_column("fallback_error", str)
