"""Bad input gets a clear error and loses nothing (issue 9, item 4).

Every case runs twice: through the CLI (``python -m engine ...`` in a subprocess, with
``ARBOR_DB_PATH`` in a temp dir) and through the Python API.  Each asserts the exit code or the
exception, a substring of the message, that no traceback is printed, and that the store still
passes ``PRAGMA integrity_check`` with every row recorded before the fault still there.

Store faults are made real: a foreign SQLite file, a file claiming a newer schema, garbage
bytes, a store whose pages were overwritten, a read-only file or directory (``chmod``, or
``chattr +i`` when the tests run as root, for whom permission bits do not apply), and a write
that SQLite refuses at commit time (a trigger that aborts inserts into ``requests``).

Rows are counted with plain ``sqlite3`` connections, not through the store.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from pydantic import ValidationError

from engine import Engine, QueryError, QueryRequest
from engine.config import load_settings
from engine.explorer import ExploreRequest, explore
from engine.faults import FaultPlan
from engine.workload import MAX_LOAD_REQUESTS, LoadConfig, plan
from observability.store import SCHEMA_VERSION, SchemaError, Store, StoreOpenError

ROOT = Path(__file__).resolve().parents[2]
HUGE = "9" * 5000  # beyond Python's 4300-digit int conversion limit
GOOD = "24: 4 7 8 8"


# --------------------------------------------------------------------------- helpers


def cli(db: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``python -m engine *args`` with its store at ``db``; offline, no metrics port."""
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "ARBOR_DB_PATH": str(db),
        "ARBOR_METRICS_PORT": "0",
        "ARBOR_LLM_PROVIDER": "offline",
    }
    return subprocess.run(
        [sys.executable, "-m", "engine", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def record_one(db: Path, query: str = GOOD) -> None:
    """Record one real request in the store at ``db`` (through the engine, in process)."""
    with Engine(load_settings(db_path=db, metrics_port=0)) as engine:
        engine.run(QueryRequest(query=query, seed=1, use_rag=False))


def statuses(db: Path) -> list[str]:
    """The status of every recorded request, sorted (plain sqlite3, read only)."""
    conn = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True)
    try:
        return sorted(r[0] for r in conn.execute("SELECT status FROM requests"))
    finally:
        conn.close()


def integrity(db: Path) -> str:
    conn = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True)
    try:
        return conn.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        conn.close()


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def assert_clean_failure(proc: subprocess.CompletedProcess[str], code: int, message: str) -> None:
    assert proc.returncode == code, (proc.returncode, proc.stderr[-2000:])
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert message in proc.stderr, proc.stderr[-2000:]


@contextlib.contextmanager
def read_only(path: Path) -> Iterator[None]:
    """Make ``path`` (file or directory) unwritable for this process, and writable again after."""
    if os.geteuid() == 0:  # root ignores permission bits: use the immutable attribute
        chattr = shutil.which("chattr")
        if chattr is None or subprocess.run([chattr, "+i", str(path)], capture_output=True).returncode:
            pytest.skip("running as root and chattr +i is not available here")
        try:
            yield
        finally:
            subprocess.run([chattr, "-i", str(path)], check=True)
    else:
        mode = path.stat().st_mode
        path.chmod(0o555 if path.is_dir() else 0o444)
        try:
            yield
        finally:
            path.chmod(mode)


# --------------------------------------------------------------------------- argument and query cases


@dataclass(frozen=True)
class Case:
    name: str
    args: tuple[str, ...]
    message: str
    recorded: tuple[str, ...] = ()  # statuses of the requests the case itself records
    code: int = 2


