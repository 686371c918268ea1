"""Retriever on a tiny corpus: ranking, an independent bm25, hostile queries, rebuilds, threads."""

from __future__ import annotations

import math
import re
import sqlite3
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.rag import (
    FTS_WEIGHTS,
    Passage,
    Retriever,
    chunk_markdown,
    corpus_hash,
    format_context,
    fts_query,
    query_terms,
)

from .conftest import TINY_CORPUS, write_corpus

# --------------------------------------------------------------------------- independent bm25

K1, B = 1.2, 0.75  # the textbook Okapi BM25 constants


def _tokens(text: str) -> list[str]:
    return re.findall(r"[^\W_]+", text.lower())


def _oracle_scores(corpus: Path, terms: list[str]) -> dict[tuple[str, str, str], float]:
    """Okapi BM25 of every passage that contains a query term, by the textbook formula.

    A passage is the document of its title, section and text tokens; a term's frequency
    is the sum over those three fields of (count x field weight).
    """
    chunks = [
        c for p in sorted(corpus.glob("*.md")) for c in chunk_markdown(p.read_text(encoding="utf-8"), p.stem)
    ]
    fields = [
        [Counter(_tokens(c.title)), Counter(_tokens(c.section)), Counter(_tokens(c.text))] for c in chunks
    ]
    lengths = [sum(sum(f.values()) for f in fs) for fs in fields]
    n_docs, avgdl = len(chunks), sum(lengths) / len(chunks)
    scores: dict[tuple[str, str, str], float] = {}
    for chunk, fs, dl in zip(chunks, fields, lengths, strict=True):
        score, matched = 0.0, False
        for term in terms:
            df = sum(1 for other in fields if any(term in f for f in other))
            assert 0 < df < n_docs / 2, f"choose terms with a positive textbook IDF ({term}: df={df})"
            idf = math.log((n_docs - df + 0.5) / (df + 0.5))
            tf = sum(w * f[term] for w, f in zip(FTS_WEIGHTS, fs, strict=True))
            if tf:
                matched = True
                score += idf * tf * (K1 + 1) / (tf + K1 * (1 - B + B * dl / avgdl))
        if matched:
            scores[(chunk.doc, chunk.section, chunk.text)] = score
    return scores


def test_tiny_corpus_vocabulary_is_unstemmed(tiny_corpus: Path, tmp_path: Path) -> None:
    """The porter stemmer leaves every token of the tiny corpus alone, so the oracle's
    plain tokens are exactly FTS5's terms."""
    db = tmp_path / "rag.db"
    Retriever.from_corpus(tiny_corpus, db).close()
    conn = sqlite3.connect(db)
    try:
        conn.execute("CREATE VIRTUAL TABLE temp.vocab USING fts5vocab(main, 'chunks_fts', 'row')")
        indexed = {term for (term,) in conn.execute("SELECT term FROM temp.vocab")}
    finally:
        conn.close()
    ours = {
        t
        for stem, text in TINY_CORPUS.items()
        for c in chunk_markdown(text, stem)
        for t in _tokens(f"{c.title} {c.section} {c.text}")
    }
    assert indexed == ours


@pytest.mark.parametrize(
    "query",
    [
        "warm soil",
        "teapot boil",
        "felt tone",
        "tomato sun dawn",
        "soft cloth",
        "hot lemon",
        "warm tone string",
    ],
)
def test_scores_match_an_independent_bm25(tiny_corpus: Path, query: str) -> None:
    expected = _oracle_scores(tiny_corpus, query_terms(query))
    with Retriever.from_corpus(tiny_corpus) as retriever:
        got = retriever.search(query, k=20)
    # Same passages, same scores, best first.
    assert {(p.doc, p.section, p.text) for p in got} == set(expected)
    for p in got:
        assert p.score == pytest.approx(expected[(p.doc, p.section, p.text)], rel=1e-9, abs=1e-12)
    assert [p.score for p in got] == sorted((p.score for p in got), reverse=True)
    assert all(p.score > 0 for p in got)


