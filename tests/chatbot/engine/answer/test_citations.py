"""chatbot.engine.answer.citations: citation markers: normalised, counted, dropped when they point nowhere; the source list."""

from __future__ import annotations

import pytest

from chatbot.engine.answer.citations import Citation, clean_citations, find_citations, normalise_markers, render_sources
from tests.chatbot.engine.answer.samples import PROMPTS


@pytest.mark.parametrize("raw,expected", [
    ("Gout is caused by uric acid【1】.", "Gout is caused by uric acid[1]."),
    ("Gout [1, 2] and glaucoma [1，3].", "Gout [1][2] and glaucoma [1][3]."),
    ("见［２］和〔3〕。", "见[2]和[3]。"),
    ("高血压要低盐饮食[1、2]。", "高血压要低盐饮食[1][2]。"),
    ("ranges [1-3] too", "ranges [1][2][3] too"),
    ("[ 2 ] spaced", "[2] spaced"),
    ("numbered list (1) stays, [1][2] stays", "numbered list (1) stays, [1][2] stays"),
    ("a huge range [1-40] is not a citation list", "a huge range [1-40] is not a citation list"),
])
def test_normalise_markers(raw, expected):
    assert normalise_markers(raw) == expected


@pytest.mark.parametrize("text,expected", [
    ("a [2] b [1, 2] c 【3】 d [2]", [2, 1, 3]),
    ("没有引用。", []),
    ("高血压[1]，糖尿病【2】。", [1, 2]),
])
def test_find_citations_distinct_in_order(text, expected):
    assert find_citations(text) == expected


@pytest.mark.parametrize("text,n,cleaned,kept,removed", [
    ("Gout is caused by uric acid [7]. Treat it early [1].", 3,
     "Gout is caused by uric acid. Treat it early [1].", [1], [7]),
    ("See [0] and [2][3].", 3, "See and [2][3].", [2, 3], [0]),
    ("高血压要低盐[1][5]。", 2, "高血压要低盐[1]。", [1], [5]),
    ("All fine [1, 2].", 2, "All fine [1][2].", [1, 2], []),
])
def test_clean_citations_drops_markers_pointing_nowhere(text, n, cleaned, kept, removed):
    assert clean_citations(text, n) == (cleaned, kept, removed)


def test_render_sources_lists_citations_under_the_heading():
    cites = [Citation(1, "doc1", "Gout", "https://example.org/1", "MedQuAD")]
    assert render_sources(cites, "zh", PROMPTS) == "参考资料\n[1] Gout (MedQuAD) https://example.org/1"
    assert render_sources([], "en", PROMPTS) == ""