ARGUMENT_CASES = [
    Case(
        "5000-digit number in a query",
        ("query", f"24: {HUGE} 1 2 3"),
        "a number with 5000 digits is too long",
        recorded=("invalid",),
    ),
    Case(
        "5000-digit number inside an expression",
        ("query", f"24: 1 2 3 ({HUGE})"),
        "is not a number or expression",
        recorded=("invalid",),
    ),
    Case("whitespace-only query", ("query", " \t  \n "), "only whitespace or control characters"),
    Case("control-only query", ("query", "\x01\x02\x7f\u200b"), "only whitespace or control characters"),
    Case("5000-digit seed", ("query", GOOD, "--seed", HUGE), "argument --seed: a number of 5000 digits"),
    Case("query iterations out of range", ("query", GOOD, "--iterations", "0"), "must be in 1..10,000"),
    Case(
        "search with a 5000-digit number",
        ("search", "--task", "game24", "--state", f"{HUGE} 1 2 3"),
        "5000 digits",
    ),
    Case(
        "negative --requests",
        ("load", "--clock", "simulated", "--requests", "-1"),
        "argument --requests: -1 is out of range: it must be in 1..100,000",
    ),
    Case(
        "100M --requests",
        ("load", "--clock", "simulated", "--requests", "100000000"),
        "argument --requests: 100,000,000 is out of range",
    ),
    Case(
        "rate x duration too large",
        ("load", "--rate", "1000", "--duration", "86400"),
        "--rate 1000 x --duration 86400 is 86,400,000 requests",
    ),
    Case("rate not a number", ("load", "--rate", "nan"), "argument --rate: nan is out of range"),
    Case("zero concurrency", ("load", "--concurrency", "0"), "argument --concurrency: 0 is out of range"),
    Case(
        "days out of range",
        ("load", "--days", "0"),
        "argument --days: 0 is out of range: it must be in (0, 365]",
    ),
    Case(
        "fault probability out of range",
        ("load", "--faults", "error=5"),
        "error=5: a probability must be in [0, 1]",
    ),
    Case("unknown fault", ("load", "--faults", "boom=1"), "unknown fault 'boom'"),
    Case("missing workload file", ("load", "--workload", "/nonexistent.jsonl"), "cannot read --workload"),
    Case(
        "missing workloads directory",
        ("train-router", "--workloads", "/nonexistent"),
        "--workloads /nonexistent: no such directory",
    ),
]


