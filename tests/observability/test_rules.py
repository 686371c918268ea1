"""SLO file, generated Prometheus rules, promtool checks and unit tests."""

from __future__ import annotations

import re
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
import yaml

from observability.metrics import BUCKETS, METRIC_NAMES
from observability.slo import (
    BURN_RATE_POLICY,
    DEFAULT_RULES_DIR,
    DEFAULT_SLOS_PATH,
    RULE_FILES,
    SLOConfigError,
    burn_rate_windows,
    check_rules,
    format_duration,
    load_slo_set,
    load_slos,
    metric_names_in_rules,
    parse_duration,
    parse_selector,
    render_rules,
    write_rules,
)

from .conftest import PROMTOOL_BIN

ROOT = Path(__file__).resolve().parents[2]
RULE_PATHS = sorted(DEFAULT_RULES_DIR.glob("*.yml"))
TEST_PATHS = sorted((DEFAULT_RULES_DIR / "tests").glob("*.yaml"))


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    if not PROMTOOL_BIN.exists():
        pytest.skip(f"{PROMTOOL_BIN} is not installed (make test installs Debian's prometheus)")
    return subprocess.run([str(PROMTOOL_BIN), *args], capture_output=True, text=True, timeout=120, cwd=ROOT)


def _rules() -> list[dict]:
    return [
        rule
        for path in RULE_PATHS
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
    ]


# -- promtool ------------------------------------------------------------------------------


def test_rule_files_are_the_generated_ones() -> None:
    assert [p.name for p in RULE_PATHS] == sorted(RULE_FILES)
    assert TEST_PATHS, "no promtool unit tests in observability/rules/tests"


def test_promtool_check_rules_passes() -> None:
    run = _promtool("check", "rules", *map(str, RULE_PATHS))
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.count("SUCCESS") == len(RULE_PATHS)


def test_promtool_unit_tests_pass() -> None:
    run = _promtool("test", "rules", *map(str, TEST_PATHS))
    assert run.returncode == 0, run.stdout + run.stderr
    assert "FAILED" not in run.stdout + run.stderr


def test_every_slo_alert_is_tested_firing_and_not_firing() -> None:
    """Each SLO has a promtool case where its page and ticket alerts fire, and one where nothing does."""
    slos = {slo.name for slo in load_slos()}
    fired: set[tuple[str, str]] = set()
    silent: set[str] = set()
    for path in TEST_PATHS:
        for case in yaml.safe_load(path.read_text())["tests"]:
            for check in case.get("alert_rule_test", []):
                if check["alertname"] != "SLOErrorBudgetBurn":
                    continue
                series = " ".join(s["series"] for s in case["input_series"])
                if not check["exp_alerts"]:
                    silent |= {n for n in slos if _slo_metric(n) in series}
                for alert in check["exp_alerts"]:
                    fired.add((alert["exp_labels"]["slo"], alert["exp_labels"]["severity"]))
    assert fired == {(slo, sev) for slo in slos for sev in ("page", "ticket")}
    assert silent == slos


def _slo_metric(slo_name: str) -> str:
    """The metric an SLO's unit tests feed (from data/slos.yaml)."""
    slo = next(s for s in load_slos() if s.name == slo_name)
    return parse_selector(slo.indicator.ratio_metric.total).family


# -- generated files -----------------------------------------------------------------------


def test_committed_rules_equal_freshly_generated(tmp_path: Path) -> None:
    config = load_slo_set()
    assert check_rules(config) == []
    for name, text in render_rules(config).items():
        assert (DEFAULT_RULES_DIR / name).read_text() == text


def test_cli_regenerates_and_check_detects_stale_files(tmp_path: Path) -> None:
    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "observability.slo", *args]
        return subprocess.run(command, capture_output=True, text=True, timeout=60, cwd=ROOT)

    assert cli("--check").returncode == 0
    out = tmp_path / "rules"
    assert cli("--check", "--out", str(out)).returncode == 1
    assert cli("--out", str(out)).returncode == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(RULE_FILES)
    assert cli("--check", "--out", str(out)).returncode == 0
    (out / RULE_FILES[0]).write_text((out / RULE_FILES[0]).read_text().replace("0.99", "0.999"))
    stale = cli("--check", "--out", str(out))
    assert stale.returncode == 1
    assert RULE_FILES[0] in stale.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text("apiVersion: arbor/v1\nkind: SLOSet\n")
    broken = cli("--slos", str(bad), "--out", str(out))
    assert broken.returncode == 2
    assert "bad.yaml" in broken.stderr


