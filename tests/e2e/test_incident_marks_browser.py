"""Incidents on the SLO page's charts in a real browser: the band's label is drawn, and hovering
it shows the incident's title, window and description as literal text (no HTML applied).
The store is the one of tests/app/test_incident_marks.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.app.test_incident_marks import AS_OF, TITLE, _fill
from tests.e2e.conftest import running_console

pytestmark = pytest.mark.e2e


def test_hovering_an_incident_label_shows_its_title(tmp_path: Path, page) -> None:
    _fill(tmp_path / "arbor.db", AS_OF)
    with running_console(tmp_path, {"ARBOR_AUTH": "none"}) as url:
        page.goto(f"{url}/slos?slo=availability&range=1h&as_of={int(AS_OF)}")
        page.get_by_role("heading", name="Availability").first.wait_for(timeout=90_000)
        # the label shows the title's tag as text (Plotly would have made "spike" bold instead)
        label = page.locator("g.annotation-text-g", has_text="Error <b>spike</b>").first
        label.wait_for(timeout=60_000)
        label.hover()
        tip = page.get_by_text(f"{TITLE} (simulated)", exact=True).first
        tip.wait_for(timeout=10_000)
        assert page.get_by_text("half the requests fail", exact=True).count() >= 1
