"""Tracing: nesting, timing, errors, correlation ids, contextvars across threads, records.

Exporter implementations are tested in test_exporters.py, redaction in test_redaction.py.
Expected values are worked out by hand from the injected clocks and id factories, not read back
from the code under test.
"""

from __future__ import annotations

import contextvars
import json
import re
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pytest

from observability.exporters import CallbackExporter, InMemoryExporter
from observability.tracing import (
    Span,
    SpanRecord,
    Tracer,
    correlation_scope,
    current_span,
    current_span_id,
    current_trace_id,
    get_correlation_id,
    propagate,
    start_trace,
)
from tests.observability.span_helpers import WALL0, FakePerf, sid, tid

SECRET = "sk-test-SECRET123"


# --------------------------------------------------------------------------------------------
# Nesting and timing
# --------------------------------------------------------------------------------------------


def test_nesting_ids_and_times_from_fake_clocks(
    tracer: Tracer, mem: InMemoryExporter, perf: FakePerf
) -> None:
    with tracer.span("query", task="game24") as root:
        assert current_span() is root
        perf.advance(0.5)
        with tracer.span("agent.hrm"):
            assert current_span_id() == sid(2) and current_trace_id() == tid(1)
            perf.advance(0.25)
        assert current_span() is root
        perf.advance(0.25)
    assert current_span() is None and current_trace_id() is None

    child_rec, root_rec = mem.records  # children end first
    assert root_rec == SpanRecord(
        trace_id=tid(1),
        span_id=sid(1),
        parent_id=None,
        name="query",
        start_ts=WALL0,
        end_ts=WALL0 + 1.0,
        duration_ms=1000.0,
        status="ok",
        attributes={"task": "game24"},
        correlation_id=None,
        error=None,
    )
    assert (child_rec.trace_id, child_rec.span_id, child_rec.parent_id) == (tid(1), sid(2), sid(1))
    assert child_rec.start_ts == WALL0 + 0.5
    assert child_rec.end_ts == WALL0 + 0.75
    assert child_rec.duration_ms == 250.0
    assert root_rec.start_ts <= child_rec.start_ts <= child_rec.end_ts <= root_rec.end_ts


def test_child_timestamps_follow_the_root_anchor_not_a_jumping_wall_clock(mem: InMemoryExporter) -> None:
    walls = iter([WALL0, WALL0 - 3600.0])  # the wall clock steps back an hour after the root started
    perf = FakePerf()
    tracer = Tracer([mem], clock=lambda: next(walls), perf=perf)
    with tracer.span("root"):
        perf.advance(0.5)
        with tracer.span("child"):
            perf.advance(0.25)
    child, root = mem.records
    assert child.start_ts == WALL0 + 0.5 and child.end_ts == WALL0 + 0.75
    assert root.end_ts == WALL0 + 0.75


def test_durations_are_never_negative_with_real_clocks(mem: InMemoryExporter) -> None:
    tracer = Tracer([mem])
    with tracer.span("a"):
        for _ in range(3):
            with tracer.span("b"):
                pass
    assert len(mem.records) == 4
    root = mem.records[-1]
    for r in mem.records:
        assert r.duration_ms >= 0 and r.end_ts >= r.start_ts
        assert root.start_ts <= r.start_ts and r.end_ts <= root.end_ts
        assert re.fullmatch(r"[0-9a-f]{32}", r.trace_id) and re.fullmatch(r"[0-9a-f]{16}", r.span_id)
    assert len({r.span_id for r in mem.records}) == 4


def test_each_root_starts_a_new_trace_unless_a_trace_is_given(tracer: Tracer, mem: InMemoryExporter) -> None:
    with tracer.span("first"):
        pass
    with tracer.span("second"):
        pass
    given = "0123456789ABCDEF0123456789abcdef"
    with tracer.span("joined", trace_id=given) as joined, tracer.span("child"):
        pass
    with tracer.span("outer"), tracer.span("forced", trace_id=given) as forced:
        pass
    recs = {r.name: r for r in mem.records}
    assert recs["first"].trace_id == tid(1) and recs["second"].trace_id == tid(2)
    assert joined.trace_id == given.lower() and joined.parent_id is None
    assert recs["child"].trace_id == given.lower() and recs["child"].parent_id == joined.span_id
    # a span forced into another trace is a root of that trace, not a child of the open span
    assert forced.trace_id == given.lower() and forced.parent_id is None