@pytest.mark.parametrize(
    ("query", "doc", "section"),
    [
        ("warm soil", "garden", "Soil"),
        ("aphid ladybird", "garden", "Pest"),
        ("how do I boil water in the teapot?", "teapot", "Boil"),
        ("felt tone", "piano", "Felt"),
        ("440 hertz", "piano", "Pitch"),
        ("hob hazard", "teapot", "Hazard"),
        ("TOMATO!!", "garden", "Soil"),
        ('what\'s "hertz"?', "piano", "Pitch"),
    ],
)
def test_the_obvious_passage_ranks_first(tiny_corpus: Path, query: str, doc: str, section: str) -> None:
    with Retriever.from_corpus(tiny_corpus) as retriever:
        top = retriever.search(query, k=3)
    assert (top[0].doc, top[0].section) == (doc, section)
    assert top[0].title == {"garden": "Garden plan", "teapot": "Teapot manual", "piano": "Piano care"}[doc]


def test_porter_stemming_matches_inflections(tiny_corpus: Path) -> None:
    with Retriever.from_corpus(tiny_corpus) as retriever:
        assert retriever.search("boiling teapots", k=1)[0].section == "Boil"
        assert retriever.search("tuned strings", k=1)[0].section == "Pitch"


def test_k_limits_results_and_no_match_is_empty(tiny_corpus: Path) -> None:
    with Retriever.from_corpus(tiny_corpus) as retriever:
        assert len(retriever.search("teapot", k=2)) == 2
        assert len(retriever.search("teapot", k=20)) == 3  # only three passages mention it
        assert retriever.search("zeppelin", k=4) == []


@pytest.mark.parametrize("k", [0, -1, 21, 2.5, True, "3", None])
def test_bad_k_is_rejected(tiny_corpus: Path, k: object) -> None:
    with Retriever.from_corpus(tiny_corpus) as retriever, pytest.raises(ValueError, match="k must be"):
        retriever.search("soil", k=k)  # type: ignore[arg-type]


def test_non_string_query_is_a_type_error(tiny_corpus: Path) -> None:
    with Retriever.from_corpus(tiny_corpus) as retriever, pytest.raises(TypeError):
        retriever.search(b"soil")  # type: ignore[arg-type]


# --------------------------------------------------------------------------- hostile queries

HOSTILE = [
    "",
    "   \t\n ",
    'what\'s "p95"?',
    "AND OR NEAR(",
    "NEAR(soil water, 2)",
    'soil" OR "x',
    '"',
    '""',
    "'",
    "NOT soil",
    "soil AND",
    "OR",
    "(((",
    ")))",
    "*",
    "soil*",
    "^soil",
    "-soil",
    "+soil",
    "title:soil",
    "{title section}: soil",
    "soil:",
    "\\",
    "\x00soil\x00",
    "日本語のテスト",
    "café crème brûlée",
    "🚀🔥 soil 🌱",
    "\u200b\u200d\ufeff",
    "Ünïcödé SOIL ﬁ ß ǅ",
    "١٢٣ ٤٥٦",
    "soil " * 1000,
    "x" * 5000,
    '("*:^-+' * 700,
    "and or not near the a of",
]


