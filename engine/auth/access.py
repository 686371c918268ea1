"""Who may do what, and signing in: roles and permissions, the lock-out, sessions, OIDC roles.

- **Roles**: ``viewer`` sees every page read-only; ``operator`` may also run things (see
  :data:`OPERATOR_ACTIONS`).
- **Lock-out**: five wrong passwords in a row for one user name lock that name for 60 seconds,
  whether or not the name exists (so the lock does not tell which names exist).
- **Sessions** expire a fixed time after sign-in (``ARBOR_AUTH_SESSION_MINUTES``).

Every clock is injectable (a zero-argument callable returning seconds), so tests drive time.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, get_args

from argon2 import PasswordHasher

from engine.auth.users import UsersStore, verify_password
from engine.config import AuthRole

__all__ = [
    "LOCK_SECONDS",
    "MAX_FAILURES",
    "OPERATOR_ACTIONS",
    "ROLES",
    "WRONG_CREDENTIALS",
    "Action",
    "Authenticator",
    "LockoutTracker",
    "LoginResult",
    "Session",
    "can",
    "denial_reason",
    "role_from_claims",
]

Clock = Callable[[], float]
ROLES: tuple[str, ...] = get_args(AuthRole)
MAX_FAILURES = 5
LOCK_SECONDS = 60.0

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
