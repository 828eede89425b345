"""Sentences of an answer or a passage, and the small text surgery the other answer modules share
(dropping spans, tidying what removal leaves behind, folding case and spacing)."""

from __future__ import annotations

import re
from collections.abc import Iterable

# What chatbot.engine.answer re-exports.
__all__ = ["sentence_spans", "split_sentences"]


def tidy(text: str) -> str:
    """Spaces left behind by removed markers or sentences: "acid [7]." -> "acid."."""
    text = re.sub(r"[ \t]+([.,;:!?。，；：！？])", r"\1", text)
    text = re.sub(r"[ \t]{2,}", " ", text)
    text = re.sub(r"[ \t]+\n", "\n", text)
    text = re.sub(r"\n{3,}", "\n\n", text)
    return text.strip()


def fold(text: str) -> str:
    """Case and spacing do not matter: the model writes "asthma?" for the stored "Asthma ?"."""
    return re.sub(r"\s+", "", text).casefold()


def drop_spans(text: str, spans: Iterable[tuple[int, int]]) -> str:
    """``text`` without the (start, end) ``spans`` (duplicates allowed); callers ``tidy`` after."""
    for s, e in sorted(set(spans), reverse=True):
        text = text[:s] + text[e:]
    return text


# A sentence ends at Chinese or Latin end punctuation, or at a line break. A period only ends a
# sentence before a space, a marker or the end, so "5.5 mmol/L" and "e.g.," stay whole. Markers
# right after the end ("... acid. [1]") belong to the sentence they follow.
_SENT_END = re.compile(r"(?:[。！？!?]+|\.(?=\s|$|\[)|\n)[”\"'）)]*(?:[ \t]*\[\d+\])*")


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of each non-blank sentence, in order; ``text[start:end]`` keeps its markers."""
    spans: list[tuple[int, int]] = []
    start = 0
    for m in _SENT_END.finditer(text):
        spans.append((start, m.end()))
        start = m.end()
    spans.append((start, len(text)))
    out = []
    for s, e in spans:
        while s < e and text[s].isspace():
            s += 1
        while e > s and text[e - 1].isspace():
            e -= 1
        if s < e:
            out.append((s, e))
    return out


def split_sentences(text: str) -> list[str]:
    """The sentences of :func:`sentence_spans`, as strings."""
    return [text[s:e] for s, e in sentence_spans(text)]