@pytest.mark.parametrize("query", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_queries_never_raise(tiny_corpus: Path, query: str) -> None:
    with Retriever.from_corpus(tiny_corpus) as retriever:
        result = retriever.search(query, k=5)
    assert isinstance(result, list)
    assert all(isinstance(p, Passage) for p in result)


def test_hostile_queries_that_name_a_word_still_find_it(tiny_corpus: Path) -> None:
    with Retriever.from_corpus(tiny_corpus) as retriever:
        for query in [
            'soil" OR "x',
            "NEAR(soil water, 2)",
            "soil*",
            "title:soil",
            "🚀🔥 soil 🌱",
            "soil " * 1000,
        ]:
            assert retriever.search(query, k=1)[0].section == "Soil", query


def test_nothing_searchable_returns_empty(tiny_corpus: Path) -> None:
    with Retriever.from_corpus(tiny_corpus) as retriever:
        for query in ["", "   ", "?!", "the and of", '""', "***"]:
            assert retriever.search(query) == [], query


def test_fts_query_quotes_terms_and_drops_stopwords() -> None:
    assert fts_query('what\'s "p95"?') == '"p95"'
    assert fts_query("AND OR NEAR(") == '"near"'
    assert fts_query("Circuit breaker OPEN, circuit?") == '"circuit" OR "breaker" OR "open"'
    assert fts_query("the of and") == ""
    assert len(query_terms(" ".join(f"w{i}" for i in range(100)))) == 32


@pytest.fixture(scope="module")
def shared_retriever(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Retriever]:
    corpus = write_corpus(tmp_path_factory.mktemp("shared") / "corpus", TINY_CORPUS)
    with Retriever.from_corpus(corpus) as retriever:
        yield retriever


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(query=st.text(max_size=300))
def test_any_text_is_a_safe_query(shared_retriever: Retriever, query: str) -> None:
    result = shared_retriever.search(query, k=3)
    assert isinstance(result, list) and len(result) <= 3
    if not fts_query(query):
        assert result == []


# --------------------------------------------------------------------------- rebuilds


def test_index_is_reused_until_the_corpus_changes(tiny_corpus: Path, tmp_path: Path) -> None:
    db = tmp_path / "index" / "rag.db"
    with Retriever.from_corpus(tiny_corpus, db) as first:
        assert first.rebuilt
        meta1 = first.meta()
    assert meta1["build_count"] == "1"
    assert meta1["docs"] == "3"
    assert meta1["chunks"] == "8"  # 1 intro + 2 + 3 + 2 sections, worked out from TINY_CORPUS
    inode = db.stat().st_ino

    # Unchanged corpus (even with a newer mtime): the file is reused, not rebuilt.
    (tiny_corpus / "garden.md").touch()
    with Retriever.from_corpus(tiny_corpus, db) as second:
        assert not second.rebuilt
        assert second.meta() == meta1
    assert db.stat().st_ino == inode

    # A changed file: rebuilt, and the new text is searchable.
    (tiny_corpus / "garden.md").write_text(TINY_CORPUS["garden"] + "\n## Compost\n\nTurn the compost heap.\n")
    with Retriever.from_corpus(tiny_corpus, db) as third:
        assert third.rebuilt
        meta3 = third.meta()
        assert third.search("compost heap", k=1)[0].section == "Compost"
    assert meta3["build_count"] == "2"
    assert meta3["corpus_hash"] != meta1["corpus_hash"]

    # A new file and a removed file each change the hash too.
    (tiny_corpus / "kite.md").write_text("# Kite\n\n## Wind\n\nFly the kite in a steady wind.\n")
    with Retriever.from_corpus(tiny_corpus, db) as fourth:
        assert fourth.rebuilt and fourth.meta()["build_count"] == "3"
        assert fourth.search("kite", k=1)[0].doc == "kite"
    (tiny_corpus / "kite.md").unlink()
    with Retriever.from_corpus(tiny_corpus, db) as fifth:
        assert fifth.rebuilt and fifth.meta()["build_count"] == "4"
        assert fifth.search("kite") == []
        assert fifth.meta()["corpus_hash"] == meta3["corpus_hash"]
    assert not list(db.parent.glob("*.tmp"))  # no temporary build left behind


def test_refresh_rebuilds_only_on_change(tiny_corpus: Path) -> None:
    with Retriever.from_corpus(tiny_corpus) as retriever:
        assert retriever.rebuilt
        assert retriever.refresh() is False
        assert retriever.meta()["build_count"] == "1"
        (tiny_corpus / "piano.md").write_text("# Piano care\n\n## Pedal\n\nOil the sustain pedal.\n")
        assert retriever.refresh() is True
        assert retriever.meta()["build_count"] == "2"
        assert retriever.search("sustain pedal", k=1)[0].section == "Pedal"
        assert retriever.search("hertz") == []
        assert retriever.refresh() is False


def test_refresh_of_a_file_index(tiny_corpus: Path, tmp_path: Path) -> None:
    db = tmp_path / "rag.db"
    with Retriever.from_corpus(tiny_corpus, db) as retriever:
        (tiny_corpus / "piano.md").unlink()
        assert retriever.refresh() is True
        assert retriever.search("felt") == []
    with Retriever.from_corpus(tiny_corpus, db) as again:
        assert not again.rebuilt


def test_a_database_with_other_tables_is_refused(tiny_corpus: Path, tmp_path: Path) -> None:
    db = tmp_path / "arbor.db"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE requests (id INTEGER PRIMARY KEY)")
    conn.commit()
    conn.close()
    before = db.read_bytes()
    with pytest.raises(ValueError, match="requests"):
        Retriever.from_corpus(tiny_corpus, db)
    assert db.read_bytes() == before


def test_a_file_that_is_not_sqlite_is_refused(tiny_corpus: Path, tmp_path: Path) -> None:
    db = tmp_path / "notes.txt"
    db.write_text("not a database, " * 100)
    with pytest.raises(ValueError, match="not an SQLite database"):
        Retriever.from_corpus(tiny_corpus, db)
    assert db.read_text().startswith("not a database")


def test_odd_characters_in_the_index_path(tiny_corpus: Path, tmp_path: Path) -> None:
    db = tmp_path / "dir #1" / "rag?v=1%20.db"
    with Retriever.from_corpus(tiny_corpus, db) as first:
        assert first.rebuilt and first.corpus_hash == corpus_hash(tiny_corpus)
    with Retriever.from_corpus(tiny_corpus, db) as second:
        assert not second.rebuilt
        assert second.search("warm soil", k=1)[0].section == "Soil"
    assert db.is_file()


def test_a_corpus_file_that_is_not_utf8_is_named(tiny_corpus: Path) -> None:
    (tiny_corpus / "latin1.md").write_bytes("# Caf\xe9\n\nna\xefve\n".encode("latin-1"))
    with pytest.raises(ValueError, match=r"latin1\.md is not UTF-8"):
        Retriever.from_corpus(tiny_corpus)


def test_missing_and_empty_corpus(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="corpus"):
        Retriever.from_corpus(tmp_path / "nope")
    empty = tmp_path / "empty"
    empty.mkdir()
    with Retriever.from_corpus(empty) as retriever:
        assert retriever.search("anything") == []
        assert retriever.meta()["chunks"] == "0"


# --------------------------------------------------------------------------- threads, lifecycle


def test_one_retriever_serves_many_threads(tiny_corpus: Path, tmp_path: Path) -> None:
    queries = {"warm soil": "Soil", "felt tone": "Felt", "teapot boil": "Boil", "aphid": "Pest"}
    for db in (None, tmp_path / "rag.db"):
        retriever = Retriever.from_corpus(tiny_corpus, db)
        errors: list[BaseException] = []

        def work(retriever: Retriever = retriever, errors: list[BaseException] = errors) -> None:
            try:
                for _ in range(50):
                    for query, section in queries.items():
                        assert retriever.search(query, k=1)[0].section == section
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=work) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        retriever.close()
        assert errors == []


def test_close_is_idempotent_and_final(tiny_corpus: Path) -> None:
    retriever = Retriever.from_corpus(tiny_corpus)
    retriever.close()
    retriever.close()
    with pytest.raises(RuntimeError, match="closed"):
        retriever.search("soil")


# --------------------------------------------------------------------------- prompt context


def test_format_context_numbers_one_line_per_passage() -> None:
    passages = [
        Passage("runbook-a", "A", "Alert", "First line.\n\n- item  one\n- item two", 3.0),
        Passage("note-b", "B", "Part / Sub", "Plain.", 1.5),
    ]
    assert format_context(passages) == (
        "[1] (runbook-a § Alert) First line. - item one - item two\n[2] (note-b § Part / Sub) Plain."
    )
    assert format_context([]) == ""
