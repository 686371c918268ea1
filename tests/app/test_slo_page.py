"""AppTest tests of the SLO page (pages/slos.py), through the console's router, on a store whose
counts are known; the expected figures are worked out by hand below.

The store (``_fill``), every row within the 28-day windows of data/slos.yaml ending at AS_OF:

* 1000 served requests at ``AS_OF - 60 s x (i + 1)``, i = 0..999 (the last 1000 minutes);
* availability (99 %): 5 errors (i < 5) -> error ratio 0.005, burn 0.5, budget remaining
  1 - 0.5 = 50.00 %, SLI 99.500 %;
* latency (95 %, 500 ms): 40 requests take 900 ms (5 <= i < 45) -> 40 / 1000 = 0.04, burn 0.8,
  remaining 20.00 % (amber), SLI 96.000 %;
* quality (98 %): 100 judged requests (i >= 900), 10 incorrect (i >= 990) -> 0.1 / 0.02 = 5,
  remaining 1 - 5 = -400.00 % (red), SLI 90.000 %.

So the list sorted by budget remaining is quality, latency, availability. The five errors are
task game24 x 3 and tictactoe x 2 (shares 60 % and 40 %).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage
from streamlit.testing.v1 import AppTest

from app import slo_charts
from engine.slo_report import build_report, render_markdown, report_json
from observability.slo.models import load_slos
from observability.slo.sqlite_source import SqliteSLOSource
from observability.store import ReadModel, RequestRow, Store
from tests.app.console import open_page
from tests.app.shown import shown

PAGE = "../pages/slos.py"
AS_OF = 1_800_000_000.0  # a whole minute (2027-01-15 08:00:00 UTC)


def _fill(path: Path) -> None:
    rows = []
    for i in range(1000):
        rows.append(
            RequestRow(
                f"r{i}",
                ts=AS_OF - 60.0 * (i + 1),
                status="error" if i < 5 else "ok",
                latency_ms=900.0 if 5 <= i < 45 else 100.0,
                task="tictactoe" if i in (1, 3) else "game24",
                verdict=None if i < 900 else ("incorrect" if i >= 990 else "correct"),
                agents_used=["hrm"],
                router="rules",
                provider="<b>mock</b>",  # store text: shown literally
                simulated=1 if i < 10 else 0,
            )._asdict()
        )
    with Store(path, threaded=False) as store:
        store.submit("requests", rows)
        store.flush()


def _open(db: Path, params: dict[str, str] | None = None) -> AppTest:
    return open_page(PAGE, params)


@pytest.fixture
def filled(tmp_path: Path) -> Path:
    db = tmp_path / "arbor.db"  # the conftest points ARBOR_DB_PATH here
    _fill(db)
    return db


def _tiles(at: AppTest) -> list[dict[str, str]]:
    """The list's tiles in page order: the first four metrics of each of the three tiles."""
    metrics = [(m.label, m.value) for m in at.metric][:12]
    return [dict(metrics[k : k + 4]) for k in range(0, 12, 4)]


def test_tiles_hand_computed_and_sorted_by_budget(filled: Path) -> None:
    at = _open(filled, {"as_of": str(int(AS_OF))})
    keys = ("Objective", "SLI", "Budget remaining", "Events / bad")
    assert _tiles(at) == [
        dict(zip(keys, ("98 %", "90 %", "-400.00 %", "100 / 10"), strict=True)),
        dict(zip(keys, ("95 %", "96 %", "20.00 %", "1,000 / 40"), strict=True)),
        dict(zip(keys, ("99 %", "99.5 %", "50.00 %", "1,000 / 5"), strict=True)),
    ]
    headers = [m.value for m in at.markdown if "-badge[" in m.value]
    assert [h.split(":")[1].split("-")[0] for h in headers] == ["red", "orange", "green"]
    # the least budget is selected by default; the simulated rows are counted in the caption
    assert at.selectbox(key="slo_pick").value == "quality"
    captions = " ".join(shown(c.value) for c in at.caption)
    assert "10 of the period's requests are simulated" in captions.replace("**", "")
    assert "computed exactly from the SQLite store" in captions


