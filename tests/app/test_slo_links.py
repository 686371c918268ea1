"""Runbook links, Traces filter links and the SLO page's links to its bad events (app.links,
app.runbooks, app.slo.top_offenders), tested directly (no Streamlit).

Expected URLs are written out by hand: percent-encoding with nothing kept safe (``,`` is %2C,
``(`` %28, ``)`` %29, ``:`` %3A), times as the unix seconds given."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from app import runbooks
from app.links import (
    RUNBOOK_BY_ALERT,
    RUNBOOK_BY_SEVERITY,
    TracesLink,
    bad_events_url,
    parse_traces_link,
    runbook_link,
    runbook_name,
    traces_url,
    url_params,
)
from observability.slo.models import load_slo_set
from observability.slo.rules import render_rules

CORPUS = Path(__file__).resolve().parents[2] / "data" / "corpus"

# -- runbooks ---------------------------------------------------------------------------------------


def test_burn_rate_alerts_link_to_the_fast_and_slow_burn_runbooks() -> None:
    assert runbook_link("page") == "runbooks?name=runbook-error-budget-fast-burn"
    assert runbook_link("ticket") == "runbooks?name=runbook-error-budget-slow-burn"
    assert runbook_link("warning") is None and runbook_link(None) is None
    # Prometheus' ALERTS series: by alert name (operational alerts) or by severity (burn rate)
    assert runbook_link("page", "SLOErrorBudgetBurn") == "runbooks?name=runbook-error-budget-fast-burn"
    assert runbook_name("warning", "ArborRequestLatencyP95High") == "runbook-high-latency-p95"
    assert runbook_name("warning", "ArborLLMErrorRatioHigh") == "runbook-llm-provider-errors"
    assert runbook_name("page", "ArborMetricsExporterDown") is None  # no runbook for it


def test_every_linked_runbook_exists_and_every_named_alert_is_generated() -> None:
    for name in {*RUNBOOK_BY_SEVERITY.values(), *RUNBOOK_BY_ALERT.values()}:
        assert (CORPUS / f"{name}.md").is_file(), name
    rules = "".join(render_rules(load_slo_set()).values())
    for alert in ("SLOErrorBudgetBurn", *RUNBOOK_BY_ALERT):
        assert f"alert: {alert}\n" in rules, alert
    for severity in RUNBOOK_BY_SEVERITY:  # the burn-rate rules' severities
        assert f"severity: {severity}\n" in rules
    # a rule that carries a runbook_url annotation names the same runbook as the console's link
    for text in render_rules(load_slo_set()).values():
        for group in yaml.safe_load(text.split("\n", 2)[2])["groups"]:
            for rule in group["rules"]:
                url = rule.get("annotations", {}).get("runbook_url")
                if "alert" in rule and url is not None:
                    name = runbook_name(rule["labels"].get("severity"), rule["alert"])
                    assert name is not None and name in url, (rule["alert"], url)


def test_runbook_listing_and_lookup(tmp_path: Path) -> None:
    listed = runbooks.list_runbooks()
    names = [r.name for r in listed]
    assert names == sorted(p.stem for p in CORPUS.glob("runbook-*.md"))
    fast = next(r for r in listed if r.name == "runbook-error-budget-fast-burn")
    assert fast.title == "Runbook: high error rate / error budget fast burn"  # its first heading
    assert fast.url == "runbooks?name=runbook-error-budget-fast-burn"
    book = runbooks.find_runbook("runbook-error-budget-fast-burn")
    assert not isinstance(book, str) and book.text.startswith("# Runbook: high error rate")
    # a directory of our own: unknown, malformed, traversal, not UTF-8, too large
    (tmp_path / "runbook-a.md").write_text("no heading here\n")
    (tmp_path / "runbook-bin.md").write_bytes(b"# T\n\xff\xfe")
    (tmp_path / "runbook-big.md").write_text("# Big\n" + "x" * (runbooks.MAX_BYTES + 1))
    (tmp_path / "notes.md").write_text("# not a runbook\n")
    assert [r.name for r in runbooks.list_runbooks(tmp_path)] == ["runbook-a", "runbook-big", "runbook-bin"]
    assert runbooks.list_runbooks(tmp_path)[0].title == "runbook-a"
    missing = runbooks.find_runbook("runbook-b", tmp_path)
    assert isinstance(missing, str) and "no runbook 'runbook-b'" in missing and "runbook-a" in missing
    for bad in ("../README", "runbook-a/../../x", "Runbook-A", "notes", ""):
        message = runbooks.find_runbook(bad, tmp_path)
        assert isinstance(message, str) and "not a runbook name" in message, bad
    assert "cannot be read" in str(runbooks.find_runbook("runbook-bin", tmp_path))
    assert "larger than" in str(runbooks.find_runbook("runbook-big", tmp_path))
    assert runbooks.list_runbooks(tmp_path / "nowhere") == ()


# -- traces filter links ----------------------------------------------------------------------------


def test_a_full_traces_link_parses() -> None:
    link = parse_traces_link(
        {
            "status": "ok,error", "task": "game24", "verdict": "incorrect", "agent": "mcts",
            "provider": "openai", "router": "gru", "variant": "treatment-2", "over_ms": "500",
            "since": "1799996400", "until": "2027-01-15T08:00:00",
        }
    )  # fmt: skip
    assert link == TracesLink(
        statuses=("ok", "error"), task="game24", verdict="incorrect", agent="mcts", provider="openai",
        router="gru", variant="treatment-2", over_ms=500.0, since=1_800_000_000.0 - 3600.0,
        until=1_800_000_000.0,
    )  # fmt: skip


def test_the_iso_until_is_utc() -> None:
    # 2027-01-15 08:00:00 UTC is 1_800_000_000 (1_800_000_000 / 86400 = 20833 days + 28800 s = 8 h)
    assert parse_traces_link({"until": "2027-01-15T08:00:00"}).until == 1_800_000_000.0
    assert parse_traces_link({"until": "2027-01-15T09:00:00+01:00"}).until == 1_800_000_000.0


def test_unknown_values_are_ignored_with_a_note_never_an_exception() -> None:
    link = parse_traces_link(
        {
            "status": "error,nope,,ok", "task": "chess", "verdict": "maybe", "agent": "gpt",
            "provider": "<b>x</b>", "router": "fixed", "variant": "a b", "over_ms": "-1",
            "since": "yesterday", "until": "nan",
        }
    )  # fmt: skip
    assert link.statuses == ("error", "ok")
    assert (link.task, link.verdict, link.agent, link.provider, link.router, link.variant) == (None,) * 6
    assert (link.over_ms, link.since, link.until) == (0.0, None, None)  # a latency is clamped to 0
    text = "\n".join(link.problems)
    for piece in (
        "status='nope'", "task='chess'", "verdict='maybe'", "agent='gpt'", "provider='<b>x</b>'",
        "router='fixed'", "variant='a b'", "over_ms='-1'", "since='yesterday'", "until='nan'",
    ):  # fmt: skip
        assert piece in text, piece
    assert len(link.problems) == 10
    # an empty range: both dropped, one note
    empty = parse_traces_link({"since": "200", "until": "100"})
    assert (empty.since, empty.until) == (None, None) and "range is empty" in empty.problems[0]
    # nothing asked: nothing set, no problem
    assert parse_traces_link({}) == TracesLink()
    assert parse_traces_link({"status": "", "task": " "}) == TracesLink()


def test_no_value_selects_requests_without_one_except_for_the_task() -> None:
    link = parse_traces_link({"variant": "(none)", "agent": "(none)", "task": "(none)"})
    assert (link.variant, link.agent, link.task) == ("(none)", "(none)", None)
    assert link.filters() == {"variant": "(none)", "agent": "(none)"}


def test_experiment_and_correlation_links_filter_exactly_and_reject_bad_ids() -> None:
    url = traces_url(variant="canary", correlation="canary-0f3a", experiment="mcts-fast")
    link = parse_traces_link(url_params(url))
    assert (link.variant, link.correlation, link.experiment, link.warnings) == (
        "canary",
        "canary-0f3a",
        "mcts-fast",
        (),
    )
    assert link.filters() == {"variant": "canary", "experiment": "mcts-fast", "correlation_id": "canary-0f3a"}
    bad = parse_traces_link({"experiment": "a b", "correlation": "x" * 129})
    assert (bad.experiment, bad.correlation) == (None, None)
    assert [w.param for w in bad.warnings] == ["experiment", "correlation"]
    assert all(w.action == "ignored" for w in bad.warnings)


def test_traces_url_round_trips() -> None:
    url = traces_url(statuses=("ok", "error"), since=1.5, until=2.0, over_ms=500.0, agent="(none)", task=None)
    assert url == "traces?status=ok%2Cerror&agent=%28none%29&over_ms=500&since=1.5&until=2"
    from urllib.parse import parse_qsl

    params = dict(parse_qsl(url.split("?", 1)[1]))
    assert parse_traces_link(params) == TracesLink(
        statuses=("ok", "error"), agent="(none)", over_ms=500.0, since=1.5, until=2.0
    )


@pytest.mark.parametrize(
    ("kind", "threshold_s", "want"),
    [
        ("availability", None, "traces?status=error&task=game24&since=100&until=200"),
        ("latency", 0.5, "traces?status=ok%2Cerror&over_ms=500&task=game24&since=100&until=200"),
        ("quality", None, "traces?status=ok%2Cerror&verdict=incorrect&task=game24&since=100&until=200"),
    ],
)
def test_bad_events_url_per_slo_kind(kind: str, threshold_s: float | None, want: str) -> None:
    from urllib.parse import parse_qsl

    got = bad_events_url(kind, threshold_s, "task", "game24", 100.0, 200.0)
    assert got is not None
    assert dict(parse_qsl(got.split("?", 1)[1])) == dict(parse_qsl(want.split("?", 1)[1]))


def test_bad_events_url_without_a_selectable_value() -> None:
    assert bad_events_url("availability", None, "task", "(none)", 0.0, 1.0) is None
    assert bad_events_url("latency", None, "task", "game24", 0.0, 1.0) is None  # no threshold
    assert bad_events_url("freshness", None, "task", "game24", 0.0, 1.0) is None
    assert bad_events_url("availability", None, "provider", "(none)", 0.0, 1.0) == (
        "traces?status=error&provider=%28none%29&since=0&until=1"
    )
