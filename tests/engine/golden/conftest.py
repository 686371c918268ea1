"""Shared fixtures of the golden-trace tests: settings on a temp store, a temp copy of data/golden."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from engine.config import Settings, load_settings

SHIPPED = Path(__file__).resolve().parents[3] / "data" / "golden"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings that record to a temp store, expose no metrics and use the temp suite copy."""
    return load_settings(db_path=tmp_path / "arbor.db", metrics_port=0, golden_dir=tmp_path / "golden")


@pytest.fixture
def suite_copy(tmp_path: Path) -> Path:
    """A temp copy of the shipped suite (tests may tamper with it)."""
    dest = tmp_path / "golden"
    shutil.copytree(SHIPPED, dest)
    return dest
