"""The red banner for a console that listens beyond loopback without authentication, and the
hostile deep links of the issue through AppTest (the page sources carry no Markdown image)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from streamlit import config
from streamlit.testing.v1 import AppTest

from app.components import exposure_warning, is_loopback
from tests.app.shown import shown

MAIN = str(Path(__file__).resolve().parents[2] / "app" / "main.py")
IMAGE = "![b](http://127.0.0.1:9/b.png)"


@pytest.mark.parametrize(
    ("address", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.1.2.3", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("LOCALHOST", True),
        ("0.0.0.0", False),
        ("::", False),
        ("192.168.1.10", False),
        ("example.com", False),
        ("", False),
        (None, False),
    ],
)
def test_is_loopback(address, loopback):
    assert is_loopback(address) is loopback


def test_exposure_warning_only_beyond_loopback_without_auth():
    assert exposure_warning("127.0.0.1", "none") is None
    assert exposure_warning("0.0.0.0", "password") is None
    assert exposure_warning("0.0.0.0", "oidc") is None
    assert "listens on address 0.0.0.0" in exposure_warning("0.0.0.0", "none")
    assert "every network interface" in exposure_warning(None, "none")


@pytest.fixture
def address() -> Iterator[callable]:
    """Set ``server.address`` for the test (AppTest reads it from the process' config)."""
    before = config.get_option("server.address")

    def set_address(value: str | None) -> None:
        config.set_option("server.address", value)

    yield set_address
    config.set_option("server.address", before)


def _banners(at: AppTest) -> list[str]:
    return [shown(e.value) for e in at.error if "authentication is off" in shown(e.value)]


def test_banner_on_every_page_when_bound_to_all_interfaces_without_auth(address, monkeypatch):
    monkeypatch.setenv("ARBOR_AUTH", "none")
    address("0.0.0.0")
    for page in ("query.py", "overview.py", "traces.py", "mcts.py", "routing.py"):
        at = AppTest.from_file(MAIN, default_timeout=60).run()
        at.switch_page(f"../pages/{page}").run()
        assert not at.exception, at.exception
        banners = _banners(at)
        assert len(banners) == 1 and banners[0].startswith("This console listens on address 0.0.0.0"), page


def test_no_banner_on_loopback(address, monkeypatch):
    monkeypatch.setenv("ARBOR_AUTH", "none")
    address("127.0.0.1")
    at = AppTest.from_file(MAIN, default_timeout=60).run()
    assert not at.exception and _banners(at) == []


def test_no_banner_with_auth(address, monkeypatch):
    address("0.0.0.0")
    monkeypatch.setenv("ARBOR_AUTH", "password")
    at = AppTest.from_file(MAIN, default_timeout=60).run()
    assert not at.exception and _banners(at) == []


# -- hostile deep links: the element sources hold the text escaped, never an image --------------------


def _open(page: str, **params: str) -> AppTest:
    at = AppTest.from_file(MAIN, default_timeout=60).run()
    for key, value in params.items():
        at.query_params[key] = value
    at.switch_page(page).run()
    assert not at.exception, at.exception
    return at


def test_query_console_seed_link():
    at = AppTest.from_file(MAIN, default_timeout=60)
    at.query_params["seed"] = IMAGE
    at.run()  # the Query console is the default page
    assert [w.value for w in at.warning] == [
        r"Link parameter seed\=\'\!\[b\]\(http\:\/\/127\.0\.0\.1\:9\/b\.png\)\' is not a whole number\: "
        r"ignored\, using a random seed instead\."
    ]


def test_mcts_seed_link():
    at = _open("../pages/mcts.py", task="game24", seed=IMAGE)
    assert [shown(w.value) for w in at.warning] == [
        f"Link parameter seed='{IMAGE}' is not a whole number: ignored, using a random seed instead."
    ]
    assert all("![" not in w.value for w in at.warning)


def test_traces_unknown_trace_link():
    at = _open("../pages/traces.py", trace=IMAGE)
    warnings = [w.value for w in at.warning]
    assert len(warnings) == 1 and "![" not in warnings[0]
    assert shown(warnings[0]).startswith(f"No trace {IMAGE} in the store")
