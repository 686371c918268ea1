"""The shipped operator corpus: shape of the documents and retrieval on real questions."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.rag import Retriever, format_context

REPO = Path(__file__).resolve().parents[3]
CORPUS = REPO / "data" / "corpus"
FILES = sorted(CORPUS.glob("*.md"))


@pytest.fixture(scope="module")
def retriever() -> Iterator[Retriever]:
    with Retriever.from_corpus(CORPUS) as r:
        yield r


def test_corpus_size() -> None:
    assert 12 <= len(FILES) <= 20


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_each_document_has_a_title_sections_and_a_sane_length(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    assert lines[0].startswith("# ") and len(lines[0]) > 2
    assert sum(1 for line in lines if line.startswith("# ")) == 1
    assert any(line.startswith("## ") for line in lines)
    assert 150 <= len(text.split()) <= 600


@pytest.mark.parametrize(
    ("query", "docs"),
    [
        ("error budget burn rate", {"slos-and-error-budgets", "burn-rate-alerting"}),
        ("circuit breaker open", {"runbook-llm-provider-errors"}),
        ("UCB1 exploration constant", {"mcts-search"}),
        ("SRM chi-square", {"runbook-experiment-srm"}),
        ("Prometheus unreachable", {"runbook-prometheus-unreachable"}),
        ("golden trace regression first divergence", {"runbook-golden-trace-regression"}),
        ("meta-controller features", {"meta-controller-routing"}),
        ("Welch-Satterthwaite degrees of freedom", {"ab-testing-statistics"}),
        ("p95 latency", {"runbook-high-latency-p95"}),
        ("progressive widening", {"mcts-search"}),
    ],
)
def test_real_questions_find_the_right_document_first(
    retriever: Retriever, query: str, docs: set[str]
) -> None:
    top = retriever.search(query, k=4)
    assert top, query
    assert top[0].doc in docs, [(p.doc, p.section) for p in top]


def test_context_for_a_prompt(retriever: Retriever) -> None:
    passages = retriever.search("circuit breaker half-open probe", k=3)
    context = format_context(passages)
    lines = context.split("\n")
    assert len(lines) == 3
    for i, (line, passage) in enumerate(zip(lines, passages, strict=True), start=1):
        assert line.startswith(f"[{i}] ({passage.doc} § {passage.section}) ")
