"""Fixtures for the LLM tests (see helpers.py): local scripted server, httpx client, fake sleep/clock."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.engine.llm.helpers import FakeClock, FakeSleep, ScriptedServer


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    srv = ScriptedServer()
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    """An httpx client that ignores proxy environment variables (the server is local)."""
    with httpx.Client(trust_env=False) as c:
        yield c


@pytest.fixture
def fake_sleep() -> FakeSleep:
    return FakeSleep()


@pytest.fixture
def fake_clock() -> FakeClock:
    return FakeClock()
