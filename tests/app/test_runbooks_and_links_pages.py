"""AppTests of the Runbooks page, the Traces page opened by a filter link, and the SLO page's
runbook and trace links (through the console's router).

Stores are written by hand; the requests each link must list are worked out from them.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qsl

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from app import runbooks
from observability.store import RequestRow, Store
from tests.app.console import open_page
from tests.app.shown import shown

CORPUS = Path(__file__).resolve().parents[2] / "data" / "corpus"
AS_OF = 1_800_000_000.0  # 2027-01-15 08:00:00 UTC, a whole minute


def _open(page: str, params: dict[str, str] | None = None) -> AppTest:
    return open_page(f"../pages/{page}.py", params)


def _text(at: AppTest) -> str:
    return "\n".join(m.value for m in at.main.markdown)


# ------------------------------------------------------------------------------------ runbooks page


def test_runbooks_page_lists_every_runbook_with_its_link() -> None:
    at = _open("runbooks")
    stems = sorted(p.stem for p in CORPUS.glob("runbook-*.md"))
    listing = _text(at)
    for stem in stems:
        assert f"(runbooks?name={stem})" in listing, stem
    assert at.selectbox(key="runbooks_pick").value is None
    assert not at.warning


def test_runbooks_page_opens_the_runbook_a_link_names() -> None:
    at = _open("runbooks", {"name": "runbook-error-budget-slow-burn"})
    assert at.selectbox(key="runbooks_pick").value == "runbook-error-budget-slow-burn"
    shown_text = _text(at)
    assert "# Runbook: error budget slow burn" in shown_text  # the file's own heading, as Markdown
    assert "A ticket, not a page." in shown_text
    # choosing another one rewrites the link
    at.selectbox(key="runbooks_pick").set_value("runbook-high-latency-p95").run()
    assert not at.exception
    assert at.query_params["name"] == ["runbook-high-latency-p95"] or at.query_params["name"] == (
        "runbook-high-latency-p95"
    )
    assert "# Runbook: high latency (p95)" in _text(at)


@pytest.mark.parametrize("name", ["runbook-nope", "../README", "<img src=x>"])
def test_an_unknown_runbook_is_a_clear_message(name: str) -> None:
    at = _open("runbooks", {"name": name})
    warning = " ".join(shown(w.value) for w in at.warning)
    assert f"name={name!r} is not one of runbook-" in warning and "ignored" in warning
    assert "<" not in " ".join(w.value for w in at.warning).replace("\\<", "")  # escaped: shown as text
    assert at.selectbox(key="runbooks_pick").value is None  # and the list is there to choose from
    assert "(runbooks?name=runbook-error-budget-fast-burn)" in _text(at)


def test_a_runbook_cannot_load_anything(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "runbook-hostile.md").write_text(
        "# Hostile\n\n![beacon](http://127.0.0.1:9/b.png)\n\n<img src='http://127.0.0.1:9/c.png'>\n"
        "[ref]: http://127.0.0.1:9/d.png\n\n![ref]\n\n[a link](https://example.org) stays a link.\n"
    )
    monkeypatch.setattr(runbooks, "CORPUS_DIR", tmp_path)
    at = _open("runbooks", {"name": "runbook-hostile"})
    body = _text(at)
    assert "# Hostile" in body and "[a link](https://example.org)" in body
    assert "![" not in body and "<img" not in body
    assert body.count("image removed") == 2


# ------------------------------------------------------------------------------------ traces link

# (id, ts, status, task, agents, provider, router, variant, verdict, latency)
PLACED = [
    ("a1", AS_OF - 3000.0, "error", "game24", ["hrm", "mcts"], "openai", "rules", None, None, 20.0),
    ("a2", AS_OF - 2000.0, "error", "game24", ["mcts"], "offline", "rules", "B", None, 30.0),
    ("a3", AS_OF - 1000.0, "error", "tictactoe", ["trm", "mcts"], "openai", "gru", None, None, 40.0),
    ("a4", AS_OF - 500.0, "ok", "game24", ["hrm", "mcts"], "openai", "rules", None, "incorrect", 900.0),
    ("a5", AS_OF - 100.0, "error", "game24", ["mcts", "hrm"], "openai", "rules", None, None, 50.0),
    ("a6", AS_OF - 7200.0, "error", "game24", ["mcts"], "openai", "rules", None, None, 60.0),  # too old
    ("a7", AS_OF + 10.0, "error", "game24", ["mcts"], "openai", "rules", None, None, 70.0),  # too new
]


def _write(path: Path) -> None:
    rows = [
        RequestRow(
            request_id=rid, trace_id=f"trace-{rid}", ts=ts, status=status, task=task, agents_used=agents,
            provider=provider, router=router, variant=variant, verdict=verdict, latency_ms=lat,
        )._asdict()
        for rid, ts, status, task, agents, provider, router, variant, verdict, lat in PLACED
    ]  # fmt: skip
    with Store(path, threaded=False) as store:
        store.submit("requests", rows)
        store.flush()


def _listed(at: AppTest) -> list[str]:
    frames = [d.value for d in at.main.dataframe if "trace id" in d.value.columns]
    return sorted(frames[0]["trace id"]) if frames else []


def test_traces_filter_link_lists_exactly_the_matching_requests(tmp_path: Path) -> None:
    _write(tmp_path / "arbor.db")  # ARBOR_DB_PATH (conftest)
    params = {"status": "error", "agent": "mcts", "since": f"{AS_OF - 3600:.0f}", "until": f"{AS_OF:.0f}"}
    at = _open("traces", params)
    # errors whose last agent is mcts in (AS_OF - 1 h, AS_OF]: a1, a2, a3 (a5 ends with hrm, a6 and
    # a7 are outside the range, a4 is ok)
    assert _listed(at) == ["trace-a1", "trace-a2", "trace-a3"]
    assert at.multiselect(key="traces_status").value == ["error"]
    info = " ".join(shown(i.value) for i in at.main.info)
    assert "Filtered by the link: last agent mcts" in info
    assert "after 2027-01-15 07:00:00 UTC" in info and "up to 2027-01-15 08:00:00 UTC included" in info
    # narrowing with the link's other dimensions
    at = _open("traces", params | {"provider": "openai", "task": "game24"})
    assert _listed(at) == ["trace-a1"]
    assert at.selectbox(key="traces_task").value == "game24"
    at = _open("traces", params | {"variant": "(none)", "router": "rules"})
    assert _listed(at) == ["trace-a1"]  # a2 has variant B, a3 router gru


def test_traces_link_for_latency_and_quality_bad_events(tmp_path: Path) -> None:
    _write(tmp_path / "arbor.db")
    at = _open("traces", {"status": "ok,error", "over_ms": "40", "until": f"{AS_OF:.0f}"})
    assert _listed(at) == ["trace-a4", "trace-a5", "trace-a6"]  # slower than 40 ms (a3 is exactly 40)
    at = _open("traces", {"status": "ok,error", "verdict": "incorrect"})
    assert _listed(at) == ["trace-a4"]


def test_bad_traces_link_values_are_warnings_and_ignored(tmp_path: Path) -> None:
    _write(tmp_path / "arbor.db")
    at = _open("traces", {"status": "error,broken", "agent": "gpt-9", "since": "later", "task": "chess"})
    warnings = " ".join(shown(w.value) for w in at.warning)
    assert "status='broken'" in warnings and "agent='gpt-9'" in warnings
    assert "since='later'" in warnings and "task='chess'" in warnings
    # the usable part applies: every error, any agent, any time
    assert _listed(at) == ["trace-a1", "trace-a2", "trace-a3", "trace-a5", "trace-a6", "trace-a7"]


def test_clearing_the_link_filters(tmp_path: Path) -> None:
    _write(tmp_path / "arbor.db")
    at = _open("traces", {"status": "error", "agent": "mcts", "since": f"{AS_OF - 3600:.0f}"})
    assert _listed(at) == ["trace-a1", "trace-a2", "trace-a3", "trace-a7"]
    at.button(key="traces_clear_link").click().run()
    assert not at.exception
    assert "agent" not in at.query_params and "since" not in at.query_params
    # the status stays in its widget (the operator's filter now): every error
    assert _listed(at) == ["trace-a1", "trace-a2", "trace-a3", "trace-a5", "trace-a6", "trace-a7"]


# ------------------------------------------------------------------------------------ the SLO page


def test_slo_page_links_alerts_to_runbooks_and_offenders_to_their_traces(tmp_path: Path) -> None:
    _write(tmp_path / "arbor.db")
    at = _open("slos", {"slo": "availability", "range": "1h", "as_of": f"{AS_OF:.0f}"})
    # the burn-rate table: each alert with its runbook
    alerts = next(d.value for d in at.main.dataframe if "long burn" in d.value.columns)
    assert list(alerts["runbook"]) == [
        "runbooks?name=runbook-error-budget-fast-burn",
        "runbooks?name=runbook-error-budget-fast-burn",
        "runbooks?name=runbook-error-budget-slow-burn",
    ]
    # availability over the last hour: bad events a1, a2, a3, a5 (4): task game24 3, tictactoe 1
    offenders = next(d.value for d in at.main.dataframe if "traces" in d.value.columns)
    game24 = offenders[(offenders["dimension"] == "task") & (offenders["value"] == "game24")].iloc[0]
    assert game24["share of bad events"] == pytest.approx(75.0)
    params = dict(parse_qsl(game24["traces"].split("?", 1)[1]))
    assert game24["traces"].startswith("traces?")
    assert params == {
        "status": "error",
        "task": "game24",
        "since": f"{AS_OF - 3600:.0f}",
        "until": f"{AS_OF:.0f}",
    }
    # following the link lists exactly those bad events
    follow = _open("traces", params)
    assert _listed(follow) == ["trace-a1", "trace-a2", "trace-a5"]
    agents = offenders[offenders["dimension"] == "agent"]
    assert dict(zip(agents["value"], agents["share of bad events"], strict=True)) == {
        "mcts": 75.0,
        "hrm": 25.0,
    }


def test_slo_series_budget_equals_its_own_read_of_the_period(tmp_path: Path) -> None:
    """The budget series is cut from the wider burn-rate read (one scan of the rows): the same
    buckets as reading the period alone."""
    from app import slo
    from observability.slo.math import budget_over_time
    from observability.slo.models import load_slos
    from observability.slo.sqlite_source import SqliteSLOSource
    from observability.store import ReadModel

    _write(tmp_path / "arbor.db")
    st.cache_resource.clear()
    st.cache_data.clear()
    source = SqliteSLOSource(ReadModel(tmp_path / "arbor.db"))
    for name, range_key, period_s, bucket_s in (
        ("availability", "1h", 3600.0, 60.0),
        ("latency", "1d", 86400.0, 300.0),
    ):
        series = slo.slo_series(name, range_key, AS_OF)
        assert not isinstance(series, str), series
        target = next(s for s in load_slos() if s.name == name)
        alone = source.buckets(target, AS_OF, period_s, bucket_s)
        want = budget_over_time(alone, target.objective, AS_OF - period_s, period_s)
        assert series.budget == tuple(want)
        assert sum(b.bad for b in alone) > 0  # the period holds bad events to follow
