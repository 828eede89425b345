"""The extractive fallback: sentences quoted verbatim from the top passages, with their [n],
when the model's answer cannot be used."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from chatbot.engine.answer.checks import MIN_CONTENT_TOKENS, content_tokens
from chatbot.engine.answer.sentences import fold, split_sentences
from chatbot.prompts import PromptLibrary
from knowledge_base.records import Passage
from knowledge_base.text import CJK, detect_lang
from knowledge_base.tokenize import translate_terms

# What chatbot.engine.answer re-exports.
__all__ = ["extractive_answer"]

# The extractive fallback reads the top passages only: lower ones are weaker matches.
EXTRACTIVE_TOP_PASSAGES = 3
# Quoted sentences longer than this are cut at a word / clause boundary (MedQuAD has 600-character
# lists, Toyhom runs whole answers together with commas). A CJK character carries about a word.
EXTRACTIVE_MAX_CHARS = {"en": 360, "zh": 160}
# A list intro ("Common symptoms include:") is quoted with at most this many items, each the first
# sentence of its line and at most this long (longer lines are paragraphs, not list items).
EXTRACTIVE_LIST_ITEMS = 6
EXTRACTIVE_LIST_ITEM_CHARS = 100
EXTRACTIVE_LIST_ITEM_WORDS = 5  # unbulleted items: words, or twice as many CJK characters
# Shortest stems compared by prefix in the extractive scoring: 4 Latin letters, 2 CJK characters.
_PREFIX_MIN = {True: 4, False: 2}
_TERMINAL = (".", "!", "?", "。", "！", "？", "…", ";", "；")


def _glossary_tokens(text: str, lang: str) -> set[str]:
    """Content tokens of the glossary translations of ``text`` (zh -> English terms and back)."""
    terms = translate_terms(text, lang)
    return content_tokens(" ".join(terms)) if terms else set()


def question_tokens(question: str, lang: str) -> dict[str, set[str]]:
    """The question's content tokens as they would appear in zh and in en passages."""
    native = content_tokens(question)
    other = "en" if lang == "zh" else "zh"
    return {lang: native, other: native | _glossary_tokens(question, lang)}


def passage_lang(p: Passage) -> str:
    """The passage's language as stored, or detected from its text when the source did not say."""
    return p.lang if p.lang in ("zh", "en") else detect_lang(p.text)


def passage_body(p: Passage) -> str:
    """Chunks start with their stored question (see the chunker); that line is not an answer."""
    text = p.text
    if p.question and text.startswith(p.question):
        text = text[len(p.question):]
    return text


