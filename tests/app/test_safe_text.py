"""app.safe_text against hostile strings; every expected output is written out by hand.

The browser test (tests/e2e/test_hostile_text_browser.py) checks the same property end to end:
rendered by Streamlit in Chromium, none of these fetch anything."""

from __future__ import annotations

import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.safe_text import plain, plotly_text, sanitize_markdown
from tests.app.shown import shown

H = "http://127.0.0.1:9/b.png"

# -- plain ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"![b]({H})", r"\!\[b\]\(http\:\/\/127\.0\.0\.1\:9\/b\.png\)"),
        ("**bold** _it_ `code`", r"\*\*bold\*\* \_it\_ \`code\`"),
        ("<img src=x onerror=alert(1)>", r"\<img src\=x onerror\=alert\(1\)\>"),
        ("&lt; &#33;", r"\&lt\; \&\#33\;"),
        ("# heading\n1. item", "\\# heading  \n1\\. item"),
        ("$x$ :red[y]", r"\$x\$ \:red\[y\]"),
        ("a\\b", "a\\\\b"),
        ("line 1\r\nline 2", "line 1  \nline 2"),
        ("→ é 1 2", "→ é 1 2"),
        ("", ""),
    ],
)
def test_plain_escapes_every_punctuation_character(text, expected):
    assert plain(text) == expected


@given(st.text(alphabet=st.characters(blacklist_characters="\r")))
def test_plain_reads_back_as_the_text_and_cannot_open_anything(text):
    escaped = plain(text)
    assert shown(escaped) == text
    # every ASCII punctuation character is preceded by an (unescaped) backslash: no syntax is left
    i = 0
    while i < len(escaped):
        if escaped[i] == "\\":
            assert escaped[i + 1] in string.punctuation
            i += 2
        else:
            assert escaped[i] not in string.punctuation
            i += 1


# -- sanitize_markdown ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # inline images: dropped, the alt text says what was there
        (f"Answer [1].\n\n![b]({H})", "Answer [1].\n\n\\[image removed: b\\]"),
        (f'see ![a  b](<{H}> "title") end', "see \\[image removed: a b\\] end"),
        (f"![]({H})", "\\[image removed\\]"),
        (f"![*x*]({H})", "\\[image removed: \\*x\\*\\]"),
        # reference images: full, collapsed and (when defined) shortcut
        (
            f"![b][r] and ![c][]\n\n[r]: {H}\n[c]: {H}",
            f"\\[image removed: b\\] and \\[image removed: c\\]\n\n[r]: {H}\n[c]: {H}",
        ),
        (f"![Logo]\n\n[logo]: {H}", f"\\[image removed: Logo\\]\n\n[logo]: {H}"),
        ("![1] has no definition", "!\\[1] has no definition"),
        # raw HTML: tags, comments and declarations dropped; autolinks become their address
        (f'before <img src="{H}" onerror="x()"> after', "before  after"),
        (f'<iframe src="{H}"></iframe>text', "text"),
        (f"a<!-- ![b]({H}) -->b", "ab"),
        (f"<<b>img src={H}>", ""),
        ("<" * 10 + "b>" * 10, "<&lt;b>b>"),  # 8 passes peel 8 tags; what is left reads as text
        ("a <!-- never closed", "a <!-- never closed"),
        ("<?php echo 1; ?>x<![CDATA[ y ]]>z", "xz"),
        (f"<{H}>", H),
        ("<ops@example.com>", "ops@example.com"),
        ('<a href="javascript:alert(1)">x</a>', "x"),
        # entities are text: they never become tags or images
        ("&lt;img src=x&gt; &#33;[b](u)", "&lt;img src=x&gt; &#33;[b](u)"),
        # nested brackets: the inner image goes, the outer one cannot form
        (f"![a ![b]({H})]({H})", f"!\\[a \\[image removed: b\\]]({H})"),
        (f"![a [x] b]({H})", f"!\\[a [x] b]({H})"),
        # an image that only appears once a tag is dropped
        (f"!<b>[x]({H})", "\\[image removed: x\\]"),
        # an escaped bang is a link, not an image; the guard keeps it that way
        ("\\![b](u)", "\\!\\[b](u)"),
        # code: HTML kept verbatim in spans and fences; a "![" in code is still broken (shown with \)
        ("Use `<details>` here", "Use `<details>` here"),
        ('```html\n<img src="x.png">\n```', '```html\n<img src="x.png">\n```'),
        (f"`![b]({H})`", f"`!\\[b]({H})`"),
        # backticks that try to hide an image from the code detection
        (f'`<x y="`"> ![b]({H}) `', '`<x y="`"> \\[image removed: b\\] `'),
        (f"``x` ![b]({H}) `y``", f"``x` !\\[b]({H}) `y``"),
        (f"```\n![b]({H})", f"```\n!\\[b]({H})"),  # an unclosed fence runs to the end
        # what an answer should keep: emphasis, code, links, citations, lists, tables
        (
            "**Restart** the _exporter_ `svc` [docs](https://example.com/a) [2]\n\n- a\n- b\n\n"
            "| a | b |\n|---|---|\n| 1 | 2 |",
            "**Restart** the _exporter_ `svc` [docs](https://example.com/a) [2]\n\n- a\n- b\n\n"
            "| a | b |\n|---|---|\n| 1 | 2 |",
        ),
    ],
)
def test_sanitize_markdown(text, expected):
    assert sanitize_markdown(text) == expected


# -- plotly_text ------------------------------------------------------------------------------------


def test_plotly_text_turns_markup_into_entities():
    assert plotly_text('<a href="x">a&b</a>') == '&lt;a href="x"&gt;a&amp;b&lt;/a&gt;'
    assert plotly_text("agent.hrm") == "agent.hrm"
