"""Console access control without Streamlit: users, password hashes, lock-outs, sessions, roles.

The console (``app/auth.py``) and the CLI (``python -m engine auth add-user``) share this module.

- **Users file** (``ARBOR_AUTH_USERS_FILE``), YAML::

      users:
        - name: alice
          password_hash: "$argon2id$v=19$m=65536,t=3,p=4$..."
          role: operator

  Hashes are argon2 (``$argon2id$``, ``$argon2i$``, ``$argon2d$``; written by this module) or
  bcrypt (``$2a$``, ``$2b$``, ``$2y$``; accepted, e.g. from ``htpasswd -B``).
- **Lock-out**: five wrong passwords in a row for one user name lock that name for 60 seconds,
  whether or not the name exists (so the lock does not tell which names exist).
- **Sessions** expire a fixed time after sign-in (``ARBOR_AUTH_SESSION_MINUTES``).
- **Roles**: ``viewer`` sees every page read-only; ``operator`` may also run things (see
  :data:`OPERATOR_ACTIONS`).

Every clock is injectable (a zero-argument callable returning seconds), so tests drive time.
"""

from __future__ import annotations

import contextlib
import hmac
import os
import re
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args

import bcrypt
import yaml
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from engine.config import AuthRole

__all__ = [
    "LOCK_SECONDS",
    "MAX_FAILURES",
    "MAX_PASSWORD_CHARS",
    "NAME_PATTERN",
    "OPERATOR_ACTIONS",
    "ROLES",
    "WRONG_CREDENTIALS",
    "Action",
    "Authenticator",
    "LockoutTracker",
    "LoginResult",
    "Session",
    "User",
    "UsersFile",
    "UsersFileError",
    "UsersStore",
    "can",
    "denial_reason",
    "hash_password",
    "load_users",
    "parse_users",
    "role_from_claims",
    "same_password",
    "save_users",
    "upsert_user",
    "verify_password",
]

Clock = Callable[[], float]
ROLES: tuple[str, ...] = get_args(AuthRole)
MAX_FAILURES = 5
LOCK_SECONDS = 60.0
#: User names: a letter or digit, then letters, digits and ``. _ @ -``; at most 64 characters.
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$"
_NAME_RE = re.compile(NAME_PATTERN)
_ARGON2_PREFIXES = ("$argon2id$", "$argon2i$", "$argon2d$")
_BCRYPT_PREFIXES = ("$2a$", "$2b$", "$2y$")
#: Longest password accepted (characters): argon2 takes any length, but hashing megabytes on
#: every attempt would be a cheap denial of service.
MAX_PASSWORD_CHARS = 1024

Action = Literal[
    "view",
    "run_query",
    "run_search",
    "compare_routers",
    "run_load",
    "run_experiment",
    "capture_golden",
    "change_flags",
]
#: What only an operator may do; a viewer may only ``view``.
OPERATOR_ACTIONS: frozenset[str] = frozenset(set(get_args(Action)) - {"view"})
_ACTION_TEXT = {
    "view": "view this page",
    "run_query": "run queries",
    "run_search": "run searches",
    "compare_routers": "run the router comparison",
    "run_load": "run loads",
    "run_experiment": "run experiments",
    "capture_golden": "capture golden traces",
    "change_flags": "change feature flags",
}


def can(role: str | None, action: str) -> bool:
    """Whether ``role`` may do ``action``.  An unknown role or action is never allowed.

    ``viewer`` may ``view``; ``operator`` may do every :data:`Action`.
    """
    if action not in _ACTION_TEXT or role not in ROLES:
        return False
    return role == "operator" or action not in OPERATOR_ACTIONS


def denial_reason(role: str | None, action: str) -> str | None:
    """None when ``role`` may do ``action``, else one sentence saying why not (for the console;
    it quotes no user input, so it is safe to show as markdown)."""
    if can(role, action):
        return None
    what = _ACTION_TEXT.get(action, "do this")
    if role is None:
        return f"Sign in to {what}."
    if role not in ROLES:
        return f"Only an operator may {what}: your role is not known."
    return f"Only an operator may {what}: you are signed in as a {role} (read-only)."


# -- users file --------------------------------------------------------------------------------------


class UsersFileError(ValueError):
    """The users file cannot be read or is not valid; the message says where and why."""