def test_deep_link_selects_slo_and_range(filled: Path) -> None:
    at = _open(filled, {"slo": "availability", "range": "1h", "as_of": str(int(AS_OF))})
    assert at.selectbox(key="slo_pick").value == "availability"
    assert at.get("button_group")[0].value == "1h" or at.session_state["slo_range"] == "1h"
    # last hour, AS_OF - 3600 < ts <= AS_OF: i = 0..58 (i = 59 is exactly an hour back, outside)
    # -> 59 served, 5 errors: burn (5 / 59) / 0.01 = 8.47, remaining 1 - 8.47 = -747.46 %
    detail = {m.label: m.value for m in at.metric[12:]}
    assert detail["Events / bad"] == "59 / 5"
    assert detail["Budget remaining"] == "-747.46 %"
    assert at.query_params["slo"] == "availability" and at.query_params["range"] == "1h"
    # the alert table: 3 rows with the 28d factors; the 1h/5m page: 1h burn 8.47 < 13.44
    table = at.dataframe[0].value
    assert list(table["factor"].round(4)) == [13.44, 5.6, 0.9333]
    assert list(table["state"]) == ["inactive", "inactive", "inactive"]
    assert table["long burn"][0] == f"{(5 / 59) / 0.01:.2f}" == "8.47"
    # 5m: i = 0..3 (i = 4 is exactly 5 minutes back), all errors -> burn 1 / 0.01 = 100
    assert table["short burn"][0] == "100.00"


def test_bad_deep_link_is_a_warning_not_an_error(filled: Path) -> None:
    at = _open(filled, {"slo": "nope", "range": "5y", "as_of": str(int(AS_OF))})
    warnings = " ".join(shown(w.value) for w in at.warning)
    assert "slo='nope' is not one of" in warnings and "range='5y' is not one of" in warnings
    assert at.selectbox(key="slo_pick").value == "quality"


