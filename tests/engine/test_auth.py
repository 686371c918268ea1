"""engine.auth: password hashes, the lock-out, sessions, roles, the users file and OIDC role claims.

Oracles: argon2-cffi's and bcrypt's own verify functions, and clock arithmetic done by hand
(480 minutes = 28 800 s; the lock is 60 s from the fifth wrong password)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import bcrypt
import pytest
from argon2 import PasswordHasher

from engine import auth
from engine.config import ConfigError, load_settings

# Cheap argon2 parameters keep the tests fast; verification reads the parameters from the hash.
FAST = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)


class FakeClock:
    """A clock the test moves by hand (seconds)."""

    def __init__(self, t: float = 1_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def _users_file(tmp_path: Path, **users: tuple[str, str]) -> Path:
    """A users file with ``name=(password, role)`` entries, hashed with argon2 itself."""
    body = auth.UsersFile(
        users=tuple(auth.User(name=n, password_hash=FAST.hash(pw), role=r) for n, (pw, r) in users.items())
    )
    path = tmp_path / "users.yaml"
    auth.save_users(path, body)
    return path


def _authenticator(path: Path, clock: FakeClock, lock_clock: FakeClock | None = None) -> auth.Authenticator:
    return auth.Authenticator(
        auth.UsersStore(path),
        session_minutes=480,
        lockout=auth.LockoutTracker(clock=lock_clock or clock),
        clock=clock,
        hasher=FAST,
    )


# -- hashes --------------------------------------------------------------------------------------------


def test_hash_round_trip_agrees_with_argon2s_own_verify():
    h = auth.hash_password("correct horse battery staple")
    assert h.startswith("$argon2id$")
    assert PasswordHasher().verify(h, "correct horse battery staple")  # argon2's own check
    assert auth.verify_password(h, "correct horse battery staple")
    assert not auth.verify_password(h, "correct horse battery stapl")
    assert not auth.verify_password(h, "")


def test_hashes_written_by_argon2_and_bcrypt_directly_are_accepted():
    a = FAST.hash("s3cret")
    b = bcrypt.hashpw(b"s3cret", bcrypt.gensalt(rounds=4)).decode()
    for h in (a, b):
        assert auth.verify_password(h, "s3cret")
        assert not auth.verify_password(h, "S3cret")


def test_malformed_hashes_and_huge_passwords_are_false_not_errors():
    assert not auth.verify_password("$argon2id$v=19$garbage", "x")
    assert not auth.verify_password("$2b$12$short", "x")
    assert not auth.verify_password("plain-text-password", "plain-text-password")
    assert not auth.verify_password(FAST.hash("a"), "a" * (auth.MAX_PASSWORD_CHARS + 1))
    with pytest.raises(ValueError, match="empty"):
        auth.hash_password("")


# -- lock-out ------------------------------------------------------------------------------------------


def test_five_wrong_passwords_lock_the_name_for_sixty_seconds(tmp_path):
    clock = FakeClock()
    authn = _authenticator(_users_file(tmp_path, alice=("right", "operator")), clock)
    for attempt in range(1, 5):
        result = authn.login("alice", "wrong")
        assert result.message == auth.WRONG_CREDENTIALS, attempt
        assert authn.lockout.failures("alice") == attempt
    fifth = authn.login("alice", "wrong")
    assert not fifth.ok and fifth.locked_s == 60.0 and "locked for 60 more seconds" in fifth.message
    # while locked even the right password is refused (and not checked)
    clock.t += 59.5
    locked = authn.login("alice", "right")
    assert not locked.ok and locked.locked_s == pytest.approx(0.5) and "1 more second." in locked.message
    # at 60 s the lock has ended and the count starts from zero
    clock.t += 0.5
    assert authn.lockout.locked_for("alice") == 0.0 and authn.lockout.failures("alice") == 0
    assert authn.login("alice", "right").ok


def test_four_wrong_passwords_do_not_lock_and_a_success_resets_the_count(tmp_path):
    clock = FakeClock()
    authn = _authenticator(_users_file(tmp_path, alice=("right", "viewer")), clock)
    for _ in range(4):
        authn.login("alice", "wrong")
    assert authn.login("alice", "right").ok
    for _ in range(4):
        assert authn.login("alice", "wrong").locked_s == 0.0
    assert authn.lockout.locked_for("alice") == 0.0


def test_unknown_names_lock_like_known_ones_and_names_are_independent(tmp_path):
    clock = FakeClock()
    authn = _authenticator(_users_file(tmp_path, alice=("right", "viewer")), clock)
    answers = [authn.login("mallory", "guess").message for _ in range(5)]
    assert answers[:4] == [auth.WRONG_CREDENTIALS] * 4  # same answer as a known name's wrong password
    assert "locked" in answers[4]
    assert authn.login("alice", "right").ok  # another name is not affected


def test_tracker_bounds_the_names_it_remembers():
    clock = FakeClock()
    tracker = auth.LockoutTracker(max_failures=2, lock_seconds=60, clock=clock, max_names=3)
    for name in ("a", "b", "c", "d"):
        tracker.record_failure(name)
    assert [tracker.failures(n) for n in ("a", "b", "c", "d")] == [0, 1, 1, 1]


# -- sessions ------------------------------------------------------------------------------------------


def test_session_expires_after_480_minutes(tmp_path):
    clock = FakeClock(10_000.0)
    authn = _authenticator(_users_file(tmp_path, bob=("pw", "viewer")), clock)
    session = authn.login("bob", "pw").session
    assert session is not None
    assert (session.user, session.role, session.method) == ("bob", "viewer", "password")
    assert session.expires_at == 10_000.0 + 28_800.0  # 480 min x 60 s
    clock.t = 10_000.0 + 28_799.0
    assert authn.refresh(session) == (session, None)
    clock.t = 10_000.0 + 28_800.0
    assert authn.refresh(session) == (None, "Your session expired: sign in again.")


def test_refresh_follows_role_changes_and_removed_users(tmp_path):
    clock = FakeClock()
    path = _users_file(tmp_path, bob=("pw", "viewer"), carol=("pw2", "operator"))
    authn = _authenticator(path, clock)
    session = authn.login("bob", "pw").session
    users, created = auth.upsert_user(auth.load_users(path), "bob", FAST.hash("pw"), "operator")
    assert not created
    auth.save_users(path, users)
    os.utime(path, ns=(1, 1))  # a different modification time, even on a coarse clock
    refreshed, why = authn.refresh(session)
    assert why is None and refreshed.role == "operator" and refreshed.expires_at == session.expires_at
    auth.save_users(path, auth.UsersFile(users=tuple(u for u in users.users if u.name != "bob")))
    os.utime(path, ns=(2, 2))
    assert authn.refresh(refreshed)[0] is None


def test_session_needs_a_positive_length():
    with pytest.raises(ValueError):
        auth.Session.start("a", "viewer", "password", minutes=0, now=0.0)


# -- roles ---------------------------------------------------------------------------------------------


def test_role_permissions():
    assert auth.can("viewer", "view") and auth.can("operator", "view")
    for action in (
        "run_query",
        "run_search",
        "compare_routers",
        "run_load",
        "run_experiment",
        "capture_golden",
        "change_flags",
    ):
        assert action in auth.OPERATOR_ACTIONS
        assert not auth.can("viewer", action)
        assert auth.can("operator", action)
    assert not auth.can(None, "view")
    assert not auth.can("admin", "view")
    assert not auth.can("operator", "drop_tables")
    assert auth.denial_reason("operator", "run_query") is None
    assert auth.denial_reason("viewer", "run_query") == (
        "Only an operator may run queries: you are signed in as a viewer (read-only)."
    )
    assert auth.denial_reason(None, "run_search") == "Sign in to run searches."


@pytest.mark.parametrize(
    ("claims", "claim", "default", "expected"),
    [
        ({"role": "operator"}, "role", "viewer", "operator"),
        ({"role": " Operator "}, "role", "viewer", "operator"),
        ({"roles": ["dev", "operator"]}, "roles", "viewer", "operator"),
        ({"roles": ["viewer", "operator"]}, "roles", "viewer", "operator"),
        ({"roles": ["viewer"]}, "roles", "operator", "viewer"),
        ({"realm_access": {"roles": ["operator"]}}, "realm_access.roles", "viewer", "operator"),
        ({"roles": ["admin"]}, "roles", "viewer", "viewer"),
        ({"roles": 7}, "roles", "viewer", "viewer"),
        ({}, "roles", "operator", "operator"),
        ({"role": "operator"}, None, "viewer", "viewer"),
    ],
)
def test_oidc_role_from_claims(claims, claim, default, expected):
    assert auth.role_from_claims(claims, claim, default) == expected


# -- users file ----------------------------------------------------------------------------------------


def test_users_file_is_written_0600_and_reads_back(tmp_path):
    path = _users_file(tmp_path, alice=("a", "operator"), bob=("b", "viewer"))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    users = auth.load_users(path)
    assert [(u.name, u.role) for u in users.users] == [("alice", "operator"), ("bob", "viewer")]
    assert FAST.verify(users.get("bob").password_hash, "b")
    assert users.get("Bob") is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("users: [", "not valid YAML at line"),
        ("- a\n- b\n", "expected a mapping"),
        ("users:\n  - {name: a, password_hash: '$argon2id$x', role: admin}\n", "users[0].role"),
        ("users:\n  - {name: 'a b', password_hash: '$argon2id$x', role: viewer}\n", "users[0].name"),
        ("users:\n  - {name: a, password_hash: hunter2, role: viewer}\n", "argon2"),
        (
            "users:\n  - {name: a, password_hash: '$argon2id$x', role: viewer}\n"
            "  - {name: a, password_hash: '$argon2id$y', role: viewer}\n",
            "appears twice",
        ),
        ("user: []\n", "Extra inputs"),
    ],
)
def test_bad_users_files_are_clear_errors(tmp_path, text, message):
    path = tmp_path / "users.yaml"
    path.write_text(text)
    with pytest.raises(auth.UsersFileError, match=r"users\.yaml") as info:
        auth.load_users(path)
    assert message in str(info.value)
    assert "hunter2" not in str(info.value)  # a mistaken plain password is never echoed


def test_empty_users_file_has_no_users_and_missing_file_is_an_error(tmp_path):
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    assert auth.load_users(empty).users == ()
    with pytest.raises(auth.UsersFileError, match="cannot be read"):
        auth.UsersStore(tmp_path / "missing.yaml").current()


# -- settings ------------------------------------------------------------------------------------------


def test_password_mode_needs_a_readable_users_file(monkeypatch, tmp_path):
    monkeypatch.delenv("ARBOR_AUTH_USERS_FILE", raising=False)
    with pytest.raises(ConfigError, match=r"^ARBOR_AUTH_USERS_FILE: required when ARBOR_AUTH=password"):
        load_settings(auth="password")
    monkeypatch.setenv("ARBOR_AUTH", "Password")
    monkeypatch.setenv("ARBOR_AUTH_USERS_FILE", str(tmp_path / "nope.yaml"))
    with pytest.raises(ConfigError, match=r"^ARBOR_AUTH_USERS_FILE: .*nope.yaml is not a file"):
        load_settings()
    path = _users_file(tmp_path, a=("a", "viewer"))
    monkeypatch.setenv("ARBOR_AUTH_USERS_FILE", str(path))
    settings = load_settings()
    assert (settings.auth, settings.auth_users_file, settings.auth_session_minutes) == ("password", path, 480)
    assert load_settings(auth="none", auth_users_file=tmp_path / "nope.yaml").auth == "none"


def test_auth_settings_are_validated(monkeypatch):
    monkeypatch.setenv("ARBOR_AUTH_SESSION_MINUTES", "0")
    monkeypatch.setenv("ARBOR_AUTH_DEFAULT_ROLE", "admin")
    monkeypatch.setenv("ARBOR_AUTH", "ldap")
    with pytest.raises(ConfigError) as info:
        load_settings()
    lines = str(info.value).splitlines()
    assert [line.split(":")[0] for line in lines] == [
        "ARBOR_AUTH",
        "ARBOR_AUTH_SESSION_MINUTES",
        "ARBOR_AUTH_DEFAULT_ROLE",
    ]
    monkeypatch.setenv("ARBOR_AUTH", "oidc")
    monkeypatch.setenv("ARBOR_AUTH_SESSION_MINUTES", "15")
    monkeypatch.setenv("ARBOR_AUTH_DEFAULT_ROLE", " Operator")
    monkeypatch.setenv("ARBOR_AUTH_ROLE_CLAIM", "  ")
    s = load_settings()
    assert (s.auth, s.auth_session_minutes, s.auth_default_role, s.auth_role_claim) == (
        "oidc",
        15,
        "operator",
        None,
    )
