"""Capturing golden traces: from a stored request, from a request given directly, and re-baselining.

A capture replays the request ``repeat`` times (``ARBOR_GOLDEN_REPEAT``) with its seed and the
engine settings that affect it; every replay must behave identically (compared exactly, with no
probability tolerance), and a capture from the store must reproduce the recorded answer and agent
sequence.  Otherwise the capture is refused with the reason (:class:`CaptureRefused`).  The golden's
latency is the median of the replays.

Re-baselining (:func:`recapture`) is explicit: it replays existing goldens' requests, rewrites their
behaviour and latency, and appends the reason and the previous engine version to their ``history``.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from engine.config import Settings, load_settings
from engine.golden.compare import Observation, compare
from engine.golden.format import (
    GoldenError,
    GoldenFile,
    GoldenLatency,
    GoldenRequest,
    GoldenSettings,
    Rebaseline,
    dumps,
)
from engine.golden.replay import Replayer, ReplayError, latency_medians
from engine.models import QueryRequest
from observability.store.reads import ReadModel

__all__ = [
    "NAME_PATTERN",
    "CaptureRefused",
    "CaptureResult",
    "RecaptureOutcome",
    "capture",
    "capture_request",
    "engine_version",
    "recapture",
]

#: A golden's name: its file is ``NAME.json`` in the suite directory.
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")


class CaptureRefused(GoldenError):
    """The request cannot become a golden trace; the message says why."""


@dataclass(frozen=True, slots=True)
class CaptureResult:
    """A golden written to ``path`` (``replays``: how many replays it was built from)."""

    name: str
    path: Path
    golden: GoldenFile
    replays: int


def engine_version() -> str:
    """The engine's version as recorded in golden files (``arbor <package version>``)."""
    try:
        return f"arbor {metadata.version('arbor')}"
    except metadata.PackageNotFoundError:
        return "arbor (not installed)"


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def _check_name(name: str) -> None:
    if not NAME_PATTERN.match(name) or name.endswith(".json"):
        raise CaptureRefused(
            f"bad golden name {name[:40]!r}: use 1-100 letters, digits, '_', '.' or '-' (no '.json', "
            "no leading punctuation)"
        )


def _check_provider(request: GoldenRequest) -> None:
    task = request.query_request().resolved_task()
    provider = request.effective_provider()
    if task == "freeform" and provider != "offline":
        raise CaptureRefused(
            f"the request uses the online LLM provider {provider}: its answers are not reproducible, "
            "so it cannot be a golden trace (capture a request answered by the offline provider)"
        )


def _observe(
    replayer: Replayer, request: GoldenRequest, repeat: int, correlation_id: str
) -> list[Observation]:
    """``repeat`` timed replays of ``request`` after one warm-up replay, refused unless all
    ``1 + repeat`` behave identically."""
    runs: list[Observation] = []
    for i in range(1 + repeat):  # the first replay warms caches (see run_golden): compared, not timed
        try:
            obs = replayer.replay(request, correlation_id)
        except ReplayError as exc:
            raise CaptureRefused(f"the request cannot be replayed: {exc}") from None
        if runs:
            diffs = compare(
                _golden(request, runs[:1], "", None), obs, prob_tolerance=0.0, quality_tolerance=0.0
            )
            if diffs:
                raise CaptureRefused(
                    f"the request is not reproducible: replay {i + 1} differs from replay 1: "
                    + diffs[0].message
                )
        runs.append(obs)
    return runs[1:]


def _golden(
    request: GoldenRequest,
    runs: Sequence[Observation],
    version: str,
    source_request_id: str | None,
    history: Sequence[Rebaseline] = (),
) -> GoldenFile:
    first = runs[0]
    total, spans = latency_medians(runs)
    return GoldenFile(
        request=request,
        answer=first.answer,
        verdict=first.verdict,  # type: ignore[arg-type]  # the engine's VerdictLabel
        quality=first.quality,
        routing=list(first.routing),
        spans=list(first.spans),
        latency_ms=GoldenLatency(total=total, samples=[o.latency_ms for o in runs], spans=spans),
        engine_version=version,
        captured_at=_now(),
        repetitions=len(runs),
        source_request_id=source_request_id,
        history=list(history),
    )


