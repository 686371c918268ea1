"""The console's users file and password hashes (shared by the console and the CLI).

The users file (``ARBOR_AUTH_USERS_FILE``) is YAML::

    users:
      - name: alice
        password_hash: "$argon2id$v=19$m=65536,t=3,p=4$..."
        role: operator

Hashes are argon2 (``$argon2id$``, ``$argon2i$``, ``$argon2d$``; written by :func:`hash_password`)
or bcrypt (``$2a$``, ``$2b$``, ``$2y$``; accepted, e.g. from ``htpasswd -B``).
:class:`UsersStore` re-reads the file when it changes.
"""

from __future__ import annotations

import contextlib
import hmac
import os
import tempfile
import threading
from pathlib import Path

import bcrypt
import yaml
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from engine.config import AuthRole

__all__ = [
    "MAX_PASSWORD_CHARS",
    "NAME_PATTERN",
    "User",
    "UsersFile",
    "UsersFileError",
    "UsersStore",
    "hash_password",
    "load_users",
    "parse_users",
    "same_password",
    "save_users",
    "upsert_user",
    "verify_password",
]

#: User names: a letter or digit, then letters, digits and ``. _ @ -``; at most 64 characters.
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$"
_ARGON2_PREFIXES = ("$argon2id$", "$argon2i$", "$argon2d$")
_BCRYPT_PREFIXES = ("$2a$", "$2b$", "$2y$")
#: Longest password accepted (characters): argon2 takes any length, but hashing megabytes on
#: every attempt would be a cheap denial of service.
MAX_PASSWORD_CHARS = 1024


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


def same_password(a: str, b: str) -> bool:
    """Constant-time comparison of two typed passwords (the CLI's confirmation prompt)."""
    return hmac.compare_digest(a.encode("utf-8"), b.encode("utf-8"))