def test_start_trace_gives_roots_its_id_and_detaches_from_the_open_span(
    tracer: Tracer, mem: InMemoryExporter
) -> None:
    with tracer.span("outside") as outside:
        with start_trace() as new_tid:
            assert re.fullmatch(r"[0-9a-f]{32}", new_tid) and new_tid != outside.trace_id
            assert current_trace_id() == new_tid and current_span() is None
            with tracer.span("a") as a:
                pass
            with tracer.span("b") as b:
                pass
        assert current_span() is outside
    assert a.trace_id == b.trace_id == new_tid and a.parent_id is None and b.parent_id is None
    with tracer.start_trace() as t2:
        assert t2 == tid(2)  # the tracer's own id factory
    with start_trace("ff" * 16) as t3:
        assert t3 == "ff" * 16


@pytest.mark.parametrize("bad", ["", "xyz", "0" * 32, "a" * 31, "g" * 32])
def test_bad_trace_ids_are_rejected(tracer: Tracer, bad: str) -> None:
    with pytest.raises(ValueError, match="trace_id"), tracer.span("x", trace_id=bad):
        pass


def test_id_factory_output_is_validated() -> None:
    tracer = Tracer(id_factory=lambda n: "not-hex")
    with pytest.raises(ValueError), tracer.span("x"):
        pass


def test_span_name_must_be_non_empty(tracer: Tracer) -> None:
    with pytest.raises(ValueError, match="name"):
        tracer.span("")


def test_a_span_can_be_entered_only_once(tracer: Tracer, mem: InMemoryExporter) -> None:
    span = tracer.span("once")
    with span:
        pass
    with pytest.raises(RuntimeError, match="already entered"), span:
        pass
    assert [r.name for r in mem.records] == ["once"]


def test_spans_without_exporters_still_nest(perf: FakePerf) -> None:
    tracer = Tracer(perf=perf, clock=lambda: WALL0)
    with tracer.span("a") as a, tracer.span("b") as b:
        perf.advance(0.5)
    assert b.parent_id == a.span_id and b.trace_id == a.trace_id and b.start_ts == a.start_ts == WALL0


def test_traced_decorator(tracer: Tracer, mem: InMemoryExporter) -> None:
    @tracer.traced("work", kind="unit")
    def work(x: int) -> int:
        return x * 2

    assert work(21) == 42
    assert mem.records[0].name == "work" and mem.records[0].attributes == {"kind": "unit"}


# --------------------------------------------------------------------------------------------
# Status and errors
# --------------------------------------------------------------------------------------------


def test_exception_marks_error_and_reraises(tracer: Tracer, mem: InMemoryExporter) -> None:
    with pytest.raises(KeyError, match="boom"), tracer.span("outer"), tracer.span("inner"):
        raise KeyError("boom")
    inner, outer = mem.records
    for r in (inner, outer):
        assert r.status == "error" and not r.ok
        assert r.error == "KeyError: 'boom'"
        assert r.attributes["exception.type"] == "KeyError"
    assert current_span() is None


def test_caught_exception_only_fails_the_inner_span(tracer: Tracer, mem: InMemoryExporter) -> None:
    with tracer.span("outer"):
        try:
            with tracer.span("inner"):
                raise RuntimeError("transient")
        except RuntimeError:
            pass
    inner, outer = mem.records
    assert inner.status == "error" and outer.status == "ok" and outer.error is None


def test_set_status_and_record_error(tracer: Tracer, mem: InMemoryExporter) -> None:
    with tracer.span("a") as a:
        a.set_status("error", "provider said no")
    with tracer.span("b") as b:
        b.record_error(TimeoutError("slow"))
    with tracer.span("c") as c:
        c.set_status("error", "x")
        c.set_status("ok")
    with pytest.raises(ValueError, match="status"), tracer.span("d") as d:
        d.set_status("failed")  # type: ignore[arg-type]
    recs = {r.name: r for r in mem.records}
    assert (recs["a"].status, recs["a"].error) == ("error", "provider said no")
    assert (recs["b"].status, recs["b"].error) == ("error", "TimeoutError: slow")
    assert (recs["c"].status, recs["c"].error) == ("ok", None)


def test_closing_a_generator_early_is_not_an_error(tracer: Tracer, mem: InMemoryExporter) -> None:
    def stream() -> Iterator[int]:
        with tracer.span("stream"):
            yield 1
            yield 2

    gen = stream()
    assert next(gen) == 1
    gen.close()
    assert [(r.name, r.status) for r in mem.records] == [("stream", "ok")]
    assert current_span() is None


