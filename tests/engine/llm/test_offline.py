"""Offline provider: extractive, cited, deterministic, never invents; prompt parsing; token counts."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.llm import LLMRequest, Message, OfflineProvider
from engine.llm.offline import NO_CONTEXT_TEXT, parse_prompt
from engine.llm.text import count_tokens, split_sentences, terms

CITED = re.compile(r"(.+?) \[(\d+)\](?: |$)")


def ask(passages: list[str], question: str, **kw) -> str:
    block = "\n".join(f"[{i}] {p}" for i, p in enumerate(passages, start=1))
    return f"Context:\n{block}\nQuestion: {question}"


def complete(prompt: str, **kw):
    return OfflineProvider().complete(
        LLMRequest.from_prompt(prompt, system="Answer from the passages.", **kw)
    )


def cited_parts(text: str) -> list[tuple[str, int]]:
    parts = [(m.group(1), int(m.group(2))) for m in CITED.finditer(text)]
    assert "".join(f"{s} [{n}] " for s, n in parts).strip() == text  # nothing outside the citations
    return parts


def test_picks_the_sentence_with_the_obvious_overlap() -> None:
    passages = [
        "Mount Everest is the highest mountain on Earth. It is in the Himalayas.",
        "The Nile is the longest river in Africa. It flows north into the Mediterranean Sea.",
        "Photosynthesis converts light energy into chemical energy in plants.",
    ]
    response = complete(ask(passages, "What do plants convert light energy into?"))
    assert response.text == "Photosynthesis converts light energy into chemical energy in plants. [3]"
    assert response.extractive and response.provider == "offline"
    assert response.finish_reason == "extractive"
    assert response.cost_usd == 0.0 and response.tokens_estimated


def test_idf_weighting_prefers_the_distinctive_term() -> None:
    """By hand, N = 3: idf = ln(4 / (1 + df)) + 1.  city (df 2) 1.288, capital (df 1) 1.693,
    australia (df 3) 1.0.  Scores: [1] 2.288, [2] 2.693, [3] 2.288 -> [2] first, then the tie [1], [3]
    in passage order (both >= half of 2.693).  Plain overlap counting would tie all three at 2."""
    passages = [
        "Sydney is the largest city in Australia.",
        "Canberra is the capital of Australia.",
        "Melbourne is a city in Australia.",
    ]
    response = complete(ask(passages, "Which city is the capital of Australia?"))
    assert response.text == (
        "Canberra is the capital of Australia. [2] "
        "Sydney is the largest city in Australia. [1] "
        "Melbourne is a city in Australia. [3]"
    )


def test_weak_sentences_below_half_the_best_are_left_out() -> None:
    passages = [
        "The reactor core temperature limit is 350 degrees. Staff badges are blue.",
        "The core team meets.",
    ]
    # By hand, N = 2: reactor, temperature, limit have df 1 (idf 1.405), core df 2 (idf 1.0).
    # Sentence 1 scores 3 x 1.405 + 1.0 = 5.216; "The core team meets." 1.0 < 5.216 / 2: left out.
    response = complete(ask(passages, "What is the reactor core temperature limit?"))
    assert response.text == "The reactor core temperature limit is 350 degrees. [1]"


def test_answer_contains_only_sentences_from_the_cited_passage() -> None:
    passages = [
        "Alpha particles are helium nuclei. They are stopped by paper.",
        "Beta particles are electrons. They are stopped by aluminium. Gamma rays need lead.",
        "Neutrons are stopped by water or concrete.",
    ]
    response = complete(ask(passages, "What stops beta particles and gamma rays?"))
    parts = cited_parts(response.text)
    for sentence, n in parts:
        assert sentence in split_sentences(passages[n - 1])
    # By hand, N = 3, question terms {stop, beta, particle, gamma, ray} ("stopped" is not "stop"):
    # beta, gamma, ray df 1 (idf 1.693), particle df 2 (1.288).  "Gamma rays need lead." 3.386,
    # "Beta particles are electrons." 2.981, "Alpha particles are helium nuclei." 1.288 (< 1.693: out).
    assert parts == [("Gamma rays need lead.", 2), ("Beta particles are electrons.", 2)]


def test_no_passages_says_no_offline_answer() -> None:
    response = complete("What is the meaning of life?")
    assert response.text == NO_CONTEXT_TEXT
    assert "No offline answer is available" in response.text
    assert response.finish_reason == "no_context" and response.extractive


def test_passages_without_overlap_say_so() -> None:
    response = complete(ask(["Cats purr when content."], "How tall is the Eiffel Tower?"))
    assert response.text.startswith("No offline answer is available")
    assert response.finish_reason == "no_match"


def test_deterministic() -> None:
    prompt = ask(["A b c. Delta echo foxtrot.", "Echo golf hotel. India delta."], "delta echo?")
    texts = {complete(prompt).text for _ in range(5)}
    texts.add(OfflineProvider().complete(LLMRequest.from_prompt(prompt)).text)
    assert len(texts) == 1


def test_parse_prompt_multiline_passages_and_question() -> None:
    text = "Intro line\n[1] First passage\ncontinues here.\n[12] Second.\nQuestion: Is it\nmultiline?"
    passages, question = parse_prompt(text)
    assert [(p.number, p.text) for p in passages] == [(1, "First passage continues here."), (12, "Second.")]
    assert question == "Is it multiline?"


def test_parse_prompt_without_question_marker_uses_other_lines() -> None:
    passages, question = parse_prompt("Tell me about owls\n[1] Owls hunt at night.")
    assert question == "Tell me about owls"
    assert passages[0].text == "Owls hunt at night."


def test_last_user_message_is_used() -> None:
    request = LLMRequest(
        messages=(
            Message("system", "[1] System text is not a passage."),
            Message("user", ask(["Old passage about owls."], "owls?")),
            Message("assistant", "Owls hunt. [1]"),
            Message("user", ask(["Foxes are mammals."], "Are foxes mammals?")),
        )
    )
    assert OfflineProvider().complete(request).text == "Foxes are mammals. [1]"


def test_max_tokens_limits_the_answer() -> None:
    passages = ["Owls hunt mice at night. Owls have silent feathers. Owls swallow mice whole."]
    full = complete(ask(passages, "How do owls hunt mice?"))
    assert len(cited_parts(full.text)) == 2
    first = cited_parts(full.text)[0]
    budget = count_tokens(f"{first[0]} [{first[1]}]")
    one = complete(ask(passages, "How do owls hunt mice?"), max_tokens=budget)
    assert one.text == f"{first[0]} [{first[1]}]" and one.finish_reason == "length"
    cut = complete(ask(passages, "How do owls hunt mice?"), max_tokens=5)
    assert cut.finish_reason == "length" and cut.text == "Owls… [1]"
    assert cut.output_tokens <= 5


def test_token_counts_are_the_documented_approximation() -> None:
    response = complete(ask(["Owls hunt."], "Owls?"))
    # "Answer from the passages." = 5; "Context:\n[1] Owls hunt.\nQuestion: Owls?" = 2+3+3+2+2 = 12
    assert response.input_tokens == 5 + 12
    assert response.output_tokens == count_tokens("Owls hunt. [1]") == 6


WORDS = "owl fox river stone light paper water night mouse tree cloud rain"
words = st.sampled_from(WORDS.split())
sentence = st.lists(words, min_size=2, max_size=6).map(lambda ws: " ".join(ws).capitalize() + ".")
passage = st.lists(sentence, min_size=1, max_size=4).map(" ".join)


@settings(max_examples=150, deadline=None)
@given(passages=st.lists(passage, min_size=1, max_size=5), question=st.lists(words, min_size=1, max_size=4))
def test_property_never_invents(passages: list[str], question: list[str]) -> None:
    response = complete(ask(passages, " ".join(question) + "?"))
    if response.finish_reason == "no_match":
        assert not set(terms(" ".join(question))) & set(terms(" ".join(passages)))
        return
    parts = cited_parts(response.text)
    assert 1 <= len(parts) <= 3
    assert len({s for s, _ in parts}) == len(parts)  # no sentence quoted twice
    for sentence_text, n in parts:
        assert sentence_text in split_sentences(passages[n - 1])
        assert set(terms(sentence_text)) & set(terms(" ".join(question)))


@pytest.mark.parametrize("bad", [{"max_sentences": 0}, {"max_sentences": 4}, {"min_relative_score": 1.5}])
def test_validation(bad: dict) -> None:
    with pytest.raises(ValueError):
        OfflineProvider(**bad)


def test_a_flattened_bulleted_list_is_one_sentence_per_item() -> None:
    text = "Alerts: - Page at 14.4x (1h/5m): the fast burn runbook. - Ticket at 1x: slow burn. Then act."
    assert split_sentences(text) == [
        "Alerts:",
        "- Page at 14.4x (1h/5m): the fast burn runbook.",
        "- Ticket at 1x: slow burn.",
        "Then act.",
    ]
    # a spaced hyphen inside a sentence is not a list item
    assert split_sentences("Fast - and slow - burns differ.") == ["Fast - and slow - burns differ."]


def test_list_items_are_answered_as_a_list() -> None:
    passages = ["Alerts: - Page when the burn is fast. - Ticket when the burn is slow. Budgets reset."]
    response = complete(ask(passages, "When does a burn page or ticket?"))
    # both items quoted, each on its own line, so the answer renders as the list it came from
    assert response.text == "- Page when the burn is fast. [1]\n- Ticket when the burn is slow. [1]"


def test_join_sentences_starts_a_paragraph_after_a_list() -> None:
    from engine.llm.text import join_sentences

    assert join_sentences(["A. [1]", "- b. [2]", "- c. [2]", "D. [1]", "E. [3]"]) == (
        "A. [1]\n- b. [2]\n- c. [2]\n\nD. [1] E. [3]"
    )
