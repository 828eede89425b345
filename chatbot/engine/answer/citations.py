"""Citation markers: the bracket styles a small model writes normalised to ``[n]``, markers that
point to no passage dropped, and the kept ones mapped to :class:`Citation` records. Passages are
numbered [1]..[n] in the order given, as in the prompt."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from chatbot.engine.answer.sentences import tidy
from chatbot.prompts import PromptLibrary
from knowledge_base.records import Passage

# What chatbot.engine.answer re-exports.
__all__ = ["Citation", "clean_citations", "find_citations", "normalise_markers", "render_sources", "strip_markers"]


@dataclass(frozen=True)
class Citation:
    n: int
    doc_id: str
    title: str
    url: str
    source: str


# Full-width digits ("１２") read as ASCII ones: markers and doses both need them (a translate table).
FULLWIDTH_DIGITS = str.maketrans("０１２３４５６７８９", "0123456789")
# Bracket styles a small model produces: [1] 【1】 ［1］ 〔1〕, with lists "1,2" "1，2" "1、2" "1; 2"
# and ranges "1-3". Round brackets are not markers: "(1)" is usually a list item or a number.
_MARKER = re.compile(
    r"[\[【［〔]\s*(\d{1,3}(?:\s*(?:[,，、;；]|[-–~～])\s*\d{1,3})*)\s*[\]】］〕]")
_MARKER_PART = re.compile(r"(\d{1,3})\s*[-–~～]\s*(\d{1,3})|(\d{1,3})")
_NORMAL_MARKER = re.compile(r"\[(\d+)\]")
# A range longer than this is not a citation list ("[1-100]" is text, left alone).
_MAX_RANGE = 10


def _expand_marker(body: str) -> list[int] | None:
    numbers: list[int] = []
    for m in _MARKER_PART.finditer(body):
        if m.group(3):
            numbers.append(int(m.group(3)))
            continue
        lo, hi = int(m.group(1)), int(m.group(2))
        if hi < lo or hi - lo >= _MAX_RANGE:
            return None
        numbers.extend(range(lo, hi + 1))
    return numbers


def normalise_markers(text: str) -> str:
    """Every bracket-style citation becomes ``[n]``; lists and ranges become ``[1][2]``."""
    text = text.translate(FULLWIDTH_DIGITS)

    def repl(m: re.Match[str]) -> str:
        numbers = _expand_marker(m.group(1))
        if numbers is None:
            return m.group(0)
        return "".join(f"[{n}]" for n in numbers)

    return _MARKER.sub(repl, text)


def find_citations(text: str) -> list[int]:
    """Marker numbers, distinct, in order of first appearance."""
    found = (int(n) for n in _NORMAL_MARKER.findall(normalise_markers(text)))
    return list(dict.fromkeys(found))


def clean_citations(text: str, n_passages: int) -> tuple[str, list[int], list[int]]:
    """Normalise markers and drop those that point nowhere (< 1 or > n_passages).
    Returns (text, kept numbers, removed numbers), both distinct in order of appearance."""
    text = normalise_markers(text)
    kept: list[int] = []
    removed: list[int] = []

    def repl(m: re.Match[str]) -> str:
        n = int(m.group(1))
        if 1 <= n <= n_passages:
            kept.append(n)
            return m.group(0)
        removed.append(n)
        return ""

    text = _NORMAL_MARKER.sub(repl, text)
    if removed:
        text = tidy(text)
    return text, list(dict.fromkeys(kept)), list(dict.fromkeys(removed))


def strip_markers(text: str) -> str:
    """``text`` without citation markers (any bracket style), each replaced by a space: what the
    language, loop and support checks read."""
    return _NORMAL_MARKER.sub(" ", normalise_markers(text))


def render_sources(citations: Sequence[Citation], lang: str, prompts: PromptLibrary) -> str:
    """A plain-text source list for the CLI: heading, then "[n] title (source) url" lines."""
    if not citations:
        return ""
    lines = [prompts.text(lang, "answer.sources_heading")]
    for c in citations:
        detail = " ".join(part for part in (f"({c.source})" if c.source else "", c.url) if part)
        lines.append(f"[{c.n}] {c.title} {detail}".rstrip())
    return "\n".join(lines)


def citations_in(text: str, passages: Sequence[Passage]) -> list[Citation]:
    """The :class:`Citation` of each passage ``text`` cites, in order of first citation; markers
    pointing to no passage are skipped."""
    out = []
    for n in find_citations(text):
        if 1 <= n <= len(passages):
            p = passages[n - 1]
            out.append(Citation(n=n, doc_id=p.doc_id, title=p.title, url=p.url, source=p.source))
    return out