def shorten(sentence: str, lang: str) -> str:
    limit = EXTRACTIVE_MAX_CHARS[lang]
    if len(sentence) <= limit:
        return sentence
    cut = sentence[:limit]
    boundary = max(cut.rfind(c) for c in (" ", "，", "；", ",", ";"))
    return (cut[:boundary] if boundary > limit // 2 else cut).rstrip(",;，； ") + "…"


@dataclass(frozen=True)
class _Candidate:
    score: int
    rank: int  # passage number - 1
    position: int
    text: str
    lang: str


def _is_list_intro(sentence: str) -> bool:
    """ "Common symptoms include:" announces the list on the next lines."""
    return sentence.rstrip().endswith((":", "："))


def _phrase_like(sentence: str) -> bool:
    if detect_lang(sentence) == "zh":
        return len(CJK.findall(sentence)) <= EXTRACTIVE_LIST_ITEM_WORDS * 2
    return len(sentence.split()) <= EXTRACTIVE_LIST_ITEM_WORDS


def _list_items(lines: list[str], start: int, bullets_only: bool) -> list[str]:
    """The first sentence of each list line from ``start`` on; a list ends at a long line."""
    items: list[str] = []
    for line in lines[start:start + EXTRACTIVE_LIST_ITEMS]:
        is_bullet = line.startswith(("-", "*", "•"))
        if bullets_only and not is_bullet:
            break
        first = split_sentences(line.lstrip("-*• \t"))
        if not first or len(first[0]) > EXTRACTIVE_LIST_ITEM_CHARS:
            break
        # Without a bullet, an item is a short heading-like phrase ("Chest tightness."), not a
        # paragraph's opening sentence ("Not all people who have asthma have these symptoms.").
        if not is_bullet and not _phrase_like(first[0]):
            break
        items.append(first[0])
    return items


def passage_units(body: str) -> list[str]:
    """The quotable units of a passage body: its sentences, except that a list intro ("... include:"
    or an unfinished line such as "You may have a kidney stone if you") keeps its items, one per
    line: alone it says nothing."""
    lines = [ln.strip() for ln in body.split("\n") if ln.strip()]
    units: list[str] = []
    i = 0
    while i < len(lines):
        sentences = split_sentences(lines[i].lstrip("-*•\t "))
        i += 1
        if not sentences:
            continue
        units.extend(sentences[:-1])
        last = sentences[-1]
        unfinished = not last.rstrip("\"'”’)）").endswith(_TERMINAL)
        items = (_list_items(lines, i, bullets_only=not _is_list_intro(last))
                 if _is_list_intro(last) or unfinished else [])
        if items:
            units.append("\n".join([last, *(f"- {item}" for item in items)]))
            i += len(items)
        else:
            units.append(last)
    return units


def overlap(tokens: set[str], question: set[str]) -> int:
    """Question tokens found in a sentence; stems that extend each other count ("treat" and
    "treatment" are separate Snowball stems, 高血压 and 高血压病 separate jieba words)."""
    def found(q: str) -> bool:
        return any(t == q or (min(len(t), len(q)) >= _PREFIX_MIN[t.isascii()]
                              and (t.startswith(q) or q.startswith(t))) for t in tokens)
    return sum(found(q) for q in question)


def _candidates(question: str, lang: str, passages: Sequence[Passage]) -> list[_Candidate]:
    qtokens = question_tokens(question, lang)
    out: list[_Candidate] = []
    for rank, p in enumerate(passages[:EXTRACTIVE_TOP_PASSAGES]):
        plang = passage_lang(p)
        for position, unit in enumerate(passage_units(passage_body(p))):
            # Questions are headings of the source, not answers.
            tokens = content_tokens(unit)
            if unit.endswith(("?", "？")) or len(tokens) < MIN_CONTENT_TOKENS:
                continue
            text = unit if "\n" in unit else shorten(unit, plang)
            out.append(_Candidate(overlap(tokens, qtokens[plang]), rank, position, text, plang))
    return out


def _pick(candidates: list[_Candidate], max_sentences: int) -> list[_Candidate]:
    # The same sentence often comes twice (two chunks of one document, duplicate Toyhom rows).
    unique: dict[str, _Candidate] = {}
    for c in sorted(candidates, key=lambda c: (c.rank, c.position)):
        unique.setdefault(fold(c.text), c)
    candidates = list(unique.values())
    matching = [c for c in candidates if c.score > 0]
    if matching:
        best = sorted(matching, key=lambda c: (-c.score, c.rank, c.position))[:max_sentences]
    else:
        # No shared word (e.g. a Chinese question without glossary terms over English passages):
        # the retriever still ranked passage [1] first, so its opening sentences are the best bet.
        top = min(c.rank for c in candidates)
        best = [c for c in candidates if c.rank == top][: min(2, max_sentences)]
    return sorted(best, key=lambda c: (c.rank, c.position))  # reading order


def extractive_answer(question: str, lang: str, passages: Sequence[Passage],
                      prompts: PromptLibrary, max_sentences: int = 3) -> str:
    """Quote the sentences of the top passages sharing most content words with the question,
    verbatim with their [n], under a one-line intro in the question's language; sentences from
    passages in the other language come under the ``answer.extractive_other_language`` line."""
    candidates = _candidates(question, lang, passages)
    if not candidates:
        return prompts.text(lang, "answer.generation_failed")
    picked = _pick(candidates, max_sentences)
    same = [f"{c.text} [{c.rank + 1}]" for c in picked if c.lang == lang]
    other = [f"{c.text} [{c.rank + 1}]" for c in picked if c.lang != lang]
    blocks = []
    if same:
        blocks.append("\n".join([prompts.text(lang, "answer.extractive_intro"), *same]))
    if other:
        blocks.append("\n".join([prompts.text(lang, "answer.extractive_other_language"), *other]))
    return "\n\n".join(blocks)
