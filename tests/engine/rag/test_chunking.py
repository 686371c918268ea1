"""chunk_markdown: headings, nesting, size bounds, split boundaries."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.rag import MAX_CHUNK_WORDS, chunk_markdown

REPO = Path(__file__).resolve().parents[3]


def _para(prefix: str, n: int) -> str:
    """A paragraph of exactly n distinct words, e.g. a0 a1 ... a{n-1}."""
    return " ".join(f"{prefix}{i}" for i in range(n))


def test_splits_on_headings_with_nested_names() -> None:
    text = (
        "# The Title\n\nIntro words here.\n\n## Alpha\n\nAlpha body.\n\n### Deep\n\nDeep body.\n\n"
        "## Beta\n\nBeta body.\n\n#### Skip level\n\nSkip body.\n"
    )
    chunks = chunk_markdown(text, "doc-x")
    assert [(c.section, c.text) for c in chunks] == [
        ("The Title", "Intro words here."),
        ("Alpha", "Alpha body."),
        ("Alpha / Deep", "Deep body."),
        ("Beta", "Beta body."),
        ("Beta / Skip level", "Skip body."),
    ]
    assert {c.title for c in chunks} == {"The Title"}
    assert {c.doc for c in chunks} == {"doc-x"}


def test_title_defaults_to_the_file_stem_and_empty_sections_are_dropped() -> None:
    chunks = chunk_markdown("## Only\n\nSome text.\n\n## Empty\n\n\n## Last\nEnd.", "error-budget_notes")
    assert [c.section for c in chunks] == ["Only", "Last"]
    assert {c.title for c in chunks} == {"Error budget notes"}


def test_headings_inside_code_fences_are_text() -> None:
    text = "# T\n\n## Shell\n\n```sh\n# not a heading\n\necho hi\n```\n\nAfter.\n"
    chunks = chunk_markdown(text, "d")
    assert len(chunks) == 1
    assert chunks[0].section == "Shell"
    assert "# not a heading" in chunks[0].text and "After." in chunks[0].text


def test_closing_hashes_and_crlf() -> None:
    chunks = chunk_markdown("# Title #\r\n\r\n## Part ##\r\nbody\r\n", "d")
    assert [(c.title, c.section, c.text) for c in chunks] == [("Title", "Part", "body")]


def test_long_section_splits_on_paragraph_boundaries() -> None:
    # 50 + 50 fit in 120 words, a third 50 does not: by hand, [p1 p2] then [p3].
    p1, p2, p3 = _para("a", 50), _para("b", 50), _para("c", 50)
    chunks = chunk_markdown(f"# T\n\n## S\n\n{p1}\n\n{p2}\n\n{p3}\n", "d")
    assert [c.text for c in chunks] == [f"{p1}\n\n{p2}", p3]
    assert all(c.section == "S" for c in chunks)


def test_long_paragraph_splits_on_sentence_boundaries() -> None:
    sentences = [_para(f"s{k}w", 20) + "." for k in range(15)]  # 15 sentences x 20 words = 300 words
    chunks = chunk_markdown("# T\n\n## S\n\n" + " ".join(sentences) + "\n", "d")
    # Greedy packing of 20-word sentences into <= 120 words: 6 + 6 + 3 sentences.
    assert [len(c.text.split()) for c in chunks] == [120, 120, 60]
    assert all(c.text.endswith(".") for c in chunks)
    assert " ".join(c.text for c in chunks).split() == " ".join(sentences).split()


def test_list_items_split_on_line_boundaries() -> None:
    items = [f"- {_para(f'i{k}w', 29)}" for k in range(6)]  # 6 items x 30 words (with the dash)
    chunks = chunk_markdown("# T\n\n## S\n\n" + "\n".join(items) + "\n", "d")
    assert [c.text for c in chunks] == ["\n".join(items[:4]), "\n".join(items[4:])]


def test_one_huge_sentence_is_cut_into_word_windows() -> None:
    words = _para("w", 500).split()
    chunks = chunk_markdown("# T\n\n" + " ".join(words), "d")
    assert [len(c.text.split()) for c in chunks] == [120, 120, 120, 120, 20]
    assert [w for c in chunks for w in c.text.split()] == words


@pytest.mark.parametrize("max_words", [1, 7, 40])
def test_custom_bound_is_respected_and_nothing_is_lost(max_words: int) -> None:
    text = (REPO / "data/corpus/mcts-search.md").read_text(encoding="utf-8")
    chunks = chunk_markdown(text, "mcts-search", max_words=max_words)
    assert all(1 <= len(c.text.split()) <= max_words for c in chunks)
    body_words = [w for line in text.splitlines() if not line.startswith("#") for w in line.split()]
    assert [w for c in chunks for w in c.text.split()] == body_words


def test_bad_bound_is_rejected() -> None:
    with pytest.raises(ValueError, match="max_words"):
        chunk_markdown("text", "d", max_words=0)


def test_real_corpus_chunks_are_bounded() -> None:
    for path in sorted((REPO / "data/corpus").glob("*.md")):
        chunks = chunk_markdown(path.read_text(encoding="utf-8"), path.stem)
        assert chunks, path.name
        assert all(len(c.text.split()) <= MAX_CHUNK_WORDS for c in chunks), path.name