def test_every_metric_the_rules_read_is_declared() -> None:
    recorded = {rule["record"] for rule in _rules() if "record" in rule}
    families: set[str] = set()
    for rule in _rules():
        expr = rule["expr"]
        for name in re.findall(r"\bmcts_[a-z_]+", expr):
            base = re.sub(r"_(bucket|count|sum)$", "", name)
            assert name in METRIC_NAMES or base in BUCKETS, (
                f"{rule.get('record') or rule['alert']} reads {name}"
            )
            families.add(name if name in METRIC_NAMES else base)
        for name in re.findall(r"\b[a-z_]+:[a-z_:0-9]+", expr):
            assert name in recorded, f"{name} is not a recording rule"
        others = set(re.findall(r"(?<![\w:])[a-z_][a-z0-9_]*(?=\{)", expr)) - {n for n in METRIC_NAMES}
        assert {n for n in others if not n.startswith("mcts_")} <= {"up"}, expr
    assert metric_names_in_rules() == families
    assert families == {
        "mcts_requests_total",
        "mcts_request_duration_seconds",
        "mcts_verdicts_total",
        "mcts_llm_request_errors_total",
        "mcts_llm_request_latency_seconds",
    }


def test_promtool_test_inputs_use_declared_metrics() -> None:
    for path in TEST_PATHS:
        for case in yaml.safe_load(path.read_text())["tests"]:
            for series in case["input_series"]:
                name = series["series"].split("{", 1)[0]
                base = re.sub(r"_(bucket|count|sum)$", "", name)
                assert name in METRIC_NAMES or base in BUCKETS or name == "up", f"{path.name}: {name}"


# -- burn rates ----------------------------------------------------------------------------


def test_burn_rate_factors_are_the_sre_workbook_ones_scaled_to_the_period() -> None:
    thirty = burn_rate_windows(timedelta(days=30))
    assert [(w.severity, w.long_window, w.short_window) for w in thirty] == [
        ("page", "1h", "5m"),
        ("page", "6h", "30m"),
        ("ticket", "3d", "6h"),
    ]
    assert [w.factor for w in thirty] == pytest.approx([14.4, 6.0, 1.0])
    twenty_eight = burn_rate_windows(timedelta(days=28))
    assert [w.factor for w in twenty_eight] == pytest.approx([14.4 * 28 / 30, 6 * 28 / 30, 28 / 30])
    assert [w.factor for w in twenty_eight] == pytest.approx([13.44, 5.6, 0.933333333])
    # Same share of the budget spent in the long window: 2% in 1h, 5% in 6h, 10% in 3d (of 28 x 24 h).
    shares = [w.factor * hours / (28 * 24) for w, hours in zip(twenty_eight, (1, 6, 72), strict=True)]
    assert shares == pytest.approx([0.02, 0.05, 0.10])


def test_factor_is_budget_share_times_period_over_long_window() -> None:
    """The policy is stated as budget shares; factors worked out by hand for a 7-day SLO."""
    assert [(p.long_window, p.budget_share) for p in BURN_RATE_POLICY] == [
        ("1h", 0.02),
        ("6h", 0.05),
        ("3d", 0.1),
    ]
    week = burn_rate_windows(timedelta(days=7))
    # 2 % of 168 h in 1 h, 5 % of 168 h in 6 h, 10 % of 168 h in 72 h.
    assert [w.factor for w in week] == pytest.approx([3.36, 1.4, 0.2333333333])
    for bad in (timedelta(), timedelta(hours=-1)):
        with pytest.raises(ValueError, match="positive"):
            burn_rate_windows(bad)


