"""Console access control without Streamlit: users, password hashes, lock-outs, sessions, roles.

The console (``app/auth.py``) and the CLI (``python -m engine auth add-user``) share this package:
:mod:`engine.auth.users` (the users file, password hashes) and :mod:`engine.auth.access` (roles and
permissions, the lock-out, sessions and sign-in, OIDC role claims).  Import from ``engine.auth``.

- **Users file** (``ARBOR_AUTH_USERS_FILE``), YAML::

      users:
        - name: alice
          password_hash: "$argon2id$v=19$m=65536,t=3,p=4$..."
          role: operator

  Hashes are argon2 (``$argon2id$``, ``$argon2i$``, ``$argon2d$``; written by :func:`hash_password`) or
  bcrypt (``$2a$``, ``$2b$``, ``$2y$``; accepted, e.g. from ``htpasswd -B``).
- **Lock-out**: five wrong passwords in a row for one user name lock that name for 60 seconds,
  whether or not the name exists (so the lock does not tell which names exist).
- **Sessions** expire a fixed time after sign-in (``ARBOR_AUTH_SESSION_MINUTES``).
- **Roles**: ``viewer`` sees every page read-only; ``operator`` may also run things (see
  :data:`OPERATOR_ACTIONS`).

Every clock is injectable (a zero-argument callable returning seconds), so tests drive time.
"""

from engine.auth.access import (
    LOCK_SECONDS,
    MAX_FAILURES,
    OPERATOR_ACTIONS,
    ROLES,
    WRONG_CREDENTIALS,
    Action,
    Authenticator,
    LockoutTracker,
    LoginResult,
    Session,
    can,
    denial_reason,
    role_from_claims,
)
from engine.auth.users import (
    MAX_PASSWORD_CHARS,
    NAME_PATTERN,
    User,
    UsersFile,
    UsersFileError,
    UsersStore,
    hash_password,
    load_users,
    parse_users,
    same_password,
    save_users,
    upsert_user,
    verify_password,
)

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
