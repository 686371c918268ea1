"""PromQL queries of the console against a real Prometheus scraping a real exporter.

Expected values are worked out by hand from what the test records, never read back from the
code under test.
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import json
import re
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml
from prometheus_client import CollectorRegistry
from pydantic import SecretStr

from observability import promql
from observability.metrics import BUCKETS, METRIC_NAMES, Metrics, start_exporter, stop_exporter
from observability.promql import PromSource, PromSourceError, SourceStatus, render_query

from .conftest import PROMTOOL_BIN, PrometheusServer, free_port
from .fake_prometheus import Reply, fake_prometheus, vector_reply

SCRAPE_WAIT_S = 15.0
Scraped = tuple[PrometheusServer, Metrics]


def _instant(url: str, query: str) -> list[dict]:
    """Raw instant query over HTTP (independent of PromSource)."""
    address = f"{url}/api/v1/query?{urllib.parse.urlencode({'query': query})}"
    with urllib.request.urlopen(address, timeout=5) as response:
        return json.load(response)["data"]["result"]


def _wait_for(url: str, query: str, expected: float) -> None:
    """Poll until ``query`` returns exactly ``expected`` (i.e. Prometheus has scraped it); bounded."""
    deadline = time.monotonic() + SCRAPE_WAIT_S
    last: list[dict] = []
    while time.monotonic() < deadline:
        last = _instant(url, query)
        if last and float(last[0]["value"][1]) == expected:
            return
        time.sleep(0.2)
    pytest.fail(f"{query} did not reach {expected} within {SCRAPE_WAIT_S}s (last: {last})")


@pytest.fixture
def scraped(prometheus: PrometheusServer) -> Iterator[Scraped]:
    """Metrics on a fresh registry, served on the port the test Prometheus scrapes."""
    metrics = Metrics(CollectorRegistry())
    assert start_exporter(prometheus.exporter_port, registry=metrics.registry) == prometheus.exporter_port
    try:
        yield prometheus, metrics
    finally:
        stop_exporter(prometheus.exporter_port)


@pytest.mark.slow
def test_counts_and_ratios_from_promql_equal_what_was_recorded(scraped: Scraped) -> None:
    server, metrics = scraped
    # First batch: 12 game24 requests (2 failed) and 8 tictactoe (1 failed): 20 requests, 3 errors.
    for task, status, n in (("game24", "ok", 10), ("game24", "error", 2), ("tictactoe", "ok", 7)):
        for _ in range(n):
            metrics.observe_request(task, status, 0.01)
    metrics.observe_request("tictactoe", "error", 0.01)
    _wait_for(server.url, "sum(mcts_requests_total)", 20)

    source = PromSource(server.url)
    assert source.status() == SourceStatus(True, f"connected to Prometheus at {server.url}")
    assert source.request_count("5m") == 20
    assert source.error_ratio("5m") == pytest.approx(3 / 20, rel=1e-12)

    # Second batch on series that already exist, plus a new one: 10 more requests, 2 of them errors.
    for _ in range(6):
        metrics.observe_request("game24", "ok", 0.01)
    for _ in range(2):
        metrics.observe_request("game24", "error", 0.01)
    for _ in range(2):
        metrics.observe_request("connect4", "ok", 0.01)
    _wait_for(server.url, "sum(mcts_requests_total)", 30)
    assert source.request_count("5m") == 30
    assert source.error_ratio("5m") == pytest.approx(5 / 30, rel=1e-12)

    rate = source.request_rate("5m")
    assert rate is not None and rate > 0
    # Every request took 10 ms, in bucket (5 ms, 10 ms]: the median interpolates to 7.5 ms.
    assert source.latency_quantile(0.5, "5m") == pytest.approx(0.0075, rel=1e-9)


@pytest.mark.slow
def test_agent_mix_tokens_cost_and_iterations(scraped: Scraped) -> None:
    server, metrics = scraped
    for agent, n in (("hrm", 3), ("trm", 2), ("mcts", 1)):
        for _ in range(n):
            metrics.observe_agent(agent, "game24", 0.02, 0.5)
    metrics.observe_llm("offline", 0.001, input_tokens=100, output_tokens=40, cost_usd=0.25)
    metrics.observe_llm(
        "offline", 0.001, input_tokens=20, output_tokens=0, cost_usd=0.5, error_type="Timeout"
    )
    metrics.observe_search(300, "completed", 0.3)
    metrics.observe_search(200, "converged", 0.1)
    _wait_for(server.url, "sum(mcts_iterations_total)", 500)
    _wait_for(server.url, "sum(mcts_agent_requests_total)", 6)

    source = PromSource(server.url)
    assert source.agent_mix("5m") == {"hrm": 3, "mcts": 1, "trm": 2}
    assert source.tokens("5m") == {"input": 120, "output": 40}
    assert source.cost_usd("5m") == pytest.approx(0.75, rel=1e-12)
    assert source.iterations("5m") == 500
    # No request recorded: ratio and quantile have no data, they are not 0.
    assert source.error_ratio("5m") is None
    assert source.latency_quantile(0.95, "5m") is None
    assert source.request_count("5m") is None


@pytest.mark.slow
def test_generated_rules_load_and_evaluate_in_prometheus(scraped: Scraped) -> None:
    server, metrics = scraped
    metrics.observe_request("game24", "ok", 0.01)
    _wait_for(server.url, "sum(mcts_requests_total)", 1)
    expected_groups = {"slo-availability", "slo-latency", "slo-quality", "arbor-operational"}
    deadline = time.monotonic() + SCRAPE_WAIT_S
    rules: list[dict] = []
    while time.monotonic() < deadline:
        with urllib.request.urlopen(f"{server.url}/api/v1/rules", timeout=5) as response:
            groups = json.load(response)["data"]["groups"]
        rules = [rule for group in groups for rule in group["rules"]]
        if {g["name"] for g in groups} == expected_groups and all(r["health"] != "unknown" for r in rules):
            break
        time.sleep(0.2)
    assert {g["name"] for g in groups} == expected_groups
    assert [r["name"] for r in rules if r["health"] != "ok"] == []
    # Requests keep succeeding (the counter grows between scrapes) and none failed: the recorded
    # availability error ratio over 5m is 0 (not NaN, not missing for want of an error series).
    metrics.observe_request("game24", "ok", 0.01)
    _wait_for(server.url, "sum(mcts_requests_total)", 2)
    _wait_for(server.url, 'slo:sli_error:ratio_rate5m{slo="availability"}', 0)
    assert PromSource(server.url).error_ratio("5m") == 0


def test_unreachable_prometheus_is_a_status_not_an_exception() -> None:
    port = free_port()
    source = PromSource(f"http://127.0.0.1:{port}", timeout_s=1)
    status = source.status()
    assert status.ok is False
    assert f"127.0.0.1:{port}" in status.message
    assert "unreachable" in status.message
    with pytest.raises(PromSourceError, match=r"Connection refused|connection failed"):
        source.request_count("5m")


def test_bad_arguments_are_rejected_before_any_request() -> None:
    with pytest.raises(ValueError, match="URL"):
        PromSource("localhost:9090")
    source = PromSource(f"http://127.0.0.1:{free_port()}")
    for window in ("", "5", "5 m", "0m", "1h]) or vector(1", "-5m"):
        with pytest.raises(ValueError, match="window"):
            source.request_count(window)
    for q in (0, 1, 1.5, -0.1):
        with pytest.raises(ValueError, match="quantile"):
            source.latency_quantile(q, "5m")


def test_every_metric_in_the_queries_is_declared() -> None:
    assert promql.ALL_QUERIES, "no queries"
    for name, query in promql.ALL_QUERIES.items():
        assert getattr(promql, name) == query
        used = set(re.findall(r"\bmcts_[a-z_]+", query))
        assert used, name
        for metric in used:
            base = re.sub(r"_(bucket|count|sum)$", "", metric)
            assert metric in METRIC_NAMES or base in BUCKETS, f"{name} reads undeclared {metric}"


def test_window_counts_are_exact_with_new_series_and_resets(tmp_path: Path) -> None:
    """The count queries against hand-made series, evaluated by promtool (no server needed).

    At 20m over a 10m window: game24 ok grows 10/min (100); connect4 ok is born at 15m and
    reaches 35 (all 35 count); tictactoe ok resets at 15m, 50 -> 70, then 0 -> 25 (45); game24
    error grows 2/min (20). Total 200, error ratio 20/200. ``increase()`` would get connect4
    wrong (it cannot see the 7 the series was born with).
    """
    if not PROMTOOL_BIN.exists():
        pytest.skip(f"{PROMTOOL_BIN} is not installed")
    series = [
        ('mcts_requests_total{task="game24",status="ok"}', "0+10x20"),
        ('mcts_requests_total{task="connect4",status="ok"}', "_x15 7 10 20 30 35 35"),
        ('mcts_requests_total{task="tictactoe",status="ok"}', "0+5x14 0+5x5"),
        ('mcts_requests_total{task="game24",status="error"}', "0+2x20"),
    ]
    test = {
        "rule_files": [],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [{"series": s, "values": v} for s, v in series],
                "promql_expr_test": [
                    {
                        "expr": render_query(promql.REQUEST_COUNT_QUERY, "10m"),
                        "eval_time": "20m",
                        "exp_samples": [{"labels": "{}", "value": 200}],
                    },
                    {
                        "expr": render_query(promql.ERROR_RATIO_QUERY, "10m"),
                        "eval_time": "20m",
                        "exp_samples": [{"labels": "{}", "value": 0.1}],
                    },
                ],
            }
        ],
    }
    path = tmp_path / "window_count_test.yaml"
    path.write_text(yaml.safe_dump(test), encoding="utf-8")
    run = subprocess.run(
        [str(PROMTOOL_BIN), "test", "rules", str(path)], capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 0, run.stdout + run.stderr


# -- Prometheus as an untrusted input: a fake server on loopback answers garbage -------------------

# Each case: a reply and a fragment of the reason worked out from what the reply gets wrong.
GARBAGE = {
    "an item without metric or value": (
        Reply(b'{"status":"success","data":{"resultType":"vector","result":[{}]}}'),
        "result.0.metric: Field required",
    ),
    "a sample value abc": (vector_reply(({}, "abc")), "not a number as Prometheus writes one"),
    "a value Python would take but Prometheus never writes": (
        vector_reply(({}, "1_000")),
        "not a number as Prometheus writes one",
    ),
    "a value sent as a JSON number": (vector_reply(({}, 1)), "value.1: Input should be a valid string"),
    "a timestamp sent as a string": (
        Reply(
            b'{"status":"success","data":{"resultType":"vector","result":'
            b'[{"metric":{},"value":["1700000000","1"]}]}}'
        ),
        "value.0: Input should be a valid number",
    ),
    "an HTML page": (
        Reply(b"<html><body><h1>Login</h1></body></html>", content_type="text/html"),
        "HTTP 200 with text/html, not JSON",
    ),
    "a 500": (Reply(b"internal error", status=500, content_type="text/plain"), "HTTP 500 with text/plain"),
    "invalid JSON": (Reply(b'{"status": "success", "data": '), "not JSON (Invalid JSON"),
    "a matrix where a vector was asked": (
        Reply(b'{"status":"success","data":{"resultType":"matrix","result":[]}}'),
        "does not match any of the expected tags: 'vector', 'scalar'",
    ),
    "no status": (Reply(b'{"data":{}}'), "Unable to extract tag using discriminator 'status'"),
    "a JSON list": (Reply(b"[1, 2, 3]"), "JSON that is not a query reply"),
}


@pytest.mark.parametrize("case", sorted(GARBAGE))
def test_garbage_is_an_unusable_status_and_an_error_never_a_crash(case: str) -> None:
    reply, reason = GARBAGE[case]
    with fake_prometheus(reply) as fake:
        source = PromSource(fake.url, timeout_s=5)
        status = source.status()
        assert status.ok is False
        assert status.message.startswith(f"Prometheus at {fake.url} answered something unusable: ")
        assert reason in status.message, status.message
        with pytest.raises(PromSourceError, match="answered something unusable") as caught:
            source.request_count("5m")
        assert caught.value.reachable is True
        assert [s["path"] for s in fake.seen] == ["/api/v1/query", "/api/v1/query"]
        assert fake.seen[0]["params"]["query"] == ["vector(1)"]


@pytest.mark.parametrize("with_length", [True, False], ids=["content-length", "until-close"])
def test_a_huge_reply_is_cut_off_at_max_bytes(with_length: bool) -> None:
    # A valid reply padded with 5 MiB of whitespace (legal JSON): only its size is wrong.
    body = vector_reply(({}, "1")).body + b" " * (5 << 20)
    with fake_prometheus(Reply(body, length=with_length)) as fake:
        source = PromSource(fake.url, timeout_s=30)
        status = source.status()
    assert status.ok is False and "answered something unusable: a reply of" in status.message
    assert f"more than {promql.MAX_REPLY_BYTES:,}" in status.message
    if with_length:
        assert f"{len(body):,} bytes" in status.message  # refused on the declared length alone
    # the same reply fits a larger cap and is then read whole
    with fake_prometheus(Reply(body, length=with_length)) as fake:
        assert PromSource(fake.url, timeout_s=30, max_bytes=len(body)).status().ok


@pytest.mark.parametrize("whole_response", [True, False], ids=["status-line-dripped", "body-dripped"])
def test_a_dripped_reply_cannot_stretch_the_deadline(whole_response: bool) -> None:
    """One byte every 0.7 s: the whole reply would take over a minute; the 1 s deadline holds.

    No stopwatch: a per-read timeout, which a byte every 0.7 s never trips, would wait for the
    whole reply (the old client took 99 s); a total deadline gives up while the fake is still
    dripping, so the fake has written no reply out whole when status() returns."""
    drip_s, timeout_s = 0.7, 1.0
    reply = vector_reply(({}, "1"))
    dripped = Reply(reply.body, drip_s=drip_s)
    n_bytes = len(dripped.raw()) if whole_response else len(reply.body)
    full_drip_s = n_bytes * drip_s
    assert full_drip_s > 60 * timeout_s
    with fake_prometheus(dripped) as fake:
        source = PromSource(fake.url, timeout_s=timeout_s)
        status = source.status()
        finished_when_it_gave_up = fake.finished
    assert status.ok is False
    assert status.message == (
        f"Prometheus at {fake.url} answered something unusable: no complete reply within the 1s deadline"
    )
    assert finished_when_it_gave_up == 0


def test_a_server_that_accepts_and_never_answers_is_cut_off_too() -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:  # accepts (backlog), never reads or writes
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        with pytest.raises(PromSourceError, match="no complete reply within the 1s deadline"):
            PromSource(url, timeout_s=1).request_rate("5m")


@pytest.mark.parametrize(
    ("text", "expected"),
    [("1", 1.0), ("0", 0.0), ("2.5e3", 2500.0), ("1E-3", 0.001), (".5", 0.5), ("7.", 7.0), ("+3", 3.0)],
)
def test_numbers_as_prometheus_writes_them(text: str, expected: float) -> None:
    with fake_prometheus(vector_reply(({}, text))) as fake:
        assert PromSource(fake.url).request_count("5m") == expected


def test_nan_is_no_data_and_infinities_or_negatives_are_unusable() -> None:
    with fake_prometheus(vector_reply(({}, "NaN"))) as fake:
        source = PromSource(fake.url)
        assert source.latency_quantile(0.95, "5m") is None  # histogram_quantile of no observations
        assert source.error_ratio("5m") is None  # 0 / 0
        fake.reply = vector_reply(({"agent": "hrm"}, "NaN"), ({"agent": "trm"}, "2"))
        assert source.agent_mix("5m") == {"trm": 2.0}
        for bad, what in (("+Inf", "request count of +Inf"), ("-Inf", "request count of -Inf"),
                          ("-3", "request count of -3")):  # fmt: skip
            fake.reply = vector_reply(({}, bad))
            with pytest.raises(PromSourceError, match=f"answered something unusable: a {re.escape(what)}$"):
                source.request_count("5m")
        fake.reply = vector_reply(({}, "1.5"))
        with pytest.raises(PromSourceError, match=r"an error ratio of 1\.5$"):
            source.error_ratio("5m")
        fake.reply = vector_reply(({}, "2"))
        status = source.status()
        assert not status.ok and status.message.endswith("vector(1) came back as 2.0")


def test_shapes_that_do_not_fit_the_query_are_unusable() -> None:
    with fake_prometheus(vector_reply(({"task": "a"}, "1"), ({"task": "b"}, "2"))) as fake:
        source = PromSource(fake.url)
        with pytest.raises(
            PromSourceError, match="2 series for a request count, where the query gives at most one"
        ):
            source.request_count("5m")
        fake.reply = vector_reply(({"agent": "hrm"}, "1"), ({"agent": "hrm"}, "2"))
        with pytest.raises(PromSourceError, match="two series for agent='hrm' in the agent mix"):
            source.agent_mix("5m")
        fake.reply = vector_reply(({"direction": "input"}, "3"), ({}, "4"))
        assert source.tokens("5m") == {"": 4.0, "input": 3.0}  # an unlabelled series is kept, as ""
        fake.reply = Reply(b'{"status":"success","data":{"resultType":"scalar","result":[1700000000,"42"]}}')
        assert source.iterations("5m") == 42.0
        fake.reply = vector_reply()
        assert source.cost_usd("5m") is None and source.tokens("5m") == {}


def test_a_prometheus_error_reply_is_reported_without_its_markup() -> None:
    body = {
        "status": "error",
        "errorType": "bad_data",
        "error": "parse error: ![x](http://evil) **b** `c` $x$",
    }
    with fake_prometheus(Reply(json.dumps(body).encode(), status=400)) as fake:
        status = PromSource(fake.url).status()
    assert not status.ok
    reason = status.message.split("answered something unusable: ", 1)[1]
    assert reason == "HTTP 400 error bad_data: parse error: ??x?(http://evil) ??b?? ?c? ?x?"


def test_credentials_are_sent_but_never_shown() -> None:
    with fake_prometheus() as fake:
        port = fake.url.rsplit(":", 1)[1]
        url = f"http://admin:s3cretPW@127.0.0.1:{port}/?access_token=tok-12345&org=7"
        source = PromSource(url, timeout_s=5)
        status = source.status()
        assert status.ok
        masked = f"http://admin:**********@127.0.0.1:{port}/?access_token=**********&org=7"
        assert source.url == masked and status.message == f"connected to Prometheus at {masked}"
        assert masked in repr(source)
        seen = fake.seen[-1]
        assert seen["headers"]["Authorization"] == "Basic " + base64.b64encode(b"admin:s3cretPW").decode()
        assert seen["params"] == {"access_token": ["tok-12345"], "org": ["7"], "query": ["vector(1)"]}

        fake.reply = Reply(b"<html>", content_type="text/html")
        for message in (source.status().message, str(_raised(lambda: source.request_rate("5m")))):
            assert "s3cretPW" not in message and "tok-12345" not in message and masked in message

        # explicit settings win over the URL's userinfo; a bearer token is a header
        fake.reply = vector_reply(({}, "1"))
        assert PromSource(url, username="ops", password=SecretStr("pw-2")).status().ok
        assert fake.seen[-1]["headers"]["Authorization"] == "Basic " + base64.b64encode(b"ops:pw-2").decode()
        assert PromSource(fake.url, bearer_token=SecretStr("tkn-abc")).status().ok
        assert fake.seen[-1]["headers"]["Authorization"] == "Bearer tkn-abc"
    with pytest.raises(ValueError, match="not both"):
        PromSource(url, bearer_token="tkn-abc")


def test_unreachable_messages_mask_the_url_too() -> None:
    port = free_port()
    source = PromSource(f"http://admin:s3cretPW@127.0.0.1:{port}", timeout_s=2)
    status = source.status()
    assert status == SourceStatus(
        False, f"Prometheus at http://admin:**********@127.0.0.1:{port} is unreachable: Connection refused"
    )
    error = _raised(lambda: source.iterations("1h"))
    assert isinstance(error, PromSourceError) and error.reachable is False and "s3cretPW" not in str(error)
    with pytest.raises(ValueError) as bad:
        PromSource("ftp://admin:s3cretPW@host")
    assert "s3cretPW" not in str(bad.value) and "admin:**********@host" in str(bad.value)
    for timeout in (0, -1, float("nan"), float("inf"), True):
        with pytest.raises(ValueError, match="timeout_s"):
            PromSource("http://127.0.0.1:9090", timeout_s=timeout)


def test_queries_work_from_inside_a_running_event_loop() -> None:
    async def inside() -> float | None:
        return source.request_count("5m")

    with fake_prometheus(vector_reply(({}, "12"))) as fake:
        source = PromSource(fake.url)
        # A thread of its own: the session's Playwright browser may already run a loop on this one.
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            assert pool.submit(asyncio.run, inside()).result() == 12.0


def _raised(call: Callable[[], object]) -> BaseException:
    try:
        call()
    except Exception as exc:
        return exc
    raise AssertionError("no exception")


def test_status_never_raises_even_when_the_client_breaks(monkeypatch: pytest.MonkeyPatch) -> None:
    source = PromSource("http://127.0.0.1:9")

    def broken(query: str, at: float | None = None) -> list:
        raise RuntimeError("a bug, not Prometheus")

    monkeypatch.setattr(source, "_query", broken)
    status = source.status()
    assert status == SourceStatus(
        False, "Prometheus at http://127.0.0.1:9 answered something unusable: RuntimeError"
    )