def test_python_m_observability_slo_check_passes_and_the_old_module_is_gone() -> None:
    run = subprocess.run(
        [sys.executable, "-m", "observability.slo", "--check"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert run.returncode == 0, run.stderr
    assert f"{len(RULE_FILES)} rule files in " in run.stdout and "are up to date" in run.stdout
    assert not (ROOT / "observability" / "slo_rules.py").exists()  # the re-export shim is deleted


def test_generated_alert_thresholds_match_hand_computed_values() -> None:
    """factor x (1 - objective): availability 1%, latency 5%, quality 2% budgets, 28d windows."""
    expected = {
        ("availability", "1h"): 13.44 * 0.01,
        ("availability", "6h"): 5.6 * 0.01,
        ("availability", "3d"): 0.9333333333 * 0.01,
        ("latency", "1h"): 13.44 * 0.05,
        ("latency", "6h"): 5.6 * 0.05,
        ("latency", "3d"): 0.9333333333 * 0.05,
        ("quality", "1h"): 13.44 * 0.02,
        ("quality", "6h"): 5.6 * 0.02,
        ("quality", "3d"): 0.9333333333 * 0.02,
    }
    found = {}
    for rule in _rules():
        if rule.get("alert") != "SLOErrorBudgetBurn":
            continue
        labels = rule["labels"]
        products = {float(a) * float(b) for a, b in re.findall(r"> \(([0-9.]+) \* ([0-9.]+)\)", rule["expr"])}
        assert len(products) == 1, rule["expr"]
        assert f"ratio_rate{labels['long_window']}" in rule["expr"]
        assert f"ratio_rate{labels['short_window']}" in rule["expr"]
        found[(labels["slo"], labels["long_window"])] = products.pop()
    assert found == pytest.approx(expected, rel=1e-9)


# -- SLO file ------------------------------------------------------------------------------


def test_shipped_slos_load() -> None:
    slos = {slo.name: slo for slo in load_slos(DEFAULT_SLOS_PATH)}
    assert set(slos) == {"availability", "latency", "quality"}
    assert slos["availability"].objective == 0.99
    assert slos["availability"].error_budget == 0.01
    assert slos["latency"].threshold_seconds == 0.5
    assert slos["quality"].error_budget == 0.02
    assert {slo.period for slo in slos.values()} == {timedelta(days=28)}


def test_durations() -> None:
    assert parse_duration("28d") == timedelta(days=28)
    assert parse_duration("1h30m") == timedelta(minutes=90)
    assert parse_duration("500ms") == timedelta(milliseconds=500)
    assert [format_duration(parse_duration(t)) for t in ("28d", "7d", "90m", "36h", "1h")] == [
        "28d",
        "7d",
        "90m",
        "36h",
        "1h",
    ]
    for bad in ("", "5", "1.5h", "h", "0m", "5 m"):
        with pytest.raises(ValueError):
            parse_duration(bad)


def _base() -> dict:
    return yaml.safe_load(DEFAULT_SLOS_PATH.read_text())


def _with(mutate) -> dict:  # type: ignore[no-untyped-def]
    doc = _base()
    mutate(doc)
    return doc


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d["slos"][0].update(objective=1.5), "objective"),
        (lambda d: d["slos"][0].update(timeWindow="28 days"), "duration"),
        (lambda d: d["slos"][0].update(name="Availability SLO"), "name"),
        (lambda d: d["slos"][0].update(colour="red"), "colour"),
        (lambda d: d["slos"][1].update(name="availability"), "duplicate"),
        (
            lambda d: d["slos"][0]["indicator"]["ratioMetric"].update(bad="mcts_nope_total"),
            "does not declare",
        ),
        (
            lambda d: d["slos"][0]["indicator"]["ratioMetric"].update(good="mcts_requests_total"),
            "exactly one",
        ),
        (
            lambda d: d["slos"][1]["indicator"]["ratioMetric"].update(
                good='mcts_request_duration_seconds_bucket{le="0.4"}'
            ),
            "bucket",
        ),
        (lambda d: d["slos"][1].update(thresholdSeconds=1.0), "thresholdSeconds"),
        (lambda d: d["slos"][1].pop("thresholdSeconds"), "thresholdSeconds"),
        (lambda d: d["slos"][0].update(thresholdSeconds=0.5), "only applies"),
        (lambda d: d.update(slos=[]), "slos"),
        (
            lambda d: d["slos"][0]["indicator"]["ratioMetric"].update(
                total="mcts_requests_total{status=error}"
            ),
            "parse",
        ),
    ],
)
def test_invalid_slo_files_are_rejected_with_the_reason(tmp_path: Path, mutate, message: str) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "slos.yaml"
    path.write_text(yaml.safe_dump(_with(mutate)))
    with pytest.raises(SLOConfigError, match=message) as info:
        load_slos(path)
    assert str(path) in str(info.value)


def test_unreadable_or_non_mapping_files_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(SLOConfigError, match="cannot read"):
        load_slos(tmp_path / "missing.yaml")
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(SLOConfigError, match="mapping"):
        load_slos(tmp_path / "list.yaml")
    (tmp_path / "broken.yaml").write_text("slos: [\n")
    with pytest.raises(SLOConfigError, match="not valid YAML"):
        load_slos(tmp_path / "broken.yaml")


def test_a_30_day_slo_gets_the_unscaled_factors_and_a_30d_period_window(tmp_path: Path) -> None:
    doc = _base()
    doc["slos"] = [dict(doc["slos"][0], timeWindow="30d", objective=0.999)]
    path = tmp_path / "slos.yaml"
    path.write_text(yaml.safe_dump(doc))
    files = write_rules(load_slo_set(path), tmp_path / "rules")
    text = (tmp_path / "rules" / "slo_rules.yml").read_text()
    assert "slo:sli_error:ratio_rate30d" in text
    assert "> (14.4 * 0.001)" in text and "> (6 * 0.001)" in text and "> (1 * 0.001)" in text
    run = _promtool("check", "rules", *map(str, files))
    assert run.returncode == 0, run.stdout + run.stderr
