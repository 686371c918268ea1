"""Ids of the trace context: per-tracer id sources, fresh in a forked child, no shared state."""

from __future__ import annotations

import os
import random
import sys

import pytest

from observability.trace_context import IdSource, check_span_id, check_trace_id, random_id
from observability.tracing import Tracer


def test_ids_are_valid_hex_of_the_right_length() -> None:
    source = IdSource()
    for _ in range(200):
        assert check_trace_id(source(16)) and check_span_id(source(8))
        assert len(random_id(16)) == 32 and len(random_id(8)) == 16


def test_an_id_source_is_its_own_stream() -> None:
    """Two sources never share a generator: seeding the global one changes neither."""
    a, b = IdSource(), IdSource()
    random.seed(0)
    first = [a(8) for _ in range(50)]
    random.seed(0)
    assert first != [b(8) for _ in range(50)]


@pytest.mark.skipif(not hasattr(os, "fork") or sys.platform == "darwin", reason="needs fork")
def test_a_forked_child_draws_other_ids_than_its_parent() -> None:
    """At the fork both copies hold the same generator state; the child reseeds at the fork
    (``os.register_at_fork``), so the next ids differ (without the reseed they would be equal)."""
    source = IdSource()
    source(16)
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        try:
            os.write(write_end, source(16).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    child_id = os.read(read_end, 64).decode()
    os.close(read_end)
    os.waitpid(pid, 0)
    assert len(child_id) == 32 and child_id != source(16)


def test_tracers_with_default_ids_do_not_collide() -> None:
    ids = set()
    for tracer in (Tracer(), Tracer()):
        for _ in range(100):
            with tracer.span("s") as span:
                ids.add(span.span_id)
    assert len(ids) == 200
