"""The composition root (engine.wiring) and the collaborators an Engine takes as parameters."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import pytest
from pydantic import SecretStr

from engine import Engine, QueryRequest
from engine.config import load_settings
from engine.faults import Faults
from engine.llm import make_provider
from engine.telemetry import FailedRequest, RequestMeta
from engine.wiring import build_runtime, build_telemetry, configured_secrets
from observability.redaction import MASK
from observability.tracing import Tracer

# Not shaped like an "sk-" key: masked only because the settings hold it.
PLAIN_KEY = "plain-openai-key-4f1c2b"
PROM_PASSWORD = "prom-pass-9x8y7z"


def _settings(tmp_path: Path, **kw):
    return load_settings(db_path=tmp_path / "arbor.db", metrics_port=0, **kw)


def _stored(db: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(db) as con:
        return list(con.execute(sql))


def test_configured_secrets_are_the_settings_credentials(tmp_path: Path) -> None:
    settings = _settings(
        tmp_path,
        openai_api_key=SecretStr(PLAIN_KEY),
        prometheus_url="http://prom.test:9090/?token=url-pass-1234",
        prometheus_username="admin",
        prometheus_password=SecretStr(PROM_PASSWORD),
    )
    assert set(configured_secrets(settings)) == {PLAIN_KEY, PROM_PASSWORD, "url-pass-1234"}
    assert configured_secrets(_settings(tmp_path)) == ()


def test_runtime_records_to_the_db_path_and_masks_the_configured_key(tmp_path: Path) -> None:
    settings = _settings(
        tmp_path,
        openai_api_key=SecretStr(PLAIN_KEY),
        prometheus_username="admin",
        prometheus_password=SecretStr(PROM_PASSWORD),
    )
    query = f"why was {PLAIN_KEY} and {PROM_PASSWORD} rejected?"
    with build_runtime(settings) as runtime:
        assert runtime.store is not None and runtime.tracer is not None and runtime.metrics is not None
        assert runtime.engine.telemetry is runtime.telemetry
        result = runtime.engine.run(QueryRequest(query=query, seed=3, provider="offline", use_rag=False))
    rows = _stored(tmp_path / "arbor.db", "select request_id, query, status from requests")
    assert rows == [(result.request_id, f"why was {MASK} and {MASK} rejected?", "ok")]
    spans = " ".join(r[0] for r in _stored(tmp_path / "arbor.db", "select attributes from spans"))
    assert PLAIN_KEY not in spans and PROM_PASSWORD not in spans


def test_secrets_of_one_runtime_are_not_masked_elsewhere(tmp_path: Path) -> None:
    """No process-wide registry: a tracer built without the key does not mask it."""
    with build_runtime(_settings(tmp_path, openai_api_key=SecretStr(PLAIN_KEY))) as runtime:
        assert runtime.tracer is not None
        with runtime.tracer.span("s", note=PLAIN_KEY) as inside:
            assert inside.attributes == {"note": MASK}
        with Tracer().span("s", note=PLAIN_KEY) as outside:
            assert outside.attributes == {"note": PLAIN_KEY}


def test_the_log_handler_lives_as_long_as_the_runtime(tmp_path: Path) -> None:
    engine_logger = logging.getLogger("engine")
    before = list(engine_logger.handlers)
    first = build_runtime(_settings(tmp_path))
    second = build_runtime(load_settings(db_path=tmp_path / "second.db", metrics_port=0))
    added = [h for h in engine_logger.handlers if h not in before]
    assert len(added) == 2
    first.close()
    assert [h for h in engine_logger.handlers if h not in before] == added[1:]
    second.close()
    second.close()  # idempotent
    assert engine_logger.handlers == before


def test_telemetry_built_directly_touches_no_global_logger(tmp_path: Path) -> None:
    engine_logger = logging.getLogger("engine")
    before = list(engine_logger.handlers)
    telemetry = build_telemetry(load_settings(telemetry="off", metrics_port=0))
    assert telemetry.store is None and engine_logger.handlers == before
    telemetry.close()


def test_library_warnings_inside_a_request_are_stored_with_it(tmp_path: Path) -> None:
    with build_runtime(_settings(tmp_path)) as runtime:
        tracer = runtime.tracer
        assert tracer is not None
        with tracer.span("query", trace_id="ab" * 16):
            runtime.telemetry.log(logging.INFO, "opened")
            logging.getLogger("engine.llm.test").warning("provider %s failed over", "x")
        runtime.telemetry.record_failure(
            FailedRequest(
                request_id="r1",
                trace_id="ab" * 16,
                task="freeform",
                query="q",
                status="error",
                error="boom",
                latency_ms=1.0,
                seed=None,
                router="rules",
                meta=RequestMeta(ts=1.0),
            )
        )
    messages = [r[0] for r in _stored(tmp_path / "arbor.db", "select message from logs order by seq")]
    assert messages == ["opened", "provider x failed over", "request error: boom"]


def test_engine_without_telemetry_builds_its_own_through_the_builder(tmp_path: Path) -> None:
    with Engine(_settings(tmp_path)) as engine:
        result = engine.run(QueryRequest(query="24: 4 7 8 8", seed=1))
    assert _stored(tmp_path / "arbor.db", "select request_id from requests") == [(result.request_id,)]


def test_injected_latency_is_slept_with_the_injected_sleeper() -> None:
    """A live request sleeps the drawn latency once, through ``sleep``; a simulated one never
    sleeps and adds it (200 ms) to its first step and its total instead."""
    sleeps: list[float] = []
    ticks = iter(range(1000))
    settings = load_settings(telemetry="off", metrics_port=0)
    engine = Engine(settings, sleep=sleeps.append, clock=lambda: float(next(ticks)))
    request = QueryRequest(query="tictactoe: X../.O./...", seed=2, max_steps=2)
    live = list(engine.stream(request, live=False, faults=Faults(extra_latency_s=0.2)))
    assert sleeps == [0.2]
    sleeps.clear()
    simulated = list(engine.stream(request, live=False, simulated=True, faults=Faults(extra_latency_s=0.2)))
    assert sleeps == []
    live_result, sim_result = live[-1].result, simulated[-1].result
    # every clock read is one tick (1 s): the simulated run adds exactly 200 ms to step 0 and the total
    assert sim_result.steps[0].latency_ms == live_result.steps[0].latency_ms + 200.0
    assert sim_result.latency_ms == live_result.latency_ms + 200.0
    assert [s.latency_ms for s in sim_result.steps][1:] == [s.latency_ms for s in live_result.steps][1:]


def test_the_provider_factory_is_injected_and_used_once_per_provider() -> None:
    built: list[str] = []

    def factory(settings):
        built.append(settings.llm_provider)
        return make_provider(settings)

    engine = Engine(load_settings(telemetry="off", metrics_port=0), provider_factory=factory)
    for seed in (1, 2):
        engine.run(
            QueryRequest(query="What does the MCTS agent do?", seed=seed, provider="offline", use_rag=False)
        )
    assert built == ["offline"]


def test_metrics_exporter_not_started_without_serve_metrics(tmp_path: Path) -> None:
    with build_runtime(
        load_settings(db_path=tmp_path / "m.db", metrics_port=0), serve_metrics=True
    ) as runtime:
        assert runtime.metrics_port is None  # port 0 disables it


def test_names_defined_once_are_the_cli_choices() -> None:
    from engine.__main__ import build_parser
    from engine.names import PROVIDERS, QUERY_TASKS, ROUTERS

    assert ROUTERS == ("rules", "gru", "hybrid", "fixed:hrm", "fixed:trm", "fixed:mcts")
    assert PROVIDERS == ("offline", "openai", "anthropic", "lmstudio")
    assert QUERY_TASKS == ("auto", "game24", "tictactoe", "connect4", "freeform")
    parser = build_parser()
    for flag, names in (("--router", ROUTERS), ("--provider", PROVIDERS), ("--task", QUERY_TASKS)):
        for name in names:
            args = parser.parse_args(["query", "24: 1 2 3 4", flag, name])
            assert getattr(args, flag[2:]) == name
        with pytest.raises(SystemExit):
            parser.parse_args(["query", "24: 1 2 3 4", flag, "bogus"])
