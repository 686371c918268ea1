"""In a real browser: with a password and a token in ``ARBOR_PROMETHEUS_URL`` and a Prometheus
that answers garbage, the sidebar says Prometheus answered something unusable, shows the URL
masked, and the page never shows the password or the token."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.e2e.conftest import running_console
from tests.observability.fake_prometheus import FakePrometheus, Reply, fake_prometheus

pytestmark = pytest.mark.e2e

PASSWORD = "s3cretPW"
TOKEN = "tok-98765"


@pytest.fixture(scope="module")
def garbage_console(tmp_path_factory) -> Iterator[tuple[str, FakePrometheus, str]]:
    """A console whose Prometheus (a fake on loopback) answers ``result: [{}]``; yields the
    console's URL, the fake and the Prometheus URL as the console must show it."""
    reply = Reply(b'{"status":"success","data":{"resultType":"vector","result":[{}]}}')
    with fake_prometheus(reply) as fake:
        host = fake.url.removeprefix("http://")
        env = {"ARBOR_PROMETHEUS_URL": f"http://admin:{PASSWORD}@{host}/?access_token={TOKEN}"}
        with running_console(tmp_path_factory.mktemp("runtime"), env) as url:
            yield url, fake, f"http://admin:**********@{host}/?access_token=**********"


@pytest.mark.parametrize("path", ["", "/overview", "/traces"])
def test_the_sidebar_never_shows_the_password(garbage_console, page, path: str) -> None:
    console, fake, shown = garbage_console
    page.goto(f"{console}{path}")
    sidebar = page.get_by_test_id("stSidebar")
    warning = sidebar.get_by_text("answered something unusable")
    warning.wait_for(timeout=60_000)
    text = warning.inner_text()
    assert f"Prometheus at {shown} answered something unusable" in text, text  # the stars stay stars
    assert "result.0.metric: Field required" in text
    # open the settings expander too: the URL there is masked as well
    sidebar.get_by_text("Engine settings").click()
    page.get_by_test_id("stDataFrame").first.wait_for(timeout=30_000)
    html = page.content()
    body = page.locator("body").inner_text()
    for secret in (PASSWORD, TOKEN):
        assert secret not in html and secret not in body
    assert fake.seen and fake.seen[0]["params"]["access_token"] == [TOKEN]  # sent to Prometheus only


def test_the_overview_falls_back_to_sqlite_and_says_why(garbage_console, page) -> None:
    console, _, _ = garbage_console
    page.goto(f"{console}/overview")
    page.get_by_role("heading", name="Overview").wait_for(timeout=60_000)
    page.get_by_test_id("stMain").get_by_text("Prometheus", exact=True).click()  # the source radio
    main_warning = page.get_by_test_id("stMain").get_by_text("showing SQLite figures")
    main_warning.wait_for(timeout=60_000)
    assert "answered something unusable" in main_warning.inner_text()
    html = page.content()
    assert PASSWORD not in html and TOKEN not in html
