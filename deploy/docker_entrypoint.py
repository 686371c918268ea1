"""Docker entrypoint of the Arbor console: check the access settings, then exec the command.

The image binds the console to 0.0.0.0 (every interface of the container), so it refuses to start
with ``ARBOR_AUTH=none`` unless ``ARBOR_ALLOW_ANONYMOUS=1`` says that an open console is meant (for
example behind an authenticating proxy).  The settings come from the one Settings object
(environment and ``.env``), so values are read exactly as the console reads them.

Usage: ``python deploy/docker_entrypoint.py COMMAND [ARG...]``.  Only a console command (``streamlit``)
is checked; others (``python -m engine ...``) listen on nothing and start directly.  Exit status 78
(EX_CONFIG) with a message on stderr when it refuses or the configuration is invalid; otherwise it
becomes COMMAND.
"""

from __future__ import annotations

import os
import sys

from engine.config import ConfigError, load_settings

EX_USAGE = 64
EX_CONFIG = 78

REFUSAL = (
    "arbor: refusing to start: the console listens on every interface (0.0.0.0) and authentication "
    "is off (ARBOR_AUTH=none), so anyone who can reach the port could run queries and read every "
    "trace.  Turn authentication on (ARBOR_AUTH=password or oidc), or set ARBOR_ALLOW_ANONYMOUS=1 if "
    "an open console is intended (e.g. behind an authenticating proxy)."
)


def check() -> str | None:
    """Why the console must not start with the current settings, or None when it may."""
    try:
        settings = load_settings()
    except ConfigError as exc:
        return f"arbor: the configuration is invalid:\n{exc}"
    if settings.auth == "none" and not settings.allow_anonymous:
        return REFUSAL
    return None


def main(argv: list[str]) -> int:
    """Check, then replace this process with ``argv`` (returns only when it refuses)."""
    if not argv:
        print("usage: docker_entrypoint.py COMMAND [ARG...]", file=sys.stderr)
        return EX_USAGE
    if os.path.basename(argv[0]) != "streamlit":
        os.execvp(argv[0], argv)
    problem = check()
    if problem is not None:
        print(problem, file=sys.stderr)
        return EX_CONFIG
    settings = load_settings()
    if settings.auth == "none":
        print("arbor: WARNING: authentication is off and ARBOR_ALLOW_ANONYMOUS=1: the console is open to "
              "anyone who can reach its port.", file=sys.stderr)  # fmt: skip
    os.execvp(argv[0], argv)
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
