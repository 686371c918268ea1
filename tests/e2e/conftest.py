"""Fixtures for browser tests: a live console on a free loopback port and
Debian's headless Chromium driven by Playwright (no browser download)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_console(
    runtime: Path,
    extra_env: Mapping[str, str] = MappingProxyType({}),
    port: int | None = None,
    base_env: Mapping[str, str] | None = None,
) -> tuple[subprocess.Popen[bytes], str]:
    """Start ``streamlit run app/main.py`` on ``port`` (default: a free one) with its store in
    ``runtime`` (log: ``runtime/console.log``), the environment ``base_env`` (default: this
    process's) plus ``extra_env``; return the process and its URL once it answers its health check.
    The caller stops it (by its process group).  Raises RuntimeError with the log if it never answers."""
    port = port or _free_port()
    env = {
        **(os.environ if base_env is None else base_env),
        "ARBOR_DB_PATH": str(runtime / "arbor.db"),
        "ARBOR_METRICS_PORT": "0",
        **extra_env,
    }
    log_path = runtime / "console.log"
    with open(log_path, "w") as log:  # the child keeps its own handle
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "streamlit",
                "run",
                str(ROOT / "app" / "main.py"),
                "--server.address",
                "127.0.0.1",
                "--server.port",
                str(port),
                "--server.headless",
                "true",
                "--browser.gatherUsageStats",
                "false",
            ],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    return proc, url
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                stop_console(proc)
                raise RuntimeError(log_path.read_text()) from None
            time.sleep(0.3)


def stop_console(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the console's process group; SIGKILL it if it has not ended within 10 s."""
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


@contextmanager
def running_console(
    runtime: Path, extra_env: Mapping[str, str] = MappingProxyType({}), port: int | None = None
) -> Iterator[str]:
    """:func:`start_console`, yielding its URL, then stop it by its pid."""
    proc, url = start_console(runtime, extra_env, port)
    try:
        yield url
    finally:
        stop_console(proc)


@pytest.fixture(scope="session")
def console_url(tmp_path_factory) -> Iterator[str]:
    """A console with no access control (``ARBOR_AUTH=none``)."""
    with running_console(tmp_path_factory.mktemp("runtime"), {"ARBOR_AUTH": "none"}) as url:
        yield url


#: The users of :func:`auth_console_url`: name -> (password, role).  ``locked-out`` is the lock-out
#: test's own user (the lock-out tracker is shared by the whole console process).
AUTH_USERS = {
    "olga": ("olga-pass-1", "operator"),
    "vic": ("vic-pass-1", "viewer"),
    "locked-out": ("right-pass-1", "operator"),
}


@pytest.fixture(scope="session")
def auth_console_url(tmp_path_factory) -> Iterator[str]:
    """A console with ``ARBOR_AUTH=password`` and a users file holding :data:`AUTH_USERS`
    (argon2 hashes with small cost parameters, to keep start-up quick)."""
    from argon2 import PasswordHasher

    from engine.auth import User, UsersFile, save_users

    runtime = tmp_path_factory.mktemp("auth_runtime")
    fast = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    users = UsersFile(
        users=tuple(
            User(name=name, password_hash=fast.hash(pw), role=role) for name, (pw, role) in AUTH_USERS.items()
        )
    )
    save_users(runtime / "users.yaml", users)
    env = {"ARBOR_AUTH": "password", "ARBOR_AUTH_USERS_FILE": str(runtime / "users.yaml")}
    with running_console(runtime, env) as url:
        yield url


@pytest.fixture(scope="session")
def browser():
    """Headless Debian Chromium via Playwright."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 1800})
    pg = context.new_page()
    yield pg
    context.close()


@pytest.fixture(scope="session")
def oidc_console(tmp_path_factory) -> Iterator[tuple[str, Any]]:
    """A console with ``ARBOR_AUTH=oidc`` against a fake OpenID Connect provider on loopback
    (``tests/e2e/fake_idp.py``); the role comes from the ``roles`` claim, else viewer.
    Yields ``(console URL, provider)``: set ``provider.user`` to choose who signs in."""
    from tests.e2e.fake_idp import CLIENT_ID, CLIENT_SECRET, FakeIdP

    runtime = tmp_path_factory.mktemp("oidc_runtime")
    idp = FakeIdP()
    port = _free_port()
    secrets_file = runtime / "secrets.toml"
    secrets_file.write_text(
        "[auth]\n"
        f'redirect_uri = "http://127.0.0.1:{port}/oauth2callback"\n'
        'cookie_secret = "arbor-test-cookie-secret-0123456789abcdef"\n'
        f'client_id = "{CLIENT_ID}"\n'
        f'client_secret = "{CLIENT_SECRET}"\n'
        f'server_metadata_url = "{idp.url}/.well-known/openid-configuration"\n'
    )
    env = {
        "ARBOR_AUTH": "oidc",
        "ARBOR_AUTH_ROLE_CLAIM": "roles",
        "STREAMLIT_SECRETS_FILES": str(secrets_file),
    }
    try:
        with running_console(runtime, env, port=port) as url:
            yield url, idp
    finally:
        idp.close()