def test_a_generator_closed_in_another_context_leaves_that_context_alone(
    tracer: Tracer, mem: InMemoryExporter
) -> None:
    def stream() -> Iterator[int]:
        with tracer.span("stream"):
            yield 1

    def scenario() -> None:
        gen = stream()
        next(gen)  # "stream" is now current here (generators share their caller's context)
        assert current_span() is not None and current_span().name == "stream"

        def elsewhere() -> None:
            with tracer.span("theirs") as theirs:
                gen.close()  # the span's context token belongs to the other context
                assert current_span() is theirs

        contextvars.Context().run(elsewhere)

    contextvars.copy_context().run(scenario)  # keep pytest's own context clean
    assert [(r.name, r.status) for r in mem.records] == [("stream", "ok"), ("theirs", "ok")]
    assert current_span() is None


# --------------------------------------------------------------------------------------------
# Correlation ids
# --------------------------------------------------------------------------------------------


def test_correlation_scope_is_recorded_nested_and_restored(tracer: Tracer, mem: InMemoryExporter) -> None:
    assert get_correlation_id() is None
    with correlation_scope("req-1") as cid:
        assert cid == "req-1" and get_correlation_id() == "req-1"
        with tracer.span("a"):
            with correlation_scope("req-2"), tracer.span("b"):
                pass
            with tracer.span("c"):
                pass
    assert get_correlation_id() is None
    with correlation_scope() as generated:
        assert re.fullmatch(r"[0-9a-f]{32}", generated)
    cids = {r.name: r.correlation_id for r in mem.records}
    assert cids == {"a": "req-1", "b": "req-2", "c": "req-1"}


@pytest.mark.parametrize("bad", ["", "   ", "a\nb", "x" * 129])
def test_bad_correlation_ids_are_rejected(bad: str) -> None:
    with pytest.raises(ValueError, match="correlation id"), correlation_scope(bad):
        pass


# --------------------------------------------------------------------------------------------
# Threads
# --------------------------------------------------------------------------------------------


def test_two_threads_tracing_concurrently_do_not_share_context(mem: InMemoryExporter) -> None:
    tracer = Tracer([mem])
    barrier = threading.Barrier(2, timeout=10)
    seen: dict[str, dict[str, Any]] = {}
    errors: list[BaseException] = []

    def worker(name: str) -> None:
        try:
            assert current_span() is None and get_correlation_id() is None
            with correlation_scope(f"cid-{name}"), tracer.span(f"root-{name}") as root:
                barrier.wait()  # both roots are open now
                for i in range(50):
                    with tracer.span(f"child-{name}-{i}") as child:
                        assert current_span() is child
                        assert child.parent_id == root.span_id and child.trace_id == root.trace_id
                barrier.wait()
                seen[name] = {"trace": root.trace_id, "span": current_span_id(), "cid": get_correlation_id()}
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    with tracer.span("main") as main:
        threads = [threading.Thread(target=worker, args=(n,)) for n in ("a", "b")]
        for t in threads:
            t.start()
        for t in threads:
            t.join(20)
        assert current_span() is main
    assert not errors, errors
    assert seen["a"]["trace"] != seen["b"]["trace"] != main.trace_id
    assert seen["a"]["cid"] == "cid-a" and seen["b"]["cid"] == "cid-b"
    by_trace: dict[str, set[str]] = {}
    for r in mem.records:
        by_trace.setdefault(r.trace_id, set()).add(r.name.split("-")[1] if "-" in r.name else r.name)
    assert by_trace == {seen["a"]["trace"]: {"a"}, seen["b"]["trace"]: {"b"}, main.trace_id: {"main"}}
    for r in mem.records:
        if r.name.startswith("child-"):
            assert r.correlation_id == f"cid-{r.name.split('-')[1]}"


def test_propagate_keeps_the_parent_in_a_worker_thread(tracer: Tracer, mem: InMemoryExporter) -> None:
    def work(label: str) -> tuple[str | None, str | None]:
        with tracer.span(f"work-{label}") as s:
            return s.parent_id, get_correlation_id()

    results: dict[str, Any] = {}
    with correlation_scope("cid-main"), tracer.span("parent") as parent:
        t = threading.Thread(target=lambda: results.update(plain=work("plain")))
        t.start()
        t.join(10)
        wrapped = propagate(work)
        t = threading.Thread(target=lambda: results.update(kept=wrapped("kept")))
        t.start()
        t.join(10)
    assert results["kept"] == (parent.span_id, "cid-main")
    assert results["plain"] == (None, None)
    recs = {r.name: r for r in mem.records}
    assert recs["work-kept"].trace_id == parent.trace_id and recs["work-kept"].parent_id == parent.span_id
    assert recs["work-plain"].trace_id != parent.trace_id and recs["work-plain"].parent_id is None


