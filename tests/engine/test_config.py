"""Settings: defaults, environment and .env precedence, validation errors, secret masking."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from engine.config import SECRET_MASK, ConfigError, Settings, load_settings

SECRET = "sk-test-3f9a1c0e7b2d4e6f8a1b"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No ARBOR_* variables from the caller's shell, and a cwd without a .env file."""
    for key in list(os.environ):
        if key.upper().startswith("ARBOR_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_defaults() -> None:
    s = load_settings()
    assert s.db_path == Path("data/runtime/arbor.db")
    assert s.metrics_port == 9464
    assert s.prometheus_url is None
    assert s.llm_provider == "offline"
    assert s.telemetry == "on"
    assert s.openai_api_key is None
    assert s.anthropic_api_key is None
    assert s.lmstudio_base_url == "http://127.0.0.1:1234/v1"
    assert s.llm_timeout_s == 30
    assert s.mcts_iterations == 1000
    assert s.mcts_c == pytest.approx(1.414)
    assert s.mcts_seed is None
    assert s.snapshot_every == 50
    assert s.log_level == "INFO"
    assert s.telemetry_enabled and s.metrics_enabled


def test_environment_overrides_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ARBOR_DB_PATH", "/tmp/x/other.db")
    monkeypatch.setenv("ARBOR_METRICS_PORT", "0")
    monkeypatch.setenv("ARBOR_PROMETHEUS_URL", "http://127.0.0.1:9090/")
    monkeypatch.setenv("ARBOR_LLM_PROVIDER", "Anthropic")
    monkeypatch.setenv("ARBOR_TELEMETRY", "off")
    monkeypatch.setenv("ARBOR_LLM_TIMEOUT_S", "600")
    monkeypatch.setenv("ARBOR_MCTS_ITERATIONS", "10000")
    monkeypatch.setenv("ARBOR_MCTS_C", "0")
    monkeypatch.setenv("ARBOR_MCTS_SEED", "0")
    monkeypatch.setenv("ARBOR_SNAPSHOT_EVERY", "1")
    monkeypatch.setenv("arbor_log_level", "debug")  # names are case-insensitive

    s = load_settings()
    assert s.db_path == Path("/tmp/x/other.db")
    assert s.metrics_port == 0
    assert not s.metrics_enabled  # port 0 disables the exporter
    assert s.prometheus_url == "http://127.0.0.1:9090"  # trailing slash dropped
    assert s.llm_provider == "anthropic"
    assert s.telemetry == "off" and not s.telemetry_enabled
    assert s.llm_timeout_s == 600  # upper bound is inclusive
    assert s.mcts_iterations == 10000
    assert s.mcts_c == 0
    assert s.mcts_seed == 0  # seed 0 is a real seed, not "unset"
    assert s.snapshot_every == 1
    assert s.log_level == "DEBUG"


def test_keyword_overrides_beat_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ARBOR_MCTS_ITERATIONS", "200")
    assert load_settings().mcts_iterations == 200
    assert load_settings(mcts_iterations=300).mcts_iterations == 300


def test_blank_optional_values_mean_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ARBOR_PROMETHEUS_URL", "")
    monkeypatch.setenv("ARBOR_MCTS_SEED", "")
    monkeypatch.setenv("ARBOR_OPENAI_API_KEY", "  ")
    s = load_settings()
    assert s.prometheus_url is None
    assert s.mcts_seed is None
    assert s.openai_api_key is None


@pytest.mark.parametrize(
    ("var", "value", "fragment"),
    [
        ("ARBOR_METRICS_PORT", "65536", "less than or equal to 65535"),
        ("ARBOR_METRICS_PORT", "-1", "greater than or equal to 0"),
        ("ARBOR_METRICS_PORT", "ninety", "valid integer"),
        ("ARBOR_PROMETHEUS_URL", "localhost:9090", "http:// or https://"),
        ("ARBOR_PROMETHEUS_URL", "ftp://prom.example:21", "http:// or https://"),
        ("ARBOR_PROMETHEUS_URL", "http://127.0.0.1:99999", "invalid port"),
        ("ARBOR_LMSTUDIO_BASE_URL", "not a url", "http:// or https://"),
        ("ARBOR_LLM_PROVIDER", "gemini", "'offline', 'openai', 'anthropic' or 'lmstudio'"),
        ("ARBOR_TELEMETRY", "maybe", "'on' or 'off'"),
        ("ARBOR_LLM_TIMEOUT_S", "0", "greater than 0"),
        ("ARBOR_LLM_TIMEOUT_S", "600.5", "less than or equal to 600"),
        ("ARBOR_MCTS_ITERATIONS", "0", "greater than or equal to 1"),
        ("ARBOR_MCTS_ITERATIONS", "10001", "less than or equal to 10000"),
        ("ARBOR_MCTS_C", "100.01", "less than or equal to 100"),
        ("ARBOR_MCTS_C", "-0.1", "greater than or equal to 0"),
        ("ARBOR_MCTS_SEED", "-1", "greater than or equal to 0"),
        ("ARBOR_SNAPSHOT_EVERY", "0", "greater than or equal to 1"),
        ("ARBOR_LOG_LEVEL", "loud", "'DEBUG'"),
    ],
)
def test_bad_value_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, var: str, value: str, fragment: str
) -> None:
    monkeypatch.setenv(var, value)
    with pytest.raises(ConfigError) as info:
        load_settings()
    message = str(info.value)
    assert message.startswith(f"{var}: ")
    assert fragment in message
    assert isinstance(info.value, ValueError)


