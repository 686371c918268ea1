"""Golden traces: capture any request, replay the suite, name the first divergence (issue 13).

A golden trace is a reviewed JSON file ``data/golden/NAME.json`` holding one request with its
seed and settings and the behaviour it produced: answer, verdict, quality, the routing sequence,
the ordered span tree and latency.  The suite replays each golden and compares, in this order,
routing (agents, probabilities within ``ARBOR_GOLDEN_PROB_TOLERANCE``, reasons), the span tree,
the answer and verdict, and quality (no lower than golden minus ``ARBOR_GOLDEN_QUALITY_TOLERANCE``).
Latency never fails a trace; across the suite a one-sided Wilcoxon signed-rank test plus a median
change beyond ``ARBOR_GOLDEN_LATENCY_TOLERANCE`` decides a latency regression.

Public API (used by the CLI ``python -m engine golden ...`` and the console's Golden traces page)::

    from engine.golden import (capture, capture_request, recapture, load_suite, run_suite,
                               suite_history, run_results)

    # the file format (pydantic, frozen; module engine.golden.format)
    GoldenFile        # request: GoldenRequest (+ settings: GoldenSettings), answer, verdict, quality,
                      # routing: [GoldenStep(step, agent, probabilities, reason)],
                      # spans: [GoldenSpan(name, attributes, children)],
                      # latency_ms: GoldenLatency(total, samples, spans), engine_version,
                      # captured_at, repetitions, source_request_id, history: [Rebaseline]
    read_golden(path) -> GoldenFile; parse_golden(text, source); dumps(golden) -> canonical JSON
    span_paths(spans) -> ((path, span), ...) in pre-order, e.g. "query/agent.trm/llm.complete#2"
    GoldenError       # a bad file: the message names the file and the field

    # capture (module engine.golden.capture)
    capture(request_id, name, *, settings=None, suite_dir=None, repeat=None, overwrite=False)
        -> CaptureResult(name, path, golden, replays)      # raises CaptureRefused(reason)
    capture_request(QueryRequest | GoldenRequest, name, ...) -> CaptureResult
    recapture(names | None, reason, ...) -> [RecaptureOutcome(name, result, error)]

    # the suite (modules engine.golden.suite, engine.golden.history)
    load_suite(directory, names=None)
        -> Suite(directory, goldens: (LoadedGolden,...), errors: (LoadError,...))
    run_suite(suite_or_dir=None, *, settings=None, repeat=1, latency_gate=True,
              progress=None, record=True, deadline_s=None) -> SuiteResult
        progress(done: int, total: int, name: str, status: str) after each golden
    SuiteResult: run_id, ts, directory, results: (TraceResult,...), latency: LatencyVerdict,
                 duration_s, repeat, recorded, record_error; .passed .failed .errors .ok .as_json()
    TraceResult: name, path, status ("pass" | "regression" | "error"), first_divergence,
                 divergences: (Divergence(section, where, expected, got, message),...), error,
                 golden (the GoldenFile), request_id, trace_id, answer, verdict, quality,
                 routing, spans, latency_ms, latency_samples, span_latency_ms;
                 .golden_latency_ms .golden_quality .latency_change .as_dict()
    LatencyVerdict: n, p_value, median_change, median_change_ms, tolerance, alpha, significant,
                    regression, gated, detail
    suite_history(db_path, limit=50) -> [SuiteRunSummary(run_id, ts, passed, failed, errors)]
        (.total, .pass_rate), newest first, from the store's golden_runs table
    run_results(db_path, run_id=None) -> golden_runs rows of a run (default: the latest), diff decoded

Never imports streamlit.
"""

from engine.golden.capture import (
    CaptureRefused,
    CaptureResult,
    RecaptureOutcome,
    capture,
    capture_request,
    engine_version,
    recapture,
)
from engine.golden.compare import Divergence, Observation, compare
from engine.golden.format import (
    GoldenError,
    GoldenFile,
    GoldenLatency,
    GoldenRequest,
    GoldenSettings,
    GoldenSpan,
    GoldenStep,
    Rebaseline,
    dumps,
    parse_golden,
    read_golden,
    span_paths,
)
from engine.golden.history import SuiteRunSummary, run_results, suite_history
from engine.golden.replay import Replayer, ReplayError
from engine.golden.suite import (
    LatencyVerdict,
    LoadedGolden,
    LoadError,
    ProgressFn,
    Suite,
    SuiteResult,
    TraceResult,
    TraceStatus,
    latency_verdict,
    load_suite,
    run_golden,
    run_suite,
)

__all__ = [
    "CaptureRefused",
    "CaptureResult",
    "Divergence",
    "GoldenError",
    "GoldenFile",
    "GoldenLatency",
    "GoldenRequest",
    "GoldenSettings",
    "GoldenSpan",
    "GoldenStep",
    "LatencyVerdict",
    "LoadError",
    "LoadedGolden",
    "Observation",
    "ProgressFn",
    "Rebaseline",
    "RecaptureOutcome",
    "ReplayError",
    "Replayer",
    "Suite",
    "SuiteResult",
    "SuiteRunSummary",
    "TraceResult",
    "TraceStatus",
    "capture",
    "capture_request",
    "compare",
    "dumps",
    "engine_version",
    "latency_verdict",
    "load_suite",
    "parse_golden",
    "read_golden",
    "recapture",
    "run_golden",
    "run_results",
    "run_suite",
    "span_paths",
    "suite_history",
]