def test_one_propagated_wrapper_can_run_in_many_threads_at_once(
    tracer: Tracer, mem: InMemoryExporter
) -> None:
    barrier = threading.Barrier(4, timeout=10)

    def work(i: int) -> str | None:
        with tracer.span(f"w{i}") as s:
            barrier.wait()  # all four contexts are entered at the same time
            return s.parent_id

    with tracer.span("parent") as parent, ThreadPoolExecutor(4) as pool:
        parents = list(pool.map(propagate(work), range(4)))
    assert parents == [parent.span_id] * 4


def test_context_var_helpers_are_plain_contextvars(tracer: Tracer) -> None:
    with tracer.span("x") as x:
        ctx = contextvars.copy_context()
    assert current_span() is None
    assert ctx.run(current_span) is x


# --------------------------------------------------------------------------------------------
# Records, and the tracer's side of exporting
# --------------------------------------------------------------------------------------------


class Exploding:
    def __init__(self) -> None:
        self.calls = 0

    def export(self, records: Sequence[SpanRecord]) -> None:
        self.calls += 1
        raise OSError(f"disk full while holding {SECRET}")


def test_exporter_failure_is_counted_and_never_reaches_the_caller(mem: InMemoryExporter) -> None:
    bad = Exploding()
    tracer = Tracer([bad, mem], secrets=[SECRET])
    with tracer.span("a"), tracer.span("b"):
        pass
    assert bad.calls == 2 and tracer.export_failures == 2
    assert [r.name for r in mem.records] == ["b", "a"]  # later exporters still get every span
    assert tracer.last_export_error is not None and tracer.last_export_error.startswith("Exploding: OSError")
    assert "SECRET123" not in tracer.last_export_error


def test_exporters_receive_a_list_with_the_record_and_can_be_added_later(tracer: Tracer) -> None:
    batches: list[Sequence[SpanRecord]] = []
    cb = CallbackExporter(batches.append)
    tracer.add_exporter(cb)
    with tracer.span("x"):
        pass
    tracer.remove_exporter(cb)
    with tracer.span("y"):
        pass
    assert len(batches) == 1 and isinstance(batches[0], list) and [r.name for r in batches[0]] == ["x"]


def test_to_row_columns_and_round_trip(tracer: Tracer, mem: InMemoryExporter) -> None:
    with pytest.raises(ValueError), tracer.span("s", n=3, ratio=0.5, flag=True, tags=("a", "b")):
        raise ValueError("bad")
    rec = mem.records[0]
    row = rec.to_row()
    assert list(row) == [
        "span_id",
        "trace_id",
        "parent_id",
        "name",
        "start_ts",
        "end_ts",
        "duration_ms",
        "status",
        "attributes",
        "correlation_id",
    ]
    assert json.loads(row["attributes"]) == {
        "n": 3,
        "ratio": 0.5,
        "flag": True,
        "tags": ["a", "b"],
        "exception.type": "ValueError",
        "otel.status_description": "ValueError: bad",
    }
    assert SpanRecord.from_row(row) == rec
    assert SpanRecord.from_dict(json.loads(json.dumps(rec.to_dict()))) == rec


def test_attribute_values_become_json_safe(tracer: Tracer, mem: InMemoryExporter) -> None:
    class Thing:
        def __str__(self) -> str:
            return "thing!"

    with tracer.span(
        "s", i=np.int64(7), f=np.float64(0.25), nan=float("nan"), inf=float("-inf"), obj=Thing()
    ):
        pass
    assert mem.records[0].attributes == {"i": 7, "f": 0.25, "nan": "nan", "inf": "-inf", "obj": "thing!"}
    assert type(mem.records[0].attributes["i"]) is int
    json.loads(mem.records[0].to_row()["attributes"])  # strict JSON: no NaN tokens


# --------------------------------------------------------------------------------------------
# Collectors: the ended span itself, its record built later
# --------------------------------------------------------------------------------------------


def test_a_collector_gets_the_ended_span_whose_record_equals_the_exporters(
    tracer: Tracer, mem: InMemoryExporter, perf: FakePerf
) -> None:
    ended: list[Any] = []
    tracer.add_collector(ended.append)
    with tracer.span("query", task="game24") as root:
        perf.advance(0.5)
        with tracer.span("agent.hrm", step=0) as child:
            child.set_attributes({"answer": "8/(3-8/3)"}, confidence=0.75)
            assert not child.ended
            perf.advance(0.25)
        with pytest.raises(RuntimeError, match="has not ended"):
            root.record()
    assert ended == [child, root] and all(s.ended for s in ended)
    assert [s.record() for s in ended] == mem.records
    assert ended[0].record().attributes == {"step": 0, "answer": "8/(3-8/3)", "confidence": 0.75}
    assert ended[1].record().duration_ms == pytest.approx(750.0)
    tracer.remove_collector(ended.append)
    with tracer.span("later"):
        pass
    assert len(ended) == 2