def test_metrics_port_message_is_exact(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ARBOR_METRICS_PORT", "70000")
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert str(info.value) == "ARBOR_METRICS_PORT: Input should be less than or equal to 65535"


def test_every_problem_gets_its_own_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ARBOR_METRICS_PORT", "70000")
    monkeypatch.setenv("ARBOR_TELEMETRY", "maybe")
    with pytest.raises(ConfigError) as info:
        load_settings(mcts_iterations=0)
    lines = str(info.value).splitlines()
    assert sorted(line.split(":", 1)[0] for line in lines) == [
        "ARBOR_MCTS_ITERATIONS",
        "ARBOR_METRICS_PORT",
        "ARBOR_TELEMETRY",
    ]


def test_unknown_override_is_an_error() -> None:
    with pytest.raises(ConfigError, match="mcts_iteration: not a setting"):
        load_settings(mcts_iteration=5)


def test_error_message_does_not_echo_values(monkeypatch: pytest.MonkeyPatch) -> None:
    bad_url = f"ftp://user:{SECRET}@prom.internal"
    monkeypatch.setenv("ARBOR_PROMETHEUS_URL", bad_url)
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert SECRET not in str(info.value)
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_safe_dict_masks_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ARBOR_OPENAI_API_KEY", SECRET)
    monkeypatch.setenv("ARBOR_PROMETHEUS_URL", f"https://ops:{SECRET}@prom.internal:9090/")
    monkeypatch.setenv("ARBOR_DB_PATH", "/var/lib/arbor/arbor.db")
    s = load_settings()

    assert s.openai_api_key is not None
    assert s.openai_api_key.get_secret_value() == SECRET  # the real value is still usable

    safe = s.safe_dict()
    assert safe["openai_api_key"] == SECRET_MASK == "**********"
    assert safe["anthropic_api_key"] is None  # unset stays None, not a mask
    assert safe["prometheus_url"] == "https://ops:**********@prom.internal:9090"
    assert safe["db_path"] == "/var/lib/arbor/arbor.db"
    assert isinstance(safe["db_path"], str)
    assert set(safe) == set(Settings.model_fields)
    assert SECRET not in str(safe)
    assert SECRET not in repr(s.openai_api_key)
    assert "openai_api_key=SecretStr('**********')" in repr(s)


def test_dotenv_file_is_read(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (clean_env / ".env").write_text(
        "# local settings\n"
        "ARBOR_MCTS_ITERATIONS=250\n"
        "ARBOR_LLM_PROVIDER=lmstudio\n"
        f"ARBOR_ANTHROPIC_API_KEY={SECRET}\n"
        "UNRELATED_VARIABLE=ignored\n",
        encoding="utf-8",
    )
    s = load_settings()
    assert s.mcts_iterations == 250
    assert s.llm_provider == "lmstudio"
    assert s.anthropic_api_key is not None
    assert s.anthropic_api_key.get_secret_value() == SECRET
    assert SECRET not in str(s.safe_dict())
    assert SECRET not in repr(s)

    # The environment beats the .env file.
    monkeypatch.setenv("ARBOR_MCTS_ITERATIONS", "400")
    assert load_settings().mcts_iterations == 400


def test_dotenv_bad_value_is_reported(clean_env: Path) -> None:
    (clean_env / ".env").write_text("ARBOR_SNAPSHOT_EVERY=20000\n", encoding="utf-8")
    with pytest.raises(
        ConfigError, match=r"^ARBOR_SNAPSHOT_EVERY: Input should be less than or equal to 10000$"
    ):
        load_settings()


def test_prometheus_access_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    s = load_settings()
    assert s.prometheus_timeout_s == 5.0
    assert s.prometheus_username is None and s.prometheus_password is None
    assert s.prometheus_bearer_token is None

    monkeypatch.setenv("ARBOR_PROMETHEUS_URL", "http://prom:9090/?access_token=tok-98765&org=3")
    monkeypatch.setenv("ARBOR_PROMETHEUS_TIMEOUT_S", "2.5")
    monkeypatch.setenv("ARBOR_PROMETHEUS_USERNAME", "ops")
    monkeypatch.setenv("ARBOR_PROMETHEUS_PASSWORD", SECRET)
    s = load_settings()
    assert s.prometheus_timeout_s == 2.5 and s.prometheus_username == "ops"
    assert s.prometheus_password is not None and s.prometheus_password.get_secret_value() == SECRET
    safe = s.safe_dict()
    assert safe["prometheus_url"] == "http://prom:9090/?access_token=**********&org=3"
    assert safe["prometheus_password"] == SECRET_MASK and safe["prometheus_bearer_token"] is None
    assert SECRET not in str(safe) and "tok-98765" not in str(safe) and SECRET not in repr(s)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"ARBOR_PROMETHEUS_TIMEOUT_S": "0"}, "ARBOR_PROMETHEUS_TIMEOUT_S: Input should be greater than 0"),
        (
            {"ARBOR_PROMETHEUS_TIMEOUT_S": "121"},
            "ARBOR_PROMETHEUS_TIMEOUT_S: Input should be less than or equal to 120",
        ),
        ({"ARBOR_PROMETHEUS_PASSWORD": SECRET}, "ARBOR_PROMETHEUS_PASSWORD: needs ARBOR_PROMETHEUS_USERNAME"),
        (
            {"ARBOR_PROMETHEUS_USERNAME": "ops", "ARBOR_PROMETHEUS_BEARER_TOKEN": SECRET},
            "ARBOR_PROMETHEUS_BEARER_TOKEN: set either a bearer token or",
        ),
        (
            {
                "ARBOR_PROMETHEUS_URL": f"http://ops:{SECRET}@prom:9090",
                "ARBOR_PROMETHEUS_BEARER_TOKEN": "t-1234",
            },
            "ARBOR_PROMETHEUS_BEARER_TOKEN: set either a bearer token or",
        ),
    ],
)
def test_prometheus_access_settings_are_checked(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], message: str
) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert str(info.value).startswith(message) and SECRET not in str(info.value)


def test_blank_prometheus_credentials_are_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ARBOR_PROMETHEUS_USERNAME", " ")
    monkeypatch.setenv("ARBOR_PROMETHEUS_BEARER_TOKEN", "")
    s = load_settings()
    assert s.prometheus_username is None and s.prometheus_bearer_token is None
