"""Prometheus answers garbage (a fake server on loopback): every page still renders, the sidebar
says what is wrong without showing the password in ``ARBOR_PROMETHEUS_URL``, and the Overview
shows its SQLite figures."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from observability.store import Store
from tests.app.shown import shown as unescape
from tests.observability.fake_prometheus import FakePrometheus, Reply, fake_prometheus

MAIN = str(Path(__file__).resolve().parents[2] / "app" / "main.py")
PAGES = sorted(p.name for p in (Path(__file__).resolve().parents[2] / "pages").glob("*.py"))
PASSWORD = "s3cretPW"
TOKEN = "tok-98765"
EMPTY_ITEM = Reply(b'{"status":"success","data":{"resultType":"vector","result":[{}]}}')


@pytest.fixture
def garbage(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[FakePrometheus, str]]:
    """A fake Prometheus answering ``result: [{}]``, configured with a password and a token in
    its URL; yields the fake and the URL as the console must show it."""
    with fake_prometheus(EMPTY_ITEM) as fake:
        host = fake.url.removeprefix("http://")
        monkeypatch.setenv("ARBOR_PROMETHEUS_URL", f"http://admin:{PASSWORD}@{host}/?access_token={TOKEN}")
        monkeypatch.setenv("ARBOR_PROMETHEUS_TIMEOUT_S", "5")
        yield fake, f"http://admin:**********@{host}/?access_token=**********"


def _all_text(at: AppTest) -> str:
    """Every element of the app as protobuf text (values, labels, help, dataframes' bytes)."""
    out: list[str] = []

    def walk(node: object) -> None:
        proto = getattr(node, "proto", None)
        if proto is not None:
            out.append(str(proto))
        for child in getattr(node, "children", {}).values():
            walk(child)

    walk(at._tree)
    return "\n".join(out)


def _unescaped(text: str) -> str:
    """The sidebar's markdown as shown: the URL in a code span, markup characters escaped."""
    return text.replace("\\", "").replace("`", "")


@pytest.mark.parametrize("page", PAGES)
def test_every_page_renders_and_says_prometheus_is_unusable(garbage, page: str) -> None:
    fake, shown = garbage
    at = AppTest.from_file(MAIN, default_timeout=60)
    at.run()
    at.switch_page(f"../pages/{page}").run()
    assert not at.exception, at.exception
    assert at.title, "the page drew nothing"
    warnings = [_unescaped(w.value) for w in at.sidebar.warning]
    expected = f"Prometheus at {shown} answered something unusable: "
    assert any(w.startswith(expected) and "result.0.metric: Field required" in w for w in warnings), warnings
    everything = _all_text(at)
    assert PASSWORD not in everything and TOKEN not in everything
    assert fake.seen and fake.seen[0]["params"]["access_token"] == [TOKEN]  # it was sent, not shown


@pytest.mark.parametrize(
    "reply",
    [EMPTY_ITEM, Reply(b'{"status":"success","data":{"resultType":"vector","result":'
                       b'[{"metric":{},"value":[1700000000,"abc"]}]}}'),
     Reply(b"<html>oops</html>", status=500, content_type="text/html")],
    ids=["empty-item", "value-abc", "html-500"],
)  # fmt: skip
def test_overview_falls_back_to_sqlite_figures(garbage, monkeypatch, tmp_path, reply) -> None:
    fake, shown = garbage
    fake.reply = reply
    now = time.time()
    with Store(tmp_path / "arbor.db", threaded=False) as store:  # the conftest's ARBOR_DB_PATH
        store.submit(
            "requests",
            [
                {"request_id": "a", "ts": now - 100, "status": "ok", "latency_ms": 120.0},
                {"request_id": "b", "ts": now - 200, "status": "error", "latency_ms": 80.0},
            ],
        )
    at = AppTest.from_file(MAIN, default_timeout=60)
    at.run()
    at.switch_page("../pages/overview.py").run()
    at.radio(key="overview_source").set_value("prometheus").run()
    assert not at.exception, at.exception
    page_warnings = [unescape(w.value) for w in at.main.warning]
    assert any(
        w.startswith(f"Prometheus at {shown} answered something unusable: ")
        and w.endswith("— showing SQLite figures")
        for w in page_warnings
    ), page_warnings
    tiles = {m.label: m.value for m in at.metric}
    assert tiles["Requests"] == "2" and tiles["Error rate"] == "50.00%"  # 1 error of 2, by hand
    everything = _all_text(at)
    assert PASSWORD not in everything and TOKEN not in everything
