"""``python -m engine auth add-user`` in a subprocess: the password comes from stdin, the file is
created 0600 with an argon2 hash (checked with argon2-cffi itself), and nothing secret is printed."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from argon2 import PasswordHasher
from argon2.exceptions import VerifyMismatchError

ROOT = Path(__file__).resolve().parents[2]


def _cli(*args: str, stdin: str, env: dict[str, str] | None = None, cwd: Path) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith("ARBOR_")}
    base["PYTHONPATH"] = str(ROOT)
    return subprocess.run(
        [sys.executable, "-m", "engine", "auth", "add-user", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env={**base, **(env or {})},
        cwd=cwd,
        timeout=120,
    )


def _users(path: Path) -> dict[str, dict]:
    return {u["name"]: u for u in yaml.safe_load(path.read_text())["users"]}


def test_add_user_writes_a_private_file_with_an_argon2_hash(tmp_path):
    path = tmp_path / "conf" / "users.yaml"
    out = _cli("alice", "--role", "operator", "--users-file", str(path), stdin="tr0ub4dor&3\n", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    alice = _users(path)["alice"]
    assert alice["role"] == "operator"
    assert PasswordHasher().verify(alice["password_hash"], "tr0ub4dor&3")
    printed = out.stdout + out.stderr
    assert "tr0ub4dor" not in printed and alice["password_hash"] not in printed and "$argon2" not in printed
    assert "tr0ub4dor" not in path.read_text()


@pytest.mark.slow
def test_add_user_updates_an_existing_user_and_keeps_the_others(tmp_path):
    path = tmp_path / "users.yaml"
    assert (
        _cli("alice", "--role", "operator", "--users-file", str(path), stdin="one\n", cwd=tmp_path).returncode
        == 0
    )
    assert (
        _cli("bob", "--role", "viewer", "--users-file", str(path), stdin="two\n", cwd=tmp_path).returncode
        == 0
    )
    out = _cli("alice", "--role", "viewer", "--users-file", str(path), stdin="three\n", cwd=tmp_path)
    assert out.returncode == 0 and out.stdout.startswith("updated alice (viewer)")
    users = _users(path)
    assert list(users) == ["alice", "bob"]
    assert users["alice"]["role"] == "viewer"
    PasswordHasher().verify(users["alice"]["password_hash"], "three")
    PasswordHasher().verify(users["bob"]["password_hash"], "two")
    with pytest.raises(VerifyMismatchError):  # the old password no longer matches
        PasswordHasher().verify(users["alice"]["password_hash"], "one")


def test_users_file_from_the_environment_even_before_it_exists(tmp_path):
    # ARBOR_AUTH=password with a users file that does not exist yet: the console would refuse to
    # start, but add-user is how the file gets made
    path = tmp_path / "users.yaml"
    env = {"ARBOR_AUTH": "password", "ARBOR_AUTH_USERS_FILE": str(path)}
    out = _cli("ops", "--role", "operator", stdin="pw\n", env=env, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert _users(path)["ops"]["role"] == "operator"


@pytest.mark.slow
def test_bad_input_exits_2_with_a_message_and_writes_nothing(tmp_path):
    path = tmp_path / "users.yaml"
    cases = [
        (("bad name", "--role", "viewer", "--users-file", str(path)), "pw\n", "bad user name 'bad name'"),
        (("-x", "--role", "viewer", "--users-file", str(path)), "pw\n", "error:"),
        (("carol", "--role", "admin", "--users-file", str(path)), "pw\n", "invalid choice: 'admin'"),
        (("carol", "--role", "viewer", "--users-file", str(path)), "\n", "the password is empty"),
        (("carol", "--role", "viewer"), "pw\n", "give --users-file PATH or set ARBOR_AUTH_USERS_FILE"),
    ]
    for args, stdin, message in cases:
        out = _cli(*args, stdin=stdin, cwd=tmp_path)
        assert out.returncode == 2, (args, out.stderr)
        assert message in out.stderr and "Traceback" not in out.stderr, out.stderr
        assert not path.exists()


def test_a_broken_users_file_is_left_alone(tmp_path):
    path = tmp_path / "users.yaml"
    path.write_text("users: [\n")
    out = _cli("dave", "--role", "viewer", "--users-file", str(path), stdin="pw\n", cwd=tmp_path)
    assert out.returncode == 2
    assert "not valid YAML" in out.stderr and "nothing was written" in out.stderr
    assert path.read_text() == "users: [\n"