@pytest.fixture(scope="module")
def seeded_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store holding one recorded request, copied for each case."""
    db = tmp_path_factory.mktemp("seed") / "arbor.db"
    record_one(db)
    assert statuses(db) == ["ok"]
    return db


def _copy_store(src: Path, dst_dir: Path) -> Path:
    dst = dst_dir / "arbor.db"
    for suffix in ("", "-wal", "-shm"):
        if Path(f"{src}{suffix}").exists():
            shutil.copyfile(f"{src}{suffix}", f"{dst}{suffix}")
    return dst


@pytest.mark.parametrize("case", ARGUMENT_CASES, ids=lambda c: c.name)
def test_cli_argument_and_query_cases(case: Case, seeded_store: Path, tmp_path: Path) -> None:
    db = _copy_store(seeded_store, tmp_path)
    proc = cli(db, *case.args)
    assert_clean_failure(proc, case.code, case.message)
    assert proc.stderr.count("\n") <= 3, proc.stderr  # one line, not a dump
    assert len(proc.stderr) < 1000, proc.stderr[:300]  # a 5000-digit input is not echoed back
    assert statuses(db) == sorted(["ok", *case.recorded])
    assert integrity(db) == "ok"


# --------------------------------------------------------------------------- the same through the API


def test_api_query_with_a_huge_number_is_a_recorded_query_error(tmp_path: Path) -> None:
    db = tmp_path / "arbor.db"
    record_one(db)
    with Engine(load_settings(db_path=db, metrics_port=0)) as engine, pytest.raises(QueryError) as info:
        engine.run(QueryRequest(query=f"24: {HUGE} 1 2 3", use_rag=False))
    assert "a number with 5000 digits is too long (at most 30 digits)" in str(info.value)
    assert len(str(info.value)) < 200
    assert statuses(db) == ["invalid", "ok"]
    assert integrity(db) == "ok"


@pytest.mark.parametrize("query", ["", " ", "\t\n", "\x00\x01", "\u200b\u200b", "\x1b"])
def test_api_rejects_queries_without_visible_text(query: str) -> None:
    with pytest.raises(ValidationError) as info:
        QueryRequest(query=query)
    text = str(info.value)
    assert ("only whitespace or control characters" in text) or ("at least 1 character" in text)


def test_api_keeps_queries_with_visible_text() -> None:
    assert QueryRequest(query=" \t24: 4 7 8 8\n").resolved_task() == "game24"
    assert QueryRequest(query="\u00e9").query == "\u00e9"


def test_explorer_reports_a_huge_number_as_an_error_not_an_exception() -> None:
    outcome = explore(ExploreRequest(task="game24", position=f"24: {HUGE} 1 2 3", iterations=10))
    assert outcome.result is None
    assert outcome.error is not None and "5000 digits is too long" in outcome.error


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"clock": "simulated", "requests": -1}, "requests -1 is out of range: it must be in 1..100,000"),
        ({"clock": "simulated", "requests": 100_000_000}, "requests 100000000 is out of range"),
        ({"rate": 1000.0, "duration_s": 86_400.0}, "rate x duration is 86,400,000 requests"),
        ({"rate": float("nan")}, "rate nan is out of range"),
        ({"concurrency": 0}, "concurrency 0 is out of range"),
        ({"days": 400.0}, "days 400 is out of range"),
    ],
)
def test_api_load_config_bounds(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        LoadConfig(**kwargs)  # type: ignore[arg-type]


def test_api_plan_is_bounded_up_front() -> None:
    rows = [{"query": GOOD}]
    cfg = LoadConfig(clock="simulated", requests=MAX_LOAD_REQUESTS)
    assert len(plan(rows, LoadConfig(clock="simulated", requests=3))) == 3
    assert cfg.total == MAX_LOAD_REQUESTS  # the largest run still allowed


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("error=5", "error=5: a probability must be in [0, 1]"),
        ("provider_error=-0.1", "provider_error=-0.1: a probability must be in [0, 1]"),
        ("latency_ms=200@7", "latency_ms=200@7: a probability must be in [0, 1]"),
        ("latency_ms=1e9", "latency_ms=1e9: a latency in ms must be in [0, 60000]"),
        ("error=lots", "error=lots: 'lots' is not a number (a probability in [0, 1])"),
    ],
)
def test_api_fault_plan_says_which_fault_and_what_range(text: str, message: str) -> None:
    with pytest.raises(ValueError) as info:
        FaultPlan.parse(text)
    assert str(info.value) == message


# --------------------------------------------------------------------------- store faults


@dataclass(frozen=True)
class StoreFault:
    name: str
    make: Callable[[Path], Path]  # builds the faulty store in a directory, returns the db path
    message: str
    error: type[Exception] = StoreOpenError
    unwritable: str | None = None  # "file" or "dir": made read-only around the attempt
    keeps: tuple[str, ...] = ()  # statuses recorded before the fault, still there after


def _foreign(d: Path) -> Path:
    db = d / "other.db"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)")
    conn.execute("INSERT INTO customers VALUES (1, 'Ada')")
    conn.commit()
    conn.close()
    return db


def _newer(d: Path) -> Path:
    db = d / "arbor.db"
    record_one(db)
    conn = sqlite3.connect(db)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    return db


def _garbage(d: Path) -> Path:
    db = d / "arbor.db"
    db.write_bytes(b"this is not a database\n" * 200)
    return db


def _trashed_pages(d: Path) -> Path:
    db = d / "arbor.db"
    record_one(db)
    raw = bytearray(db.read_bytes())
    raw[100:4096] = bytes(range(256)) * 15 + bytes(range(156))  # page 1 after the header: the schema
    db.write_bytes(bytes(raw))
    return db


def _store(d: Path) -> Path:
    db = d / "arbor.db"
    record_one(db)
    return db


def _store_in_subdir(d: Path) -> Path:
    (d / "ro").mkdir()
    db = d / "ro" / "arbor.db"
    record_one(db)
    return db


STORE_FAULTS = [
    StoreFault(
        "foreign sqlite file",
        _foreign,
        "is not an Arbor telemetry store: it is a SQLite database with other tables (customers)",
        SchemaError,
    ),
    StoreFault(
        "newer schema",
        _newer,
        f"has schema version {SCHEMA_VERSION + 1}, newer than this Arbor's {SCHEMA_VERSION}",
        SchemaError,
        keeps=("ok",),
    ),
    StoreFault("garbage bytes", _garbage, "is not a usable SQLite database (no SQLite header)"),
    StoreFault("overwritten schema page", _trashed_pages, "is not a usable SQLite database"),
    StoreFault("read-only file", _store, "is read-only", unwritable="file", keeps=("ok",)),
    StoreFault(
        "read-only directory", _store_in_subdir, "cannot write in directory", unwritable="dir", keeps=("ok",)
    ),
]


def _attempt(fault: StoreFault, db: Path, attempt: Callable[[], object]) -> object:
    target = {"file": db, "dir": db.parent}.get(fault.unwritable or "")
    with read_only(target) if target is not None else contextlib.nullcontext():
        return attempt()


def _after(fault: StoreFault, db: Path, before: str | None) -> None:
    if fault.name in ("foreign sqlite file", "newer schema", "garbage bytes"):
        assert digest(db) == before, "the rejected file was changed"
    if fault.name in ("foreign sqlite file", "garbage bytes"):  # not WAL files: no -wal or -shm appears
        assert not Path(f"{db}-wal").exists() and not Path(f"{db}-shm").exists()
    if fault.name == "foreign sqlite file":
        conn = sqlite3.connect(db)
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
        assert conn.execute("SELECT name FROM customers").fetchall() == [("Ada",)]
        conn.close()
    if fault.keeps:
        assert statuses(db) == sorted(fault.keeps)
        assert integrity(db) == "ok"


@pytest.mark.parametrize("fault", STORE_FAULTS, ids=lambda f: f.name)
def test_cli_store_faults(fault: StoreFault, tmp_path: Path) -> None:
    db = fault.make(tmp_path)
    before = digest(db)
    proc = _attempt(fault, db, lambda: cli(db, "query", GOOD, "--no-rag"))
    assert isinstance(proc, subprocess.CompletedProcess)
    assert_clean_failure(proc, 4, fault.message)
    assert str(db.name) in proc.stderr  # which file
    assert "ARBOR_DB_PATH" in proc.stderr or "writable" in proc.stderr  # what to do
    assert proc.stdout == ""
    _after(fault, db, before)


@pytest.mark.parametrize("fault", STORE_FAULTS, ids=lambda f: f.name)
def test_api_store_faults(fault: StoreFault, tmp_path: Path) -> None:
    db = fault.make(tmp_path)
    before = digest(db)

    def open_store() -> object:
        with pytest.raises(fault.error) as info:
            Store(db, threaded=False)
        return info.value

    error = _attempt(fault, db, open_store)
    assert fault.message in str(error)
    assert str(db) in str(error) or str(db.parent) in str(error)
    _after(fault, db, before)


def test_engine_construction_raises_the_named_store_error(tmp_path: Path) -> None:
    db = _foreign(tmp_path)
    before = digest(db)
    with pytest.raises(SchemaError, match="is not an Arbor telemetry store"):
        Engine(load_settings(db_path=db, metrics_port=0))
    assert digest(db) == before


# --------------------------------------------------------------------------- a write that fails at close


def _refuse_request_rows(db: Path) -> None:
    conn = sqlite3.connect(db)
    conn.execute(
        "CREATE TRIGGER refuse_requests BEFORE INSERT ON requests "
        "BEGIN SELECT RAISE(ABORT, 'injected write failure'); END"
    )
    conn.close()


def test_cli_prints_the_answer_when_its_telemetry_cannot_be_written(tmp_path: Path) -> None:
    db = tmp_path / "arbor.db"
    record_one(db)
    _refuse_request_rows(db)
    proc = cli(db, "query", GOOD, "--no-rag", "--seed", "3")
    assert proc.returncode == 3, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    answer = proc.stdout.splitlines()[0]
    assert answer.startswith("answer: ") and "[expression]" in answer
    assert "verdict: correct" in proc.stdout  # the engine's answer, judged by the task's ground truth
    assert "the answer above was computed, but its telemetry was not recorded" in proc.stderr
    assert "injected write failure" in proc.stderr
    assert statuses(db) == ["ok"]  # the earlier request is still there
    assert integrity(db) == "ok"


def test_cli_json_answer_survives_a_failed_write_too(tmp_path: Path) -> None:
    import json

    db = tmp_path / "arbor.db"
    record_one(db)
    _refuse_request_rows(db)
    proc = cli(db, "query", GOOD, "--no-rag", "--seed", "3", "--json")
    assert proc.returncode == 3, proc.stderr[-2000:]
    assert json.loads(proc.stdout)["verdict"] == "correct"
    assert "Traceback" not in proc.stderr
    assert statuses(db) == ["ok"]
