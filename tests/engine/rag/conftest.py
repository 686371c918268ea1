"""A tiny hand-made corpus for the retriever tests.

Every word in it is left unchanged by the porter stemmer (checked in
``test_tiny_corpus_vocabulary_is_unstemmed``), so an independent bm25 over plain
lowercase tokens sees exactly the terms FTS5 indexes.
"""

from __future__ import annotations

from pathlib import Path

import pytest

TINY_CORPUS = {
    "garden": """# Garden plan

Plain text for a small garden.

## Soil

Tomato plant want warm soil and full sun. Water the soil at dawn, not at noon.

## Pest

Aphid eat leaf sap. Wash each leaf with soap and water. A ladybird eat aphid too.
""",
    "teapot": """# Teapot manual

## Boil

Fill the teapot with cold water, then press the red button. The lamp turn off at the boil.

## Clean

Clean the teapot with lemon and hot water each month. Dry it with a soft cloth.

## Hazard

Never put the teapot on a hot hob. Keep the cord far from the sink.
""",
    "piano": """# Piano care

## Pitch

Tune the A string to 440 hertz with a fork. Then tune the rest from that A.

## Felt

Old felt on a hammer sound dull. Soft felt give a warm tone; hard felt a bright tone.
""",
}


def write_corpus(directory: Path, docs: dict[str, str]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for stem, text in docs.items():
        (directory / f"{stem}.md").write_text(text, encoding="utf-8")
    return directory


@pytest.fixture
def tiny_corpus(tmp_path: Path) -> Path:
    return write_corpus(tmp_path / "corpus", TINY_CORPUS)
