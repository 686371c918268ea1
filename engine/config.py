"""Arbor settings: one validated object, read from ``ARBOR_*`` environment variables and ``.env``.

Precedence, highest first: keyword overrides passed to :func:`load_settings`,
environment variables, the ``.env`` file in the current directory, the defaults
below.  Every value is validated when the object is built; use
:func:`load_settings` to get a :class:`ConfigError` whose message names the
offending ``ARBOR_`` variable, one line per problem.

Secrets (API keys) are :class:`pydantic.SecretStr`: ``repr`` and
:meth:`Settings.safe_dict` mask them, so settings can be logged or shown in the
console without leaking keys.  Read a key with ``settings.openai_api_key.get_secret_value()``
only where it is sent to its provider.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict, SettingsError

from engine.names import ProviderName
from observability.redaction import redact_url

__all__ = [
    "ENV_PREFIX",
    "SECRET_MASK",
    "AuthRole",
    "ConfigError",
    "LLMProvider",
    "LogLevel",
    "Settings",
    "env_name",
    "load_settings",
]

ENV_PREFIX = "ARBOR_"
SECRET_MASK = "**********"

LLMProvider = ProviderName
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]
AuthRole = Literal["viewer", "operator"]


class ConfigError(ValueError):
    """Invalid configuration. The message has one line per problem, each naming its ``ARBOR_`` variable."""


def _check_http_url(value: str) -> str:
    """Return ``value`` without a trailing slash if it is an absolute http(s) URL, else raise ValueError.

    The messages never quote the value: a URL may carry credentials.
    """
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http:// or https:// URL with a host")
    try:
        parts.port  # noqa: B018 - raises ValueError on a non-numeric or out-of-range port
    except ValueError:
        raise ValueError("has an invalid port") from None
    return value.rstrip("/")


_URL_FIELDS = (
    "prometheus_url",
    "lmstudio_base_url",
    "openai_base_url",
    "anthropic_base_url",
    "otlp_endpoint",
)


class Settings(BaseSettings):
    """All of Arbor's settings.  Build it with :func:`load_settings` (or ``Settings()``)."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        case_sensitive=False,
        validate_default=True,
    )

    # Storage and telemetry
    db_path: Path = Field(
        default=Path("data/runtime/arbor.db"),
        description="SQLite store (requests, spans, MCTS runs, experiments, ...).",
    )
    metrics_port: int = Field(
        default=9464, ge=0, le=65535, description="Prometheus exporter port; 0 disables the exporter."
    )
    prometheus_url: str | None = Field(
        default=None,
        description="Prometheus server the console queries; unset: no Prometheus source.  Credentials "
        "in it (user:password@, token query parameters) are masked wherever it is shown.",
    )
    prometheus_timeout_s: float = Field(
        default=5.0,
        gt=0,
        le=120,
        description="Total deadline of one Prometheus query (connect, send, read the whole reply).",
    )
    prometheus_username: str | None = Field(
        default=None, description="Basic-auth user for Prometheus (wins over a user in the URL)."
    )
    prometheus_password: SecretStr | None = Field(
        default=None, description="Basic-auth password for Prometheus (needs the user)."
    )
    prometheus_bearer_token: SecretStr | None = Field(
        default=None, description="Bearer token sent to Prometheus (instead of basic auth)."
    )
    telemetry: Literal["on", "off"] = Field(
        default="on", description="'off' turns off the store and metrics (to measure their cost)."
    )
    log_level: LogLevel = Field(default="INFO", description="Python logging level.")
    metrics_dir: Path | None = Field(
        default=None,
        description="Shared directory for Prometheus multiprocess mode (console + CLI workloads); unset: "
        "one process.",
    )
    otlp_endpoint: str | None = Field(default=None, description="OTLP/HTTP collector base URL for spans.")
    durability: Literal["async", "commit"] = Field(
        default="async",
        description="'async': a request returns before its rows are committed (bounded backlog, "
        "producers wait when it is full); 'commit': it returns only after they are committed.",
    )
    store_max_backlog: int = Field(
        default=2000,
        ge=1,
        le=1_000_000,
        description="Requests (store submissions) queued for the writer at most ('async' mode bound).",
    )
    store_max_defer_s: float = Field(
        default=1.0,
        ge=0.0,
        le=60.0,
        description="Longest the store's writer holds queued rows while requests are running, so it "
        "does not compete with them for the interpreter (s; 0: never held).",
    )

    # LLM providers
    llm_provider: LLMProvider = Field(default="offline", description="Default LLM provider.")
    openai_api_key: SecretStr | None = Field(default=None, description="OpenAI API key.")
    anthropic_api_key: SecretStr | None = Field(default=None, description="Anthropic API key.")
    lmstudio_base_url: str = Field(
        default="http://127.0.0.1:1234/v1", description="LM Studio's OpenAI-compatible endpoint."
    )
    llm_timeout_s: float = Field(default=30.0, gt=0, le=600, description="Total time of one LLM attempt, s.")
    openai_base_url: str = Field(default="https://api.openai.com/v1", description="OpenAI API base URL.")
    openai_model: str = Field(default="gpt-4o-mini", min_length=1, description="OpenAI model.")
    anthropic_base_url: str = Field(
        default="https://api.anthropic.com", description="Anthropic API base URL (without /v1)."
    )
    anthropic_model: str = Field(
        default="claude-3-5-haiku-latest", min_length=1, description="Anthropic model."
    )
    lmstudio_model: str = Field(default="local-model", min_length=1, description="LM Studio model name.")
    llm_max_attempts: int = Field(default=3, ge=1, le=10, description="Attempts per LLM request.")
    llm_backoff_base_s: float = Field(default=0.5, gt=0, le=60, description="First retry back-off cap.")
    llm_backoff_max_s: float = Field(
        default=8.0, gt=0, le=300, description="Largest back-off (and Retry-After)."
    )
    llm_breaker_failure_threshold: int = Field(default=5, ge=1, le=1000, description="Failures that open.")
    llm_breaker_reset_timeout_s: float = Field(default=30.0, gt=0, le=3600, description="Open -> half-open.")
    llm_breaker_half_open_max_calls: int = Field(default=1, ge=1, le=100, description="Half-open probes.")

    # Access (enforced by the console; the Docker entrypoint refuses auth none unless allow_anonymous)
    auth: Literal["none", "password", "oidc"] = Field(
        default="none", description="Console authentication; 'none' is for loopback-only use."
    )
    allow_anonymous: bool = Field(
        default=False, description="Allow auth 'none' where the console listens beyond loopback (Docker)."
    )

    # MCTS defaults
    mcts_iterations: int = Field(default=1000, ge=1, le=10000, description="MCTS iterations per search.")
    mcts_c: float = Field(default=1.414, ge=0, le=100, description="Exploration constant.")
    mcts_seed: int | None = Field(
        default=None, ge=0, description="Search seed; unset: a seed is generated and recorded."
    )
    snapshot_every: int = Field(
        default=50, ge=1, le=10000, description="Emit a tree snapshot every N iterations."
    )

    # Golden traces (engine/golden; README "Golden traces")
    golden_dir: Path = Field(default=Path("data/golden"), description="The golden-trace suite directory.")
    experiments_dir: Path = Field(
        default=Path("data/experiments"), description="The experiment specs directory (YAML specs)."
    )
    golden_repeat: int = Field(
        default=5, ge=1, le=50, description="Replays of a request at capture (latency: their median)."
    )
    golden_prob_tolerance: float = Field(
        default=1e-6, ge=0, le=1, description="Routing probability difference that is not a divergence."
    )
    golden_quality_tolerance: float = Field(
        default=0.0, ge=0, le=1, description="A trace regresses when quality < golden quality - this."
    )
    golden_latency_tolerance: float = Field(
        default=0.25, ge=0, le=10, description="Suite latency: median relative slow-down that may regress."
    )
    golden_latency_alpha: float = Field(
        default=0.05, gt=0, lt=1, description="Suite latency: significance level of the Wilcoxon test."
    )

    # Console access control (README "Security"; ARBOR_AUTH and ARBOR_ALLOW_ANONYMOUS are above)
    auth_users_file: Path | None = Field(
        default=None,
        description="YAML file of console users (name, argon2/bcrypt hash, role); required by "
        "ARBOR_AUTH=password.",
    )
    auth_session_minutes: int = Field(
        default=480, ge=1, le=10080, description="A console sign-in expires after this many minutes."
    )
    auth_role_claim: str | None = Field(
        default=None,
        description="OIDC: the claim holding the role (viewer or operator; dotted path allowed); "
        "unset: ARBOR_AUTH_DEFAULT_ROLE for everyone.",
    )
    auth_default_role: AuthRole = Field(
        default="viewer", description="OIDC: the role of a user whose claim names no role."
    )

    @field_validator(
        "prometheus_url",
        "prometheus_username",
        "prometheus_password",
        "prometheus_bearer_token",
        "openai_api_key",
        "anthropic_api_key",
        "mcts_seed",
        "metrics_dir",
        "otlp_endpoint",
        "auth_users_file",
        "auth_role_claim",
        mode="before",
    )
    @classmethod
    def _blank_is_unset(cls, value: Any) -> Any:
        """An empty or blank value (``ARBOR_PROMETHEUS_URL=``) means "not set"."""
        if isinstance(value, str) and not value.strip():
            return None
        if isinstance(value, SecretStr) and not value.get_secret_value().strip():
            return None
        return value

    @field_validator("telemetry", "llm_provider", "durability", "auth", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("auth_default_role", mode="before")
    @classmethod
    def _lower_role(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.strip().upper() if isinstance(value, str) else value

    @field_validator("prometheus_url", "otlp_endpoint")
    @classmethod
    def _prometheus_url(cls, value: str | None) -> str | None:
        return None if value is None else _check_http_url(value.strip())

    @field_validator("prometheus_password")
    @classmethod
    def _password_needs_user(cls, value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        if value is not None and info.data.get("prometheus_username") is None:
            raise ValueError("needs ARBOR_PROMETHEUS_USERNAME too (basic auth)")
        return value

    @field_validator("prometheus_bearer_token")
    @classmethod
    def _token_or_basic(cls, value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        url = info.data.get("prometheus_url")
        url_user = urlsplit(url).username if url else None
        if value is not None and (info.data.get("prometheus_username") is not None or url_user):
            raise ValueError(
                "set either a bearer token or basic auth (ARBOR_PROMETHEUS_USERNAME/_PASSWORD, or a "
                "user in ARBOR_PROMETHEUS_URL), not both"
            )
        return value

    @field_validator("lmstudio_base_url", "openai_base_url", "anthropic_base_url")
    @classmethod
    def _base_url(cls, value: str) -> str:
        return _check_http_url(value.strip())

    @field_validator("auth_role_claim")
    @classmethod
    def _strip_claim(cls, value: str | None) -> str | None:
        return None if value is None else value.strip()

    @field_validator("auth_users_file")
    @classmethod
    def _users_file_readable(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        """``ARBOR_AUTH=password`` needs a users file that can be read (its content is checked by
        :func:`engine.auth.load_users` when the console starts)."""
        if info.data.get("auth") != "password":
            return value
        if value is None:
            raise ValueError(
                "required when ARBOR_AUTH=password (create it with `python -m engine auth add-user NAME "
                "--role operator --users-file PATH`)"
            )
        if not value.is_file():
            raise ValueError(f"{value} is not a file (needed by ARBOR_AUTH=password)")
        if not os.access(value, os.R_OK):
            raise ValueError(f"{value} cannot be read by this process (needed by ARBOR_AUTH=password)")
        return value

    @property
    def telemetry_enabled(self) -> bool:
        """True unless ``ARBOR_TELEMETRY=off``."""
        return self.telemetry == "on"

    @property
    def metrics_enabled(self) -> bool:
        """True when telemetry is on and the exporter port is not 0."""
        return self.telemetry_enabled and self.metrics_port != 0

    def safe_dict(self) -> dict[str, Any]:
        """A plain dict of every setting that is safe to log or display.

        Secrets appear as ``"**********"`` (or ``None`` when unset), credentials inside a URL
        (a password or token in its userinfo, token-like query parameters) are masked the same
        way (:func:`observability.redaction.redact_url`), and paths are ``str``.
        """
        out: dict[str, Any] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, SecretStr):
                value = SECRET_MASK
            elif name in _URL_FIELDS and value is not None:
                value = redact_url(value)
            elif isinstance(value, Path):
                value = str(value)
            out[name] = value
        return out


def env_name(field: str) -> str:
    """The environment variable that sets ``field`` (``metrics_port`` -> ``ARBOR_METRICS_PORT``)."""
    return f"{ENV_PREFIX}{field.upper()}"


def _format_validation_error(exc: ValidationError) -> str:
    lines = []
    for error in exc.errors(include_url=False, include_input=False):
        loc = error.get("loc") or ()
        name = env_name(str(loc[0])) if loc else "settings"
        msg = error["msg"].removeprefix("Value error, ")
        lines.append(f"{name}: {msg}")
    return "\n".join(lines)


def load_settings(**overrides: Any) -> Settings:
    """Build :class:`Settings` from the environment and ``.env``, with ``overrides`` taking precedence.

    Raises :class:`ConfigError` (a ``ValueError``) naming each bad ``ARBOR_`` variable, one per line,
    e.g. ``ARBOR_METRICS_PORT: Input should be less than or equal to 65535``.  An override whose name
    is not a setting is an error too, so a typo cannot pass silently.
    """
    unknown = sorted(set(overrides) - set(Settings.model_fields))
    if unknown:
        raise ConfigError("\n".join(f"{name}: not a setting" for name in unknown))
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise ConfigError(_format_validation_error(exc)) from None
    except SettingsError as exc:
        raise ConfigError(f"settings could not be read: {exc}") from None
