"""deploy/docker_entrypoint.py: the image's console refuses ARBOR_AUTH=none on 0.0.0.0 unless
ARBOR_ALLOW_ANONYMOUS=1; run as the container runs it, against a stand-in ``streamlit``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ENTRYPOINT = ROOT / "deploy" / "docker_entrypoint.py"


@pytest.fixture
def fake_streamlit(tmp_path) -> Path:
    """An executable named ``streamlit`` that says it started, with its arguments."""
    path = tmp_path / "bin" / "streamlit"
    path.parent.mkdir()
    path.write_text('#!/bin/sh\necho "started $*"\n')
    path.chmod(0o755)
    return path


def run(tmp_path: Path, command: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("ARBOR_")}
    clean.update(PYTHONPATH=str(ROOT), ARBOR_DB_PATH=str(tmp_path / "arbor.db"), **env)
    return subprocess.run(
        [sys.executable, str(ENTRYPOINT), *command],
        cwd=tmp_path,  # no .env here
        env=clean,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    "env", [{}, {"ARBOR_AUTH": "none"}, {"ARBOR_AUTH": "NONE", "ARBOR_ALLOW_ANONYMOUS": "0"}]
)
def test_refuses_an_open_console(tmp_path, fake_streamlit, env):
    done = run(tmp_path, [str(fake_streamlit), "run", "app/main.py"], **env)
    assert done.returncode == 78
    assert "refusing to start" in done.stderr and "ARBOR_ALLOW_ANONYMOUS=1" in done.stderr
    assert "started" not in done.stdout


@pytest.mark.parametrize("allow", ["1", "true", "yes"])
def test_anonymous_when_allowed_starts_with_a_warning(tmp_path, fake_streamlit, allow):
    done = run(
        tmp_path, [str(fake_streamlit), "run", "app/main.py"], ARBOR_AUTH="none", ARBOR_ALLOW_ANONYMOUS=allow
    )
    assert done.returncode == 0 and done.stdout == "started run app/main.py\n"
    assert "WARNING: authentication is off" in done.stderr


@pytest.mark.parametrize("auth", ["password", "oidc"])
def test_authenticated_console_starts(tmp_path, fake_streamlit, auth):
    users = tmp_path / "users.yaml"  # password sign-in needs its users file to exist at start-up
    users.write_text("users: []\n")
    done = run(
        tmp_path,
        [str(fake_streamlit), "run", "app/main.py"],
        ARBOR_AUTH=auth,
        ARBOR_AUTH_USERS_FILE=str(users),
    )
    assert done.returncode == 0 and done.stdout == "started run app/main.py\n" and done.stderr == ""


def test_invalid_configuration_is_refused_with_its_message(tmp_path, fake_streamlit):
    done = run(tmp_path, [str(fake_streamlit), "run"], ARBOR_AUTH="kerberos", ARBOR_ALLOW_ANONYMOUS="1")
    assert done.returncode == 78 and "configuration is invalid" in done.stderr and "ARBOR_AUTH" in done.stderr


def test_other_commands_are_not_checked(tmp_path):
    done = run(tmp_path, [sys.executable, "-c", "print('cli')"])
    assert done.returncode == 0 and done.stdout == "cli\n"


def test_no_command_is_a_usage_error(tmp_path):
    done = run(tmp_path, [])
    assert done.returncode == 64 and "usage" in done.stderr


def test_password_sign_in_without_its_users_file_is_refused(tmp_path, fake_streamlit):
    done = run(tmp_path, [str(fake_streamlit), "run", "app/main.py"], ARBOR_AUTH="password")
    assert done.returncode == 78 and done.stdout == "" and "ARBOR_AUTH_USERS_FILE" in done.stderr