def _write(path: Path, golden: GoldenFile) -> None:
    """Write ``golden`` to ``path`` atomically (a temporary file renamed over it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(dumps(golden), encoding="utf-8")
    os.replace(tmp, path)


def capture_request(
    request: QueryRequest | GoldenRequest,
    name: str,
    *,
    settings: Settings | None = None,
    suite_dir: Path | None = None,
    repeat: int | None = None,
    overwrite: bool = False,
    source_request_id: str | None = None,
    expect: dict[str, Any] | None = None,
    **engine_kw: Any,
) -> CaptureResult:
    """Capture ``request`` as the golden ``name`` in ``suite_dir`` (default ``settings.golden_dir``).

    A :class:`QueryRequest` must carry a seed; it runs under ``settings``' ``mcts_c`` and
    ``llm_provider``.  ``expect`` (``answer``, ``agents``) is what a stored request did: the replay
    must reproduce it.

    Raises:
        CaptureRefused: bad name, existing golden without ``overwrite``, no seed, an online
            provider, a failing or non-reproducible replay, or one that differs from ``expect``.
        StoreOpenError: the store cannot be opened (telemetry on).
    """
    settings = settings if settings is not None else load_settings()
    _check_name(name)
    path = Path(suite_dir if suite_dir is not None else settings.golden_dir) / f"{name}.json"
    if path.exists() and not overwrite:
        raise CaptureRefused(
            f"{path} already exists: re-baseline it with `golden capture --update {name} --reason ...`"
        )
    if isinstance(request, QueryRequest):
        if request.seed is None:
            raise CaptureRefused("the request has no seed: a golden trace must replay with a fixed seed")
        gs = GoldenSettings(mcts_c=settings.mcts_c, llm_provider=settings.llm_provider)
        request = GoldenRequest.from_request(request, request.seed, gs)
    _check_provider(request)
    with Replayer(settings, **engine_kw) as replayer:
        runs = _observe(replayer, request, repeat or settings.golden_repeat, f"golden-capture-{name}")
    if expect is not None:
        got = {"answer": runs[0].answer, "agents": list(dict.fromkeys(s.agent for s in runs[0].routing))}
        for key, value in expect.items():
            if got[key] != value:
                raise CaptureRefused(
                    f"the replay does not reproduce the recorded request: recorded {key} {value!r}, "
                    f"replayed {got[key]!r} (the engine or its settings changed since; run the query again "
                    "and capture the new request)"
                )
    golden = _golden(request, runs, engine_version(), source_request_id)
    _write(path, golden)
    return CaptureResult(name, path, golden, len(runs))


def capture(
    request_id: str,
    name: str,
    *,
    settings: Settings | None = None,
    suite_dir: Path | None = None,
    repeat: int | None = None,
    overwrite: bool = False,
    **engine_kw: Any,
) -> CaptureResult:
    """Capture the stored request ``request_id`` (in ``settings.db_path``) as the golden ``name``.

    Raises:
        CaptureRefused: no such request; it was recorded without its request JSON (before that
            migration); it did not answer (status not ``ok``); it has no recorded seed; an online
            provider; a replay that fails, is not reproducible or differs from the recorded answer
            or agents; a bad or existing name (see :func:`capture_request`).
        sqlite3.Error: the store cannot be read.
    """
    settings = settings if settings is not None else load_settings()
    if not Path(settings.db_path).is_file():
        raise CaptureRefused(f"no telemetry store at {settings.db_path}: there is no request to capture")
    row = ReadModel(settings.db_path).request(request_id)
    if row is None:
        raise CaptureRefused(f"no request {request_id[:64]!r} in the store {settings.db_path}")
    if row.get("status") != "ok":
        raise CaptureRefused(
            f"request {request_id} did not answer (status {row.get('status')}: "
            f"{row.get('error') or 'no error'}); only answered requests can be captured"
        )
    if not row.get("request_json"):
        raise CaptureRefused(
            f"request {request_id} was recorded without its full request (request_json is empty: it predates "
            "that column), so its settings are unknown; run the query again and capture the new request"
        )
    if row.get("seed") is None:
        raise CaptureRefused(f"request {request_id} has no recorded seed, so it cannot be replayed")
    try:
        request = QueryRequest.model_validate_json(row["request_json"]).model_copy(
            update={"seed": row["seed"]}
        )
    except (ValidationError, json.JSONDecodeError) as exc:
        raise CaptureRefused(
            f"request {request_id}: its stored request JSON is not a valid request: {exc}"
        ) from None
    agents = row.get("agents_used")
    if isinstance(agents, str):
        agents = json.loads(agents)
    return capture_request(
        request,
        name,
        settings=settings,
        suite_dir=suite_dir,
        repeat=repeat,
        overwrite=overwrite,
        source_request_id=request_id,
        expect={"answer": row.get("answer") or "", "agents": list(agents or [])},
        **engine_kw,
    )


@dataclass(frozen=True, slots=True)
class RecaptureOutcome:
    """One golden of a re-baseline: written (``result``) or not (``error``)."""

    name: str
    result: CaptureResult | None
    error: str | None


def recapture(
    names: Sequence[str] | None,
    reason: str,
    *,
    settings: Settings | None = None,
    suite_dir: Path | None = None,
    repeat: int | None = None,
    **engine_kw: Any,
) -> list[RecaptureOutcome]:
    """Re-baseline the goldens ``names`` (all in the suite when None or empty): replay each one's
    request, rewrite its behaviour and latency, keep its request and source, and append ``reason``
    and the previous engine version to its history.  A golden that cannot be read or replayed is
    left as it is and reported; the others are still rewritten.

    Raises:
        CaptureRefused: ``reason`` is empty.
        GoldenError: the suite directory cannot be read.
    """
    from engine.golden.suite import load_suite

    if not reason.strip():
        raise CaptureRefused("a re-baseline needs a reason (--reason TEXT): why did the behaviour change?")
    settings = settings if settings is not None else load_settings()
    suite = load_suite(suite_dir if suite_dir is not None else settings.golden_dir, names or None)
    out = [RecaptureOutcome(e.name, None, e.message) for e in suite.errors]
    with Replayer(settings, **engine_kw) as replayer:
        for loaded in suite.goldens:
            old = loaded.golden
            try:
                _check_provider(old.request)
                runs = _observe(
                    replayer, old.request, repeat or settings.golden_repeat, f"golden-capture-{loaded.name}"
                )
            except CaptureRefused as exc:
                out.append(RecaptureOutcome(loaded.name, None, f"{loaded.path}: {exc}"))
                continue
            entry = Rebaseline(at=_now(), reason=reason.strip(), previous_engine_version=old.engine_version)
            golden = _golden(
                old.request, runs, engine_version(), old.source_request_id, [*old.history, entry]
            )
            _write(loaded.path, golden)
            out.append(
                RecaptureOutcome(
                    loaded.name, CaptureResult(loaded.name, loaded.path, golden, len(runs)), None
                )
            )
    return sorted(out, key=lambda o: o.name)
