"""A request whose LLM provider fails (the ``provider_error`` fault), shared by the telemetry tests."""

from __future__ import annotations

import pytest

from engine import Engine, QueryRequest
from engine.faults import Faults


def run_with_failing_provider(engine: Engine, query: str = "What is a burn rate?", seed: int = 9) -> None:
    """Stream a freeform ``query`` whose provider fails; the request ends in error."""
    with pytest.raises(Exception, match="injected"):
        list(
            engine.stream(
                QueryRequest(query=query, seed=seed), live=False, faults=Faults(provider_error=True)
            )
        )