class User(BaseModel):
    """One console user: name, password hash (argon2 or bcrypt) and role."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=NAME_PATTERN)
    password_hash: str = Field(min_length=1, max_length=1024)
    role: AuthRole

    @field_validator("password_hash")
    @classmethod
    def _known_scheme(cls, value: str) -> str:
        value = value.strip()
        if not value.startswith(_ARGON2_PREFIXES + _BCRYPT_PREFIXES):
            raise ValueError("must be an argon2 ($argon2id$...) or bcrypt ($2b$...) hash")
        return value


class UsersFile(BaseModel):
    """The whole users file: ``users:`` a list of :class:`User`, names unique."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    users: tuple[User, ...] = ()

    @model_validator(mode="after")
    def _unique(self) -> UsersFile:
        seen: set[str] = set()
        for user in self.users:
            if user.name in seen:
                raise ValueError(f"user {user.name!r} appears twice")
            seen.add(user.name)
        return self

    def get(self, name: str) -> User | None:
        """The user called ``name`` (exact, case-sensitive), or None."""
        return next((u for u in self.users if u.name == name), None)


def _problems(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors(include_url=False, include_input=False):
        loc = err.get("loc") or ()
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".") or "file"
        parts.append(f"{where}: {err['msg'].removeprefix('Value error, ')}")
    return "; ".join(parts)


def parse_users(text: str, source: str = "users file") -> UsersFile:
    """Parse the YAML text of a users file.  An empty document is a file with no users.

    Raises :class:`UsersFileError` naming ``source`` and each problem (never quoting a hash).
    """
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise UsersFileError(f"{source}: not valid YAML{where}") from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise UsersFileError(f"{source}: expected a mapping with a 'users' list")
    try:
        return UsersFile.model_validate(raw)
    except ValidationError as exc:
        raise UsersFileError(f"{source}: {_problems(exc)}") from None