def test_download_equals_render_markdown_and_json(filled: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # AppTest's media storage lives only during a run: record what the buttons hand to it
    files: dict[str, bytes] = {}
    load = MemoryMediaFileStorage.load_and_get_id

    def recording(self, data, mimetype, kind, filename=None):  # type: ignore[no-untyped-def]
        files[filename] = data if isinstance(data, bytes) else data.encode()
        return load(self, data, mimetype, kind, filename)

    monkeypatch.setattr(MemoryMediaFileStorage, "load_and_get_id", recording)
    at = _open(filled, {"as_of": str(int(AS_OF))})
    labels = [b.proto.label for b in at.get("download_button")]
    assert labels == ["Download review (Markdown)", "Download review (HTML)", "Download review (JSON)"]
    report = build_report(load_slos(), SqliteSLOSource(ReadModel(filled)), AS_OF)
    md = files["slo-review-20270115T0800.md"].decode()
    assert md == render_markdown(report) and md.startswith("# SLO review")
    assert json.loads(files["slo-review-20270115T0800.json"]) == report_json(report)


def test_store_text_is_plain(filled: Path) -> None:
    at = _open(filled, {"slo": "availability", "as_of": str(int(AS_OF))})
    offenders = next(c.value for c in at.caption if c.value.startswith("Top offenders"))
    assert "<b>" not in offenders and "provider <b>mock</b> (100.0 %)" in shown(offenders)
    assert shown(offenders).startswith("Top offenders: task game24 (60.0 %); agent hrm (100.0 %)")
    specs = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    provider = next(s for s in specs if s["layout"]["title"]["text"] == "Bad events by provider")
    assert provider["data"][0]["y"] == ["&lt;b&gt;mock&lt;/b&gt;"]


def test_empty_store_says_no_served_requests(tmp_path: Path) -> None:
    at = _open(tmp_path / "arbor.db")
    assert next(shown(i.value) for i in at.info).startswith("No served requests in this window")
    assert not at.get("plotly_chart") and not at.get("download_button")
    assert "nan" not in " ".join(m.value for m in at.metric).lower()


def test_window_without_traffic_for_one_slo(filled: Path) -> None:
    # 1h ending at AS_OF: no judged request (they are 900..999 minutes back): quality shows n/a
    at = _open(filled, {"slo": "quality", "range": "1h", "as_of": str(int(AS_OF))})
    quality = _tiles(at)[-1]  # no traffic sorts last
    assert quality["SLI"] == "n/a" and quality["Budget remaining"] == "n/a"
    assert any("No served requests in this window for this SLO" in i.value for i in at.info)


# ---------------------------------------------------------------- pure chart builders


def test_budget_figure_ideal_line_endpoints() -> None:
    from observability.slo.math import BucketCount, budget_over_time

    buckets = [BucketCount(100.0 * k, 10, 0) for k in range(1, 11)]  # period (0, 1000]
    points = budget_over_time(buckets, 0.99, 0.0, 1000.0)
    fig = slo_charts.budget_figure(points, 0.0).to_dict()
    ideal = next(t for t in fig["data"] if t["name"] == "ideal (linear)")
    assert ideal["y"][0] == 100.0 and ideal["y"][-1] == 0.0
    assert len(ideal["x"]) == 11  # the start, then every bucket end
    real = next(t for t in fig["data"] if t["name"] == "budget remaining")
    assert list(real["y"]) == [100.0] * 10


def test_burn_figure_has_one_line_per_factor_and_budget_pace() -> None:
    from engine.slo_report import AlertRow
    from observability.slo.math import BurnPoint

    alerts = [
        AlertRow("page", "1h", "5m", 13.44, False, 1.0, 2.0),
        AlertRow("page", "6h", "30m", 5.6, False, 1.0, 1.0),
        AlertRow("ticket", "3d", "6h", 0.9333333333, True, 1.0, 1.0),
    ]
    fig = slo_charts.burn_figure([BurnPoint(0.0, 1.0), BurnPoint(60.0, None)], alerts, "1h").to_dict()
    lines = sorted(s["y0"] for s in fig["layout"]["shapes"])
    assert lines == [0.9333333333, 1.0, 5.6, 13.44]
    assert list(fig["data"][0]["y"]) == [1.0, None]


def test_ratio_and_bucket_plan() -> None:
    from app.slo import bucket_plan

    assert [slo_charts.ratio(v) for v in (0.99, 0.98133, 1.0, 0.9995, None)] == [
        "99 %", "98.133 %", "100 %", "99.95 %", "n/a",
    ]  # fmt: skip
    # (bucket, burn window): 1h -> 60 buckets of 1 min, 5m burn; 28d -> 672 of 1 h, 6h burn
    assert bucket_plan(3600) == (60.0, 300.0)
    assert bucket_plan(86400) == (300.0, 3600.0)
    assert bucket_plan(28 * 86400) == (3600.0, 21600.0)


def test_budget_colour_thresholds() -> None:
    assert [slo_charts.budget_colour(v) for v in (-0.01, 0.0, 0.2499, 0.25, 1.0, None)] == [
        "red", "orange", "orange", "green", "green", "gray",
    ]  # fmt: skip


def test_attribution_figure_top_and_other() -> None:
    shares = {f"v{k}": 0.1 for k in range(10)} | {"w": 0.0}
    fig = slo_charts.attribution_figure("task", {"a": 0.5, "b": 0.3, "c": 0.2}, top=2).to_dict()
    assert list(fig["data"][0]["y"]) == ["(other)", "b", "a"]  # largest at the top
    assert [round(x, 9) for x in fig["data"][0]["x"]] == [20.0, 30.0, 50.0]
    assert len(slo_charts.attribution_figure("task", shares).to_dict()["data"][0]["y"]) == 11


def test_as_of_defaults_to_the_latest_request_when_it_is_old(
    filled: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import app.slo

    monkeypatch.setattr(app.slo, "now", lambda: AS_OF + 7200.0)  # newest row is 2h01m old
    at = _open(filled)
    assert at.radio(key="slo_as_of").value == "latest"
    latest = AS_OF - 60.0  # the newest row; the 28d windows end there and hold all 1000 rows
    assert any(f"unix {latest:.0f}" in c.value for c in at.caption)
    assert [t["Events / bad"] for t in _tiles(at)] == ["100 / 10", "1,000 / 40", "1,000 / 5"]


def test_choices_after_a_deep_link_stick_and_rewrite_the_link(filled: Path) -> None:
    at = _open(filled, {"slo": "availability", "range": "1h", "as_of": str(int(AS_OF))})
    at.selectbox(key="slo_pick").set_value("latency").run()
    assert not at.exception
    assert at.selectbox(key="slo_pick").value == "latency"  # not reset by the link in the URL
    assert at.query_params["slo"] == "latency" and at.query_params["as_of"] == str(int(AS_OF))
    at.radio(key="slo_as_of").set_value("now").run()
    assert at.radio(key="slo_as_of").value == "now" and "as_of" not in at.query_params