def test_an_ended_span_no_longer_changes(tracer: Tracer, mem: InMemoryExporter) -> None:
    with tracer.span("s", n=1) as span:
        pass
    span.set_attribute("n", 2).set_attributes(m=3).set_status("error", "too late")
    assert span.record() == mem.records[0]
    assert mem.records[0].attributes == {"n": 1} and mem.records[0].status == "ok"


def test_attributes_are_redacted_whenever_they_are_read(tracer: Tracer, mem: InMemoryExporter) -> None:
    ended: list[Any] = []
    tracer.add_collector(ended.append)
    with tracer.span("s", note=f"key {SECRET}", api_key="plain") as span:
        assert span.attributes == {"note": "key **********", "api_key": "**********"}
        tracer.add_secrets(["later-secret"])  # added while the span is open: still masked
        span.set_attribute("text", "a later-secret here")
    expected = {"note": "key **********", "api_key": "**********", "text": "a ********** here"}
    assert mem.records[0].attributes == expected == ended[0].record().attributes


def test_a_failing_collector_is_counted_and_exporters_still_run(mem: InMemoryExporter) -> None:
    def explode(span: Any) -> None:
        raise OSError("collector down")

    tracer = Tracer([mem])
    tracer.add_collector(explode)
    with tracer.span("a"):
        pass
    assert tracer.export_failures == 1 and [r.name for r in mem.records] == ["a"]


def test_default_span_ids_are_made_when_first_read_the_same_from_every_thread() -> None:
    """Ids are derived from the trace's base and the span's number when first read (in the
    store's writer thread, usually): whichever threads race to read one, all see the same id;
    within a trace they are distinct, and each child names its parent's id."""
    tracer = Tracer()
    ended: list[Span] = []
    tracer.add_collector(ended.append)
    unentered = tracer.span("later")
    assert unentered.span_id == "" and unentered.trace_id == "" and unentered.parent_id is None
    with tracer.span("root"):
        for _ in range(50):
            with tracer.span("child"), tracer.span("grandchild"):
                pass
    assert len(ended) == 101
    barrier = threading.Barrier(8)

    def read_all() -> list[tuple[str, str | None]]:
        barrier.wait(10)
        return [(s.span_id, s.parent_id) for s in ended]

    with ThreadPoolExecutor(8) as pool:
        seen = list(pool.map(lambda _: read_all(), range(8)))
    assert all(view == seen[0] for view in seen)
    ids = [span_id for span_id, _ in seen[0]]
    assert len(set(ids)) == len(ids) and all(re.fullmatch("[0-9a-f]{16}", i) and int(i, 16) for i in ids)
    by_id = {s.span_id: s for s in ended}
    root = ended[-1]
    assert root.parent_id is None and {s.trace_id for s in ended} == {root.trace_id}
    for span in ended[:-1]:
        parent = by_id[span.parent_id]  # type: ignore[index]
        assert parent.name == {"child": "root", "grandchild": "child"}[span.name]
        assert parent.record().start_ts <= span.record().start_ts


def test_a_trace_collector_gets_each_roots_spans_once_when_the_root_ends(mem: InMemoryExporter) -> None:
    """In the order they ended, the root last; a span ending after its root is not handed over;
    a failing trace collector is counted and the others still get the spans."""
    tracer = Tracer([mem])
    got: list[tuple[str, list[str]]] = []

    def explode(trace_id: str, spans: list[Span]) -> None:
        raise OSError("collector down")

    tracer.add_trace_collector(explode)
    tracer.add_trace_collector(lambda trace_id, spans: got.append((trace_id, [s.name for s in spans])))
    late = tracer.span("late")
    with tracer.span("root") as root:
        with tracer.span("a"), tracer.span("b"):
            pass
        late.__enter__()
    assert got == [(root.trace_id, ["b", "a", "root"])]
    late.__exit__(None, None, None)  # restores "root" as current: ended, so not a parent
    assert len(got) == 1 and late.ended  # ended after its root: not handed over
    assert tracer.export_failures == 1
    assert [r.name for r in mem.records] == ["b", "a", "root", "late"]  # exporters see every span
    with tracer.span("second") as second:
        pass
    assert got[-1] == (root.trace_id, ["second"]) and second.parent_id is None