def load_users(path: Path) -> UsersFile:
    """Read and validate the users file at ``path`` (raises :class:`UsersFileError`)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
        raise UsersFileError(f"{path}: cannot be read ({reason})") from None
    return parse_users(text, str(path))


def save_users(path: Path, users: UsersFile) -> None:
    """Write ``users`` to ``path`` atomically, readable and writable by the owner only (0600).

    The file is written to a temporary file in the same directory and renamed over ``path``, so a
    crash leaves either the old or the new file, never half of one.  Raises OSError.
    """
    path = Path(path)
    payload = {"users": [u.model_dump() for u in users.users]}
    text = (
        "# Arbor console users (python -m engine auth add-user). Hashes only, never passwords.\n"
        + yaml.safe_dump(payload, sort_keys=False, default_flow_style=False)
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)  # created 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def upsert_user(users: UsersFile, name: str, password_hash: str, role: str) -> tuple[UsersFile, bool]:
    """``users`` with ``name`` added, or replaced if present; and whether it was new.

    Raises :class:`UsersFileError` for a bad name, hash or role.
    """
    try:
        # model_validate: ``role`` is checked against AuthRole here, not by the caller's type
        user = User.model_validate({"name": name, "password_hash": password_hash, "role": role})
    except ValidationError as exc:
        raise UsersFileError(_problems(exc)) from None
    created = users.get(name) is None
    if created:
        return UsersFile(users=(*users.users, user)), True
    return UsersFile(users=tuple(user if u.name == name else u for u in users.users)), False


class UsersStore:
    """The users file, re-read when it changes (by modification time and size), thread-safe.

    A user added with the CLI can sign in without restarting the console, and a removed user or a
    changed role takes effect at that user's next page interaction.
    """

    def __init__(self, path: Path) -> None:
        self._path = Path(path)
        self._lock = threading.Lock()
        self._stamp: tuple[int, int] | None = None
        self._users: UsersFile | None = None

    @property
    def path(self) -> Path:
        """The users file."""
        return self._path

    def current(self) -> UsersFile:
        """The users as the file holds them now.  Raises :class:`UsersFileError` when the file is
        missing or invalid (the console then lets nobody in: it fails closed)."""
        try:
            st = self._path.stat()
        except OSError as exc:
            raise UsersFileError(f"{self._path}: cannot be read ({exc.strerror})") from None
        stamp = (st.st_mtime_ns, st.st_size)
        with self._lock:
            if self._users is None or stamp != self._stamp:
                self._users = load_users(self._path)
                self._stamp = stamp
            return self._users


# -- passwords -------------------------------------------------------------------------------------


def hash_password(password: str, hasher: PasswordHasher | None = None) -> str:
    """An argon2id hash of ``password`` (argon2-cffi's RFC 9106 low-memory defaults).

    Raises ValueError for an empty password or one longer than :data:`MAX_PASSWORD_CHARS`.
    """
    if not password:
        raise ValueError("the password is empty")
    if len(password) > MAX_PASSWORD_CHARS:
        raise ValueError(f"the password is longer than {MAX_PASSWORD_CHARS} characters")
    return (hasher or PasswordHasher()).hash(password)


def verify_password(password_hash: str, password: str, hasher: PasswordHasher | None = None) -> bool:
    """Whether ``password`` matches ``password_hash`` (argon2 or bcrypt).

    Never raises: a wrong password, a malformed hash or an over-long password is False.
    """
    if len(password) > MAX_PASSWORD_CHARS:
        return False
    if password_hash.startswith(_ARGON2_PREFIXES):
        try:
            return (hasher or PasswordHasher()).verify(password_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False
    if password_hash.startswith(_BCRYPT_PREFIXES):
        secret = password.encode("utf-8")
        if len(secret) > 72:  # bcrypt 5 refuses longer secrets rather than truncating them
            return False
        try:
            return bcrypt.checkpw(secret, password_hash.encode("ascii"))
        except (ValueError, UnicodeEncodeError):
            return False
    return False


# -- lock-out --------------------------------------------------------------------------------------


class LockoutTracker:
    """Counts consecutive wrong passwords per user name; ``max_failures`` of them lock the name
    for ``lock_seconds``.  Thread-safe: one tracker is shared by every session of the console.

    While a name is locked no password is checked.  When the lock ends the count starts again
    from zero; a right password also resets it.  At most ``max_names`` names are tracked (the
    least recently failed are forgotten first), so random names cannot grow memory without bound.
    """

    def __init__(
        self,
        max_failures: int = MAX_FAILURES,
        lock_seconds: float = LOCK_SECONDS,
        *,
        clock: Clock = time.monotonic,
        max_names: int = 10_000,
    ) -> None:
        if max_failures < 1 or lock_seconds <= 0 or max_names < 1:
            raise ValueError("max_failures and max_names must be >= 1 and lock_seconds > 0")
        self._max = max_failures
        self._seconds = lock_seconds
        self._clock = clock
        self._max_names = max_names
        self._lock = threading.Lock()
        # name -> (consecutive failures, locked until or None)
        self._state: OrderedDict[str, tuple[int, float | None]] = OrderedDict()

    def _expire(self, name: str, now: float) -> None:
        entry = self._state.get(name)
        if entry is not None and entry[1] is not None and now >= entry[1]:
            del self._state[name]

    def locked_for(self, name: str) -> float:
        """Seconds until ``name`` is unlocked; 0.0 when it is not locked."""
        with self._lock:
            now = self._clock()
            self._expire(name, now)
            entry = self._state.get(name)
            return 0.0 if entry is None or entry[1] is None else entry[1] - now

    def failures(self, name: str) -> int:
        """Consecutive wrong passwords recorded for ``name`` (0 after a lock has ended)."""
        with self._lock:
            self._expire(name, self._clock())
            entry = self._state.get(name)
            return 0 if entry is None else entry[0]

    def record_failure(self, name: str) -> float:
        """Count one wrong password for ``name``; return the seconds it is now locked (0.0 if not)."""
        with self._lock:
            now = self._clock()
            self._expire(name, now)
            count, until = self._state.pop(name, (0, None))
            if until is None:
                count += 1
                if count >= self._max:
                    until = now + self._seconds
            self._state[name] = (count, until)
            while len(self._state) > self._max_names:
                self._state.popitem(last=False)
            return 0.0 if until is None else until - now

    def record_success(self, name: str) -> None:
        """Forget ``name``'s wrong passwords."""
        with self._lock:
            self._state.pop(name, None)


# -- sessions and sign-in --------------------------------------------------------------------------


@dataclass(frozen=True)
class Session:
    """A signed-in user: who, which role, how, and when it ends (clock seconds)."""

    user: str
    role: AuthRole
    method: Literal["password", "oidc"]
    started_at: float
    expires_at: float

    @classmethod
    def start(
        cls, user: str, role: AuthRole, method: Literal["password", "oidc"], *, minutes: int, now: float
    ) -> Session:
        """A session from ``now`` lasting ``minutes`` (>= 1)."""
        if minutes < 1:
            raise ValueError("a session lasts at least one minute")
        return cls(user=user, role=role, method=method, started_at=now, expires_at=now + minutes * 60.0)

    def expired(self, now: float) -> bool:
        """True from ``expires_at`` on."""
        return now >= self.expires_at

    def remaining_s(self, now: float) -> float:
        """Seconds left (0.0 once expired)."""
        return max(0.0, self.expires_at - now)


@dataclass(frozen=True)
class LoginResult:
    """The outcome of one sign-in attempt: a session, or a message to show."""

    session: Session | None
    message: str | None
    locked_s: float = 0.0

    @property
    def ok(self) -> bool:
        """True when the user is signed in."""
        return self.session is not None


WRONG_CREDENTIALS = "Wrong user name or password."


class Authenticator:
    """Password sign-in against a :class:`UsersStore`, with a shared :class:`LockoutTracker`.

    ``clock`` (seconds, wall time by default) dates sessions; the tracker has its own clock.
    Unknown names cost the same argon2 verification as known ones, and get the same message and
    the same lock-out, so neither the answer nor the lock tells which names exist.
    """

    def __init__(
        self,
        users: UsersStore,
        *,
        session_minutes: int,
        lockout: LockoutTracker | None = None,
        clock: Clock = time.time,
        hasher: PasswordHasher | None = None,
    ) -> None:
        self.users = users
        self.lockout = lockout if lockout is not None else LockoutTracker()
        self.session_minutes = session_minutes
        self.clock = clock
        self._hasher = hasher or PasswordHasher()
        self._dummy_hash = self._hasher.hash("arbor-no-such-user")

    def login(self, name: str, password: str) -> LoginResult:
        """Check ``name`` and ``password``.  Raises :class:`UsersFileError` when the users file is
        unreadable (nobody is let in)."""
        name = name.strip()
        if not name or not password:
            return LoginResult(None, "Enter a user name and a password.")
        locked = self.lockout.locked_for(name)
        if locked > 0:
            return LoginResult(None, _locked_message(locked), locked_s=locked)
        user = self.users.current().get(name)
        matched = verify_password(user.password_hash if user else self._dummy_hash, password, self._hasher)
        if user is None or not matched:
            locked = self.lockout.record_failure(name)
            if locked > 0:
                return LoginResult(None, _locked_message(locked), locked_s=locked)
            return LoginResult(None, WRONG_CREDENTIALS)
        self.lockout.record_success(name)
        session = Session.start(
            user.name, user.role, "password", minutes=self.session_minutes, now=self.clock()
        )
        return LoginResult(session, None)

    def refresh(self, session: Session) -> tuple[Session | None, str | None]:
        """Re-check a password session at a page interaction: ``(session, None)`` while it is valid
        (with the user's current role), else ``(None, why)`` — expired, or the user was removed.
        Raises :class:`UsersFileError` when the users file became unreadable."""
        if session.expired(self.clock()):
            return None, "Your session expired: sign in again."
        user = self.users.current().get(session.user)
        if user is None:
            return None, "Your user was removed from the users file: ask an administrator."
        if user.role != session.role:
            session = Session(session.user, user.role, session.method, session.started_at, session.expires_at)
        return session, None


def _locked_message(seconds: float) -> str:
    whole = max(1, int(seconds + 0.999))
    return (
        f"Too many wrong passwords for this user name: it is locked for {whole} more second"
        f"{'s' if whole != 1 else ''}."
    )


def same_password(a: str, b: str) -> bool:
    """Constant-time comparison of two typed passwords (the CLI's confirmation prompt)."""
    return hmac.compare_digest(a.encode("utf-8"), b.encode("utf-8"))


# -- OIDC ----------------------------------------------------------------------------------------------


def _claim(claims: Mapping[str, Any], path: str) -> Any:
    if path in claims:
        return claims[path]
    value: Any = claims
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def role_from_claims(claims: Mapping[str, Any], claim: str | None, default: AuthRole) -> AuthRole:
    """The role of an OIDC user: from the claim named ``claim`` (``ARBOR_AUTH_ROLE_CLAIM``), else
    ``default`` (``ARBOR_AUTH_DEFAULT_ROLE``).

    The claim may be a string (``"operator"``) or a list of strings (``["operator", "dev"]``),
    case-insensitive; a dotted name (``realm_access.roles``) walks nested objects.  A list naming
    both roles gives ``operator``; a claim that names neither role, or is absent, gives ``default``.
    """
    if not claim:
        return default
    value = _claim(claims, claim)
    values: Iterable[Any]
    if isinstance(value, str):
        values = [value]
    elif isinstance(value, list | tuple):
        values = value
    else:
        return default
    named = {v.strip().lower() for v in values if isinstance(v, str)}
    if "operator" in named:
        return "operator"
    if "viewer" in named:
        return "viewer"
    return default
